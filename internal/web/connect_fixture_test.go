package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/connect"
	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/sink/sinks"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/testwait"
)

// startConnect runs a Connect worker on the stack's broker and serves its
// REST API, state changes allowed to an admin of the metadata store (basic
// auth or a bearer token, as userstream connect's), until the test ends.
func (f *fixture) startConnect(t testing.TB, auth *login.Authenticator) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := f.st.Kafka.Brokers
	w, err := connect.NewWorker(ctx, connect.WorkerConfig{
		WorkerID: "connect-1:8083",
		Dial: func(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
			return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
		},
		OpenSink: func(ctx context.Context, url string) (stream.Sink, func() error, error) {
			s, err := sinks.Open(ctx, url)
			if err != nil {
				return nil, nil, err
			}
			return s, s.Close, nil
		},
		// The stack's decoder reads its Avro through its registry.
		Decoder:        func(context.Context, connect.Spec) (stream.Decoder, error) { return f.st.Decoder, nil },
		FailAfter:      10 * time.Second,
		SessionTimeout: 6 * time.Second,
		Logger:         f.log,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	f.connectSrv = httptest.NewServer(connect.Handler(w, func(r *http.Request) error {
		u, err := auth.Request(r)
		if err != nil {
			return err
		}
		if u.Role != login.RoleAdmin {
			return fmt.Errorf("user %q (%s) may read but not change anything: %w", u.Name, u.Role, connect.ErrForbidden)
		}
		return nil
	}))
	f.connect = f.connectSrv.URL
	t.Cleanup(func() {
		f.connectSrv.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("connect worker: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the connect worker did not stop")
		}
	})
}

// connectCall does one call of Connect's REST API as the admin and
// decodes the answer into out (when not nil).
func (f *fixture) connectCall(t testing.TB, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, f.connect+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(login.AdminUser, adminPassword)
	resp := f.client(t).do(req)
	if out != nil && resp.body != "" {
		if err := json.Unmarshal([]byte(resp.body), out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, resp.body, err)
		}
	}
	return resp.StatusCode
}

// jdbcSink is a JDBC sink connector's config: the stack's users, Avro
// through its registry, into a SQLite file of the test's.
func (f *fixture) jdbcSink(t testing.TB, file string) map[string]string {
	return map[string]string{
		"connector.class": connect.ClassJDBC, "tasks.max": "1", "topics": broker.Topic,
		"connection.url": "jdbc:sqlite:" + filepath.Join(t.TempDir(), file), "insert.mode": "upsert",
		"pk.mode": "record_value", "pk.fields": "id", "table.name.format": connect.Table, "auto.create": "true",
		"value.converter":                     "io.confluent.connect.avro.AvroConverter",
		"value.converter.schema.registry.url": f.st.Registry.URL(),
		"errors.tolerance":                    "all", // a poison message of another test is dropped
	}
}

// createConnector creates a connector through Connect's REST API.
func (f *fixture) createConnector(t testing.TB, name string, cfg map[string]string) {
	t.Helper()
	if st := f.connectCall(t, http.MethodPost, "/connectors", map[string]any{"name": name, "config": cfg}, nil); st != http.StatusCreated {
		t.Fatalf("create connector %q: %d", name, st)
	}
}

// connectorState is the connector's state as Connect's REST API says it.
func (f *fixture) connectorState(t testing.TB, name string) string {
	t.Helper()
	var st struct {
		Connector struct {
			State string `json:"state"`
		} `json:"connector"`
	}
	if code := f.connectCall(t, http.MethodGet, "/connectors/"+url.PathEscape(name)+"/status", nil, &st); code != http.StatusOK {
		return http.StatusText(code)
	}
	return st.Connector.State
}

// waitConnector waits until Connect says the connector is in state.
func (f *fixture) waitConnector(t testing.TB, name, state string) {
	t.Helper()
	testwait.For(t, 20*time.Second, "connector "+name+" "+state, func() (string, bool) {
		got := f.connectorState(t, name)
		return got, got == state
	})
}
