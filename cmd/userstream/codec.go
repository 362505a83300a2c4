package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/spf13/pflag"

	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/redact"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/stream"
)

// codecFlags select how messages are encoded: Avro through a Schema Registry
// (the default) or plain JSON.
type codecFlags struct {
	registry string
	format   string
}

func (c *codecFlags) addFlags(fs *pflag.FlagSet, withFormat bool) {
	fs.StringVar(&c.registry, "schema-registry", schema.DefaultRegistryURL,
		"Schema Registry URL for Avro; \"none\" for plain JSON only")
	if withFormat {
		fs.StringVar(&c.format, "format", "", "message format: avro or json (default avro, json when --schema-registry is none)")
	}
}

// validate checks the flags' combination before anything connects.
func (c *codecFlags) validate() error {
	if c.format != "" && c.format != schema.FormatAvro && c.format != schema.FormatJSON {
		return usagef("--format: %q is not avro or json", c.format)
	}
	if c.registry == "none" || c.registry == "" {
		if c.format == schema.FormatAvro {
			return usagef("--format avro needs a Schema Registry: drop --schema-registry none or use --format json")
		}
		return nil
	}
	u, err := url.Parse(c.registry)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--schema-registry: %q is not an http(s) URL (or `none`)", redact.URL(c.registry))
	}
	return nil
}

// registryHint says what to do when the registry cannot be reached.
func registryHint(err error) error {
	if errors.Is(err, schema.ErrRegistryUnavailable) {
		return fmt.Errorf("%w (start `userstream broker`, which serves one on %s, or pass --schema-registry none for JSON)", err, schema.DefaultRegistryURL)
	}
	return err
}

// encoder returns what the producer writes with: an Avro serde registered
// under users_created-value, or plain JSON; and its name for logs.
func (c *codecFlags) encoder(ctx context.Context, a *app) (ingest.Encoder, string, error) {
	codec, name, err := schema.OpenCodec(ctx, c.registry, c.format, true, schema.WithLogger(a.log))
	return codec, name, registryHint(err)
}

// waitDecoder returns what a stream worker reads with, waiting while the
// registry is unreachable and saying so on h (schema.WaitDecoder).
func (c *codecFlags) waitDecoder(ctx context.Context, a *app, h *stream.Health) (stream.Decoder, error) {
	dec, err := schema.WaitDecoder(ctx, c.registry, h.RegistryWait, schema.WithLogger(a.log))
	if err != nil {
		return nil, registryHint(err)
	}
	return dec, nil
}
