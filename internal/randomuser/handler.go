package randomuser

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// HandlerConfig configures the HTTP handler that serves the generator as
// the API. The zero value serves without faults.
type HandlerConfig struct {
	// Generator serves the users; nil means NewGenerator().
	Generator *Generator
	// FailRate is the share of requests, 0..1, answered with HTTP 500 or
	// 503 and a JSON error body.
	FailRate float64
	// GarbageRate is the share of requests, 0..1, answered with HTTP 200
	// and a malformed body: truncated JSON or an HTML page. It is drawn
	// after FailRate, for the requests that did not fail.
	GarbageRate float64
	// Latency is added before every response (while the request's context
	// lives).
	Latency time.Duration
	// FaultSeed seeds the stream the faults are drawn from, so a test can
	// replay a sequence of faults; 0 picks a random seed. Faults never
	// change the users a request gets.
	FaultSeed uint64
	// Logger receives one debug line per request and faults at info;
	// nil discards.
	Logger *slog.Logger
}

// Handler serves the Random User API 1.4 from a Generator at /api, /api/,
// /api/1.4 and /api/1.4/, for GET and HEAD, with optional fault injection.
// Bad parameters get HTTP 400 and {"error": "..."}; other paths 404 and
// other methods 405, also with a JSON error.
type Handler struct {
	cfg HandlerConfig
	gen *Generator
	log *slog.Logger

	mu     sync.Mutex
	faults *rand.Rand // guarded by mu
}

// NewHandler checks cfg and returns a Handler. Rates must lie in 0..1 and
// Latency must not be negative.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.FailRate < 0 || cfg.FailRate > 1 || cfg.FailRate != cfg.FailRate {
		return nil, fmt.Errorf("fail rate %v: want a share between 0 and 1", cfg.FailRate)
	}
	if cfg.GarbageRate < 0 || cfg.GarbageRate > 1 || cfg.GarbageRate != cfg.GarbageRate {
		return nil, fmt.Errorf("garbage rate %v: want a share between 0 and 1", cfg.GarbageRate)
	}
	if cfg.Latency < 0 {
		return nil, fmt.Errorf("latency %v: want zero or more", cfg.Latency)
	}
	h := &Handler{cfg: cfg, gen: cfg.Generator, log: cfg.Logger}
	if h.gen == nil {
		h.gen = NewGenerator()
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	seed := cfg.FaultSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	h.faults = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return h, nil
}

// fault is what the fault stream decided for one request.
type fault int

const (
	faultNone fault = iota
	faultFail500
	faultFail503
	faultTruncated
	faultHTML
)

// drawFault always takes the same number of draws, so the sequence of
// faults depends only on FaultSeed and the number of requests.
func (h *Handler) drawFault() fault {
	h.mu.Lock()
	fail, garbage, kind := h.faults.Float64(), h.faults.Float64(), h.faults.IntN(2)
	h.mu.Unlock()
	switch {
	case fail < h.cfg.FailRate:
		return faultFail500 + fault(kind)
	case garbage < h.cfg.GarbageRate:
		return faultTruncated + fault(kind)
	}
	return faultNone
}

func isAPIPath(p string) bool {
	switch p {
	case "/api", "/api/", "/api/" + Version, "/api/" + Version + "/":
		return true
	}
	return false
}

// ServeHTTP serves one API request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isAPIPath(r.URL.Path) {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no API at %s: use /api/ or /api/%s/", r.URL.Path, Version))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSONError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: use GET", r.Method))
		return
	}
	if h.cfg.Latency > 0 {
		if err := sleepContext(r.Context(), h.cfg.Latency); err != nil {
			return // the client went away
		}
	}
	f := h.drawFault()
	switch f {
	case faultFail500:
		h.log.Info("injected fault", "fault", "HTTP 500", "url", r.URL.Path)
		w.Header().Set("X-Userstream-Fault", "fail")
		writeJSONError(w, http.StatusInternalServerError, "injected fault: internal server error")
		return
	case faultFail503:
		h.log.Info("injected fault", "fault", "HTTP 503", "url", r.URL.Path)
		w.Header().Set("X-Userstream-Fault", "fail")
		writeJSONError(w, http.StatusServiceUnavailable, "injected fault: service unavailable")
		return
	}
	pl, err := h.gen.prepare(ParseQuery(r.URL.Query()))
	if err != nil {
		status := http.StatusBadRequest
		if !errors.Is(err, ErrInvalidParam) {
			status = http.StatusInternalServerError
		}
		writeJSONError(w, status, err.Error())
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", ContentType(Params{Format: pl.format}))
	hdr.Set("Access-Control-Allow-Origin", "*")
	hdr.Set("Cache-Control", "no-store")
	if f == faultTruncated || f == faultHTML {
		h.serveGarbage(w, r, &pl, f)
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	if err := h.gen.writePlan(w, &pl); err != nil {
		h.log.Debug("response cut short", "err", err)
		return
	}
	h.log.Debug("served", "results", pl.results, "seed", pl.seed, "page", pl.page, "format", pl.format)
}

// serveGarbage answers HTTP 200 with a body a client cannot decode: the
// real response cut in half, or an HTML error page.
func (h *Handler) serveGarbage(w http.ResponseWriter, r *http.Request, pl *plan, f fault) {
	w.Header().Set("X-Userstream-Fault", "garbage")
	var body []byte
	if f == faultHTML {
		body = []byte("<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>\n")
	} else {
		var buf bytes.Buffer
		if err := h.gen.writePlan(&buf, pl); err != nil {
			writeJSONError(w, http.StatusInternalServerError, err.Error())
			return
		}
		body = buf.Bytes()[:buf.Len()/2]
	}
	h.log.Info("injected fault", "fault", "garbage body", "url", r.URL.Path, "bytes", len(body))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// writeJSONError writes {"error": msg} with status.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
