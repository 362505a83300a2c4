package registry

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/userstream/userstream/internal/schema"
)

// schemasFile is the name of the embedded registry's state in its data dir.
const schemasFile = "schemas.json"

// Server is an embedded Schema Registry served over HTTP on a fixed
// address. It answers the Confluent Schema Registry REST API for Avro
// schemas as Confluent's registry does (see docs/schema.md for what it
// covers and where it differs): schemas are validated, checked against the
// subject's compatibility level before they are registered, and given ids
// shared by every subject with the same schema. Every change is written to
// dataDir/schemas.json before the client gets its answer and restored on
// the next start with the same ids, versions, deletions and settings, so
// messages already in the log keep decoding after a restart.
type Server struct {
	srv     *http.Server
	ln      net.Listener
	url     string
	path    string // "" = in memory only
	logger  *slog.Logger
	served  chan struct{}
	stopCtx func() bool

	mu      sync.Mutex // guards st and the file
	st      *regState
	saveErr error

	connMu sync.Mutex
	fresh  map[net.Conn]struct{} // connections that have not sent a request yet

	closeOnce sync.Once
	closeErr  error
}

// trackConn remembers connections in StateNew: http.Server.Shutdown waits
// up to 5s for those (HTTP clients dial spare connections), so Close closes
// them itself.
func (r *Server) trackConn(c net.Conn, s http.ConnState) {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if s == http.StateNew {
		r.fresh[c] = struct{}{}
	} else {
		delete(r.fresh, c)
	}
}

// storedSchema is one (subject, version) in schemas.json: its id, the
// schema text as first registered, and whether it is soft-deleted. Files
// written before deletions were kept have no "deleted" and load as live.
type storedSchema struct {
	Subject string    `json:"subject"`
	Version int       `json:"version"`
	ID      int       `json:"id"`
	Schema  sr.Schema `json:"schema"`
	Deleted bool      `json:"deleted,omitempty"`
}

// storedSettings is the global and per-subject compatibility level or mode
// in schemas.json; absent means the default (BACKWARD, READWRITE).
type storedSettings struct {
	Global   string            `json:"global,omitempty"`
	Subjects map[string]string `json:"subjects,omitempty"`
}

type stateFile struct {
	Note          string          `json:"note"`
	Schemas       []storedSchema  `json:"schemas"`
	MaxID         int             `json:"max_id,omitempty"`
	Compatibility *storedSettings `json:"compatibility,omitempty"`
	Mode          *storedSettings `json:"mode,omitempty"`
}

// Option configures Start.
type Option func(*Server)

// WithLogger sets the registry's logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(r *Server) { r.logger = l }
}

// Start listens on addr (schema.DefaultRegistryAddr when empty; port 0
// picks a free one), restores the state kept in dataDir/schemas.json
// (schemas with their ids and versions, soft deletions, compatibility
// levels, modes), and serves the Schema Registry REST API until Close or
// until ctx is done. dataDir is created if missing; an empty dataDir keeps
// nothing on disk. A busy port, or an unreadable, corrupt or inconsistent
// state file, is an error and nothing is served.
func Start(ctx context.Context, addr, dataDir string, opts ...Option) (*Server, error) {
	if addr == "" {
		addr = schema.DefaultRegistryAddr
	}
	r := &Server{st: newRegState(), served: make(chan struct{}), fresh: map[net.Conn]struct{}{}}
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
		st, err := loadState(r.path, r.logger)
		if err != nil {
			return nil, err
		}
		r.st = st
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
		Handler:           http.HandlerFunc(r.serveHTTP),
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
	r.logger.Info("schema registry listening", "url", r.url, "schemas", len(r.st.ids), "state", r.path)
	return r, nil
}

// URL returns the registry's base URL, e.g. "http://127.0.0.1:8081".
func (r *Server) URL() string { return r.url }

// Close stops serving (waiting up to 5s for requests in flight) and returns
// the server's error and the last failure to write the state file, if the
// writes have not succeeded since. It is safe to call more than once.
func (r *Server) Close() error {
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
		if errors.Is(err, net.ErrClosed) {
			// Shutdown closing the listener closed above.
			err = nil
		}
		<-r.served
		r.mu.Lock()
		r.closeErr = errors.Join(err, r.saveErr)
		r.mu.Unlock()
	})
	return r.closeErr
}

// read runs fn on the current state.
func (r *Server) read(fn func(st *regState)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r.st)
}

// change runs fn on a copy of the state; if fn changed it, the copy is
// written to the state file and only then becomes the registry's state. A
// failed write leaves the registry as it was and answers 500 (50001).
func (r *Server) change(fn func(st *regState) *apiError) *apiError {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := r.st.clone()
	if aerr := fn(next); aerr != nil {
		return aerr
	}
	if !next.dirty {
		return nil
	}
	if r.path != "" {
		if err := writeState(r.path, next.file()); err != nil {
			r.saveErr = err
			r.logger.Error("schema registry: cannot save its state; the change is refused", "file", r.path, "err", err)
			return &apiError{http.StatusInternalServerError, 50001, "Error while saving the registry's state to " + r.path + "; nothing was changed: " + err.Error()}
		}
		r.saveErr = nil
	}
	r.st = next
	return nil
}

