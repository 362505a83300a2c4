package connect

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/member"
	"github.com/userstream/userstream/internal/redact"
	"github.com/userstream/userstream/internal/stream"
)

// State is a connector's or task's state, as Connect spells it; it is
// stored and sent as its text.
type State string

// Connector and task states, as Connect reports them.
const (
	StateRunning    State = "RUNNING"
	StatePaused     State = "PAUSED"
	StateStopped    State = "STOPPED"
	StateFailed     State = "FAILED"
	StateUnassigned State = "UNASSIGNED"
)

// Connect's default topic names and our group id.
const (
	DefaultConfigTopic = "connect-configs"
	DefaultStatusTopic = "connect-status"
	DefaultGroupID     = "userstream-connect"
)

// Errors the REST API maps to status codes.
var (
	ErrNotFound = errors.New("connector not found")
	ErrExists   = errors.New("connector already exists")
	ErrState    = errors.New("not allowed in the connector's state")
)

// WorkerConfig says how a worker reaches Kafka and opens sinks.
type WorkerConfig struct {
	// WorkerID names this worker in status (Connect uses host:port).
	WorkerID string
	// GroupID names the cluster: workers with the same one share their
	// config and status topics (prefixing nothing: it is reported only).
	GroupID                  string
	ConfigTopic, StatusTopic string
	// Dial opens a Kafka client with the given extra options.
	Dial func(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error)
	// OpenSink opens a sinks.Open URL.
	OpenSink func(ctx context.Context, url string) (stream.Sink, func() error, error)
	// Decoder returns the value decoder of a connector: JSON when s.JSON,
	// else Avro through s.RegistryURL (or the worker's registry when empty).
	Decoder func(ctx context.Context, s Spec) (stream.Decoder, error)
	// FailAfter is how long a sink write, commit or registry call may keep
	// failing before the task turns FAILED; default 30s.
	FailAfter      time.Duration
	SessionTimeout time.Duration // of each task's group membership; default stream's
	GroupProtocol  string        // of each task's group (stream.Config.GroupProtocol); default classic
	BatchSize      int
	// Metrics, when set, counts every task's work (shared by all tasks).
	Metrics *stream.Metrics
	Logger  *slog.Logger
}

// Worker is one member of a Connect cluster.
type Worker struct {
	cfg   WorkerConfig
	cl    *kgo.Client // reads and writes the config and status topics
	adm   *kadm.Client
	start time.Time

	mu        sync.Mutex
	changed   chan struct{}   // closed and replaced when configOff moves
	configOff int64           // next offset of the config topic to read
	configEnd int64           // the config topic's end when the worker started
	caughtUp  chan struct{}   // closed once configOff reaches configEnd
	known     map[string]bool // every name the config topic has held, deleted too
	conns     map[string]*connector
	order     []string                // connector names in creation order
	status    map[string]workerStatus // "name/worker" -> latest status record
}

// record is a config topic value, keyed by connector name; a tombstone
// deletes the connector.
type record struct {
	Config  map[string]string `json:"config"`
	Target  State             `json:"target_state"`
	Restart *restart          `json:"restart,omitempty"`
}

// restart asks every worker to restart some of its tasks; Seq tells a new
// request from one already seen.
type restart struct {
	Seq          int64  `json:"seq"`
	IncludeTasks bool   `json:"include_tasks"`
	OnlyFailed   bool   `json:"only_failed"`
	Worker       string `json:"worker,omitempty"` // with Task: one task
	Task         int    `json:"task"`             // local index; -1: all
}

// workerStatus is a status topic value: one worker's view of one
// connector's tasks, republished every few seconds while it lives.
type workerStatus struct {
	Worker string       `json:"worker_id"`
	At     time.Time    `json:"at"`
	Tasks  []taskStatus `json:"tasks"`
}

type taskStatus struct {
	Local int    `json:"local"`
	State State  `json:"state"`
	Trace string `json:"trace,omitempty"`
}

type connector struct {
	rec     record
	spec    Spec
	restart int64 // the last restart Seq acted on
	tasks   []*task
}

