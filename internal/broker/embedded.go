package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultEmbeddedAddr is where the embedded broker listens unless told.
const DefaultEmbeddedAddr = "127.0.0.1:9092"

var (
	// ErrAddrInUse is wrapped by the error [StartEmbedded] returns when its
	// address is taken. The broker never falls back to another port.
	ErrAddrInUse = errors.New("address already in use")

	// ErrDataDirInUse is wrapped by the error [StartEmbedded] returns when
	// another running broker holds the data directory.
	ErrDataDirInUse = errors.New("data directory in use")
)

// addrInUseError reads "ADDR is already in use (another broker running?)"
// and matches both ErrAddrInUse and the system error; the command adds
// which flag picks another address.
type addrInUseError struct {
	addr string
	err  error
}

func (e *addrInUseError) Error() string {
	return e.addr + " is already in use (another broker running?)"
}
func (e *addrInUseError) Unwrap() []error { return []error{ErrAddrInUse, e.err} }

// EmbeddedOption configures [StartEmbedded].
type EmbeddedOption func(*embeddedConfig)

type embeddedConfig struct {
	partitions     int32
	retention      time.Duration
	retentionBytes int64
	skipTopics     bool
	log            *slog.Logger
	advertise      string
	syncWrites     bool
	kfakeOpts      []kfake.Opt
}

// WithPartitions sets the partition count [Topic] and [DLQTopic] get when
// the broker creates them, overriding [DefaultPartitions]. Existing topics
// keep their count.
func WithPartitions(n int32) EmbeddedOption {
	return func(c *embeddedConfig) { c.partitions = n }
}

// Retention defaults of the topics the embedded broker creates: Kafka's
// default time (7 days), and a size cap per partition so that a laptop's
// disk stays bounded at any ingest rate. The broker enforces them every
// RetentionCheckEvery.
const (
	DefaultRetention      = 7 * 24 * time.Hour
	DefaultRetentionBytes = 1 << 30
	RetentionCheckEvery   = 30 * time.Second
)

// WithRetention sets retention.ms and retention.bytes (per partition) of
// the topics the broker creates; d <= 0 or bytes < 0 means unlimited for
// that bound. Records past either bound are deleted whether or not a
// consumer group has read them, as in Kafka.
func WithRetention(d time.Duration, bytes int64) EmbeddedOption {
	return func(c *embeddedConfig) { c.retention, c.retentionBytes = d, bytes }
}

// WithoutTopics skips creating [Topic] and [DLQTopic] at start.
func WithoutTopics() EmbeddedOption {
	return func(c *embeddedConfig) { c.skipTopics = true }
}

// WithLogger sends the broker's own messages to l (its warnings and errors
// at their level, its per-request chatter at Debug). The default discards
// them.
func WithLogger(l *slog.Logger) EmbeddedOption {
	return func(c *embeddedConfig) { c.log = l }
}

// WithAdvertisedAddr sets the host:port the broker tells clients to
// connect to, overriding the address it listens on. Use it when listening
// on 0.0.0.0 inside a container: WithAdvertisedAddr("broker:9092").
func WithAdvertisedAddr(hostport string) EmbeddedOption {
	return func(c *embeddedConfig) { c.advertise = hostport }
}

// WithSyncWrites fsyncs every produced batch before acknowledging it, so a
// machine crash (not just a process crash) loses nothing acknowledged, at a
// large cost in throughput.
func WithSyncWrites() EmbeddedOption {
	return func(c *embeddedConfig) { c.syncWrites = true }
}

// WithKfakeOptions passes options straight to kfake.NewCluster, e.g.
// kfake.EnableSASL and kfake.Superuser. Options that choose ports,
// brokers, listeners or the data dir are overridden by StartEmbedded.
func WithKfakeOptions(opts ...kfake.Opt) EmbeddedOption {
	return func(c *embeddedConfig) { c.kfakeOpts = append(c.kfakeOpts, opts...) }
}

// Embedded is a running single-node Kafka-protocol broker (franz-go's
// kfake) for development and tests. Close it to flush its data dir.
type Embedded struct {
	cluster *kfake.Cluster
	addr    string
	dataDir string
	release func() error

	once     sync.Once
	closeErr error
}