// file is the state as schemas.json keeps it, in a stable order.
func (st *regState) file() stateFile {
	f := stateFile{
		Note:    "state of the embedded userstream schema registry; ids must never change (messages in the log carry them)",
		Schemas: []storedSchema{},
		MaxID:   st.maxID,
	}
	for s, vs := range st.subjects {
		for _, v := range vs {
			rs := st.ids[v.id]
			typ, _ := schemaType(rs.typ)
			f.Schemas = append(f.Schemas, storedSchema{Subject: s, Version: v.version, ID: v.id, Deleted: v.deleted,
				Schema: sr.Schema{Schema: rs.text, Type: typ, References: rs.refs}})
		}
	}
	slices.SortFunc(f.Schemas, func(a, b storedSchema) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Version, b.Version))
	})
	f.Compatibility, f.Mode = st.levels.stored(), st.modes.stored()
	return f
}

func (s settings) stored() *storedSettings {
	if s.global == "" && len(s.subjects) == 0 {
		return nil
	}
	return &storedSettings{Global: s.global, Subjects: s.subjects}
}

// loadSettings checks and loads stored settings (nil: the defaults).
func loadSettings(f *storedSettings, def string, parse func(string) (string, bool)) (settings, error) {
	s := newSettings(def)
	if f == nil {
		return s, nil
	}
	if f.Global != "" {
		v, ok := parse(f.Global)
		if !ok {
			return s, fmt.Errorf("global value %q is not valid", f.Global)
		}
		s.global = v
	}
	for subject, raw := range f.Subjects {
		v, ok := parse(raw)
		if !ok {
			return s, fmt.Errorf("value %q of subject %q is not valid", raw, subject)
		}
		s.subjects[subject] = v
	}
	return s, nil
}

func schemaType(s string) (sr.SchemaType, error) {
	var t sr.SchemaType
	err := t.UnmarshalText([]byte(s))
	return t, err
}

func writeState(path string, f stateFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
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

// loadState reads the state file, if any. Entries are checked (positive
// ids and versions, a subject, one entry per subject version, one schema
// per id, known levels and modes); a schema text that does not parse, which
// the registry this one replaced accepted, is kept with its id and logged.
func loadState(path string, logger *slog.Logger) (*regState, error) {
	st := newRegState()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("schema registry: read %s: %w", path, err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("schema registry: %s is corrupt (%v); restore it from a backup, or move it away to start with an empty registry (old messages would no longer decode)", path, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("schema registry: %s: %s; the state file is inconsistent, fix it or restore it from a backup", path, fmt.Sprintf(format, args...))
	}
	for _, e := range f.Schemas {
		if e.ID <= 0 || e.Version <= 0 || e.Subject == "" {
			return nil, bad("bad entry subject=%q version=%d id=%d", e.Subject, e.Version, e.ID)
		}
		if _, dup := st.get(e.Subject, e.Version, true); dup {
			return nil, bad("subject %q version %d appears twice", e.Subject, e.Version)
		}
		rs, ok := st.ids[e.ID]
		switch {
		case !ok:
			rs = newRegisteredSchema(e.ID, e.Schema)
			if rs.parsed == nil {
				logger.Warn("schema registry: a stored schema does not parse as Avro; it is served as stored and left out of compatibility checks",
					"file", path, "id", e.ID, "subject", e.Subject, "version", e.Version)
			}
			st.ids[e.ID] = rs
			if old, ok := st.byKey[rs.key]; !ok || e.ID < old {
				st.byKey[rs.key] = e.ID
			}
		case rs.text != e.Schema.Schema || rs.typ != e.Schema.Type.String():
			return nil, bad("id %d holds two different schemas (subject %q version %d differs)", e.ID, e.Subject, e.Version)
		}
		st.subjects[e.Subject] = append(st.subjects[e.Subject], subjectVersion{version: e.Version, id: e.ID, deleted: e.Deleted})
		st.maxID = max(st.maxID, e.ID)
	}
	for s, vs := range st.subjects {
		slices.SortFunc(vs, func(a, b subjectVersion) int { return cmp.Compare(a.version, b.version) })
		st.subjects[s] = vs
	}
	st.maxID = max(st.maxID, f.MaxID)
	if st.levels, err = loadSettings(f.Compatibility, defaultLevel, parseLevel); err != nil {
		return nil, bad("compatibility: %v", err)
	}
	if st.modes, err = loadSettings(f.Mode, modeReadWrite, parseMode); err != nil {
		return nil, bad("mode: %v", err)
	}
	return st, nil
}
