package main

import (
	"context"
	"errors"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/sinks"
	"github.com/userstream/userstream/internal/stream"
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

// openStreamSink is openSink in the shape a stream runner takes: the sink
// and how to close it.
func openStreamSink(ctx context.Context, rawURL string) (stream.Sink, func() error, error) {
	snk, err := openSink(ctx, rawURL)
	if err != nil {
		return nil, nil, err
	}
	return snk, snk.Close, nil
}

// openSinkReadOnly is openSink for commands that only read: it creates no
// table, keyspace or schema.
func openSinkReadOnly(ctx context.Context, rawURL string) (sink.Sink, error) {
	s, err := sinks.Open(ctx, rawURL, sinks.ReadOnly())
	return s, sinkUsage(err)
}
