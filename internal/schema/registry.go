package schema

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// DefaultRegistryAddr is where `userstream dev` serves its embedded registry.
const DefaultRegistryAddr = "127.0.0.1:8081"

// schemasFile is the name of the embedded registry's state in its data dir.
const schemasFile = "schemas.json"

// Registry is an embedded Confluent-compatible Schema Registry (franz-go's
// srfake) served over HTTP on a fixed address. Every schema registered
// through its HTTP API is written through to dataDir/schemas.json and
// restored with the same subject, version and id on the next start, so
// messages already in the log keep decoding after a restart.
type Registry struct {
	reg     *srfake.Registry
	srv     *http.Server
	ln      net.Listener
	url     string
	path    string // "" = in memory only
	logger  *slog.Logger
	served  chan struct{}
	stopCtx func() bool

	mu      sync.Mutex // guards entries and the file
	entries []storedSchema
	saveErr error

	connMu sync.Mutex
	fresh  map[net.Conn]struct{} // connections that have not sent a request yet

	closeOnce sync.Once
	closeErr  error
}

// trackConn remembers connections in StateNew: http.Server.Shutdown waits
// up to 5s for those (HTTP clients dial spare connections), so Close closes
// them itself.
func (r *Registry) trackConn(c net.Conn, s http.ConnState) {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if s == http.StateNew {
		r.fresh[c] = struct{}{}
	} else {
		delete(r.fresh, c)
	}
}

// storedSchema is one registered (subject, version, id, schema) in
// schemas.json.
type storedSchema struct {
	Subject string    `json:"subject"`
	Version int       `json:"version"`
	ID      int       `json:"id"`
	Schema  sr.Schema `json:"schema"`
}

type stateFile struct {
	Note    string         `json:"note"`
	Schemas []storedSchema `json:"schemas"`
}

// RegistryOption configures StartRegistry.
type RegistryOption func(*Registry)

// WithRegistryLogger sets the registry's logger (default: discard).
func WithRegistryLogger(l *slog.Logger) RegistryOption {
	return func(r *Registry) { r.logger = l }
}

// StartRegistry listens on addr (DefaultRegistryAddr when empty; port 0
// picks a free one), restores the schemas kept in dataDir/schemas.json with
// their ids, and serves the Schema Registry REST API until Close or until
// ctx is done. dataDir is created if missing; an empty dataDir keeps
// nothing on disk. A busy port, an unreadable or corrupt state file, or a
// restored id that differs from the stored one is an error and nothing is
// served. Deletions and compatibility settings are not persisted.
func StartRegistry(ctx context.Context, addr, dataDir string, opts ...RegistryOption) (*Registry, error) {
	if addr == "" {
		addr = DefaultRegistryAddr
	}
	r := &Registry{reg: srfake.NewRegistry(), served: make(chan struct{}), fresh: map[net.Conn]struct{}{}}
	for _, o := range opts {
		o(r)
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("schema registry: create data dir: %w", err)
		}
		r.path = filepath.Join(dataDir, schemasFile)
		if err := r.restore(); err != nil {
			return nil, err
		}
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("schema registry: %s is already in use (another registry or `userstream dev` running?); stop it or choose another address: %w", addr, err)
		}
		return nil, fmt.Errorf("schema registry: listen on %s: %w", addr, err)
	}
	r.ln = ln
	r.url = "http://" + ln.Addr().String()
	r.srv = &http.Server{
		Handler:           r.handler(r.reg.Handler()),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(r.logger.Handler(), slog.LevelWarn),
		ConnState:         r.trackConn,
	}
	go func() {
		defer close(r.served)
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			r.logger.Error("schema registry stopped", "err", err)
		}
	}()
	r.stopCtx = context.AfterFunc(ctx, func() { _ = r.Close() })
	r.logger.Info("schema registry listening", "url", r.url, "schemas", len(r.entries), "state", r.path)
	return r, nil
}

// URL returns the registry's base URL, e.g. "http://127.0.0.1:8081".
func (r *Registry) URL() string { return r.url }

// Close stops serving (waiting up to 5s for requests in flight) and returns
// the first error of the server or of writing the state file. It is safe
// to call more than once.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		if r.stopCtx != nil {
			r.stopCtx()
		}
		// Stop accepting first, then drop connections that never sent a
		// request, then wait for requests in flight.
		_ = r.ln.Close()
		r.connMu.Lock()
		for c := range r.fresh {
			_ = c.Close()
		}
		r.connMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := r.srv.Shutdown(ctx)
		<-r.served
		r.mu.Lock()
		r.closeErr = errors.Join(err, r.saveErr)
		r.mu.Unlock()
	})
	return r.closeErr
}

