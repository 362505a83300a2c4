// Package ingestdag is the user_automation DAG: ingest (fetch -> map ->
// produce) as a scheduler task, with the specs of a --dags file. The
// scheduler command and the composition root (internal/stack) both build
// their DAGs here, so the production scheduler needs nothing of the
// embedded stack.
package ingestdag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"sigs.k8s.io/yaml"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/scheduler"
)

// The original DAG's names and settings.
const (
	UserAutomationID   = "user_automation"
	UserAutomationTask = "stream_data_from_api"
)

// UserAutomationStart is the original DAG's fixed start_date
// (datetime(2023, 9, 3, 10, 00)).
var UserAutomationStart = time.Date(2023, 9, 3, 10, 0, 0, 0, time.UTC)

// Spec is a DAG of the user_automation kind: one task that streams
// users from the Random User API to Kafka. Its JSON (and YAML) keys are the
// names of a --dags file; durations are strings such as "30s", times RFC
// 3339.
type Spec struct {
	DagID                   string   `json:"dag_id"`
	Owner                   string   `json:"owner,omitempty"`
	Description             string   `json:"description,omitempty"`
	Schedule                string   `json:"schedule"`
	Timezone                string   `json:"timezone,omitempty"`
	StartDate               string   `json:"start_date,omitempty"`
	EndDate                 string   `json:"end_date,omitempty"`
	Catchup                 bool     `json:"catchup"`
	MaxActiveRuns           int      `json:"max_active_runs,omitempty"`
	Paused                  bool     `json:"is_paused_upon_creation,omitempty"`
	Retries                 int      `json:"retries"`
	RetryDelay              string   `json:"retry_delay,omitempty"`
	RetryExponentialBackoff bool     `json:"retry_exponential_backoff,omitempty"`
	MaxRetryDelay           string   `json:"max_retry_delay,omitempty"`
	ExecutionTimeout        string   `json:"execution_timeout,omitempty"`
	UsersPerRun             int      `json:"users_per_run,omitempty"`
	RunDuration             string   `json:"run_duration,omitempty"`
	Rate                    float64  `json:"rate,omitempty"` // most users/s a run fetches (0: as fast as the source allows)
	Nat                     []string `json:"nat,omitempty"`
	Tags                    []string `json:"tags,omitempty"`
}

// UserAutomation is the original DAG, with what its users missed
// fixed: retries (2, 30 s apart, doubling), and it is not paused when
// first seen.
func UserAutomation() Spec {
	return Spec{DagID: UserAutomationID, Owner: "airscholar", Description: "Stream users from the Random User API to Kafka (users_created)",
		Schedule: "@daily", StartDate: UserAutomationStart.Format(time.RFC3339), Catchup: false, MaxActiveRuns: 1,
		Retries: 2, RetryDelay: "30s", RetryExponentialBackoff: true, MaxRetryDelay: "5m",
		RunDuration: "60s", Tags: []string{"userstream"}}
}

// Producing is what the stream_data_from_api task produces with.
type Producing struct {
	// Source gives the users: a *randomuser.Client, or the generator
	// itself (randomuser.NewGenerator()).
	Source     ingest.Source
	SourceName string
	// Producer opens a Kafka client for one try (ingest.ProducerOpts); the
	// task closes it.
	Producer func(ctx context.Context) (*kgo.Client, error)
	Encoder  ingest.Encoder
	// BatchSize and Concurrency of the API requests [1000, 2].
	BatchSize, Concurrency int
	Logger                 *slog.Logger
}

