package engines

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"text/template"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// DefaultCassandraPort is the native protocol (CQL) port of the node
// scripts/engines.sh starts; its storage (gossip) port is the next one.
const DefaultCassandraPort = 9042

// cassandraJVM are the JVM options of conf/jvm17-server.options in
// Cassandra 5.0 (its JPMS and Netty settings; its G1 settings are left to
// the JVM's defaults or QuickStartJVM), the system properties a node
// started outside Cassandra's scripts needs, and a 1 GiB heap.
var cassandraJVM = []string{
	"-Xms1G", "-Xmx1G", "-Xmn128M", "-Xss256k",
	"-XX:+ExitOnOutOfMemoryError",
	"-Djava.net.preferIPv4Stack=true",
	"-Djdk.attach.allowAttachSelf=true",
	"--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
	"--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
	"--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
	"--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
	"--add-exports", "java.sql/java.sql=ALL-UNNAMED",
	"--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
	"--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
	"--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
	"--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
	"--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
	"--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
	"--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
	"--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
	"--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
	"--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
	"--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
	"--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
	"--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
	"--add-opens", "java.base/java.io=ALL-UNNAMED",
	"--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
	"--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
	"--add-opens", "java.base/java.lang=ALL-UNNAMED",
	"--add-opens", "java.base/java.util=ALL-UNNAMED",
	"-Dio.netty.tryReflectionSetAccessible=true",
	"-Dio.netty.allocator.useCacheForAllThreads=true",
	"-Dio.netty.allocator.maxOrder=11",
	"-Dcassandra-foreground=yes",
	"-Dcassandra.initial_token=0",
	"-Dcassandra.skip_wait_for_gossip_to_settle=0",
	// One node, no peers: nothing to wait for before serving.
	"-Dcassandra.ring_delay_ms=100",
	"-Dcassandra.superuser_setup_delay_ms=0",
}

// Cassandra is a running one-node Apache Cassandra 5.0 on this machine.
type Cassandra struct {
	Dir      string `json:"dir"`
	Addr     string `json:"addr"` // host:port of the native protocol (CQL)
	Detached bool   `json:"detached"`
	node     *Process
}

const cassandraFile = "cassandra.json"

// StartCassandra starts one Cassandra node under dir (created if missing;
// a node already there is started again on its data) on 127.0.0.1 and
// returns once it answers CQL. Without WithPort the native port is a free
// one; the storage port is always the native port + 1. WithNodes and
// WithZooKeeper are refused. On error nothing it started is left running.
func StartCassandra(ctx context.Context, dir string, opts ...Option) (*Cassandra, error) {
	c := config{nodes: 1, timeout: 3 * time.Minute}
	for _, o := range opts {
		o(&c)
	}
	if c.nodes != 1 || c.mode != "" || c.zkPort != 0 {
		return nil, errors.New("engines: cassandra runs one node: WithNodes and WithZooKeeper do not apply")
	}
	cp, err := Classpath(ctx, "cassandra")
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	const host = "127.0.0.1"
	if c.port == 0 {
		if c.port, err = FreePort(host); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	yaml, err := writeCassandraYAML(dir, host, c.port)
	if err != nil {
		return nil, err
	}
	logConf, err := writeConf(dir, "logback-cassandra.xml")
	if err != nil {
		return nil, err
	}
	cs := &Cassandra{Dir: dir, Addr: net.JoinHostPort(host, strconv.Itoa(c.port)), Detached: c.detached}
	cs.node = &Process{
		Name: "cassandra", Dir: dir, Addr: cs.Addr, Log: filepath.Join(dir, "system.log"),
		Args: slices.Concat([]string{"java"}, cassandraJVM, c.jvm, []string{
			"-Dcassandra.config=file://" + yaml,
			"-Dcassandra.storagedir=" + dir,
			"-Dcassandra.logdir=" + dir,
			"-Dlogback.configurationFile=" + logConf,
			"-cp", cp, "org.apache.cassandra.service.CassandraDaemon"}),
		detached: c.detached,
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := cs.node.start(); err != nil {
		return nil, err
	}
	if err := cs.save(); err != nil {
		_ = cs.Close()
		return nil, err
	}
	if err := cs.wait(ctx); err != nil {
		_ = cs.Close()
		return nil, err
	}
	return cs, nil
}

func writeCassandraYAML(dir, host string, port int) (string, error) {
	src, err := files.ReadFile("conf/cassandra.yaml")
	if err != nil {
		return "", err
	}
	tmpl, err := template.New("cassandra.yaml").Option("missingkey=error").Parse(string(src))
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, map[string]any{
		"Host": host, "NativePort": port, "StoragePort": port + 1, "Dir": dir,
	}); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "cassandra.yaml")
	return p, os.WriteFile(p, b.Bytes(), 0o644)
}

