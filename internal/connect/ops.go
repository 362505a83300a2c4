package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// write appends a config record and waits until this worker has applied
// it, so that a call's answer reflects its change.
func (w *Worker) write(ctx context.Context, name string, rec *record) error {
	r := &kgo.Record{Topic: w.cfg.ConfigTopic, Key: []byte(name)}
	if rec != nil {
		r.Value, _ = json.Marshal(rec)
	}
	if err := w.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		return fmt.Errorf("connect: write config of %s: %w", name, err)
	}
	for {
		w.mu.Lock()
		done, ch := w.configOff > r.Offset, w.changed
		w.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (w *Worker) lookup(name string) (record, Spec, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.conns[name]
	if !ok {
		return record{}, Spec{}, fmt.Errorf("Connector %s not found: %w", name, ErrNotFound)
	}
	return c.rec, c.spec, nil
}

// Connectors lists the connectors' names, oldest first.
func (w *Worker) Connectors() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.order)
}

// Config returns a connector's config as it was given.
func (w *Worker) Config(name string) (map[string]string, error) {
	rec, _, err := w.lookup(name)
	return rec.Config, err
}

// Spec returns a connector's parsed config.
func (w *Worker) Spec(name string) (Spec, error) {
	_, s, err := w.lookup(name)
	return s, err
}

// Put creates or replaces a connector; created says which. With mustBeNew
// an existing name is ErrExists.
func (w *Worker) Put(ctx context.Context, name string, cfg map[string]string, mustBeNew bool) (created bool, err error) {
	cfg = maps.Clone(cfg)
	if cfg["name"] == "" {
		cfg["name"] = name
	}
	if cfg["name"] != name {
		return false, &ConfigError{Problems: []string{fmt.Sprintf("name: %q differs from the connector's name %q", cfg["name"], name)}}
	}
	if _, err := Parse(cfg); err != nil {
		return false, err
	}
	old, _, err := w.lookup(name)
	created = err != nil
	if !created && mustBeNew {
		return false, fmt.Errorf("Connector %s already exists: %w", name, ErrExists)
	}
	target := StateRunning
	if !created {
		target = old.Target
	}
	return created, w.write(ctx, name, &record{Config: cfg, Target: target})
}

// CreateOnce creates connector name with cfg unless the config topic has
// ever held that name: a connector that exists is left as it is, and one
// that was deleted stays deleted. It waits until this worker has read the
// config topic as far as it reached when the worker started, so Run must be
// running. On a broker that compacts, a deletion is forgotten once its
// tombstone is (delete.retention.ms).
func (w *Worker) CreateOnce(ctx context.Context, name string, cfg map[string]string) (created bool, err error) {
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-w.caughtUp:
	}
	w.mu.Lock()
	known := w.known[name]
	w.mu.Unlock()
	if known {
		return false, nil
	}
	return w.Put(ctx, name, cfg, true)
}

// Check says whether this worker's tasks are well: nil, or an error naming
// each task that is FAILED or whose stream is failing or stalled (see
// stream.Health). A paused or stopped connector is well.
func (w *Worker) Check() error {
	w.mu.Lock()
	var ts []*task
	var names []string
	for _, n := range w.order {
		for _, t := range w.conns[n].tasks {
			ts, names = append(ts, t), append(names, n)
		}
	}
	w.mu.Unlock()
	var errs []error
	for i, t := range ts {
		s := t.get()
		switch {
		case s.State == StateFailed:
			errs = append(errs, fmt.Errorf("connector %s task %d is FAILED: %s", names[i], s.Local, s.Trace))
		case t.health != nil:
			if err := t.health.Check(); err != nil {
				errs = append(errs, fmt.Errorf("connector %s task %d: %w", names[i], s.Local, err))
			}
		}
	}
	return errors.Join(errs...)
}

// SetTarget pauses, resumes or stops a connector.
func (w *Worker) SetTarget(ctx context.Context, name string, target State) error {
	rec, _, err := w.lookup(name)
	if err != nil {
		return err
	}
	if rec.Target == target {
		return nil
	}
	rec.Target, rec.Restart = target, nil
	return w.write(ctx, name, &rec)
}

// Delete removes a connector: its tasks leave the group and its config is
// tombstoned.
func (w *Worker) Delete(ctx context.Context, name string) error {
	if _, _, err := w.lookup(name); err != nil {
		return err
	}
	return w.write(ctx, name, nil)
}

// Restart restarts a connector's tasks on every worker (all, or only the
// failed ones); task, with worker set, names one task instead.
func (w *Worker) restart(ctx context.Context, name string, q restart) error {
	rec, _, err := w.lookup(name)
	if err != nil {
		return err
	}
	w.mu.Lock()
	q.Seq = w.configOff + 1 // above every Seq written before
	w.mu.Unlock()
	rec.Restart = &q
	return w.write(ctx, name, &rec)
}

// Restart restarts a connector (with includeTasks, its tasks; with
// onlyFailed, only the failed ones).
func (w *Worker) Restart(ctx context.Context, name string, includeTasks, onlyFailed bool) error {
	return w.restart(ctx, name, restart{IncludeTasks: includeTasks, OnlyFailed: onlyFailed, Task: -1})
}

