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
	scheme, _, ok := strings.Cut(rawURL, ":")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/@") {
		// Not echoed: it may hold a password.
		return nil, usagef("--sink: the value is not a sink URL (no scheme); use %s", sinkSchemes)
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		if _, err := sqlite.ParseURL(rawURL); err != nil {
			return nil, usageError{err}
		}
		s, err := sqlite.Open(ctx, rawURL)
		if err != nil {
			return nil, err
		}
		return s, nil
	case "postgres", "postgresql":
		s, err := postgres.Open(ctx, rawURL)
		if err != nil {
			return nil, err
		}
		return s, nil
	case "cassandra":
		return openCassandraSink(ctx, rawURL)
	default:
		return nil, usagef("--sink: unknown scheme %q; use %s", scheme, sinkSchemes)
	}
}

// openCassandraSink opens a cassandra:// sink; a malformed URL is a usage
// error.
func openCassandraSink(ctx context.Context, rawURL string) (sink.Sink, error) {
	if _, err := cassandra.ParseURL(rawURL); err != nil {
		return nil, usageError{err}
	}
	s, err := cassandra.Open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	return s, nil
}
