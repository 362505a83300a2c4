package web

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hamba/avro/v2"

	"github.com/userstream/userstream/internal/broker"
)

// A search's bounds: the defaults, which are also the most a form may ask.
const (
	searchMaxScanned = 1_000_000
	searchMaxTime    = 60 * time.Second
	searchMaxResults = 100
)

// searchForm is the search form of a topic, as the query string carries
// it. Key, Value and Header are ANDed; at least one is needed.
type searchForm struct {
	Key    string `json:"key"`
	Field  string `json:"field"` // a value field, dotted for nested ones (address.city); "" = anywhere in the value
	Value  string `json:"value"`
	Match  string `json:"match"`  // equals (default) or contains, for key and value
	Header string `json:"header"` // name=value, or a name the message must carry
	// The range: one partition or all, offsets (in each partition) and
	// times, each end optional.
	Partition  string `json:"partition"`
	FromOffset string `json:"from_offset"`
	ToOffset   string `json:"to_offset"`
	From       string `json:"from"`
	To         string `json:"to"`
	// The bounds, at most the defaults.
	MaxScanned int64 `json:"max_scanned"`
	MaxSeconds int   `json:"max_seconds"`
	MaxResults int   `json:"max_results"`
}

// Run reports whether the form asks for a search (the page shows the form
// alone otherwise).
func (f searchForm) Run() bool { return f.Key != "" || f.Value != "" || f.Header != "" }

// search is a parsed searchForm: what to scan and what matches.
type search struct {
	form  searchForm
	scan  broker.ScanQuery
	limit time.Duration
	m     matcher
}

func parseSearch(r *http.Request) (search, error) {
	q := r.URL.Query()
	f := searchForm{Key: q.Get("key"), Field: strings.TrimSpace(q.Get("field")), Value: q.Get("value"), Match: q.Get("match"),
		Header: q.Get("header"), Partition: q.Get("partition"), FromOffset: q.Get("from_offset"), ToOffset: q.Get("to_offset"),
		From: q.Get("from"), To: q.Get("to"),
		MaxScanned: searchMaxScanned, MaxSeconds: int(searchMaxTime / time.Second), MaxResults: searchMaxResults}
	sq := broker.ScanQuery{Topic: r.PathValue("topic"), Partition: -1, ToOffset: -1}
	se := search{form: f}
	bound := func(name string, into *int64, most int64) error {
		v := q.Get(name)
		if v == "" {
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > most {
			return fmt.Errorf("%s %q: give 1 to %d", name, v, most)
		}
		*into = n
		return nil
	}
	secs, results := int64(f.MaxSeconds), int64(f.MaxResults)
	for _, b := range []struct {
		name string
		into *int64
		most int64
	}{{"max_scanned", &f.MaxScanned, searchMaxScanned}, {"max_seconds", &secs, int64(searchMaxTime / time.Second)},
		{"max_results", &results, searchMaxResults}} {
		if err := bound(b.name, b.into, b.most); err != nil {
			return se, err
		}
	}
	f.MaxSeconds, f.MaxResults = int(secs), int(results)
	se.form, se.limit = f, time.Duration(secs)*time.Second
	switch f.Match {
	case "":
		se.form.Match = "equals"
	case "equals", "contains":
	default:
		return se, fmt.Errorf("match %q: use equals or contains", f.Match)
	}
	if f.Partition != "" {
		p, err := strconv.ParseInt(f.Partition, 10, 32)
		if err != nil || p < 0 {
			return se, fmt.Errorf("partition %q is not a partition number", f.Partition)
		}
		sq.Partition = int32(p)
	}
	for _, o := range []struct {
		name, v string
		into    *int64
	}{{"from_offset", f.FromOffset, &sq.FromOffset}, {"to_offset", f.ToOffset, &sq.ToOffset}} {
		if o.v == "" {
			continue
		}
		n, err := strconv.ParseInt(o.v, 10, 64)
		if err != nil || n < 0 {
			return se, fmt.Errorf("%s %q is not an offset", o.name, o.v)
		}
		*o.into = n
	}
	if sq.ToOffset >= 0 && sq.ToOffset < sq.FromOffset {
		return se, fmt.Errorf("to_offset %d is before from_offset %d", sq.ToOffset, sq.FromOffset)
	}
	for _, t := range []struct {
		name, v string
		into    *time.Time
	}{{"from", f.From, &sq.From}, {"to", f.To, &sq.To}} {
		if t.v == "" {
			continue
		}
		v, err := parseTime(t.name, t.v)
		if err != nil {
			return se, err
		}
		*t.into = v
	}
	if !sq.To.IsZero() && !sq.From.IsZero() && !sq.To.After(sq.From) {
		return se, fmt.Errorf("to %s is not after from %s", f.To, f.From)
	}
	if f.Field != "" && f.Value == "" {
		return se, fmt.Errorf("field %q: give the value to look for in it", f.Field)
	}
	if !f.Run() {
		return se, errors.New("give a key, a value or a header to search for")
	}
	se.scan = sq
	se.m = newMatcher(se.form)
	return se, nil
}

// matcher decides whether a message matches a search, reading the value
// only when the cheaper checks passed.
type matcher struct {
	key, value     string
	contains       bool
	field          []string
	header, hvalue string
	hasHeaderValue bool
	// needle is what the raw value must contain for the field to match
	// (nil: no pre-filter; the value is decoded every time).
	needle      []byte
	textualByID map[int]bool
}

func newMatcher(f searchForm) matcher {
	m := matcher{key: f.Key, value: f.Value, contains: f.Match == "contains"}
	if f.Field != "" {
		m.field = strings.Split(f.Field, ".")
		if prefilterable(f.Value) {
			m.needle = []byte(f.Value)
		}
	}
	m.header, m.hvalue, m.hasHeaderValue = strings.Cut(f.Header, "=")
	return m
}

// prefilterable reports whether a field's text shows as itself in the
// encoded value: a JSON string written by any common encoder, or an Avro
// string. Characters some encoders escape (quotes, backslash, < > & / ')
// and non-ASCII ones rule the pre-filter out.
func prefilterable(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c >= 0x7f || strings.IndexByte(`"\<>&/'`, c) >= 0 {
			return false
		}
	}
	return v != ""
}