type task struct {
	local  int
	cancel context.CancelFunc
	done   chan struct{}
	health *stream.Health // nil for a task that is not running

	mu    sync.Mutex
	state State
	trace string
}

func (t *task) set(state State, trace string) {
	t.mu.Lock()
	t.state, t.trace = state, trace
	t.mu.Unlock()
}

func (t *task) get() taskStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return taskStatus{Local: t.local, State: t.state, Trace: t.trace}
}

// statusTTL is how old a worker's status may be before its tasks are
// taken as gone (a SIGKILLed worker publishes no tombstone).
const (
	statusEvery = 2 * time.Second
	statusTTL   = 4 * statusEvery
)

// NewWorker connects, ensures the config and status topics (compacted)
// and returns a worker; Run makes it work.
func NewWorker(ctx context.Context, cfg WorkerConfig) (*Worker, error) {
	cfg.ConfigTopic = cmp.Or(cfg.ConfigTopic, DefaultConfigTopic)
	cfg.StatusTopic = cmp.Or(cfg.StatusTopic, DefaultStatusTopic)
	cfg.GroupID = cmp.Or(cfg.GroupID, DefaultGroupID)
	if cfg.FailAfter <= 0 {
		cfg.FailAfter = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cl, err := cfg.Dial(ctx, kgo.ConsumeTopics(cfg.ConfigTopic, cfg.StatusTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	compact := map[string]*string{"cleanup.policy": new("compact")}
	for _, topic := range []string{cfg.ConfigTopic, cfg.StatusTopic} {
		// One partition: the config topic's order is the order of changes.
		_, err := adm.CreateTopic(ctx, 1, -1, compact, topic)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			cl.Close()
			return nil, fmt.Errorf("connect: create topic %s: %w", topic, err)
		}
	}
	// A topic just created may be unknown for a moment.
	var ends kadm.ListedOffsets
	for try := 0; ; try++ {
		ends, err = adm.ListEndOffsets(ctx, cfg.ConfigTopic)
		if err == nil {
			err = ends.Error()
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) || try == 50 || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("connect: read the end of %s: %w", cfg.ConfigTopic, err)
	}
	w := &Worker{cfg: cfg, cl: cl, adm: adm, start: time.Now(), changed: make(chan struct{}), caughtUp: make(chan struct{}),
		known: map[string]bool{}, conns: map[string]*connector{}, status: map[string]workerStatus{}}
	ends.Each(func(o kadm.ListedOffset) { w.configEnd = max(w.configEnd, o.Offset) })
	if w.configEnd == 0 {
		close(w.caughtUp)
	}
	return w, nil
}

// ID is this worker's id.
func (w *Worker) ID() string { return w.cfg.WorkerID }

// Run reads the config and status topics and reconciles this worker's
// tasks with them until ctx ends; then it stops its tasks (committing what
// they hold) and removes its status.
func (w *Worker) Run(ctx context.Context) error {
	defer w.cl.Close()
	go w.heartbeat(ctx)
	for {
		fs := w.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			w.shutdown()
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			w.cfg.Logger.Warn("connect: reading a cluster topic failed", "topic", t, "err", err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Topic == w.cfg.StatusTopic {
				w.applyStatus(r)
				return
			}
			w.apply(ctx, r)
			w.mu.Lock()
			w.known[string(r.Key)] = true
			w.configOff = r.Offset + 1
			close(w.changed)
			w.changed = make(chan struct{})
			if w.configOff >= w.configEnd {
				select {
				case <-w.caughtUp:
				default:
					close(w.caughtUp)
				}
			}
			w.mu.Unlock()
		})
	}
}

func (w *Worker) shutdown() {
	w.mu.Lock()
	var all []*connector
	for _, c := range w.conns {
		all = append(all, c)
	}
	w.mu.Unlock()
	for _, c := range all {
		stopTasks(c.tasks)
	}
	// Clear this worker's task status, bounded: an idempotent produce
	// ignores its context while the broker is away, so past the bound the
	// writes are abandoned (the client closes next) and the others see the
	// tasks move when this worker's group members time out.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, c := range all {
			w.cl.ProduceSync(ctx, &kgo.Record{Topic: w.cfg.StatusTopic, Key: []byte(c.spec.Name + "/" + w.cfg.WorkerID)})
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
		w.cfg.Logger.Warn("connect: could not clear this worker's task status before stopping; the status topic shows it until another worker takes the tasks",
			"err", ctx.Err())
		w.cl.UnsafeAbortBufferedRecords()
		<-done
	}
}

