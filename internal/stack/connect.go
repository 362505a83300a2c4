package stack

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	kconnect "github.com/userstream/userstream/internal/connect"
	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/sink/sinks"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/user"
)

// ConnectWorker is what a Kafka Connect worker runs with: `userstream
// connect` fills it from its flags, `dev` from its stack.
type ConnectWorker struct {
	// Listener serves the worker's REST API; calls that change state need
	// an admin login of Logins (basic auth or a bearer token).
	Listener net.Listener
	Logins   login.Store
	Kafka    broker.Config
	// RegistryURL decodes the connectors that name no registry of their
	// own ("none": JSON only).
	RegistryURL string
	// Config's WorkerID [the REST address], GroupID [kconnect.DefaultGroupID],
	// Dial, Logger and, when nil, OpenSink [sinks.Open] and Decoder (JSON,
	// or Avro through the registry, waiting for it) are filled in.
	Config kconnect.WorkerConfig
	Logger *slog.Logger // [discard]
}

// NewConnectWorker starts a Connect worker's REST API on c.Listener until
// ctx ends and returns the worker, for its Run. On error the listener is
// closed.
func NewConnectWorker(ctx context.Context, c ConnectWorker) (*kconnect.Worker, error) {
	log := cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	cfg := c.Config
	cfg.WorkerID = cmp.Or(cfg.WorkerID, c.Listener.Addr().String())
	cfg.GroupID = cmp.Or(cfg.GroupID, kconnect.DefaultGroupID)
	cfg.Logger = log
	cfg.Dial = func(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
		return broker.NewClient(ctx, c.Kafka, opts...)
	}
	if cfg.OpenSink == nil {
		cfg.OpenSink = openSink
	}
	if cfg.Decoder == nil {
		cfg.Decoder = func(ctx context.Context, s kconnect.Spec) (stream.Decoder, error) {
			if s.JSON {
				return user.JSON{}, nil
			}
			return schema.WaitDecoder(ctx, cmp.Or(s.RegistryURL, c.RegistryURL), nil, schema.WithLogger(log))
		}
	}
	w, err := kconnect.NewWorker(ctx, cfg)
	if err != nil {
		c.Listener.Close()
		return nil, err
	}
	log.Info("connect worker started", "worker", w.ID(), "group_id", cfg.GroupID, "addr", c.Listener.Addr().String())
	auth := login.New(c.Logins)
	Serve(ctx, log, c.Listener, kconnect.Handler(w, func(r *http.Request) error {
		err := auth.RequireAdmin(r)
		if errors.Is(err, login.ErrForbidden) {
			return connectForbidden{err}
		}
		return err
	}))
	return w, nil
}

// connectForbidden is a viewer's refusal in Connect's terms: it matches
// kconnect.ErrForbidden too, which its REST API answers with 403.
type connectForbidden struct{ err error }

func (e connectForbidden) Error() string        { return e.err.Error() }
func (e connectForbidden) Unwrap() error        { return e.err }
func (e connectForbidden) Is(target error) bool { return target == kconnect.ErrForbidden }

// openSink opens a sink URL in the shape a stream runner takes: the sink
// and how to close it.
func openSink(ctx context.Context, url string) (stream.Sink, func() error, error) {
	snk, err := sinks.Open(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	return snk, snk.Close, nil
}
