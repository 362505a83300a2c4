package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/stream"
)

func (s *Server) kafkaErr(err error, what string) (int, error) {
	if errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.GroupIDNotFound) {
		return http.StatusNotFound, fmt.Errorf("%s: not found", what)
	}
	return http.StatusBadGateway, fmt.Errorf("%s: %w", what, err)
}

func (s *Server) loadTopics(r *http.Request) (any, int, error) {
	if s.cfg.Kafka == nil {
		return nil, http.StatusServiceUnavailable, errNotConnected("Kafka")
	}
	ts, err := s.cfg.Kafka.Topics(r.Context())
	if err != nil {
		st, err := s.kafkaErr(err, "topics")
		return nil, st, err
	}
	bs, err := s.cfg.Kafka.Brokers(r.Context())
	if err != nil {
		st, err := s.kafkaErr(err, "brokers")
		return nil, st, err
	}
	return map[string]any{"Topics": ts, "Brokers": bs}, 0, nil
}

type topicPage struct {
	Topic   broker.TopicDescription `json:"topic"`
	Configs []broker.ConfigEntry    `json:"configs"`
	Records int64                   `json:"records"`
	IsDLQ   bool                    `json:"is_dlq"`
	Charts  *chartSet               `json:"-"`
}

func (s *Server) loadTopic(r *http.Request) (any, int, error) {
	if s.cfg.Kafka == nil {
		return nil, http.StatusServiceUnavailable, errNotConnected("Kafka")
	}
	name := r.PathValue("topic")
	d, err := s.cfg.Kafka.Topic(r.Context(), name)
	if err != nil {
		st, err := s.kafkaErr(err, "topic "+name)
		return nil, st, err
	}
	cfgs, err := s.cfg.Kafka.TopicConfigs(r.Context(), name)
	if err != nil {
		st, err := s.kafkaErr(err, "configs of "+name)
		return nil, st, err
	}
	p := topicPage{Topic: d, Configs: cfgs, IsDLQ: name == s.cfg.DLQ, Charts: s.topicCharts(name)}
	for _, pd := range d.Partitions {
		p.Records += pd.End - pd.Start
	}
	return p, 0, nil
}

// messageView is one message as the browser shows it.
type messageView struct {
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Key       string            `json:"key"`
	Value     Decoded           `json:"value"`
	Headers   map[string]string `json:"headers"`
	Reason    string            `json:"dlq_reason,omitempty"` // a dead letter's userstream.error
	Kind      string            `json:"dlq_kind,omitempty"`
}

type messagesPage struct {
	Topic    string        `json:"topic"`
	Query    messageQuery  `json:"query"`
	Messages []messageView `json:"messages"`
	IsDLQ    bool          `json:"is_dlq"`
	Export   string        `json:"-"`
	Tail     bool          `json:"-"`
}

// messageQuery is the browser's form: where to read, how many, a filter.
type messageQuery struct {
	Partition string `json:"partition"` // "" = all
	Offset    string `json:"offset"`
	From      string `json:"from"` // RFC 3339 or 2006-01-02T15:04 (a datetime-local field)
	Mode      string `json:"mode"` // newest (default), offset, time, tail
	Limit     int    `json:"limit"`
	Filter    string `json:"filter"`
}

func parseMessageQuery(r *http.Request) (messageQuery, broker.MessageQuery, error) {
	q := r.URL.Query()
	mq := messageQuery{Partition: q.Get("partition"), Offset: q.Get("offset"), From: q.Get("from"),
		Mode: q.Get("mode"), Filter: q.Get("filter"), Limit: 50}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return mq, broker.MessageQuery{}, fmt.Errorf("limit %q: give 1 to 1000", v)
		}
		mq.Limit = n
	}
	bq := broker.MessageQuery{Topic: r.PathValue("topic"), Partition: -1, Limit: mq.Limit}
	if mq.Partition != "" {
		p, err := strconv.Atoi(mq.Partition)
		if err != nil || p < 0 {
			return mq, bq, fmt.Errorf("partition %q is not a partition number", mq.Partition)
		}
		bq.Partition = int32(p)
	}
	switch mq.Mode {
	case "", "newest", "tail":
		if mq.Mode == "" {
			mq.Mode = "newest"
		}
		bq.Newest = true
	case "offset":
		if bq.Partition < 0 {
			return mq, bq, errors.New("reading from an offset needs a partition")
		}
		o, err := strconv.ParseInt(mq.Offset, 10, 64)
		if err != nil || o < 0 {
			return mq, bq, fmt.Errorf("offset %q is not an offset", mq.Offset)
		}
		bq.Offset = o
	case "time":
		t, err := parseTime("from", mq.From)
		if err != nil {
			return mq, bq, err
		}
		bq.From = t
	default:
		return mq, bq, fmt.Errorf("mode %q: use newest, offset, time or tail", mq.Mode)
	}
	return mq, bq, nil
}