// Build turns a spec into a DAG whose task runs ingest with p. Errors name
// the DAG and the field.
func (sp Spec) Build(p Producing) (*scheduler.DAG, error) {
	bad := func(field string, err error) error { return fmt.Errorf("DAG %q: %s: %w", sp.DagID, field, err) }
	dur := func(field, v string) (time.Duration, error) {
		if v == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, bad(field, fmt.Errorf("%q is not a duration such as 30s or 5m", v))
		}
		return d, nil
	}
	tz := time.UTC
	if sp.Timezone != "" {
		l, err := time.LoadLocation(sp.Timezone)
		if err != nil {
			return nil, bad("timezone", fmt.Errorf("%q is not an IANA time zone such as Europe/Paris", sp.Timezone))
		}
		tz = l
	}
	date := func(field, v string) (time.Time, error) {
		if v == "" {
			return time.Time{}, nil
		}
		for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err := time.ParseInLocation(layout, v, tz); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, bad(field, fmt.Errorf("%q is not a date such as 2023-09-03 or 2023-09-03T10:00:00Z", v))
	}
	d := &scheduler.DAG{DagID: sp.DagID, Owner: sp.Owner, Description: sp.Description, Schedule: sp.Schedule,
		Timezone: tz, Catchup: sp.Catchup, MaxActiveRuns: sp.MaxActiveRuns, IsPausedUponCreation: sp.Paused, Tags: sp.Tags}
	var err error
	if d.StartDate, err = date("start_date", sp.StartDate); err != nil {
		return nil, err
	}
	if d.StartDate.IsZero() {
		d.StartDate = UserAutomationStart
	}
	if d.EndDate, err = date("end_date", sp.EndDate); err != nil {
		return nil, err
	}
	a := &d.DefaultArgs
	a.Retries, a.RetryExponentialBackoff = sp.Retries, sp.RetryExponentialBackoff
	if a.RetryDelay, err = dur("retry_delay", sp.RetryDelay); err != nil {
		return nil, err
	}
	if a.MaxRetryDelay, err = dur("max_retry_delay", sp.MaxRetryDelay); err != nil {
		return nil, err
	}
	if a.ExecutionTimeout, err = dur("execution_timeout", sp.ExecutionTimeout); err != nil {
		return nil, err
	}
	runFor, err := dur("run_duration", sp.RunDuration)
	if err != nil {
		return nil, err
	}
	if sp.UsersPerRun < 0 {
		return nil, bad("users_per_run", fmt.Errorf("%d is negative", sp.UsersPerRun))
	}
	if sp.UsersPerRun == 0 && runFor == 0 {
		return nil, bad("users_per_run", errors.New("give users_per_run, run_duration or both to bound a run"))
	}
	for _, n := range sp.Nat {
		if !randomuser.ValidNat(n) {
			return nil, bad("nat", fmt.Errorf("%q is not one of the API's nationalities", n))
		}
	}
	if a.ExecutionTimeout == 0 && runFor > 0 {
		// A run that streams for runFor needs more than runFor.
		a.ExecutionTimeout = 2*runFor + time.Minute
	}
	if sp.Rate < 0 {
		return nil, bad("rate", fmt.Errorf("%g is negative", sp.Rate))
	}
	bound := bounds{users: sp.UsersPerRun, duration: runFor, nat: sp.Nat, rate: sp.Rate}
	d.ConfCheck = func(conf map[string]any) error { _, err := bound.with(conf); return err }
	d.Tasks = []scheduler.Task{{TaskID: UserAutomationTask, Run: func(ctx context.Context, tc scheduler.TaskContext) error {
		return streamDataFromAPI(ctx, tc, p, bound)
	}}}
	if err := scheduler.Validate(d); err != nil {
		return nil, err
	}
	return d, nil
}

// bounds are what one run streams: users and/or a duration, nationalities.
type bounds struct {
	users    int
	duration time.Duration
	nat      []string
	rate     float64
}

// with overrides b with a run's conf: users (a count), duration ("30s"),
// nat (a list or a comma string), seed (any string; checked elsewhere).
func (b bounds) with(conf map[string]any) (bounds, error) {
	for k, v := range conf {
		switch k {
		case "users":
			n, ok := v.(float64)
			if !ok || n < 1 || n != float64(int(n)) {
				return b, fmt.Errorf("users: want a whole number of at least 1, got %v", v)
			}
			b.users = int(n)
			if _, has := conf["duration"]; !has {
				b.duration = 0 // a count alone bounds a manual run
			}
		case "duration":
			s, _ := v.(string)
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				return b, fmt.Errorf("duration: want a duration such as \"30s\", got %v", v)
			}
			b.duration = d
			if _, has := conf["users"]; !has {
				b.users = 0
			}
		case "nat":
			var nats []string
			switch x := v.(type) {
			case string:
				nats = strings.Split(x, ",")
			case []any:
				for _, e := range x {
					s, ok := e.(string)
					if !ok {
						return b, fmt.Errorf("nat: want nationality codes, got %v", v)
					}
					nats = append(nats, s)
				}
			default:
				return b, fmt.Errorf("nat: want a list of nationality codes or \"fr,gb\", got %v", v)
			}
			for _, n := range nats {
				if !randomuser.ValidNat(strings.TrimSpace(n)) {
					return b, fmt.Errorf("nat: %q is not one of the API's nationalities", n)
				}
			}
			b.nat = nats
		case "seed":
			if s, ok := v.(string); !ok || s == "" {
				return b, fmt.Errorf("seed: want a non-empty string, got %v", v)
			}
		default:
			return b, fmt.Errorf("unknown key %q: the conf takes users, duration, nat and seed", k)
		}
	}
	return b, nil
}

