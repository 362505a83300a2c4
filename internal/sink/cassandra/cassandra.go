// Package cassandra is the sink driver for Apache Cassandra and other
// servers of the CQL native protocol, on apache/cassandra-gocql-driver v2.
//
// Open creates the keyspace and tables when missing. Upsert writes each
// record with prepared statements, up to Config.Concurrency at a time,
// routed token-aware to a replica. Timeouts, unavailable replicas and lost
// connections are retried with exponential backoff, first by the driver's
// retry policy and then around each operation; when the driver reports no
// hosts available for longer than Config.RecreateAfter the sink replaces
// its session, so it recovers when nodes come back without a restart.
//
// The conformance suite runs on a real Apache Cassandra 5.0 node (started by
// internal/engines) and on cassandratest, a CQL-protocol test double used
// for fault injection; docs/cassandra.md says which behaviour was verified
// where.
package cassandra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/user"
)

// Option configures Open.
type Option func(*Sink)

// WithLogger sets the logger for the sink and its driver (driver errors and
// warnings; its info messages at debug level). The default discards.
func WithLogger(l *slog.Logger) Option { return func(s *Sink) { s.log = l } }

// ReadOnly makes Open create no keyspace and no table, for commands that
// only read; reading a keyspace that does not exist fails.
func ReadOnly() Option { return func(s *Sink) { s.readOnly = true } }

// Sink stores users in Cassandra. It is safe for concurrent use.
type Sink struct {
	cfg      Config
	log      *slog.Logger
	readOnly bool

	mu   sync.RWMutex // guards sess
	sess *gocql.Session

	closed atomic.Bool

	noHostsSince atomic.Int64 // unix nanos of the first "no hosts" since the last success; 0 if none
	lastRecreate atomic.Int64 // unix nanos of the last session replacement attempt
	recreating   atomic.Bool

	daysMu sync.Mutex
	days   map[string]bool // recent_days rows known to exist

	q queries
}

type queries struct {
	insertUser, insertRecent, insertDay string
	getUser, recentDays, recentIDs      string
	recentTies, recentOlder             string
	count, nats                         string
	runIDs                              string
}

// columns of created_users, in the order of every statement here.
const userColumns = "id, first_name, last_name, gender, address, post_code, email, username, dob, " +
	"registered_date, phone, picture, nat, ingested_at, run_id"

// Open connects to the cluster named by the URL (see ParseURL), creates the
// keyspace and tables if missing, and returns the sink. Errors never
// contain the password.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Sink, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return OpenConfig(ctx, cfg, opts...)
}

// OpenConfig is Open with a parsed configuration.
func OpenConfig(ctx context.Context, cfg Config, opts ...Option) (*Sink, error) {
	s := &Sink{cfg: cfg, log: slog.New(slog.DiscardHandler), days: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	ks := cfg.Keyspace
	s.q = queries{
		insertUser:   "INSERT INTO " + ks + ".created_users (" + userColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		insertRecent: "INSERT INTO " + ks + ".recent_users (day, ingested_at, id) VALUES (?, ?, ?)",
		insertDay:    "INSERT INTO " + ks + ".recent_days (shard, day) VALUES (?, ?)",
		getUser:      "SELECT " + userColumns + " FROM " + ks + ".created_users WHERE id = ?",
		recentDays:   "SELECT day FROM " + ks + ".recent_days WHERE shard = ?",
		recentIDs:    "SELECT ingested_at, id FROM " + ks + ".recent_users WHERE day = ?",
		recentTies:   "SELECT ingested_at, id FROM " + ks + ".recent_users WHERE day = ? AND ingested_at = ? AND id > ?",
		recentOlder:  "SELECT ingested_at, id FROM " + ks + ".recent_users WHERE day = ? AND ingested_at < ?",
		count:        "SELECT id FROM " + ks + ".created_users",
		nats:         "SELECT nat FROM " + ks + ".created_users",
		runIDs:       "SELECT ingested_at, id FROM " + ks + ".created_users WHERE run_id = ?",
	}
	sess, err := s.newSession()
	if err != nil {
		return nil, fmt.Errorf("cassandra sink %s: connect: %w", cfg, err)
	}
	s.sess = sess
	if s.readOnly {
		if err := s.checkTable(ctx); err != nil {
			sess.Close()
			return nil, fmt.Errorf("cassandra sink %s: %w", cfg, err)
		}
		return s, nil
	}
	if err := s.createSchema(ctx); err != nil {
		sess.Close()
		return nil, fmt.Errorf("cassandra sink %s: create schema: %w", cfg, err)
	}
	// The working session starts after the DDL, so it reads the keyspace's
	// replication at startup and routes token-aware from the first write
	// (schema events are off: see newSession).
	work, err := s.newSession()
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("cassandra sink %s: connect: %w", cfg, err)
	}
	s.sess = work
	sess.Close()
	return s, nil
}