// parseTime reads a form's date and time: RFC 3339, or a datetime-local
// field's 2006-01-02T15:04[:05] (UTC), or a date.
func parseTime(name, v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q is not a date and time (2006-01-02T15:04 or RFC 3339)", name, v)
}

func (s *Server) messages(r *http.Request) (messagesPage, int, error) {
	name := r.PathValue("topic")
	page := messagesPage{Topic: name, IsDLQ: name == s.cfg.DLQ, Messages: []messageView{}}
	if s.cfg.Kafka == nil {
		return page, http.StatusServiceUnavailable, errNotConnected("Kafka")
	}
	mq, bq, err := parseMessageQuery(r)
	page.Query, page.Tail = mq, mq.Mode == "tail"
	if err != nil {
		return page, http.StatusBadRequest, err
	}
	if page.Tail {
		bq.Wait = 300 * time.Millisecond
	}
	ms, err := s.cfg.Kafka.Messages(r.Context(), bq)
	if err != nil {
		st, err := s.kafkaErr(err, "messages of "+name)
		return page, st, err
	}
	filter := strings.ToLower(mq.Filter)
	for _, m := range ms {
		v := s.view(r.Context(), m)
		if filter != "" && !strings.Contains(strings.ToLower(v.Key+"\n"+v.Value.Text+"\n"+fmt.Sprint(v.Headers)), filter) {
			continue
		}
		page.Messages = append(page.Messages, v)
	}
	u := url.URL{Path: "/topics/" + pathEscape(name) + "/export", RawQuery: r.URL.RawQuery}
	page.Export = u.String()
	return page, 0, nil
}

// view is a message as the pages show it, its value decoded.
func (s *Server) view(ctx context.Context, m broker.Message) messageView {
	return messageView{Partition: m.Partition, Offset: m.Offset, Timestamp: m.Timestamp, Key: printable(m.Key),
		Value: decode(ctx, s.cfg.Registry, m.Value), Headers: m.Headers,
		Reason: m.Headers[stream.HeaderError], Kind: m.Headers[stream.HeaderErrorKind]}
}

func (s *Server) loadMessages(r *http.Request) (any, int, error) {
	p, st, err := s.messages(r)
	return p, st, err
}

// printable shows a key as text when it is, else as hex.
func printable(b []byte) string {
	d := decode(context.Background(), nil, b)
	if d.Format == "text" || d.Format == "json" {
		return string(b)
	}
	if d.Format == "empty" {
		return ""
	}
	return fmt.Sprintf("%x", b)
}

// exportMessages downloads the shown messages as JSON or CSV
// (format=json|csv), with the query of the page.
func (s *Server) exportMessages(w http.ResponseWriter, r *http.Request) {
	p, st, err := s.messages(r)
	if err != nil {
		http.Error(w, err.Error(), st)
		return
	}
	name := strings.NewReplacer("/", "_", `"`, "_").Replace(p.Topic)
	switch r.URL.Query().Get("format") {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"partition", "offset", "timestamp", "key", "format", "schema_id", "value", "headers"})
		for _, m := range p.Messages {
			h, _ := json.Marshal(m.Headers)
			_ = cw.Write([]string{strconv.Itoa(int(m.Partition)), strconv.FormatInt(m.Offset, 10), m.Timestamp.Format(time.RFC3339Nano),
				csvSafe(m.Key), m.Value.Format, strconv.Itoa(m.Value.SchemaID), csvSafe(m.Value.Text), csvSafe(string(h))})
		}
		cw.Flush()
	default:
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.json"`)
		writeJSON(w, http.StatusOK, p)
	}
}