// StartEmbedded starts a one-node Kafka-protocol broker listening on addr
// (host:port; an empty host means 127.0.0.1, never all interfaces; "" means
// [DefaultEmbeddedAddr]; port 0 picks a free port, see [Embedded.Addr]).
//
// With a dataDir the broker keeps its topics, records and committed group
// offsets there and reloads them at the next start; the directory is created
// if needed and locked against a second broker ([ErrDataDirInUse]). With
// dataDir "" everything lives in memory and is gone at Close.
//
// A taken address is an error wrapping [ErrAddrInUse]; there is no fallback
// port. Unless [WithoutTopics] is given, [Topic] (with [DefaultPartitions]
// or [WithPartitions]) and [DLQTopic] are created if missing, with the
// retention of [WithRetention] (by default [DefaultRetention] and
// [DefaultRetentionBytes] a partition, enforced every
// [RetentionCheckEvery]); existing
// topics are left alone. ctx bounds the start only: the broker runs until
// Close.
func StartEmbedded(ctx context.Context, addr, dataDir string, opts ...EmbeddedOption) (*Embedded, error) {
	cfg := embeddedConfig{partitions: DefaultPartitions, retention: DefaultRetention, retentionBytes: DefaultRetentionBytes}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.partitions < 1 {
		return nil, fmt.Errorf("embedded broker: %d partitions: give at least 1", cfg.partitions)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if addr == "" {
		addr = DefaultEmbeddedAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: address %q is not host:port, e.g. 127.0.0.1:9092: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	addr = net.JoinHostPort(host, port)

	var release func() error = func() error { return nil }
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("embedded broker: create data dir: %w", err)
		}
		if release, err = lockDir(dataDir); err != nil {
			return nil, err
		}
	}
	fail := func(err error) (*Embedded, error) {
		release()
		return nil, err
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fail(&addrInUseError{addr: addr, err: err})
		}
		return fail(fmt.Errorf("embedded broker: listen on %s: %w", addr, err))
	}
	listenAddr := ln.Addr().String()
	adv := cfg.advertise
	if adv == "" {
		adv = listenAddr
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			_, p, _ := net.SplitHostPort(listenAddr)
			adv = net.JoinHostPort("127.0.0.1", p)
			if cfg.log != nil {
				cfg.log.Warn("embedded broker listens on all interfaces but tells clients 127.0.0.1; pass an advertised address for clients on other hosts", "listen", listenAddr)
			}
		}
	} else if _, _, err := net.SplitHostPort(adv); err != nil {
		ln.Close()
		return fail(fmt.Errorf("embedded broker: advertised address %q is not host:port: %w", adv, err))
	}
	wrapped := &advertisedListener{Listener: ln, addr: tcpAddr(adv)}
	var handed bool
	listenFn := func(string, string) (net.Listener, error) {
		if handed {
			return nil, errors.New("embedded broker: only one node is supported")
		}
		handed = true
		return wrapped, nil
	}

	kopts := append([]kfake.Opt{}, cfg.kfakeOpts...)
	kopts = append(kopts,
		kfake.NumBrokers(1),
		kfake.ListenFn(listenFn),
		kfake.ClusterID("userstream"),
		kfake.DefaultNumPartitions(int(cfg.partitions)),
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": strconv.FormatInt(RetentionCheckEvery.Milliseconds(), 10)}),
	)
	if dataDir != "" {
		kopts = append(kopts, kfake.DataDir(dataDir))
	}
	if cfg.syncWrites {
		kopts = append(kopts, kfake.SyncWrites())
	}
	if cfg.log != nil {
		kopts = append(kopts, kfake.WithLogger(slogLogger{cfg.log}))
	}
	cluster, err := kfake.NewCluster(kopts...)
	if err != nil {
		ln.Close()
		return fail(fmt.Errorf("embedded broker: start (data dir %q): %w", dataDir, err))
	}
	e := &Embedded{cluster: cluster, addr: adv, dataDir: dataDir, release: release}

	if !cfg.skipTopics {
		for _, t := range []string{Topic, DLQTopic} {
			if err := cluster.CreateTopic(t, cfg.partitions, cfg.topicConfigs()); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				e.Close()
				return nil, fmt.Errorf("embedded broker: create topic %s: %w", t, err)
			}
		}
	}
	return e, nil
}

// topicConfigs are the retention settings of a topic the broker creates.
// A partition's files hold up to retention.bytes plus one segment (the
// oldest goes only once all of it is past retention), so segments are an
// eighth of retention.bytes, between 1 MiB and Kafka's 100 MiB: with a
// 64 MiB bound and 100 MiB segments, a partition's files grew to 164 MiB.
func (c embeddedConfig) topicConfigs() map[string]string {
	ms, bytes := int64(-1), c.retentionBytes
	if c.retention > 0 {
		ms = c.retention.Milliseconds()
	}
	if bytes < 0 || bytes == 0 {
		bytes = -1
	}
	segment := int64(100 << 20)
	if bytes > 0 {
		segment = min(max(bytes/8, 1<<20), segment)
	}
	return map[string]string{"retention.ms": strconv.FormatInt(ms, 10), "retention.bytes": strconv.FormatInt(bytes, 10),
		"segment.bytes": strconv.FormatInt(segment, 10)}
}

// Addr returns the host:port clients connect to: the advertised address,
// which is the listening address unless [WithAdvertisedAddr] said otherwise.
func (e *Embedded) Addr() string { return e.addr }

// DataDir returns the data directory, "" for an in-memory broker.
func (e *Embedded) DataDir() string { return e.dataDir }

// Cluster returns the underlying kfake cluster, for tests that need its
// controls (faults, group inspection).
func (e *Embedded) Cluster() *kfake.Cluster { return e.cluster }

// Close stops the broker: it stops accepting connections, writes its state
// to the data dir and closes its files, then releases the data dir lock.
// Later calls return the first call's result.
func (e *Embedded) Close() error {
	e.once.Do(func() {
		e.cluster.Close()
		e.closeErr = e.release()
	})
	return e.closeErr
}

// advertisedListener reports addr as its address: kfake tells clients
// the listener's address in metadata, so this is how the advertised
// address reaches them.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l *advertisedListener) Addr() net.Addr { return l.addr }

type tcpAddr string

func (tcpAddr) Network() string  { return "tcp" }
func (a tcpAddr) String() string { return string(a) }

// slogLogger adapts slog to kfake's logger. kfake logs every request at
// Info, so its Info becomes Debug and its Debug is dropped.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var lvl slog.Level
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	case kfake.LogLevelInfo:
		lvl = slog.LevelDebug
	default:
		return
	}
	ctx := context.Background()
	if s.l.Enabled(ctx, lvl) {
		s.l.Log(ctx, lvl, "kfake: "+fmt.Sprintf(format, args...))
	}
}