func (s *Sink) newSession() (*gocql.Session, error) {
	c := gocql.NewCluster(s.cfg.Hosts...)
	c.Consistency = s.cfg.Consistency
	c.Timeout = s.cfg.Timeout
	c.ConnectTimeout = s.cfg.ConnectTimeout
	c.NumConns = 2
	c.ReconnectInterval = s.cfg.ReconnectInterval
	c.ReconnectionPolicy = &gocql.ExponentialReconnectionPolicy{
		MaxRetries: 10, InitialInterval: 100 * time.Millisecond, MaxInterval: s.cfg.ReconnectInterval}
	c.RetryPolicy = &retryPolicy{retries: 3, min: s.cfg.RetryMin, max: s.cfg.RetryMax}
	fallback := gocql.RoundRobinHostPolicy()
	if s.cfg.DataCenter != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(s.cfg.DataCenter)
	}
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(fallback, gocql.ShuffleReplicas())
	// Token-aware routing needs the keyspaces' replication only; the rest
	// of the schema is not read.
	c.Metadata.CacheMode = gocql.KeyspaceOnly
	// No schema events: a refresh they trigger while the control connection
	// is down waits 10s on the dead connection and holds up Close. The
	// keyspace metadata is read when a session starts and when its control
	// connection reconnects, which is enough for a keyspace whose
	// replication does not change under a running sink.
	c.Events.DisableSchemaEvents = true
	c.Logger = driverLogger{s.log}
	if s.cfg.Username != "" {
		c.Authenticator = gocql.PasswordAuthenticator{Username: s.cfg.Username, Password: s.cfg.Password}
	}
	return c.CreateSession()
}

func (s *Sink) createSchema(ctx context.Context) error {
	ks := s.cfg.Keyspace
	repl := s.cfg.Replication
	if s.cfg.replicationFromDC {
		// Three replicas in a data centre of one node would make every
		// LOCAL_QUORUM request fail as unavailable (what a real node
		// answers), so the default follows the data centre's size.
		if n := s.dcNodes(ctx, s.cfg.DataCenter); n > 0 && n < 3 {
			repl = Replication{Class: repl.Class, DataCenters: map[string]int{s.cfg.DataCenter: n}}
		}
	}
	stmts := []string{
		"CREATE KEYSPACE IF NOT EXISTS " + ks + " WITH replication = " + repl.CQL() + " AND durable_writes = true",
		`CREATE TABLE IF NOT EXISTS ` + ks + `.created_users (
			id uuid PRIMARY KEY,
			first_name text, last_name text, gender text, address text, post_code text,
			email text, username text, dob text, registered_date text, phone text,
			picture text, nat text, ingested_at timestamp, run_id text)`,
		`CREATE TABLE IF NOT EXISTS ` + ks + `.recent_users (
			day text, ingested_at timestamp, id uuid,
			PRIMARY KEY ((day), ingested_at, id))
			WITH CLUSTERING ORDER BY (ingested_at DESC, id ASC)`,
		`CREATE TABLE IF NOT EXISTS ` + ks + `.recent_days (
			shard int, day text,
			PRIMARY KEY ((shard), day))
			WITH CLUSTERING ORDER BY (day DESC)`,
		// A run's users (PageQuery.Run): a storage-attached index
		// (Cassandra 5), kept by the node with each write, so no table of
		// our own has to follow a user that moves runs. On a table that
		// has rows already the node builds it in the background.
		`CREATE INDEX IF NOT EXISTS created_users_run ON ` + ks + `.created_users (run_id) USING 'sai'`,
	}
	for _, q := range stmts {
		if err := s.do(ctx, func(sess *gocql.Session) error {
			return sess.Query(q).Idempotent(true).ExecContext(ctx)
		}); err != nil {
			return err
		}
	}
	return nil
}