// RestartTask restarts the task with the id Status gives it.
func (w *Worker) RestartTask(ctx context.Context, name string, id int) error {
	st, err := w.Status(name)
	if err != nil {
		return err
	}
	if id < 0 || id >= len(st.Tasks) {
		return fmt.Errorf("Task %s-%d not found: %w", name, id, ErrNotFound)
	}
	t := st.Tasks[id]
	return w.restart(ctx, name, restart{Worker: t.WorkerID, Task: t.local})
}

// StateInfo is a connector's or task's state and where it runs.
type StateInfo struct {
	State    State  `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
	Version  string `json:"version"` // the plugin's, as Connect 4 answers (KIP-1136)
}

// TaskState is one task's state; ids number the tasks of all live workers.
type TaskState struct {
	ID int `json:"id"`
	StateInfo
	local int
}

// Status is Connect's connector status.
type Status struct {
	Name      string      `json:"name"`
	Connector StateInfo   `json:"connector"`
	Tasks     []TaskState `json:"tasks"`
	Type      string      `json:"type"`
}

// Status gathers a connector's tasks from every live worker's status.
func (w *Worker) Status(name string) (Status, error) {
	rec, _, err := w.lookup(name)
	if err != nil {
		return Status{}, err
	}
	w.mu.Lock()
	var ws []workerStatus
	for k, s := range w.status {
		if k == name+"/"+s.Worker && s.Worker != w.cfg.WorkerID && time.Since(s.At) < statusTTL {
			ws = append(ws, s)
		}
	}
	own := workerStatus{Worker: w.cfg.WorkerID}
	var ownTasks []*task
	if c := w.conns[name]; c != nil {
		ownTasks = c.tasks
	}
	for _, t := range ownTasks {
		own.Tasks = append(own.Tasks, t.get())
	}
	w.mu.Unlock()
	ws = append(ws, own)
	slices.SortFunc(ws, func(a, b workerStatus) int {
		if a.Worker < b.Worker {
			return -1
		}
		if a.Worker > b.Worker {
			return 1
		}
		return 0
	})
	st := Status{Name: name, Type: "sink", Tasks: []TaskState{},
		Connector: StateInfo{State: rec.Target, WorkerID: ws[0].Worker, Version: Version}}
	for _, s := range ws {
		for _, t := range s.Tasks {
			st.Tasks = append(st.Tasks, TaskState{ID: len(st.Tasks), local: t.Local,
				StateInfo: StateInfo{State: t.State, WorkerID: s.Worker, Trace: t.Trace, Version: Version}})
		}
	}
	if len(st.Tasks) == 1 && st.Tasks[0].State == StateFailed && st.Tasks[0].local == 0 && rec.Target == StateRunning {
		if _, err := Parse(rec.Config); err != nil {
			st.Connector.State, st.Connector.Trace = StateFailed, st.Tasks[0].Trace
		}
	}
	return st, nil
}

// Offset is one partition's committed offset in Connect's shape.
type Offset struct {
	Partition struct {
		Topic     string `json:"kafka_topic"`
		Partition int32  `json:"kafka_partition"`
	} `json:"partition"`
	Offset struct {
		Offset int64 `json:"kafka_offset"`
	} `json:"offset"`
}

// Offsets returns the committed offsets of a connector's group.
func (w *Worker) Offsets(ctx context.Context, name string) ([]Offset, error) {
	if _, _, err := w.lookup(name); err != nil {
		return nil, err
	}
	os, err := w.adm.FetchOffsets(ctx, GroupOf(name))
	if err != nil {
		return nil, fmt.Errorf("connect: fetch offsets: %w", err)
	}
	out := []Offset{}
	for _, o := range os.Sorted() {
		if o.Err != nil || o.At < 0 {
			continue
		}
		var x Offset
		x.Partition.Topic, x.Partition.Partition, x.Offset.Offset = o.Topic, o.Partition, o.At
		out = append(out, x)
	}
	return out, nil
}

// AlterOffsets commits the given offsets (nil: deletes the group, which
// resets them); allowed only while the connector is STOPPED.
func (w *Worker) AlterOffsets(ctx context.Context, name string, offs []Offset) error {
	rec, _, err := w.lookup(name)
	if err != nil {
		return err
	}
	if rec.Target != StateStopped {
		return fmt.Errorf("Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/%s/stop' endpoint: %w", name, ErrState)
	}
	if offs == nil {
		rs, err := w.adm.DeleteGroups(ctx, GroupOf(name))
		if err != nil {
			return fmt.Errorf("connect: reset offsets: %w", err)
		}
		for _, r := range rs {
			if r.Err != nil && !isNoGroup(r.Err) {
				return fmt.Errorf("connect: reset offsets: %w", r.Err)
			}
		}
		return nil
	}
	var ko kadm.Offsets
	for _, o := range offs {
		ko.Add(kadm.Offset{Topic: o.Partition.Topic, Partition: o.Partition.Partition, At: o.Offset.Offset, LeaderEpoch: -1})
	}
	rs, err := w.adm.CommitOffsets(ctx, GroupOf(name), ko)
	if err != nil {
		return fmt.Errorf("connect: alter offsets: %w", err)
	}
	return rs.Error()
}

func isNoGroup(err error) bool {
	return errors.Is(err, kerr.GroupIDNotFound)
}
