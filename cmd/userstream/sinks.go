package main

import (
	"context"
	"errors"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/sinks"
)

// sinkUsage makes a bad --sink URL wrong usage (exit 2), naming the flag.
func sinkUsage(err error) error {
	if errors.Is(err, sinks.ErrBadURL) {
		return usagef("--sink: %v", err)
	}
	return err
}

// checkSinkURL checks a --sink URL's form without connecting.
func checkSinkURL(rawURL string) error { return sinkUsage(sinks.Check(rawURL)) }

// openSink opens the sink a --sink URL names.
func openSink(ctx context.Context, rawURL string) (sink.Sink, error) {
	s, err := sinks.Open(ctx, rawURL)
	return s, sinkUsage(err)
}

// openSinkReadOnly is openSink for commands that only read: it creates no
// table, keyspace or schema.
func openSinkReadOnly(ctx context.Context, rawURL string) (sink.Sink, error) {
	s, err := sinks.Open(ctx, rawURL, sinks.ReadOnly())
	return s, sinkUsage(err)
}