func (w *Worker) applyStatus(r *kgo.Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.Value == nil {
		delete(w.status, string(r.Key))
		return
	}
	var s workerStatus
	if json.Unmarshal(r.Value, &s) == nil {
		w.status[string(r.Key)] = s
	}
}

// apply reconciles this worker's tasks with one config record.
func (w *Worker) apply(ctx context.Context, r *kgo.Record) {
	name := string(r.Key)
	w.mu.Lock()
	c := w.conns[name]
	w.mu.Unlock()
	if r.Value == nil {
		if c != nil {
			stopTasks(c.tasks)
			w.mu.Lock()
			delete(w.conns, name)
			w.order = slices.DeleteFunc(w.order, func(n string) bool { return n == name })
			w.mu.Unlock()
			w.publish(ctx, name, nil)
			w.cfg.Logger.Info("connector deleted", "connector", name)
		}
		return
	}
	var rec record
	if err := json.Unmarshal(r.Value, &rec); err != nil {
		w.cfg.Logger.Warn("connect: unreadable config record; skipped", "connector", name, "err", err)
		return
	}
	spec, err := Parse(rec.Config)
	if c == nil {
		c = &connector{}
		if rec.Restart != nil {
			c.restart = rec.Restart.Seq // replayed at start: the tasks start anyway
		}
		w.mu.Lock()
		w.conns[name] = c
		w.order = append(w.order, name)
		w.mu.Unlock()
	}
	// Only this goroutine changes a connector; it does so under w.mu for
	// the REST handlers and the heartbeat, which read.
	reconfigured := c.spec.Name != "" && !equalConfig(c.rec.Config, rec.Config)
	w.mu.Lock()
	c.rec = rec
	w.mu.Unlock()
	if err != nil {
		// Validated before it was written; another worker version may
		// disagree: fail rather than guess.
		stopTasks(c.tasks)
		w.setTasks(c, []*task{{local: 0, state: StateFailed, trace: err.Error(), done: closed()}})
		w.publish(ctx, name, c)
		return
	}
	w.mu.Lock()
	c.spec = spec
	w.mu.Unlock()
	switch {
	case rec.Target == StatePaused:
		// Paused tasks leave the group (their offsets stay committed) and
		// are reported PAUSED, as Connect does.
		stopTasks(c.tasks)
		ts := make([]*task, 0, spec.TasksMax)
		for i := range spec.TasksMax {
			ts = append(ts, &task{local: i, state: StatePaused, done: closed()})
		}
		w.setTasks(c, ts)
	case rec.Target != StateRunning:
		stopTasks(c.tasks)
		w.setTasks(c, nil)
	case reconfigured || len(c.tasks) == 0 || c.tasks[0].cancel == nil:
		stopTasks(c.tasks)
		ts := make([]*task, 0, spec.TasksMax)
		for i := range spec.TasksMax {
			ts = append(ts, w.startTask(ctx, spec, i))
		}
		w.setTasks(c, ts)
	case rec.Restart != nil && rec.Restart.Seq > c.restart:
		q := rec.Restart
		for i, t := range c.tasks {
			if q.Worker != "" && (q.Worker != w.cfg.WorkerID || q.Task != t.local) {
				continue
			}
			if q.Worker == "" && !q.IncludeTasks {
				continue // a connector restart: our connectors have no work of their own
			}
			if q.OnlyFailed && t.get().State != StateFailed {
				continue
			}
			stopTasks([]*task{t})
			nt := w.startTask(ctx, spec, t.local)
			w.mu.Lock()
			c.tasks[i] = nt
			w.mu.Unlock()
		}
	}
	if rec.Restart != nil {
		c.restart = max(c.restart, rec.Restart.Seq)
	}
	w.publish(ctx, name, c)
}

