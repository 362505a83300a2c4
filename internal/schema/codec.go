package schema

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/userstream/userstream/internal/user"
)

// DefaultRegistryAddr is where the embedded registry (package
// schema/registry) listens unless told, and DefaultRegistryURL how clients
// reach it there.
const (
	DefaultRegistryAddr = "127.0.0.1:8081"
	DefaultRegistryURL  = "http://" + DefaultRegistryAddr
)

// RequestTimeout bounds one Schema Registry request made by a client from
// NewClient: a registry that accepts connections and never answers fails
// the request instead of hanging it.
const RequestTimeout = 10 * time.Second

// NewClient returns a Schema Registry client for rawURL
// (http(s)://[user:pass@]host:port). A user:pass in the URL is sent as
// basic auth and kept out of every error. Requests time out after
// RequestTimeout.
func NewClient(rawURL string) (*sr.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("schema registry URL: want http(s)://host:port")
	}
	opts := []sr.ClientOpt{sr.HTTPClient(&http.Client{Timeout: RequestTimeout})}
	if u.User != nil {
		pass, _ := u.User.Password()
		opts = append(opts, sr.BasicAuth(u.User.Username(), pass))
		u.User = nil
	}
	opts = append(opts, sr.URLs(strings.TrimRight(u.String(), "/")))
	return sr.NewClient(opts...)
}

// Codec writes and reads message values: a *Serde (Avro through the
// registry, which also reads plain JSON) or user.JSON{}.
type Codec interface {
	Encode(r user.Record) ([]byte, error)
	Decode(b []byte) (user.Record, error)
}

// Formats of OpenCodec.
const (
	FormatAvro = "avro"
	FormatJSON = "json"
)

// OpenCodec returns the codec for a registry URL and a format. With format
// json, or no registry (registryURL "" or "none"), it is plain JSON. With
// avro it is a Serde over the registry: one that registers the user schema
// when register is set (a producer), or only looks it up (a stream worker,
// which never registers). The name says what it is, for logs:
// "json" or "avro (schema id N)". Errors wrap ErrRegistryUnavailable when
// the registry cannot be reached.
func OpenCodec(ctx context.Context, registryURL, format string, register bool, opts ...Option) (Codec, string, error) {
	if registryURL == "" || registryURL == "none" {
		if format == FormatAvro {
			return nil, "", fmt.Errorf("schema: Avro needs a Schema Registry")
		}
		return user.JSON{}, FormatJSON, nil
	}
	if format == FormatJSON {
		if !register {
			// A worker reads whatever the topic holds: Avro as well.
			format = FormatAvro
		} else {
			return user.JSON{}, FormatJSON, nil
		}
	}
	if format != "" && format != FormatAvro {
		return nil, "", fmt.Errorf("schema: format %q is not avro or json", format)
	}
	cl, err := NewClient(registryURL)
	if err != nil {
		return nil, "", err
	}
	if !register {
		opts = append(opts, WithoutRegistration())
	}
	s, err := NewSerde(ctx, cl, opts...)
	if err != nil {
		return nil, "", err
	}
	return s, fmt.Sprintf("avro (schema id %d)", s.ID()), nil
}

// WaitDecoder opens what a stream worker reads with (OpenCodec without
// registering: the Avro serde, which also reads plain JSON, or JSON alone
// when registryURL is "" or "none"). While the registry is unreachable it
// retries, backing off from 200 ms to 5 s, and tells wait each error (and
// nil once the registry answers), so a worker started before its registry,
// or during a registry restart, starts when the registry is back instead
// of failing. Other errors (an incompatible schema) return at once; ctx
// ending returns ctx.Err(). wait may be nil.
func WaitDecoder(ctx context.Context, registryURL string, wait func(err error), opts ...Option) (Codec, error) {
	cfg := config{logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	if wait == nil {
		wait = func(error) {}
	}
	backoff := 200 * time.Millisecond
	for {
		dec, _, err := OpenCodec(ctx, registryURL, "", false, opts...)
		if err == nil || !errors.Is(err, ErrRegistryUnavailable) {
			wait(nil)
			return dec, err
		}
		wait(err)
		cfg.logger.Warn("schema registry unavailable; the stream waits for it", "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