// streamDataFromAPI is the task of the original DAG, made idempotent: a
// try fetches with the run's seed, so a retry or a cleared run produces the
// same users (pages 1, 2, ... of one seed) and the sink, which upserts by
// id, ends with the same rows. The run id travels in every message's
// headers and each record's run_id.
func streamDataFromAPI(ctx context.Context, tc scheduler.TaskContext, p Producing, base bounds) error {
	b, err := base.with(tc.Conf)
	if err != nil {
		return err
	}
	prod, err := p.Producer(ctx)
	if err != nil {
		return err
	}
	defer prod.Close()
	cfg := ingest.Config{Topic: broker.Topic, Users: b.users, Duration: b.duration, Nat: b.nat, Seed: tc.Seed, Rate: b.rate,
		RunID: tc.Run.RunID, SourceName: p.SourceName, BatchSize: p.BatchSize, Concurrency: p.Concurrency}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if b.users > 0 {
		cfg.BatchSize = min(cfg.BatchSize, b.users)
	}
	tc.Log.Info("streaming users", "users", b.users, "duration", b.duration, "nat", strings.Join(b.nat, ","),
		"seed", tc.Seed, "source", p.SourceName)
	last := time.Now()
	cfg.Progress = func(s ingest.Summary) {
		if time.Since(last) >= 5*time.Second {
			last = time.Now()
			tc.Log.Info("progress", "fetched", s.Fetched, "produced", s.Produced, "failed", s.Failed)
		}
	}
	s, err := ingest.Run(ctx, p.Source, prod, p.Encoder, cfg)
	tc.Log.Info(s.String())
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return err
}

// LoadFile reads DAG specs from a JSON or YAML file: a list of specs,
// or {"dags": [...]}. Unknown keys are errors; every error names the file,
// the DAG and the field.
func LoadFile(path string) ([]Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dags file: %w", err)
	}
	j := raw
	if ext := strings.ToLower(filepath.Ext(path)); ext != ".json" {
		if j, err = yaml.YAMLToJSON(raw); err != nil {
			return nil, fmt.Errorf("dags file %s: not YAML: %w", path, err)
		}
	}
	j = bytes.TrimSpace(j)
	var list []json.RawMessage
	if len(j) > 0 && j[0] == '{' {
		var wrap struct {
			DAGs []json.RawMessage `json:"dags"`
		}
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&wrap); err != nil {
			return nil, fmt.Errorf("dags file %s: %w (want a list of DAGs, or {\"dags\": [...]})", path, err)
		}
		list = wrap.DAGs
	} else if err := json.Unmarshal(j, &list); err != nil {
		return nil, fmt.Errorf("dags file %s: want a list of DAGs, or {\"dags\": [...]}: %w", path, err)
	}
	var out []Spec
	for i, item := range list {
		var sp Spec
		dec := json.NewDecoder(bytes.NewReader(item))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sp); err != nil {
			var id struct {
				DagID string `json:"dag_id"`
			}
			_ = json.Unmarshal(item, &id)
			return nil, fmt.Errorf("dags file %s: DAG %d (%q): %w", path, i+1, id.DagID, err)
		}
		if sp.DagID == "" {
			return nil, fmt.Errorf("dags file %s: DAG %d: dag_id: required", path, i+1)
		}
		out = append(out, sp)
	}
	return out, nil
}