// csvSafe defuses spreadsheet formulas (a cell that starts with = + - @).
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (s *Server) loadGroups(r *http.Request) (any, int, error) {
	if s.cfg.Kafka == nil {
		return nil, http.StatusServiceUnavailable, errNotConnected("Kafka")
	}
	gs, err := s.cfg.Kafka.Groups(r.Context())
	if err != nil {
		st, err := s.kafkaErr(err, "groups")
		return nil, st, err
	}
	return map[string]any{"Groups": gs}, 0, nil
}

type groupPage struct {
	Group   broker.GroupDescription `json:"group"`
	Topics  []string                `json:"topics"`
	Preview []broker.OffsetChange   `json:"preview,omitempty"`
	Reset   resetForm               `json:"reset"`
	Applied bool                    `json:"applied"`
	Error   string                  `json:"error,omitempty"`
	Charts  *chartSet               `json:"-"`
}

type resetForm struct {
	Topic  string `json:"topic"`
	To     string `json:"to"`
	Time   string `json:"time"`
	Offset string `json:"offset"`
}

func (s *Server) group(r *http.Request) (groupPage, int, error) {
	name := r.PathValue("group")
	if s.cfg.Kafka == nil {
		return groupPage{}, http.StatusServiceUnavailable, errNotConnected("Kafka")
	}
	g, err := s.cfg.Kafka.Group(r.Context(), name)
	if err != nil {
		st, err := s.kafkaErr(err, "group "+name)
		return groupPage{}, st, err
	}
	p := groupPage{Group: g, Charts: s.groupCharts(name)}
	seen := map[string]bool{}
	for _, pl := range g.Partitions {
		if !seen[pl.Topic] {
			seen[pl.Topic] = true
			p.Topics = append(p.Topics, pl.Topic)
		}
	}
	if len(p.Topics) == 0 && s.cfg.Topic != "" {
		p.Topics = []string{s.cfg.Topic}
	}
	p.Reset = resetForm{Topic: p.Topics[0], To: "earliest"}
	return p, 0, nil
}

func (s *Server) loadGroup(r *http.Request) (any, int, error) { return s.group(r) }

// resetGroup is the offset reset form: "preview" shows what would change
// (a dry run, always allowed); "apply", with the confirmation box ticked,
// commits it, which Kafka allows only while the group is empty.
func (s *Server) resetGroup(w http.ResponseWriter, r *http.Request) {
	p, st, err := s.group(r)
	if err != nil {
		http.Error(w, err.Error(), st)
		return
	}
	f := resetForm{Topic: r.PostFormValue("topic"), To: r.PostFormValue("to"), Time: r.PostFormValue("time"), Offset: r.PostFormValue("offset")}
	p.Reset = f
	target := broker.ResetTarget{To: f.To}
	switch f.To {
	case "earliest", "latest":
	case "timestamp":
		t, err := time.Parse("2006-01-02T15:04", f.Time)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, f.Time); err != nil {
				p.Error = fmt.Sprintf("time %q is not a date and time", f.Time)
			}
		}
		target.Time = t
	case "offset":
		o, err := strconv.ParseInt(f.Offset, 10, 64)
		if err != nil || o < 0 {
			p.Error = fmt.Sprintf("offset %q is not an offset", f.Offset)
		}
		target.Offset = o
	default:
		p.Error = fmt.Sprintf("reset to %q: use earliest, latest, timestamp or offset", f.To)
	}
	apply := r.PostFormValue("action") == "apply"
	if apply && r.PostFormValue("confirm") != "yes" {
		p.Error = "tick the confirmation box to apply the reset"
	}
	status := http.StatusOK
	if p.Error == "" {
		changes, err := s.cfg.Kafka.ResetOffsets(r.Context(), r.PathValue("group"), f.Topic, target, apply)
		switch {
		case errors.Is(err, broker.ErrGroupNotEmpty):
			p.Error, status = err.Error(), http.StatusConflict
		case err != nil:
			p.Error, status = err.Error(), http.StatusBadGateway
		default:
			p.Preview, p.Applied = changes, apply
			if apply {
				if g, err := s.cfg.Kafka.Group(r.Context(), r.PathValue("group")); err == nil {
					p.Group = g
				}
			}
		}
	} else {
		status = http.StatusBadRequest
	}
	s.render(w, r, status, "group", "Consumer group", p)
}
