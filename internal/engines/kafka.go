package engines

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KafkaMode says how a Kafka cluster keeps its metadata.
type KafkaMode string

const (
	// KRaft is Apache Kafka 4 with combined broker+controller nodes.
	KRaft KafkaMode = "kraft"
	// ZooKeeper is Apache Kafka 3.9 with one ZooKeeper 3.8 server, the
	// original stack's architecture.
	ZooKeeper KafkaMode = "zookeeper"
)

// DefaultKafkaPort is the clients' port of the clusters scripts/engines.sh
// starts (node i on 127.0.0.i); the controllers listen on the next port.
const DefaultKafkaPort = 9092

// DefaultZooKeeperPort is ZooKeeper's client port in ZooKeeper mode.
const DefaultZooKeeperPort = 2181

// config is what the options set; StartKafka and StartCassandra share it
// (the Kafka-only settings are refused by StartCassandra).
type config struct {
	mode     KafkaMode
	nodes    int
	port     int // 0: a free one
	zkPort   int // 0: a free one
	detached bool
	timeout  time.Duration
	jvm      []string
	group    string // StartConnect's group id
	plugins  string // StartConnect's pom ("connect" unless WithConnectPlugins)
}

// Option configures StartKafka, StartCassandra and StartConnect.
type Option func(*config)

// KafkaOption is the name the Kafka callers know Option by.
type KafkaOption = Option

// WithNodes sets the number of nodes (1 or 3; default 1). Node i listens on
// 127.0.0.i; every node of a KRaft cluster is also a controller voter.
func WithNodes(n int) KafkaOption { return func(c *config) { c.nodes = n } }

// WithZooKeeper runs Kafka 3.9 on a ZooKeeper server instead of Kafka 4 in
// KRaft mode.
func WithZooKeeper() KafkaOption { return func(c *config) { c.mode = ZooKeeper } }

// WithPort fixes the clients' port (Kafka's controllers take port+1;
// Cassandra's native protocol port, its storage port is port+1). Without it
// a free pair is chosen.
func WithPort(port int) KafkaOption { return func(c *config) { c.port = port } }

// WithZooKeeperPort fixes ZooKeeper's client port in ZooKeeper mode.
func WithZooKeeperPort(port int) KafkaOption { return func(c *config) { c.zkPort = port } }

// Detached starts processes that outlive the caller (scripts/engines.sh);
// without it they die with the calling process, as a test's should.
func Detached() KafkaOption { return func(c *config) { c.detached = true } }

// WithJVMOptions adds options to every JVM of the engine (after the
// defaults, so they win), e.g. QuickStartJVM.
func WithJVMOptions(opts ...string) KafkaOption {
	return func(c *config) { c.jvm = append(c.jvm, opts...) }
}

// QuickStartJVM are JVM options that halve a node's start on a busy small
// machine at the cost of peak throughput (C1 compiler only, serial GC):
// what tests want, not benchmarks.
var QuickStartJVM = []string{"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:CICompilerCount=1"}

// WithStartTimeout bounds how long StartKafka or StartCassandra waits for
// the engine to answer (default two minutes for Kafka, three for
// Cassandra: a cold JVM on two busy cores is slow).
func WithStartTimeout(d time.Duration) KafkaOption { return func(c *config) { c.timeout = d } }

// Kafka is a running Apache Kafka cluster on this machine.
type Kafka struct {
	Dir       string    `json:"dir"`
	Mode      KafkaMode `json:"mode"`
	Brokers   []string  `json:"brokers"` // node i's address is Brokers[i-1]
	ZooKeeper string    `json:"zookeeper,omitempty"`
	Detached  bool      `json:"detached"`
	jvm       []string
	nodes     []*Process // node i is nodes[i-1]
	zk        *Process
}

const clusterFile = "cluster.json"