func (m *matcher) text(got string) bool {
	if m.contains {
		return strings.Contains(got, m.value)
	}
	return got == m.value
}

func (m *matcher) match(ctx context.Context, g *Registry, msg broker.Message) bool {
	if m.key != "" {
		k := msg.Key
		if !utf8.Valid(k) { // the pages show a binary key in hex
			k = []byte(hex.EncodeToString(k))
		}
		if m.contains && !bytes.Contains(k, []byte(m.key)) || !m.contains && string(k) != m.key {
			return false
		}
	}
	if m.header != "" {
		v, ok := msg.Headers[m.header]
		if !ok || m.hasHeaderValue && v != m.hvalue {
			return false
		}
	}
	if m.value == "" {
		return true
	}
	if m.field == nil { // anywhere in the value, as the page shows it
		return strings.Contains(decode(ctx, g, msg.Value).Text, m.value)
	}
	if m.needle != nil && !bytes.Contains(msg.Value, m.needle) && m.textual(ctx, g, msg.Value) {
		return false
	}
	v, ok := value(ctx, g, msg.Value)
	if !ok {
		return false
	}
	got, ok := fieldText(v, m.field)
	return ok && m.text(got)
}

// textual reports whether the pre-filter holds for value b: a JSON value
// (its fields are text), or Avro whose writer schema has a string at the
// field (numbers, enums and timestamps are binary in Avro: their text is
// not in the bytes). The answer is kept per schema id.
func (m *matcher) textual(ctx context.Context, g *Registry, b []byte) bool {
	if len(b) < 5 || b[0] != 0 || g == nil {
		return true // JSON, or Avro not decodable: no match either way
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	ok, known := m.textualByID[id]
	if !known {
		ok = g.stringField(ctx, id, m.field)
		if m.textualByID == nil {
			m.textualByID = map[int]bool{}
		}
		m.textualByID[id] = ok
	}
	return ok
}

// stringField reports whether schema id has a string at path, or lacks the
// field (nothing can match then).
func (g *Registry) stringField(ctx context.Context, id int, path []string) bool {
	sch, err := g.writer(ctx, id)
	if err != nil {
		return true
	}
	for _, name := range path {
		rec, ok := unionOf(sch).(*avro.RecordSchema)
		if !ok {
			return false
		}
		var found avro.Schema
		for _, f := range rec.Fields() {
			if f.Name() == name {
				found = f.Type()
			}
		}
		if found == nil {
			return true // no such field: nothing can match
		}
		sch = found
	}
	return unionOf(sch).Type() == avro.String // uuid too: a logical string
}

// unionOf is the one non-null branch of a union (an optional field), or s.
func unionOf(s avro.Schema) avro.Schema {
	u, ok := s.(*avro.UnionSchema)
	if !ok {
		return s
	}
	var only avro.Schema
	for _, t := range u.Types() {
		if t.Type() == avro.Null {
			continue
		}
		if only != nil {
			return s
		}
		only = t
	}
	if only == nil {
		return s
	}
	return only
}

// fieldText finds a field of a decoded value by its path and shows it as
// text: strings as they are, numbers and booleans as JSON writes them,
// times in RFC 3339, objects and arrays as JSON. An Avro union's value
// (a map of its one branch name) is unwrapped on the way.
func fieldText(v any, path []string) (string, bool) {
	for _, name := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		next, ok := m[name]
		if !ok {
			if m, isMap := unionValue(m).(map[string]any); isMap {
				next, ok = m[name]
			}
		}
		if !ok {
			return "", false
		}
		v = next
	}
	if m, ok := v.(map[string]any); ok {
		v = unionValue(m)
	}
	switch x := v.(type) {
	case string:
		return x, true
	case nil:
		return "null", true
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), true
	case []byte:
		return string(x), true
	}
	b, err := json.Marshal(v)
	return string(b), err == nil
}