func (w *Worker) setTasks(c *connector, ts []*task) {
	w.mu.Lock()
	c.tasks = ts
	w.mu.Unlock()
}

func closed() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

func equalConfig(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func stopTasks(ts []*task) {
	for _, t := range ts {
		if t.cancel != nil {
			t.cancel()
		}
	}
	for _, t := range ts {
		<-t.done
	}
}

// startTask runs one task: a member of group connect-<name> running the
// stream with the connector's sink. It turns FAILED when the stream stops
// on an error or keeps failing for FailAfter.
func (w *Worker) startTask(ctx context.Context, spec Spec, local int) *task {
	ctx, cancel := context.WithCancel(ctx)
	t := &task{local: local, cancel: cancel, done: make(chan struct{}), state: StateRunning,
		health: stream.NewHealth(0, w.cfg.FailAfter)}
	log := w.cfg.Logger.With("connector", spec.Name, "task", local)
	go func() {
		defer close(t.done)
		defer cancel()
		err := w.runTask(ctx, spec, local, t.health, log)
		if ctx.Err() != nil {
			return // stopped: whatever it says is about being stopped
		}
		if err == nil {
			err = errors.New("the task stopped")
		}
		// The sink's and the registry's errors may quote their URLs.
		err = redact.Error(err, spec.SinkURL, spec.RegistryURL)
		log.Error("task failed", "err", err)
		t.set(StateFailed, trace(err))
		go w.publishLater(spec.Name) // not inline: stopTasks waits for done
	}()
	return t
}

func trace(err error) string {
	return "org.apache.kafka.connect.errors.ConnectException: " + err.Error()
}

func (w *Worker) runTask(ctx context.Context, spec Spec, local int, h *stream.Health, log *slog.Logger) error {
	scfg := stream.Config{Topic: cmp.Or(spec.TopicRegex, strings.Join(spec.Topics, ",")), DLQ: spec.DLQ,
		Group: GroupOf(spec.Name), BatchSize: w.cfg.BatchSize, SessionTimeout: w.cfg.SessionTimeout, GroupProtocol: w.cfg.GroupProtocol,
		Logger: log, Health: h, Metrics: w.cfg.Metrics, DeadLetter: deadLetter(spec, local)}
	// A stable instance id: a worker restarted after a crash takes its
	// tasks' partitions back at once (docs/decisions.md).
	id, release := member.ForGroup(log, scfg.Group, "")
	defer release()
	scfg.InstanceID = id
	// Connect's name for a task's consumer, with the worker: the group's
	// members then say which worker holds which partitions.
	opts := append(stream.ConsumerOpts(scfg), kgo.ClientID(fmt.Sprintf("connector-consumer-%s-%d-%s", spec.Name, local, w.cfg.WorkerID)))
	if spec.TopicRegex != "" {
		opts = append(opts, kgo.ConsumeRegex())
	}
	if spec.DLQ != "" {
		// Connect creates its DLQ topic; brokers may not auto-create.
		_, err := w.adm.CreateTopic(ctx, 1, -1, nil, spec.DLQ)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create dead letter queue topic %s: %w", spec.DLQ, err)
		}
	}
	snk, closeSink, err := w.cfg.OpenSink(ctx, spec.SinkURL)
	if err != nil {
		return fmt.Errorf("open sink: %w", err)
	}
	defer closeSink()
	dec, err := w.cfg.Decoder(ctx, spec)
	if err != nil {
		return fmt.Errorf("value converter: %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	// Written by the checker before it stops the stream, read after
	// stream.Run returns: the pointer makes that ordering visible.
	var failing atomic.Pointer[error]
	go func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
				if err := h.Check(); err != nil {
					failing.Store(&err)
					stop()
					return
				}
			}
		}
	}()
	dial := func(ctx context.Context) (stream.Client, error) { return w.cfg.Dial(ctx, opts...) }
	err = stream.Run(sctx, dial, dec, snk, scfg)
	if f := failing.Load(); ctx.Err() == nil && sctx.Err() != nil && f != nil {
		return *f
	}
	return err
}

// GroupOf is the consumer group of a connector's tasks.
func GroupOf(name string) string { return "connect-" + name }