// StartKafka formats and starts a Kafka cluster under dir (created if
// missing; an existing cluster there is started again on its data) and
// returns once every node answers a metadata request and lists all the
// cluster's brokers. On error nothing it started is left running.
func StartKafka(ctx context.Context, dir string, opts ...KafkaOption) (*Kafka, error) {
	c := config{mode: KRaft, nodes: 1, timeout: 2 * time.Minute}
	for _, o := range opts {
		o(&c)
	}
	if c.nodes != 1 && c.nodes != 3 {
		return nil, fmt.Errorf("engines: kafka: %d nodes: give 1 or 3", c.nodes)
	}
	engine := "kafka"
	if c.mode == ZooKeeper {
		engine = "kafka-zk"
	}
	cp, err := Classpath(ctx, engine)
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	hosts := make([]string, c.nodes)
	for i := range hosts {
		hosts[i] = "127.0.0." + strconv.Itoa(i+1)
	}
	if c.port == 0 {
		if c.port, err = FreePort(hosts...); err != nil {
			return nil, err
		}
	}
	k := &Kafka{Dir: dir, Mode: c.mode, Detached: c.detached, jvm: c.jvm}
	for _, h := range hosts {
		k.Brokers = append(k.Brokers, net.JoinHostPort(h, strconv.Itoa(c.port)))
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ok := false
	defer func() {
		if !ok {
			_ = k.Close()
		}
	}()
	if c.mode == ZooKeeper {
		if c.zkPort == 0 {
			if c.zkPort, err = FreePort("127.0.0.1"); err != nil {
				return nil, err
			}
		}
		k.ZooKeeper = net.JoinHostPort("127.0.0.1", strconv.Itoa(c.zkPort))
		if err := k.startZooKeeper(ctx, cp); err != nil {
			return nil, err
		}
	}
	clusterID := ""
	if c.mode == KRaft {
		if clusterID, err = kraftClusterID(ctx, dir, cp); err != nil {
			return nil, err
		}
	}
	for i := range c.nodes {
		p, err := k.prepareNode(ctx, cp, i+1, c.port, clusterID)
		if err != nil {
			return nil, err
		}
		k.nodes = append(k.nodes, p)
	}
	for _, p := range k.nodes {
		if err := p.start(); err != nil {
			return nil, err
		}
	}
	if err := k.save(); err != nil {
		return nil, err
	}
	for id := range k.nodes {
		if err := k.waitNode(ctx, id+1); err != nil {
			return nil, err
		}
	}
	ok = true
	return k, nil
}

// kraftClusterID returns the cluster id kept in dir, making one the first
// time (every node of a cluster is formatted with the same id).
func kraftClusterID(ctx context.Context, dir, cp string) (string, error) {
	idFile := filepath.Join(dir, "cluster.id")
	if b, err := os.ReadFile(idFile); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, "java", "-cp", cp, "kafka.tools.StorageTool", "random-uuid").Output()
	if err != nil {
		return "", fmt.Errorf("engines: kafka: StorageTool random-uuid: %w", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return "", errors.New("engines: kafka: StorageTool random-uuid printed nothing")
	}
	id := lines[len(lines)-1]
	return id, os.WriteFile(idFile, []byte(id+"\n"), 0o644)
}

// prepareNode writes node id's configuration, formats its log directory
// (KRaft, first time only) and returns its process, not yet started.
func (k *Kafka) prepareNode(ctx context.Context, cp string, id, port int, clusterID string) (*Process, error) {
	host := "127.0.0." + strconv.Itoa(id)
	nodeDir := filepath.Join(k.Dir, "node-"+strconv.Itoa(id))
	dataDir := filepath.Join(nodeDir, "data")
	if err := os.MkdirAll(nodeDir, 0o755); err != nil {
		return nil, err
	}
	n := len(k.Brokers)
	rf := strconv.Itoa(n)
	minISR := strconv.Itoa(min(n, 2))
	props := [][2]string{
		{"listeners", fmt.Sprintf("PLAINTEXT://%s:%d", host, port)},
		{"advertised.listeners", fmt.Sprintf("PLAINTEXT://%s:%d", host, port)},
		{"log.dirs", dataDir},
		{"offsets.topic.replication.factor", rf},
		{"transaction.state.log.replication.factor", rf},
		{"transaction.state.log.min.isr", minISR},
		{"default.replication.factor", rf},
		// As production clusters of three run: an acknowledged write is on
		// two nodes at least (with the producer's acks=all).
		{"min.insync.replicas", minISR},
		// Small-machine settings (engines.md): fewer threads, one
		// partition for the internal topics, no first-join delay, and a
		// 16 MiB cleaner buffer instead of 128 MiB on the heap.
		{"num.network.threads", "2"},
		{"num.io.threads", "2"},
		{"offsets.topic.num.partitions", "1"},
		{"transaction.state.log.num.partitions", "1"},
		{"group.initial.rebalance.delay.ms", "0"},
		{"log.cleaner.dedupe.buffer.size", "16777216"},
	}
	logConf := "log4j2.properties"
	logFlag := "-Dlog4j2.configurationFile="
	if k.Mode == KRaft {
		voters := make([]string, n)
		for i := range voters {
			voters[i] = fmt.Sprintf("%d@127.0.0.%d:%d", i+1, i+1, port+1)
		}
		props = append(props,
			[2]string{"process.roles", "broker,controller"},
			[2]string{"node.id", strconv.Itoa(id)},
			[2]string{"controller.quorum.voters", strings.Join(voters, ",")},
			[2]string{"listeners", fmt.Sprintf("PLAINTEXT://%s:%d,CONTROLLER://%s:%d", host, port, host, port+1)},
			[2]string{"controller.listener.names", "CONTROLLER"},
			[2]string{"inter.broker.listener.name", "PLAINTEXT"},
			[2]string{"listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"},
			// Twice the defaults (1 s, 2 s, 9 s): on two busy cores a JVM
			// starved for a second made the quorum re-elect and fence
			// brokers for minutes.
			[2]string{"controller.quorum.election.timeout.ms", "2000"},
			[2]string{"controller.quorum.fetch.timeout.ms", "4000"},
			[2]string{"broker.session.timeout.ms", "12000"},
			[2]string{"share.coordinator.state.topic.replication.factor", rf},
			[2]string{"share.coordinator.state.topic.min.isr", minISR},
		)
	} else {
		props = append(props,
			[2]string{"broker.id", strconv.Itoa(id)},
			[2]string{"zookeeper.connect", k.ZooKeeper},
		)
		logConf, logFlag = "log4j.properties", "-Dlog4j.configuration=file:"
	}
	propsFile := filepath.Join(nodeDir, "server.properties")
	if err := writeProperties(propsFile, props); err != nil {
		return nil, err
	}
	confPath, err := writeConf(nodeDir, logConf)
	if err != nil {
		return nil, err
	}
	if k.Mode == KRaft {
		if _, err := os.Stat(filepath.Join(dataDir, "meta.properties")); err != nil {
			out, err := exec.CommandContext(ctx, "java", "-cp", cp, logFlag+confPath, "-Dengines.log.dir="+nodeDir,
				"kafka.tools.StorageTool", "format", "-t", clusterID, "-c", propsFile).CombinedOutput()
			if err != nil {
				return nil, fmt.Errorf("engines: kafka: format node %d: %w\n%s", id, err, tail(string(out), 2000))
			}
		}
	}
	return &Process{
		Name: "kafka-" + strconv.Itoa(id),
		Dir:  nodeDir,
		Addr: k.Brokers[id-1],
		Log:  filepath.Join(nodeDir, "server.log"),
		Args: slices.Concat([]string{"java", "-Xms256m", "-Xmx512m", "-Djava.awt.headless=true"}, k.jvm,
			[]string{logFlag + confPath, "-Dengines.log.dir=" + nodeDir, "-cp", cp, "kafka.Kafka", propsFile}),
		detached: k.Detached,
	}, nil
}

func (k *Kafka) startZooKeeper(ctx context.Context, cp string) error {
	dir := filepath.Join(k.Dir, "zookeeper")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(k.ZooKeeper)
	cfg := filepath.Join(dir, "zoo.cfg")
	if err := writeProperties(cfg, [][2]string{
		{"tickTime", "2000"},
		{"dataDir", filepath.Join(dir, "data")},
		{"clientPort", port},
		{"clientPortAddress", "127.0.0.1"},
		{"admin.enableServer", "false"}, // else it takes :8080
		{"4lw.commands.whitelist", "ruok,srvr"},
	}); err != nil {
		return err
	}
	confPath, err := writeConf(dir, "log4j.properties")
	if err != nil {
		return err
	}
	k.zk = &Process{
		Name: "zookeeper", Dir: dir, Addr: k.ZooKeeper, Log: filepath.Join(dir, "server.log"),
		Args: slices.Concat([]string{"java", "-Xms64m", "-Xmx256m"}, k.jvm, []string{"-Dlog4j.configuration=file:" + confPath,
			"-Dengines.log.dir=" + dir, "-cp", cp, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg}),
		detached: k.Detached,
	}
	if err := k.zk.start(); err != nil {
		return err
	}
	for {
		if zkOK(k.ZooKeeper) {
			return nil
		}
		if !k.zk.Alive() {
			return fmt.Errorf("engines: zookeeper exited; its log %s ends:\n%s", k.zk.Log, k.zk.LogTail(3000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("engines: zookeeper did not answer ruok on %s: %w", k.ZooKeeper, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// zkOK sends ZooKeeper's "ruok" and reports whether it answered "imok".
func zkOK(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ruok")); err != nil {
		return false
	}
	b, _ := io.ReadAll(c)
	return string(b) == "imok"
}

func writeProperties(path string, props [][2]string) error {
	// A later key wins in Java's Properties; keep only the last of each.
	seen := map[string]int{}
	var lines []string
	for _, kv := range props {
		line := kv[0] + "=" + kv[1]
		if i, ok := seen[kv[0]]; ok {
			lines[i] = line
			continue
		}
		seen[kv[0]] = len(lines)
		lines = append(lines, line)
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

func (k *Kafka) save() error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(k.Dir, clusterFile), b, 0o644)
}

// OpenKafka finds the cluster a StartKafka (of this or an earlier process)
// left in dir, to kill, restart or stop its nodes.
func OpenKafka(dir string) (*Kafka, error) {
	b, err := os.ReadFile(filepath.Join(dir, clusterFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s in %s", errNotStarted, clusterFile, dir)
	}
	if err != nil {
		return nil, err
	}
	var k Kafka
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("engines: %s: %w", filepath.Join(dir, clusterFile), err)
	}
	for i := range k.Brokers {
		p, err := loadProcess(filepath.Join(dir, "node-"+strconv.Itoa(i+1)))
		if err != nil {
			return nil, err
		}
		k.nodes = append(k.nodes, p)
	}
	if k.Mode == ZooKeeper {
		if k.zk, err = loadProcess(filepath.Join(dir, "zookeeper")); err != nil {
			return nil, err
		}
	}
	return &k, nil
}

// Bootstrap is the comma-separated list of the nodes' addresses.
func (k *Kafka) Bootstrap() string { return strings.Join(k.Brokers, ",") }

// Processes are the cluster's processes: ZooKeeper (if any), then node 1,
// 2, 3.
func (k *Kafka) Processes() []*Process {
	var ps []*Process
	if k.zk != nil {
		ps = append(ps, k.zk)
	}
	return append(ps, k.nodes...)
}

// Node returns the process of node id (1-based).
func (k *Kafka) Node(id int) (*Process, error) {
	if id < 1 || id > len(k.nodes) {
		return nil, fmt.Errorf("engines: kafka has nodes 1 to %d, not %d", len(k.nodes), id)
	}
	return k.nodes[id-1], nil
}

// Kill sends SIGKILL to node id and waits until it is gone.
func (k *Kafka) Kill(id int) error {
	p, err := k.Node(id)
	if err != nil {
		return err
	}
	return p.Kill()
}

// Restart starts node id again on its data directory (after a Kill or a
// crash) and waits until it is back in the cluster's metadata.
func (k *Kafka) Restart(ctx context.Context, id int) error {
	p, err := k.Node(id)
	if err != nil {
		return err
	}
	if p.Alive() {
		return fmt.Errorf("engines: kafka node %d (pid %d) is running; kill it first", id, p.Pid)
	}
	p.detached = k.Detached
	if err := p.start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return k.waitNode(ctx, id)
}

// waitNode waits until node id answers a metadata request that lists
// every broker of the cluster that is running.
func (k *Kafka) waitNode(ctx context.Context, id int) error {
	p := k.nodes[id-1]
	if err := waitTCP(ctx, p, p.Addr); err != nil {
		return err
	}
	want := map[int32]bool{}
	for i, n := range k.nodes {
		if n.Alive() {
			want[int32(i+1)] = true
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	// Asked of the node itself, not through the client's metadata, which
	// kept the first answer (one broker) for minutes.
	seed := cl.SeedBrokers()[0]
	var last string
	for {
		mctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{} // brokers only
		m, err := req.RequestWith(mctx, seed)
		cancel()
		if err == nil {
			got := 0
			for _, b := range m.Brokers {
				if want[b.NodeID] {
					got++
				}
			}
			if got == len(want) && (k.Mode == ZooKeeper || m.ControllerID >= 0) {
				return nil
			}
			last = fmt.Sprintf("metadata lists %d of %d brokers, controller %d", got, len(want), m.ControllerID)
		} else {
			last = err.Error()
		}
		for _, n := range k.nodes {
			if want[nodeID(n)] && !n.Alive() {
				return fmt.Errorf("engines: %s exited while the cluster started; its log %s ends:\n%s", n.Name, n.Log, n.LogTail(3000))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("engines: %s not ready (%s): %w; its log %s ends:\n%s", p.Name, last, ctx.Err(), p.Log, p.LogTail(2000))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// nodeID is the node id of a node's process, from its name "kafka-N".
func nodeID(p *Process) int32 {
	n, _ := strconv.Atoi(strings.TrimPrefix(p.Name, "kafka-"))
	return int32(n)
}

// Stop stops every process of the cluster: the nodes at once (one by one,
// the last controllers would wait for a quorum that is leaving), each given
// 15 s to shut down cleanly before it is killed, then ZooKeeper.
func (k *Kafka) Stop() error {
	errs := make([]error, len(k.nodes)+1)
	done := make(chan struct{})
	for i, p := range k.nodes {
		go func() { errs[i] = p.Stop(15 * time.Second); done <- struct{}{} }()
	}
	for range k.nodes {
		<-done
	}
	if k.zk != nil {
		errs[len(k.nodes)] = k.zk.Stop(10 * time.Second)
	}
	return errors.Join(errs...)
}

// Close kills every process of the cluster at once, for throwaway
// clusters whose data nobody needs (a test's).
func (k *Kafka) Close() error {
	var errs []error
	for _, p := range k.Processes() {
		errs = append(errs, p.Kill())
	}
	return errors.Join(errs...)
}

// StopNode stops node id cleanly (SIGTERM, as a rolling restart does; it is
// killed if it has not stopped within 30 s).
func (k *Kafka) StopNode(id int) error {
	p, err := k.Node(id)
	if err != nil {
		return err
	}
	return p.Stop(30 * time.Second)
}

// ActiveController returns the node id of the active controller: the
// leader of the KRaft metadata quorum (DescribeQuorum), or in ZooKeeper
// mode the controller the brokers elected.
func (k *Kafka) ActiveController(ctx context.Context) (int, error) {
	var seeds []string
	for _, p := range k.nodes {
		if p.Alive() {
			seeds = append(seeds, p.Addr)
		}
	}
	if len(seeds) == 0 {
		return 0, errors.New("engines: no kafka node runs")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	if k.Mode == ZooKeeper {
		m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
		if err != nil {
			return 0, err
		}
		return int(m.Controller), nil
	}
	req := kmsg.NewPtrDescribeQuorumRequest()
	topic := kmsg.NewDescribeQuorumRequestTopic()
	topic.Topic = "__cluster_metadata"
	part := kmsg.NewDescribeQuorumRequestTopicPartition()
	topic.Partitions = append(topic.Partitions, part)
	req.Topics = append(req.Topics, topic)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("engines: describe the metadata quorum: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, fmt.Errorf("engines: describe the metadata quorum: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return 0, fmt.Errorf("engines: describe the metadata quorum: %w", err)
			}
			if p.LeaderID >= 0 {
				return int(p.LeaderID), nil
			}
		}
	}
	return 0, errors.New("engines: the metadata quorum has no leader now")
}

// PartitionLeader returns the node id leading partition of topic.
func (k *Kafka) PartitionLeader(ctx context.Context, topic string, partition int32) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return 0, err
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		return 0, fmt.Errorf("engines: topic %s: %v", topic, d.Err)
	}
	p, ok := d.Partitions[partition]
	if !ok {
		return 0, fmt.Errorf("engines: topic %s has no partition %d", topic, partition)
	}
	return int(p.Leader), nil
}
