package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/user"
)

// Where a user's message is looked for: in its key's partition, from a
// little before the row's ingested_at (the record is made at fetch time,
// the message is produced after), at most lineageScan messages read and
// for at most lineageTime. At a million messages produced at 15k/s, the
// message sat 10k messages after that point of its partition: a scan of
// the first thousand (the old bound) missed it.
const (
	lineageScan   = 200_000
	lineageBefore = 2 * time.Second
	lineageTime   = 3 * time.Second
)

// headerRunID is the header the producer names its run with (ingest's
// HeaderRunID).
const headerRunID = "userstream.run_id"

// lineageMessage is where a user's message sits in Kafka.
type lineageMessage struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Headers   map[string]string `json:"headers"`
}

// lineagePage is a user's lineage: its row, its message, and the DAG run
// (with its task tries and their logs) that fetched it.
type lineagePage struct {
	User    user.Record              `json:"user"`
	Message *lineageMessage          `json:"message"` // nil: not found (Note says where it looked)
	Note    string                   `json:"message_note,omitempty"`
	Run     *scheduler.Run           `json:"run"` // nil: no DAG run of that id (a `userstream produce`)
	Tasks   []scheduler.TaskInstance `json:"task_instances,omitempty"`
	// RunMessages is the message browser filtered by the run id; RunUsers
	// the users page.
	RunMessages string `json:"run_messages"`
	RunUsers    string `json:"run_users"`
}

// loadLineage answers /users/{id}: the row, its message (read from one
// partition, bounded in messages and time) and its run.
func (s *Server) loadLineage(r *http.Request) (any, int, error) {
	if s.cfg.Users == nil {
		return nil, http.StatusServiceUnavailable, errNotConnected("the sink")
	}
	ctx := r.Context()
	id := r.PathValue("id")
	u, err := s.cfg.Users.Get(ctx, id)
	if errors.Is(err, sink.ErrNotFound) {
		return nil, http.StatusNotFound, fmt.Errorf("user %q: not found", id)
	}
	if err != nil {
		return nil, http.StatusBadGateway, fmt.Errorf("sink: %w", err)
	}
	p := lineagePage{User: u}
	p.RunMessages, p.RunUsers = s.runMessages(u.RunID), s.runUsers(u.RunID)
	if s.cfg.Kafka != nil {
		p.Message, p.Note = s.findMessage(r, u)
	}
	if runID := u.RunID; p.Message != nil && p.Message.Headers[headerRunID] != "" {
		runID = p.Message.Headers[headerRunID]
		p.Run, p.Tasks = s.findRun(r, runID)
	} else if runID != "" {
		p.Run, p.Tasks = s.findRun(r, runID)
	}
	return p, 0, nil
}

// runMessages is the topic search's address for a run's messages: those
// whose run id header is the run's (the search bounds what it scans and
// finds); "" without a run id.
func (s *Server) runMessages(runID string) string {
	if runID == "" || s.cfg.Topic == "" {
		return ""
	}
	return "/topics/" + pathEscape(s.cfg.Topic) + "/search?header=" + url.QueryEscape(headerRunID+"="+runID)
}

// runUsers is the users page's address for the users a run stored; ""
// without a run id or a sink.
func (s *Server) runUsers(runID string) string {
	if runID == "" || s.cfg.Users == nil {
		return ""
	}
	return "/users?run=" + url.QueryEscape(runID)
}

// findMessage reads the user's key's partition from just before its
// ingested_at for the message with its key (the newest such within
// lineageScan messages); failing that, every partition from then.
func (s *Server) findMessage(r *http.Request, u user.Record) (*lineageMessage, string) {
	ctx := r.Context()
	topic := s.cfg.Topic
	td, err := s.cfg.Kafka.Topic(ctx, topic)
	if err != nil {
		return nil, "Kafka: " + err.Error()
	}
	from := u.IngestedAt.Add(-lineageBefore)
	if u.IngestedAt.IsZero() {
		from = time.Time{}
	}
	part := int32(-1)
	if n := len(td.Partitions); n > 0 {
		part = int32(kgo.StickyKeyPartitioner(nil).ForTopic(topic).Partition(&kgo.Record{Key: []byte(u.ID)}, n))
	}
	ctx, cancel := context.WithTimeout(ctx, lineageTime)
	defer cancel()
	scanned := 0
	for _, p := range []int32{part, -1} {
		var found *lineageMessage
		_, err := s.cfg.Kafka.Scan(ctx, broker.ScanQuery{Topic: topic, Partition: p, ToOffset: -1, From: from}, func(m broker.Message) bool {
			scanned++
			if string(m.Key) == u.ID {
				found = &lineageMessage{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Timestamp: m.Timestamp, Headers: m.Headers}
				if m.Headers[headerRunID] == u.RunID {
					return false
				}
			}
			return scanned < lineageScan
		})
		if found != nil {
			return found, ""
		}
		if err != nil && ctx.Err() == nil {
			return nil, "Kafka: " + err.Error()
		}
		if p == -1 || ctx.Err() != nil || scanned >= lineageScan {
			break
		}
	}
	return nil, fmt.Sprintf("not among the %d messages of %s read from %s in at most %v (it may have been deleted by retention)",
		scanned, topic, from.UTC().Format(time.RFC3339), lineageTime)
}

// findRun finds the DAG run of that id in any DAG; nil when there is none.
func (s *Server) findRun(r *http.Request, runID string) (*scheduler.Run, []scheduler.TaskInstance) {
	if s.cfg.Service == nil {
		return nil, nil
	}
	ctx := r.Context()
	dags, err := s.cfg.Service.Store().ListDAGs(ctx)
	if err != nil {
		return nil, nil
	}
	for _, d := range dags {
		run, err := s.cfg.Service.Store().GetRun(ctx, d.DagID, runID)
		if err != nil {
			continue
		}
		tis, _ := s.cfg.Service.TaskInstances(ctx, run.DagID, run.RunID)
		return &run, tis
	}
	return nil, nil
}