// Connect's dead-letter context headers.
const (
	HeaderConnectTopic     = "__connect.errors.topic"
	HeaderConnectPartition = "__connect.errors.partition"
	HeaderConnectOffset    = "__connect.errors.offset"
	HeaderConnectName      = "__connect.errors.connector.name"
	HeaderConnectTask      = "__connect.errors.task.id"
	HeaderConnectStage     = "__connect.errors.stage"
	HeaderConnectClass     = "__connect.errors.class.name"
	HeaderExceptionClass   = "__connect.errors.exception.class.name"
	HeaderExceptionMessage = "__connect.errors.exception.message"
)

// deadLetter applies errors.tolerance to the stream's dead letters: with
// none the task fails on the first; with all it goes to the connector's
// DLQ (or nowhere), with Connect's context headers when asked.
func deadLetter(spec Spec, local int) func(*kgo.Record) (*kgo.Record, error) {
	return func(d *kgo.Record) (*kgo.Record, error) {
		kind, msg := headerOf(d, stream.HeaderErrorKind), headerOf(d, stream.HeaderError)
		if !spec.Tolerate {
			return nil, fmt.Errorf("Tolerance exceeded in error handler: %s error at %s-%s offset %s: %s",
				kind, headerOf(d, stream.HeaderTopic), headerOf(d, stream.HeaderPartition), headerOf(d, stream.HeaderOffset), msg)
		}
		if spec.DLQ == "" {
			return nil, nil
		}
		r := &kgo.Record{Topic: spec.DLQ, Key: d.Key, Value: d.Value}
		for _, h := range d.Headers {
			if spec.ContextHeaders || !strings.HasPrefix(h.Key, "userstream.") {
				r.Headers = append(r.Headers, h)
			}
		}
		if !spec.ContextHeaders {
			return r, nil
		}
		stage, class, exc := "TASK_PUT", "github.com/userstream/userstream/internal/sink", "org.apache.kafka.connect.errors.ConnectException"
		if kind != stream.KindSink {
			stage, class, exc = "VALUE_CONVERTER", "github.com/userstream/userstream/internal/schema", "org.apache.kafka.connect.errors.DataException"
		}
		for _, kv := range [][2]string{
			{HeaderConnectTopic, headerOf(d, stream.HeaderTopic)},
			{HeaderConnectPartition, headerOf(d, stream.HeaderPartition)},
			{HeaderConnectOffset, headerOf(d, stream.HeaderOffset)},
			{HeaderConnectName, spec.Name},
			{HeaderConnectTask, strconv.Itoa(local)},
			{HeaderConnectStage, stage},
			{HeaderConnectClass, class},
			{HeaderExceptionClass, exc},
			{HeaderExceptionMessage, msg},
		} {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: kv[0], Value: []byte(kv[1])})
		}
		return r, nil
	}
}

func headerOf(r *kgo.Record, key string) string {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value)
		}
	}
	return ""
}

// publish writes this worker's status of connector name (nil: gone).
func (w *Worker) publish(ctx context.Context, name string, c *connector) {
	rec := &kgo.Record{Topic: w.cfg.StatusTopic, Key: []byte(name + "/" + w.cfg.WorkerID)}
	if c != nil {
		s := workerStatus{Worker: w.cfg.WorkerID, At: time.Now(), Tasks: []taskStatus{}}
		w.mu.Lock()
		ts := slices.Clone(c.tasks)
		w.mu.Unlock()
		for _, t := range ts {
			s.Tasks = append(s.Tasks, t.get())
		}
		rec.Value, _ = json.Marshal(s)
	}
	w.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
		if err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("connect: publishing status failed", "connector", name, "err", err)
		}
	})
}

func (w *Worker) publishLater(name string) {
	w.mu.Lock()
	c := w.conns[name]
	w.mu.Unlock()
	if c != nil {
		w.publish(context.Background(), name, c)
	}
}

func (w *Worker) heartbeat(ctx context.Context) {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		cs := make(map[string]*connector, len(w.conns))
		for n, c := range w.conns {
			cs[n] = c
		}
		w.mu.Unlock()
		for n, c := range cs {
			w.publish(ctx, n, c)
		}
	}
}
