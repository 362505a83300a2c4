package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/userstream/userstream/internal/schema"
)

// producePage is the produce form of a topic and what the last send did.
type producePage struct {
	Topic string `json:"topic"`
	Key   string `json:"key"`
	Value string `json:"value"`
	// Subject is the topic's value subject; SchemaID the latest schema's
	// id when the registry has one (the value is then written as Avro).
	Subject  string `json:"subject"`
	SchemaID int    `json:"schema_id,omitempty"`
	Produced bool   `json:"produced"`
	// Partition and Offset say where the message went; Link shows it.
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Link      string `json:"-"`
	Error     string `json:"error,omitempty"`
}

// errRefused is a value the form does not send, with why.
var errRefused = errors.New("refused")

func (s *Server) producePage(r *http.Request, topic string) producePage {
	p := producePage{Topic: topic, Subject: topic + "-value", Value: "{\n  \n}"}
	if s.cfg.Registry != nil {
		if ss, err := s.cfg.Registry.version(r.Context(), p.Subject, -1); err == nil {
			p.SchemaID = ss.ID
		}
	}
	return p
}

// produceTimeout bounds a send: a broker that does not answer is said
// rather than waited for.
const produceTimeout = 15 * time.Second

// topicMissing answers the error page when the topic is not there (or
// Kafka is not connected) and reports whether it did.
func (s *Server) topicMissing(w http.ResponseWriter, r *http.Request, topic string) bool {
	status, err := http.StatusServiceUnavailable, errNotConnected("Kafka")
	if s.cfg.Kafka != nil {
		if _, err = s.cfg.Kafka.Topic(r.Context(), topic); err == nil {
			return false
		}
		status, err = s.kafkaErr(err, "topic "+topic)
	}
	if isTwin(r.URL.Path) {
		writeJSON(w, status, map[string]any{"error": err.Error(), "status": status})
		return true
	}
	s.render(w, r, status, "error", "Produce to "+topic, map[string]any{"Status": status, "Message": err.Error()})
	return true
}

// produceForm shows the form (disabled for a viewer).
func (s *Server) produceForm(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if s.topicMissing(w, r, topic) {
		return
	}
	s.render(w, r, http.StatusOK, "produce", "Produce to "+topic, s.producePage(r, topic))
}

// produce sends the form's message (its twin, POST
// /api/ui/topics/{topic}/produce with the same form fields, answers the
// page's data as JSON): its value as Avro of the latest schema
// of <topic>-value when the registry has one (refused, saying which field
// and why, when it does not fit), as the JSON typed otherwise (refused
// when it is not JSON). A refused value is shown with the form kept and
// nothing sent.
func (s *Server) produce(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if s.topicMissing(w, r, topic) {
		return
	}
	p := s.producePage(r, topic)
	p.Key, p.Value = r.PostFormValue("key"), r.PostFormValue("value")
	ctx, cancel := context.WithTimeout(r.Context(), produceTimeout)
	defer cancel()
	value, err := s.encodeValue(ctx, p.Subject, []byte(p.Value))
	status := http.StatusOK
	switch {
	case errors.Is(err, errRefused):
		p.Error, status = err.Error(), http.StatusUnprocessableEntity
	case err != nil:
		p.Error, status = err.Error(), http.StatusBadGateway
	default:
		var key []byte
		if p.Key != "" {
			key = []byte(p.Key)
		}
		if p.Partition, p.Offset, err = s.cfg.Kafka.Produce(ctx, topic, key, value); err != nil {
			st, err := s.kafkaErr(err, "produce to "+topic)
			p.Error, status = err.Error(), st
			break
		}
		p.Produced = true
		p.Link = (&url.URL{Path: "/topics/" + pathEscape(topic) + "/messages", RawQuery: url.Values{"mode": {"offset"},
			"partition": {strconv.Itoa(int(p.Partition))}, "offset": {strconv.FormatInt(p.Offset, 10)}, "limit": {"1"}}.Encode()}).String()
		s.log.Info("web: produced", "topic", topic, "partition", p.Partition, "offset", p.Offset, "schema_id", p.SchemaID,
			"user", sessionOf(r).User.Name)
	}
	if isTwin(r.URL.Path) {
		writeJSON(w, status, p)
		return
	}
	s.render(w, r, status, "produce", "Produce to "+topic, p)
}

// encodeValue is the bytes to send for a typed value: Avro through the
// schema package's serde when subject has a schema, else the JSON itself.
// Errors wrap errRefused for a value that is not sent for what it is.
func (s *Server) encodeValue(ctx context.Context, subject string, v []byte) ([]byte, error) {
	if !json.Valid(v) {
		var x any
		err := json.Unmarshal(v, &x)
		return nil, fmt.Errorf("%w: the value is not JSON: %v", errRefused, err)
	}
	if s.cfg.Registry == nil {
		return v, nil
	}
	ss, err := s.cfg.Registry.version(ctx, subject, -1)
	var re *sr.ResponseError
	switch {
	case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
		return v, nil // no schema: JSON as it is
	case err != nil:
		return nil, fmt.Errorf("the schema of %s: %w", subject, err)
	case ss.Type != sr.TypeAvro:
		return nil, fmt.Errorf("%w: the latest schema of %s (id %d) is %s; this form writes Avro or plain JSON", errRefused, subject, ss.ID, ss.Type)
	}
	serde, err := schema.NewSerde(ctx, s.cfg.Registry.cl, schema.WithSubject(subject), schema.WithSchema(ss.Schema.Schema),
		schema.WithoutRegistration())
	if err != nil {
		return nil, fmt.Errorf("%w: the latest schema of %s (id %d): %w", errRefused, subject, ss.ID, err)
	}
	b, err := serde.EncodeJSON(v)
	if err != nil {
		return nil, fmt.Errorf("%w by schema id %d (%s version %d): %w", errRefused, ss.ID, subject, ss.Version, err)
	}
	return b, nil
}
