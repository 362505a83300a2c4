package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/user"
)

// registryTimeout bounds one Schema Registry request.
const registryTimeout = 10 * time.Second

// codecFlags select how messages are encoded: Avro through a Schema Registry
// (the default) or plain JSON.
type codecFlags struct {
	registry string
	format   string
	cached   *schema.Serde // the registering serde, reused by the decoder
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
	if c.format != "" && c.format != "avro" && c.format != "json" {
		return usagef("--format: %q is not avro or json", c.format)
	}
	if c.registry == "none" || c.registry == "" {
		if c.format == "avro" {
			return usagef("--format avro needs a Schema Registry: drop --schema-registry none or use --format json")
		}
		return nil
	}
	u, err := url.Parse(c.registry)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--schema-registry: %q is not an http(s) URL (or `none`)", c.registry)
	}
	return nil
}

func (c *codecFlags) useRegistry() bool { return c.registry != "none" && c.registry != "" }

// registryClient builds a Schema Registry client; user:pass in the URL is
// sent as basic auth and kept out of messages.
func registryClient(raw string) (*sr.Client, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("schema registry URL: %w", err)
	}
	opts := []sr.ClientOpt{}
	if u.User != nil {
		pass, _ := u.User.Password()
		opts = append(opts, sr.BasicAuth(u.User.Username(), pass))
		u.User = nil
	}
	// A registry that accepts connections and never answers must not hang
	// a command: every request gives up after registryTimeout.
	opts = append(opts, sr.URLs(strings.TrimRight(u.String(), "/")), sr.HTTPClient(&http.Client{Timeout: registryTimeout}))
	return sr.NewClient(opts...)
}

// encoder returns what the producer writes with: an Avro serde registered
// under users_created-value, or plain JSON.
func (c *codecFlags) encoder(ctx context.Context, a *app) (ingest.Encoder, string, error) {
	if c.format == "json" || !c.useRegistry() {
		return user.JSON{}, "json", nil
	}
	s, err := c.serde(ctx, a, true)
	if err != nil {
		return nil, "", err
	}
	return s, fmt.Sprintf("avro (schema id %d)", s.ID()), nil
}

// decoder returns what the stream reads with: the Avro serde (which also
// reads plain JSON) or JSON alone.
func (c *codecFlags) decoder(ctx context.Context, a *app) (stream.Decoder, error) {
	if !c.useRegistry() {
		return user.JSON{}, nil
	}
	if c.cached != nil {
		return c.cached, nil
	}
	// A worker only reads: it never registers a schema of its own.
	return c.serde(ctx, a, false)
}

// waitDecoder is decoder for a stream worker: while the registry is
// unreachable it waits (logging, and saying so on /healthz) instead of
// failing, so a worker started before its registry, or during a registry
// restart, starts when the registry is back. Other errors (a bad URL, an
// incompatible schema) fail at once.
func (c *codecFlags) waitDecoder(ctx context.Context, a *app, h *stream.Health) (stream.Decoder, error) {
	wait := 200 * time.Millisecond
	for {
		dec, err := c.decoder(ctx, a)
		if err == nil || !errors.Is(err, schema.ErrRegistryUnavailable) {
			h.Recovered("schema registry")
			return dec, err
		}
		h.Failing("schema registry", err)
		a.log.Warn("schema registry unavailable; the stream waits for it", "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func (c *codecFlags) serde(ctx context.Context, a *app, register bool) (*schema.Serde, error) {
	if c.cached != nil && register {
		return c.cached, nil
	}
	cl, err := registryClient(c.registry)
	if err != nil {
		return nil, err
	}
	opts := []schema.Option{schema.WithLogger(a.log)}
	if !register {
		opts = append(opts, schema.WithoutRegistration())
	}
	s, err := schema.NewSerde(ctx, cl, opts...)
	if err != nil {
		if errors.Is(err, schema.ErrRegistryUnavailable) {
			return nil, fmt.Errorf("%w (start `userstream broker`, which serves one on %s, or pass --schema-registry none for JSON)", err, schema.DefaultRegistryURL)
		}
		return nil, err
	}
	if register {
		c.cached = s
	}
	return s, nil
}