// checkTable reads one (absent) row of created_users and returns an error
// wrapping sink.ErrNoTable when the node answers that the keyspace or the
// table does not exist (Cassandra 5.0: "table created_users does not
// exist"; 4.x: "unconfigured table created_users"). Any other failure is
// left to the first real read.
func (s *Sink) checkTable(ctx context.Context) error {
	err := s.sess.Query(s.q.getUser, gocql.UUID{}).WithContext(ctx).Iter().Close()
	var re gocql.RequestError
	if errors.As(err, &re) && re.Code() == gocql.ErrCodeInvalid {
		if msg := re.Message(); strings.Contains(msg, "does not exist") || strings.Contains(msg, "unconfigured table") {
			return fmt.Errorf("%w: %s", sink.ErrNoTable, msg)
		}
	}
	return nil
}

// dcNodes counts the nodes of data centre dc from system.local and
// system.peers, or returns 0 when it cannot tell.
func (s *Sink) dcNodes(ctx context.Context, dc string) int {
	n := 0
	for _, q := range []string{"SELECT data_center FROM system.local", "SELECT data_center FROM system.peers"} {
		iter := s.sess.Query(q).WithContext(ctx).Iter()
		var d string
		for iter.Scan(&d) {
			if d == dc {
				n++
			}
		}
		if err := iter.Close(); err != nil {
			return 0
		}
	}
	return n
}

// Config returns the sink's configuration (String() hides the password).
func (s *Sink) Config() Config { return s.cfg }