// handler serves next and, after every successful request that may have
// registered a schema, writes the registry's schemas through to disk before
// the client gets its answer.
func (r *Registry) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.path == "" || req.Method != http.MethodPost {
			next.ServeHTTP(w, req)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req)
		status := rec.Code
		if status < 300 {
			if err := r.persist(); err != nil {
				r.logger.Error("schema registry: cannot persist schemas", "file", r.path, "err", err)
				status = http.StatusInternalServerError
				rec.Body.Reset()
				_ = json.NewEncoder(rec.Body).Encode(sr.ResponseError{ErrorCode: 50001,
					Message: "schema registered in memory but not saved to disk: " + err.Error()})
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// persist snapshots every (subject, version) the registry serves, adds the
// new ones to the stored list and rewrites the state file atomically.
func (r *Registry) persist() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now, err := r.snapshot()
	if err != nil {
		r.saveErr = err
		return err
	}
	type key struct {
		s string
		v int
	}
	have := make(map[key]bool, len(r.entries))
	for _, e := range r.entries {
		have[key{e.Subject, e.Version}] = true
	}
	added := 0
	for _, e := range now {
		if !have[key{e.Subject, e.Version}] {
			r.entries = append(r.entries, e)
			added++
		}
	}
	if added == 0 {
		return nil
	}
	sortStored(r.entries)
	if err := writeState(r.path, r.entries); err != nil {
		r.saveErr = err
		return err
	}
	r.saveErr = nil
	return nil
}

// snapshot reads every active (subject, version) through the registry's
// own REST handler.
func (r *Registry) snapshot() ([]storedSchema, error) {
	h := r.reg.Handler()
	get := func(path string, into any) error {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", path, rec.Code, bytes.TrimSpace(rec.Body.Bytes()))
		}
		return json.Unmarshal(rec.Body.Bytes(), into)
	}
	var subjects []string
	if err := get("/subjects", &subjects); err != nil {
		return nil, err
	}
	var out []storedSchema
	for _, s := range subjects {
		var versions []int
		if err := get("/subjects/"+url.PathEscape(s)+"/versions", &versions); err != nil {
			return nil, err
		}
		for _, v := range versions {
			ss, ok := r.reg.GetSchema(s, v)
			if !ok {
				continue
			}
			out = append(out, storedSchema{Subject: s, Version: v, ID: ss.ID, Schema: ss.Schema})
		}
	}
	return out, nil
}

func sortStored(es []storedSchema) {
	slices.SortFunc(es, func(a, b storedSchema) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Version, b.Version))
	})
}

func writeState(path string, es []storedSchema) error {
	b, err := json.MarshalIndent(stateFile{
		Note:    "schemas of the embedded userstream schema registry; ids must never change (messages in the log carry them)",
		Schemas: es,
	}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), schemasFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// restore loads the state file, if any, into the fresh registry: each id's
// first (subject, version) is seeded with its id, further subjects sharing
// an id are registered (the registry reuses the id), and every stored
// (subject, version, id) is then verified.
func (r *Registry) restore() error {
	b, err := os.ReadFile(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("schema registry: read %s: %w", r.path, err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("schema registry: %s is corrupt (%v); restore it from a backup, or move it away to start with an empty registry (old messages would no longer decode)", r.path, err)
	}
	es := st.Schemas
	sortStored(es)
	seeded := map[int]bool{}
	var shared []storedSchema
	for _, e := range es {
		if e.ID <= 0 || e.Version <= 0 || e.Subject == "" {
			return fmt.Errorf("schema registry: %s: bad entry subject=%q version=%d id=%d", r.path, e.Subject, e.Version, e.ID)
		}
		if seeded[e.ID] {
			shared = append(shared, e)
			continue
		}
		if err := seed(r.reg, e); err != nil {
			return fmt.Errorf("schema registry: restore %s version %d (id %d) from %s: %w", e.Subject, e.Version, e.ID, r.path, err)
		}
		seeded[e.ID] = true
	}
	slices.SortFunc(shared, func(a, b storedSchema) int {
		return cmp.Or(cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Version, b.Version))
	})
	for _, e := range shared {
		if _, _, err := r.reg.RegisterSchema(e.Subject, e.Schema); err != nil {
			return fmt.Errorf("schema registry: restore %s version %d (id %d) from %s: %w", e.Subject, e.Version, e.ID, r.path, err)
		}
	}
	for _, e := range es {
		got, ok := r.reg.GetSchema(e.Subject, e.Version)
		if !ok || got.ID != e.ID {
			return fmt.Errorf("schema registry: restoring %s gave %s version %d id %d, want id %d; the state file is inconsistent", r.path, e.Subject, e.Version, got.ID, e.ID)
		}
	}
	r.entries = es
	return nil
}

// seed calls srfake's SeedSchema, which panics on a duplicate slot.
func seed(reg *srfake.Registry, e storedSchema) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	reg.SeedSchema(e.Subject, e.Version, e.ID, e.Schema)
	return nil
}