// unionValue is the value of an Avro union as hamba decodes it into any (a
// map of the branch's type name to the value), or m itself.
func unionValue(m map[string]any) any {
	if len(m) != 1 {
		return m
	}
	for k, inner := range m {
		if isAvroPrimitive(k) || strings.Contains(k, ".") {
			return inner
		}
	}
	return m
}

func isAvroPrimitive(name string) bool {
	switch avro.Type(name) {
	case avro.String, avro.Bytes, avro.Int, avro.Long, avro.Float, avro.Double, avro.Boolean:
		return true
	}
	return false
}

// searchEvent is one line of a search's stream: its progress, a match, or
// its end (done, with why it stopped), or an error.
type searchEvent struct {
	Type       string                `json:"type"` // progress, match, done, error
	Scanned    int64                 `json:"scanned"`
	Matched    int                   `json:"matched"`
	ElapsedMS  int64                 `json:"elapsed_ms"`
	Partitions []broker.ScanPosition `json:"partitions"`
	// Done only: why the scan stopped (end, max_scanned, max_results,
	// max_time, cancelled) and a sentence saying what was scanned.
	Stopped string       `json:"stopped,omitempty"`
	Summary string       `json:"summary,omitempty"`
	Message *messageView `json:"message,omitempty"`
	Error   string       `json:"error,omitempty"`
	Status  int          `json:"status,omitempty"` // error only: the HTTP status it maps to
}

// runSearch scans the topic as se says and emits each match as it is
// found, the progress every quarter second, and the end. An emit that
// fails (the client left) or ctx's end (the Cancel button closes the
// stream) stops the scan: its consumer is closed before runSearch returns.
func (s *Server) runSearch(ctx context.Context, se search, emit func(searchEvent) error) {
	if s.cfg.Kafka == nil {
		_ = emit(searchEvent{Type: "error", Error: errNotConnected("Kafka").Error()})
		return
	}
	sctx, cancel := context.WithTimeout(ctx, se.limit)
	defer cancel()
	var matched int
	var stopped string
	var emitErr error
	began := time.Now()
	event := func(typ string, p broker.ScanProgress) searchEvent {
		return searchEvent{Type: typ, Scanned: p.Scanned, Matched: matched, ElapsedMS: p.Elapsed.Milliseconds(), Partitions: p.Partitions}
	}
	q := se.scan
	q.Progress = func(p broker.ScanProgress) {
		if emitErr == nil && !p.Done {
			emitErr = emit(event("progress", p))
		}
	}
	var scanned int64
	prog, err := s.cfg.Kafka.Scan(sctx, q, func(m broker.Message) bool {
		scanned++
		if se.m.match(sctx, s.cfg.Registry, m) {
			matched++
			v := s.view(sctx, m)
			if emitErr = emit(searchEvent{Type: "match", Scanned: scanned, Matched: matched, Message: &v}); emitErr != nil {
				return false
			}
			if matched >= se.form.MaxResults {
				stopped = "max_results"
				return false
			}
		}
		if scanned >= se.form.MaxScanned {
			stopped = "max_scanned"
			return false
		}
		return emitErr == nil
	})
	switch {
	case ctx.Err() != nil || emitErr != nil:
		stopped = "cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		stopped = "max_time"
	case err != nil:
		st, err := s.kafkaErr(err, "search "+se.scan.Topic)
		s.log.Info("web: search failed", "topic", se.scan.Topic, "status", st, "err", err)
		_ = emit(searchEvent{Type: "error", Error: err.Error(), Status: st})
		return
	case stopped == "" || prog.Done: // a bound met at the last message read everything
		stopped = "end"
	}
	prog.Elapsed = time.Since(began)
	done := event("done", prog)
	done.Stopped, done.Summary = stopped, summary(se, prog, matched, stopped)
	s.log.Info("web: search", "topic", se.scan.Topic, "scanned", prog.Scanned, "matched", matched,
		"elapsed", prog.Elapsed.Round(time.Millisecond), "stopped", stopped)
	_ = emit(done)
}