func (cs *Cassandra) save() error {
	b, err := json.MarshalIndent(cs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cs.Dir, cassandraFile), b, 0o644)
}

// OpenCassandra finds the node a StartCassandra (of this or an earlier
// process) left in dir, to kill, restart or stop it.
func OpenCassandra(dir string) (*Cassandra, error) {
	b, err := os.ReadFile(filepath.Join(dir, cassandraFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s in %s", errNotStarted, cassandraFile, dir)
	}
	if err != nil {
		return nil, err
	}
	var cs Cassandra
	if err := json.Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("engines: %s: %w", filepath.Join(dir, cassandraFile), err)
	}
	if cs.node, err = loadProcess(dir); err != nil {
		return nil, err
	}
	return &cs, nil
}

// Process is the node's process.
func (cs *Cassandra) Process() *Process { return cs.node }

// Kill sends SIGKILL to the node and waits until it is gone.
func (cs *Cassandra) Kill() error { return cs.node.Kill() }

// Restart starts the node again on its data (after a Kill or a crash) and
// waits until it answers CQL (at most three minutes).
func (cs *Cassandra) Restart(ctx context.Context) error {
	if cs.node.Alive() {
		return fmt.Errorf("engines: cassandra (pid %d) is running; kill it first", cs.node.Pid)
	}
	cs.node.detached = cs.Detached
	if err := cs.node.start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	return cs.wait(ctx)
}

// Stop asks the node to stop (SIGTERM: it flushes nothing but closes its
// commit log cleanly) and kills it after 30 s.
func (cs *Cassandra) Stop() error { return cs.node.Stop(30 * time.Second) }

// Close kills the node at once, for a throwaway node (a test's).
func (cs *Cassandra) Close() error { return cs.node.Kill() }

// wait waits until the node answers SELECT release_version FROM
// system.local, the process exits, or ctx ends.
func (cs *Cassandra) wait(ctx context.Context) error {
	p := cs.node
	if err := waitTCP(ctx, p, p.Addr); err != nil {
		return err
	}
	var last error
	for {
		v, err := CassandraVersion(ctx, cs.Addr)
		if err == nil && v != "" {
			return nil
		}
		last = err
		if !p.Alive() {
			return fmt.Errorf("engines: %s exited while starting; its log %s ends:\n%s", p.Name, p.Log, p.LogTail(3000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("engines: %s not ready (%v): %w; its log %s ends:\n%s", p.Name, last, ctx.Err(), p.Log, p.LogTail(2000))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// CassandraSession opens a driver session to the one node at addr
// (host:port), without discovering peers, with timeout per request; the
// caller closes it.
func CassandraSession(addr string, timeout time.Duration) (*gocql.Session, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	c := gocql.NewCluster(host)
	if c.Port, err = strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("engines: cassandra address %q: %w", addr, err)
	}
	c.Timeout, c.ConnectTimeout = timeout, 2*time.Second
	c.DisableInitialHostLookup = true
	c.NumConns = 1
	c.Logger = gocql.NewLogger(gocql.LogLevelNone)
	return c.CreateSession()
}

// CassandraVersion asks the node at addr for its release_version, in one
// short-lived session (what readiness means here: CQL answers).
func CassandraVersion(ctx context.Context, addr string) (string, error) {
	sess, err := CassandraSession(addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer sess.Close()
	var v string
	err = sess.Query("SELECT release_version FROM system.local").WithContext(ctx).Scan(&v)
	return v, err
}