func (s *Sink) session() (*gocql.Session, error) {
	if s.closed.Load() {
		return nil, sink.ErrClosed
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sess, nil
}

// retryable reports whether an error is worth another attempt: the
// server could not reach enough replicas in time, or the connection or
// every host was lost.
func retryable(err error) bool {
	var (
		wt  *gocql.RequestErrWriteTimeout
		rt  *gocql.RequestErrReadTimeout
		un  *gocql.RequestErrUnavailable
		ov  *gocql.RequestErrOverloaded
		bs  *gocql.RequestErrBootstrapping
		net net.Error
	)
	switch {
	case errors.As(err, &wt), errors.As(err, &rt), errors.As(err, &un), errors.As(err, &ov), errors.As(err, &bs):
		return true
	case errors.Is(err, gocql.ErrNoConnections), errors.Is(err, gocql.ErrConnectionClosed),
		errors.Is(err, gocql.ErrTimeoutNoResponse), errors.Is(err, gocql.ErrSessionClosed),
		errors.Is(err, gocql.ErrNoStreams), errors.As(err, &net),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}

// dataError reports whether err is Cassandra refusing a value rather than
// failing as a cluster, with Cassandra's reason: a value the driver cannot
// marshal, or an Invalid (0x2200) answer about a bound value (a text that
// is not UTF-8, a value too long for its column). Other Invalid answers
// (an unconfigured table, a missing keyspace) are about the schema, and
// dead-lettering every record for them would be wrong: they are retried.
func dataError(err error) (string, bool) {
	var me gocql.MarshalError
	if errors.As(err, &me) {
		return "cassandra: cannot marshal: " + me.Error(), true
	}
	var re gocql.RequestError
	if !errors.As(err, &re) || re.Code() != gocql.ErrCodeInvalid {
		return "", false
	}
	msg := re.Message()
	for _, about := range []string{"Invalid value for column", "Invalid UTF-8", "String didn't validate", "is longer than maximum", "exceeds"} {
		if strings.Contains(msg, about) {
			return fmt.Sprintf("cassandra: %s (code 0x%04x)", msg, re.Code()), true
		}
	}
	return "", false
}

// do runs op with the current session, retrying retryable failures with
// exponential backoff and replacing the session when no host has been
// available for RecreateAfter.
func (s *Sink) do(ctx context.Context, op func(*gocql.Session) error) error {
	var err error
	for attempt := 0; ; attempt++ {
		sess, serr := s.session()
		if serr != nil {
			return serr
		}
		err = op(sess)
		if err == nil {
			s.hostsAvailable()
			return nil
		}
		if s.closed.Load() {
			return fmt.Errorf("%w (during: %v)", sink.ErrClosed, err)
		}
		if !retryable(err) || attempt >= s.cfg.Retries || ctx.Err() != nil {
			return err
		}
		if errors.Is(err, gocql.ErrNoConnections) || errors.Is(err, gocql.ErrSessionClosed) {
			s.noHosts(sess)
		}
		s.log.Debug("cassandra sink: retrying", "attempt", attempt+1, "err", err)
		if werr := sleep(ctx, backoff(s.cfg.RetryMin, s.cfg.RetryMax, attempt)); werr != nil {
			return fmt.Errorf("%w (last error: %v)", werr, err)
		}
	}
}

func (s *Sink) hostsAvailable() { s.noHostsSince.Store(0) }

// noHosts records that sess reported no hosts available and, once that has
// lasted RecreateAfter, replaces the session in the background: a driver
// session can stay on "no hosts available" after the nodes are back, until
// it is recreated. Callers go on retrying meanwhile.
func (s *Sink) noHosts(sess *gocql.Session) {
	now := time.Now().UnixNano()
	s.noHostsSince.CompareAndSwap(0, now)
	since := s.noHostsSince.Load()
	after := int64(s.cfg.RecreateAfter)
	if since == 0 || now-since < after || now-s.lastRecreate.Load() < after {
		return
	}
	if !s.recreating.CompareAndSwap(false, true) {
		return
	}
	s.lastRecreate.Store(now)
	go func() {
		defer s.recreating.Store(false)
		s.mu.RLock()
		current := s.sess
		s.mu.RUnlock()
		if current != sess || s.closed.Load() {
			return // already replaced, or closing
		}
		fresh, err := s.newSession()
		if err != nil {
			s.log.Warn("cassandra sink: no hosts available and a new session failed; will retry", "sink", s.cfg.String(), "err", err)
			return
		}
		s.mu.Lock()
		if s.closed.Load() {
			s.mu.Unlock()
			fresh.Close()
			return
		}
		old := s.sess
		s.sess = fresh
		s.mu.Unlock()
		s.log.Warn("cassandra sink: replaced the driver session after no hosts were available",
			"sink", s.cfg.String(), "for", time.Duration(now-since).Round(time.Millisecond))
		// Let operations still running on the old session finish or fail over.
		time.AfterFunc(s.cfg.Timeout, old.Close)
	}()
}

func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo << min(attempt, 20)
	if d > hi || d <= 0 {
		d = hi
	}
	// Full jitter in [d/2, d).
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryPolicy is the driver-level retry: coordinator-side failures
// (timeouts, unavailable, overloaded) are retried on the same host after a
// backoff, connection failures on the next host; anything else is returned.
type retryPolicy struct {
	retries  int
	min, max time.Duration
}

func (p *retryPolicy) Attempt(q gocql.RetryableQuery) bool {
	if q.Attempts() > p.retries {
		return false
	}
	return sleep(q.Context(), backoff(p.min, p.max, q.Attempts()-1)) == nil
}

func (p *retryPolicy) GetRetryType(err error) gocql.RetryType {
	var (
		wt *gocql.RequestErrWriteTimeout
		rt *gocql.RequestErrReadTimeout
		un *gocql.RequestErrUnavailable
		ov *gocql.RequestErrOverloaded
	)
	switch {
	case errors.As(err, &wt), errors.As(err, &rt), errors.As(err, &un), errors.As(err, &ov):
		return gocql.Retry
	case retryable(err):
		return gocql.RetryNextHost
	}
	return gocql.Rethrow
}

// Upsert validates the whole batch, keeps the last record of each id, then
// writes every record (its row in
// created_users and its entry in recent_users, in one logged batch) with up
// to Config.Concurrency writes in flight. An invalid record fails the call
// before anything is written, with an error matching user.ErrInvalid.
// Cassandra has no multi-partition transactions: when Upsert fails, some
// records may be stored; replaying the batch is safe, as every write is an
// idempotent upsert by id.
func (s *Sink) Upsert(ctx context.Context, batch []user.Record) error {
	if s.closed.Load() {
		return fmt.Errorf("cassandra sink: upsert: %w", sink.ErrClosed)
	}
	for i, r := range batch {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("cassandra sink: upsert: record %d of %d: %w", i+1, len(batch), err)
		}
	}
	// One write per id, the last record given for it: concurrent writes of
	// one id would land in any order.
	batch, err := sink.Dedup(batch)
	if err != nil {
		return fmt.Errorf("cassandra sink: upsert: %w", err)
	}
	if len(batch) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cassandra sink: upsert: %w", err)
	}
	if err := s.writeDays(ctx, batch); err != nil {
		return fmt.Errorf("cassandra sink: upsert: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s.cfg.Concurrency)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for i := range batch {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(r *user.Record) {
			defer func() { <-sem; wg.Done() }()
			if err := s.writeRecord(ctx, r); err != nil {
				errOnce.Do(func() {
					firstErr = fmt.Errorf("cassandra sink: upsert %s: %w", r.ID, err)
					if reason, ok := dataError(err); ok {
						firstErr = sink.Rejected(reason, firstErr)
					}
					cancel()
				})
			}
		}(&batch[i])
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cassandra sink: upsert: %w", err)
	}
	return nil
}

