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

// HandlerOption configures a Handler.
type HandlerOption func(*Handler)

// WithGenerator serves users from g; the default is NewGenerator().
func WithGenerator(g *Generator) HandlerOption { return func(h *Handler) { h.gen = g } }

// WithFailRate makes a share of requests, 0..1, fail with HTTP 500 or 503
// and a JSON error body. Values below 0 count as 0, above 1 as 1.
func WithFailRate(rate float64) HandlerOption {
	return func(h *Handler) { h.failRate = clampRate(rate) }
}

// WithGarbageRate makes a share of requests, 0..1, get HTTP 200 with a
// malformed body: truncated JSON or an HTML page. It is drawn after the
// fail rate, for the requests that did not fail. Values below 0 count as 0,
// above 1 as 1.
func WithGarbageRate(rate float64) HandlerOption {
	return func(h *Handler) { h.garbageRate = clampRate(rate) }
}

// WithLatency adds d before every response (or until the client goes
// away). Zero or less adds nothing.
func WithLatency(d time.Duration) HandlerOption { return func(h *Handler) { h.latency = max(d, 0) } }

// WithFaultSeed seeds the stream faults are drawn from, so a test can
// replay a sequence of faults; without it (or with 0) the seed is random.
// Faults never change the users a request gets.
func WithFaultSeed(seed uint64) HandlerOption { return func(h *Handler) { h.faultSeed = seed } }

// WithHandlerLogger logs one debug line per request and injected faults at
// info; the default discards.
func WithHandlerLogger(l *slog.Logger) HandlerOption { return func(h *Handler) { h.log = l } }

func clampRate(r float64) float64 {
	if !(r > 0) { // also NaN
		return 0
	}
	return min(r, 1)
}

// Handler serves the Random User API 1.4 from a Generator at /api, /api/,
// /api/1.4 and /api/1.4/, for GET and HEAD, with optional fault injection.
// Bad parameters get HTTP 400 and {"error": "..."}; other paths 404 and
// other methods 405, also with a JSON error. It is safe for concurrent use.
type Handler struct {
	gen         *Generator
	log         *slog.Logger
	failRate    float64
	garbageRate float64
	latency     time.Duration
	faultSeed   uint64

	mu     sync.Mutex
	faults *rand.Rand // guarded by mu
}

// DefaultAddr is where `userstream api` and `userstream dev` serve the
// built-in API unless told.
const DefaultAddr = "127.0.0.1:8088"

// NewHandler returns a Handler; with no options it serves without faults.
func NewHandler(opts ...HandlerOption) *Handler {
	h := &Handler{}
	for _, o := range opts {
		o(h)
	}
	if h.gen == nil {
		h.gen = NewGenerator()
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	seed := h.faultSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	h.faults = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return h
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
	case fail < h.failRate:
		return faultFail500 + fault(kind)
	case garbage < h.garbageRate:
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
	if h.latency > 0 {
		if err := sleepContext(r.Context(), h.latency); err != nil {
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
