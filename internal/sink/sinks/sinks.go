// Package sinks opens a sink from its URL: sqlite:PATH, postgres://... or
// cassandra://..., choosing the driver by the URL's scheme.
//
// It is the one package that knows every driver, so that commands, the
// in-process stack and the web UI open sinks alike; the drivers themselves
// stay in sink/sqlite, sink/postgres and sink/cassandra.
package sinks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/cassandra"
	"github.com/userstream/userstream/internal/sink/postgres"
	"github.com/userstream/userstream/internal/sink/sqlite"
)

// Schemes is what a sink URL may look like, for messages.
const Schemes = "sqlite:PATH (e.g. sqlite:./data/users.db), postgres://user:pass@host:5432/db " +
	"(or postgresql://), cassandra://host1,host2:9042/spark_streams"

// ErrBadURL is matched by the error of a URL that names no sink: no
// scheme, an unknown one, or a malformed form of a known one. Such an
// error never echoes the URL (it may hold a password).
var ErrBadURL = errors.New("not a sink URL")

type badURL struct{ msg string }

func (e *badURL) Error() string        { return e.msg }
func (e *badURL) Is(target error) bool { return target == ErrBadURL }

// Check checks a sink URL's form without connecting.
func Check(rawURL string) error {
	scheme, _, ok := strings.Cut(rawURL, ":")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/@") {
		return &badURL{"the value is not a sink URL (no scheme); use " + Schemes}
	}
	var err error
	switch strings.ToLower(scheme) {
	case "sqlite":
		_, err = sqlite.ParseURL(rawURL)
	case "postgres", "postgresql":
	case "cassandra":
		_, err = cassandra.ParseURL(rawURL)
	default:
		return &badURL{fmt.Sprintf("unknown scheme %q; use %s", scheme, Schemes)}
	}
	if err != nil {
		return &badURL{err.Error()}
	}
	return nil
}

// Option changes how Open opens a sink.
type Option func(*config)

type config struct{ readOnly bool }

// ReadOnly opens the sink for reading only: no table, keyspace or schema
// is created or migrated (PostgreSQL and Cassandra); a backend without the
// users table is an error matching sink.ErrNoTable.
func ReadOnly() Option { return func(c *config) { c.readOnly = true } }

// Open opens the sink rawURL names. A bad URL is an error matching
// ErrBadURL; failures to connect or migrate are the driver's errors, which
// never contain a password.
func Open(ctx context.Context, rawURL string, opts ...Option) (sink.Sink, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if err := Check(rawURL); err != nil {
		return nil, err
	}
	var (
		s   sink.Sink
		err error
	)
	// Each driver's Open returns a typed pointer: keep a nil one out of
	// the interface.
	scheme, _, _ := strings.Cut(rawURL, ":")
	switch strings.ToLower(scheme) {
	case "sqlite":
		var d *sqlite.Sink
		if d, err = sqlite.Open(ctx, rawURL); err == nil {
			s = d
		}
	case "postgres", "postgresql":
		var popts []postgres.Option
		if c.readOnly {
			popts = append(popts, postgres.ReadOnly())
		}
		var d *postgres.Sink
		if d, err = postgres.Open(ctx, rawURL, popts...); err == nil {
			s = d
		}
	default:
		var copts []cassandra.Option
		if c.readOnly {
			copts = append(copts, cassandra.ReadOnly())
		}
		var d *cassandra.Sink
		if d, err = cassandra.Open(ctx, rawURL, copts...); err == nil {
			s = d
		}
	}
	return s, err
}