// recentTime is the recent_users clustering time of an ingestion time: the
// Unix epoch for records without one, so they sort as the oldest.
func recentTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.UnixMilli(0).UTC()
	}
	return t.UTC()
}

// day is the recent_users partition of an ingestion time.
func day(t time.Time) string { return recentTime(t).Format("2006-01-02") }

func (s *Sink) writeDays(ctx context.Context, batch []user.Record) error {
	s.daysMu.Lock()
	var missing []string
	seen := map[string]bool{}
	for _, r := range batch {
		d := day(r.IngestedAt)
		if !s.days[d] && !seen[d] {
			seen[d] = true
			missing = append(missing, d)
		}
	}
	s.daysMu.Unlock()
	for _, d := range missing {
		if err := s.do(ctx, func(sess *gocql.Session) error {
			return sess.Query(s.q.insertDay, 0, d).Idempotent(true).ExecContext(ctx)
		}); err != nil {
			return fmt.Errorf("record day %s: %w", d, err)
		}
		s.daysMu.Lock()
		s.days[d] = true
		s.daysMu.Unlock()
	}
	return nil
}

func (s *Sink) writeRecord(ctx context.Context, r *user.Record) error {
	var ingested any // null when unknown
	if !r.IngestedAt.IsZero() {
		ingested = r.IngestedAt.UTC()
	}
	return s.do(ctx, func(sess *gocql.Session) error {
		b := sess.Batch(gocql.LoggedBatch).WithContext(ctx)
		b.Entries = append(b.Entries,
			gocql.BatchEntry{Stmt: s.q.insertUser, Idempotent: true, Args: []any{
				r.ID, r.FirstName, r.LastName, r.Gender, r.Address, r.PostCode, r.Email, r.Username,
				r.DOB, r.RegisteredDate, r.Phone, r.Picture, r.Nat, ingested, r.RunID}},
			gocql.BatchEntry{Stmt: s.q.insertRecent, Idempotent: true, Args: []any{
				day(r.IngestedAt), recentTime(r.IngestedAt), r.ID}},
		)
		return b.ExecContext(ctx)
	})
}

// Count returns the number of stored users by reading every id of the
// table in pages of 5000 and counting them here. A server-side SELECT
// COUNT(*) is one request that must finish within the node's timeout: on a
// busy one-node cluster with 100k users it was aborted (ReadFailure
// "received 0 responses and 1 failures: UNKNOWN"), while each page here
// is its own request. It reads the whole table either way: fine for the
// sizes of this project, slow on a large real cluster (docs/cassandra.md).
func (s *Sink) Count(ctx context.Context) (int64, error) {
	var n int64
	err := s.do(ctx, func(sess *gocql.Session) error {
		n = 0
		iter := sess.Query(s.q.count).PageSize(5000).Idempotent(true).IterContext(ctx)
		var id gocql.UUID
		for iter.Scan(&id) {
			n++
		}
		return iter.Close()
	})
	if err != nil {
		return 0, fmt.Errorf("cassandra sink: count: %w", err)
	}
	return n, nil
}