// summary says what a search scanned, over which offsets, in how long.
func summary(se search, p broker.ScanProgress, matched int, stopped string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d match", matched)
	if matched != 1 {
		b.WriteString("es")
	}
	fmt.Fprintf(&b, " in %d messages scanned in %s", p.Scanned, p.Elapsed.Round(time.Millisecond))
	var ranges []string
	for _, pp := range p.Partitions {
		switch {
		case pp.End <= pp.Start:
		case pp.Next >= pp.End:
			ranges = append(ranges, fmt.Sprintf("partition %d offsets %d–%d", pp.Partition, pp.Start, pp.End-1))
		case pp.Next == pp.Start:
			ranges = append(ranges, fmt.Sprintf("partition %d none of offsets %d–%d", pp.Partition, pp.Start, pp.End-1))
		default:
			ranges = append(ranges, fmt.Sprintf("partition %d offsets %d–%d of %d–%d", pp.Partition, pp.Start, pp.Next-1, pp.Start, pp.End-1))
		}
	}
	if len(ranges) == 0 {
		b.WriteString("; nothing in the range")
	} else {
		b.WriteString(" (" + strings.Join(ranges, "; ") + ")")
	}
	switch stopped {
	case "max_scanned":
		fmt.Fprintf(&b, "; stopped at the limit of %d messages scanned", se.form.MaxScanned)
	case "max_results":
		fmt.Fprintf(&b, "; stopped at the limit of %d matches", se.form.MaxResults)
	case "max_time":
		fmt.Fprintf(&b, "; stopped at the time limit of %d s", se.form.MaxSeconds)
	case "cancelled":
		b.WriteString("; cancelled")
	default:
		b.WriteString("; every partition read to its end")
	}
	return b.String()
}

// searchPage is the search page: the form and, without JavaScript, the
// finished search's matches (the script streams them instead).
type searchPage struct {
	Topic   string        `json:"topic"`
	Form    searchForm    `json:"query"`
	Matches []messageView `json:"matches"`
	Done    *searchEvent  `json:"done,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// topicToolRoutes are the topic page's search and produce.
func (s *Server) topicToolRoutes() {
	s.mux.Handle("GET /topics/{topic}/search", s.viewer(http.HandlerFunc(s.searchPageHandler)))
	s.mux.Handle("GET /topics/{topic}/search/events", s.viewer(http.HandlerFunc(s.searchEvents)))
	s.mux.Handle("GET /api/ui/topics/{topic}/search", s.viewer(http.HandlerFunc(s.searchNDJSON)))
	s.mux.Handle("GET /topics/{topic}/produce", s.viewer(http.HandlerFunc(s.produceForm)))
	s.mux.Handle("POST /topics/{topic}/produce", s.admin(http.HandlerFunc(s.produce)))
	s.mux.Handle("POST /api/ui/topics/{topic}/produce", s.admin(http.HandlerFunc(s.produce)))
}

// searchPageHandler serves the page: the form, and with a query the whole
// search run here (a browser without JavaScript waits for it).
func (s *Server) searchPageHandler(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	p := searchPage{Topic: topic, Matches: []messageView{}}
	se, err := parseSearch(r)
	p.Form = se.form
	status := http.StatusOK
	switch {
	case !se.form.Run() && r.URL.Query().Get("run") == "":
	case err != nil:
		p.Error, status = err.Error(), http.StatusBadRequest
	default:
		s.runSearch(r.Context(), se, func(e searchEvent) error {
			switch e.Type {
			case "match":
				p.Matches = append(p.Matches, *e.Message)
			case "done":
				p.Done = &e
			case "error":
				p.Error, status = e.Error, cmp.Or(e.Status, http.StatusBadGateway)
			}
			return nil
		})
	}
	s.render(w, r, status, "search", "Search "+topic, p)
}

// searchEvents streams a search to the page as server-sent events; the
// page's Cancel closes it, which stops the scan.
func (s *Server) searchEvents(w http.ResponseWriter, r *http.Request) {
	s.streamSearch(w, r, "text/event-stream", func(e searchEvent, b []byte) string {
		return "event: " + e.Type + "\ndata: " + string(b) + "\n\n"
	})
}

// searchNDJSON is the JSON twin: one JSON object a line, as the search
// goes (progress, match, then done or error); a bad query answers 400.
func (s *Server) searchNDJSON(w http.ResponseWriter, r *http.Request) {
	s.streamSearch(w, r, "application/x-ndjson", func(_ searchEvent, b []byte) string { return string(b) + "\n" })
}

func (s *Server) streamSearch(w http.ResponseWriter, r *http.Request, contentType string, frame func(searchEvent, []byte) string) {
	se, err := parseSearch(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "status": http.StatusBadRequest})
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	s.runSearch(r.Context(), se, func(e searchEvent) error {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte(frame(e, b))); err != nil {
			return err
		}
		fl.Flush()
		return r.Context().Err()
	})
}
