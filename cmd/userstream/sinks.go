package main

import (
	"context"
	"strings"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/cassandra"
	"github.com/userstream/userstream/internal/sink/postgres"
	"github.com/userstream/userstream/internal/sink/sqlite"
)

// sinkSchemes is what --sink accepts, for usage messages.
const sinkSchemes = "sqlite:PATH (e.g. sqlite:./data/users.db), postgres://user:pass@host:5432/db " +
	"(or postgresql://), cassandra://host1,host2:9042/spark_streams"

// openSink opens the sink a --sink URL names, choosing the driver by the
// URL's scheme. A URL with no known scheme, or a sqlite: URL naming no
// file, is a usage error (exit 2) that lists the valid forms; failures to
// connect or migrate are plain errors. Errors never contain a password.
func openSink(ctx context.Context, rawURL string) (sink.Sink, error) {
	return openSinkMode(ctx, rawURL, false)
}

// openSinkReadOnly is openSink for commands that only read: it creates no
// table, keyspace or schema.
func openSinkReadOnly(ctx context.Context, rawURL string) (sink.Sink, error) {
	return openSinkMode(ctx, rawURL, true)
}

// checkSinkURL checks a --sink URL's form without connecting: a usage
// error (exit 2) that lists the valid forms when it is wrong.
func checkSinkURL(rawURL string) error {
	scheme, _, ok := strings.Cut(rawURL, ":")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/@") {
		// Not echoed: it may hold a password.
		return usagef("--sink: the value is not a sink URL (no scheme); use %s", sinkSchemes)
	}
	var err error
	switch strings.ToLower(scheme) {
	case "sqlite":
		_, err = sqlite.ParseURL(rawURL)
	case "postgres", "postgresql":
	case "cassandra":
		_, err = cassandra.ParseURL(rawURL)
	default:
		return usagef("--sink: unknown scheme %q; use %s", scheme, sinkSchemes)
	}
	if err != nil {
		return usageError{err}
	}
	return nil
}

func openSinkMode(ctx context.Context, rawURL string, readOnly bool) (sink.Sink, error) {
	if err := checkSinkURL(rawURL); err != nil {
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
		var opts []postgres.Option
		if readOnly {
			opts = append(opts, postgres.ReadOnly())
		}
		var d *postgres.Sink
		if d, err = postgres.Open(ctx, rawURL, opts...); err == nil {
			s = d
		}
	default:
		var opts []cassandra.Option
		if readOnly {
			opts = append(opts, cassandra.ReadOnly())
		}
		var d *cassandra.Sink
		if d, err = cassandra.Open(ctx, rawURL, opts...); err == nil {
			s = d
		}
	}
	return s, err
}