// Get returns the user with the id, or an error matching sink.ErrNotFound
// (also for an id that is not a UUID, which no stored user can have).
func (s *Sink) Get(ctx context.Context, id string) (user.Record, error) {
	if s.closed.Load() {
		return user.Record{}, fmt.Errorf("cassandra sink: get: %w", sink.ErrClosed)
	}
	id, err := sink.CanonicalID(id)
	if err != nil {
		return user.Record{}, fmt.Errorf("cassandra sink: get: %v: %w", err, sink.ErrNotFound)
	}
	r, err := s.get(ctx, id)
	if errors.Is(err, gocql.ErrNotFound) {
		return user.Record{}, fmt.Errorf("cassandra sink: get %s: %w", id, sink.ErrNotFound)
	}
	if err != nil {
		return user.Record{}, fmt.Errorf("cassandra sink: get %s: %w", id, err)
	}
	return r, nil
}

func (s *Sink) get(ctx context.Context, id string) (user.Record, error) {
	var r user.Record
	var ingested time.Time
	err := s.do(ctx, func(sess *gocql.Session) error {
		return sess.Query(s.q.getUser, id).Idempotent(true).ScanContext(ctx,
			&r.ID, &r.FirstName, &r.LastName, &r.Gender, &r.Address, &r.PostCode, &r.Email, &r.Username,
			&r.DOB, &r.RegisteredDate, &r.Phone, &r.Picture, &r.Nat, &ingested, &r.RunID)
	})
	if err != nil {
		return user.Record{}, err
	}
	if !ingested.IsZero() {
		r.IngestedAt = ingested.UTC()
	}
	return r, nil
}

// Recent returns up to n users, most recently ingested first. Cassandra
// cannot order a whole table by a column, so the sink keeps an index:
// recent_days lists the days that have users (one small partition, newest
// first) and recent_users holds (ingested_at, id) per day, newest first.
// Recent walks the days from the newest and reads each user by id. An
// entry whose user was re-ingested later is stale and skipped, so each user
// appears once, at its latest ingestion. Timestamps keep milliseconds, as
// CQL's timestamp type does.
func (s *Sink) Recent(ctx context.Context, n int) ([]user.Record, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("cassandra sink: recent: %w", sink.ErrClosed)
	}
	if n <= 0 {
		return nil, nil
	}
	days, err := s.readDays(ctx)
	if err != nil {
		return nil, fmt.Errorf("cassandra sink: recent: read days: %w", err)
	}
	out := make([]user.Record, 0, n)
	seen := map[string]bool{}
	for _, d := range days {
		entries, err := s.entries(ctx, s.q.recentIDs, 4*n+100, d)
		if err != nil {
			return nil, fmt.Errorf("cassandra sink: recent: read day %s: %w", d, err)
		}
		for _, e := range entries {
			if seen[e.id] {
				continue
			}
			r, err := s.get(ctx, e.id)
			if errors.Is(err, gocql.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("cassandra sink: recent: read %s: %w", e.id, err)
			}
			if !r.IngestedAt.Truncate(time.Millisecond).Equal(e.at.Truncate(time.Millisecond)) &&
				!(r.IngestedAt.IsZero() && e.at.UnixMilli() == 0) {
				continue // stale: the user was ingested again later
			}
			seen[e.id] = true
			out = append(out, r)
			if len(out) == n {
				return out, nil
			}
		}
	}
	return out, nil
}

// Close closes the driver session. Calls after Close fail with an error
// matching sink.ErrClosed; Close itself is idempotent.
func (s *Sink) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	sess := s.sess
	s.mu.Unlock()
	sess.Close()
	return nil
}

var _ sink.Sink = (*Sink)(nil)

// driverLogger sends the driver's log to slog: errors and warnings as such,
// its chatty info as debug, its debug not at all.
type driverLogger struct{ l *slog.Logger }

func attrs(fields []gocql.LogField) []any {
	a := make([]any, 0, len(fields))
	for _, f := range fields {
		a = append(a, slog.Any(f.Name, f.Value.Any()))
	}
	return a
}

func (d driverLogger) Error(msg string, f ...gocql.LogField) {
	d.l.Error("gocql: "+msg, attrs(f)...)
}
func (d driverLogger) Warning(msg string, f ...gocql.LogField) {
	d.l.Warn("gocql: "+msg, attrs(f)...)
}
func (d driverLogger) Info(msg string, f ...gocql.LogField) {
	d.l.Debug("gocql: "+msg, attrs(f)...)
}
func (d driverLogger) Debug(string, ...gocql.LogField) {}
