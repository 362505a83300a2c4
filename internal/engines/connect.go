package engines

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Connect is a running Apache Kafka Connect worker (distributed mode, the
// 4.x runtime of poms/connect.xml with FileStreamSink and FileStreamSource)
// on this machine: the reference internal/connect's REST API is compared
// with.
type Connect struct {
	Dir     string // its configuration and logs
	URL     string // its REST API, http://127.0.0.1:PORT
	GroupID string // its group, and the prefix of its three storage topics
	worker  *Process
}

// StartConnect starts one distributed Connect worker under dir (created if
// missing) against the Kafka cluster at bootstrap (host:port, comma
// separated) and returns once its REST API answers GET /health with 200,
// which a 4.x worker does only after it has joined its group and read its
// config topic. Its REST listener is 127.0.0.1 on a free port (WithPort
// fixes it); its group id and storage topics (GROUP-configs, -offsets,
// -status, replication factor 1) are named after dir's base name unless
// WithConnectGroup names them, so two workers on one broker stay apart.
// Converters are JSON without schemas (a connector's config may set its
// own); WithConnectPlugins picks the connectors on its classpath.
// WithJVMOptions, WithStartTimeout (default three minutes) and Detached apply; WithNodes and WithZooKeeper
// are refused. On error nothing it started is left running.
func StartConnect(ctx context.Context, dir, bootstrap string, opts ...Option) (*Connect, error) {
	c := config{nodes: 1, timeout: 3 * time.Minute}
	for _, o := range opts {
		o(&c)
	}
	if c.nodes != 1 || c.mode != "" || c.zkPort != 0 {
		return nil, errors.New("engines: connect runs one worker: WithNodes and WithZooKeeper do not apply")
	}
	if bootstrap == "" {
		return nil, errors.New("engines: connect: no bootstrap servers")
	}
	cp, err := Classpath(ctx, cmp.Or(c.plugins, "connect"))
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	const host = "127.0.0.1"
	if c.port == 0 {
		if c.port, err = FreePort(host); err != nil {
			return nil, err
		}
	}
	group := c.group
	if group == "" {
		group = "jvm-connect-" + filepath.Base(dir)
	}
	cn := &Connect{Dir: dir, URL: "http://" + net.JoinHostPort(host, strconv.Itoa(c.port)), GroupID: group}
	props := filepath.Join(dir, "worker.properties")
	if err := writeProperties(props, [][2]string{
		{"bootstrap.servers", bootstrap},
		{"group.id", group},
		{"key.converter", "org.apache.kafka.connect.json.JsonConverter"},
		{"value.converter", "org.apache.kafka.connect.json.JsonConverter"},
		{"key.converter.schemas.enable", "false"},
		{"value.converter.schemas.enable", "false"},
		{"config.storage.topic", group + "-configs"},
		{"offset.storage.topic", group + "-offsets"},
		{"status.storage.topic", group + "-status"},
		{"config.storage.replication.factor", "1"},
		{"offset.storage.replication.factor", "1"},
		{"status.storage.replication.factor", "1"},
		// One partition each instead of 25 and 5: a faster start.
		{"offset.storage.partitions", "1"},
		{"status.storage.partitions", "1"},
		{"listeners", "http://" + net.JoinHostPort(host, strconv.Itoa(c.port))},
		{"rest.advertised.host.name", host},
		{"rest.advertised.port", strconv.Itoa(c.port)},
		// The plugins are on the classpath with ServiceLoader manifests:
		// no scan of every jar (the default, hybrid_warn, scans them).
		{"plugin.discovery", "service_load"},
		{"offset.flush.interval.ms", "1000"},
		{"scheduled.rebalance.max.delay.ms", "0"},
	}); err != nil {
		return nil, err
	}
	logConf, err := writeConf(dir, "connect-log4j2.properties")
	if err != nil {
		return nil, err
	}
	cn.worker = &Process{
		Name: "connect", Dir: dir, Addr: net.JoinHostPort(host, strconv.Itoa(c.port)), Log: filepath.Join(dir, "server.log"),
		Args: slices.Concat([]string{"java", "-Xms128m", "-Xmx512m", "-Djava.awt.headless=true"}, c.jvm,
			[]string{"-Dlog4j2.configurationFile=" + logConf, "-Dengines.log.dir=" + dir,
				"-cp", cp, "org.apache.kafka.connect.cli.ConnectDistributed", props}),
		detached: c.detached,
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := cn.worker.start(); err != nil {
		return nil, err
	}
	if err := cn.wait(ctx); err != nil {
		_ = cn.Close()
		return nil, err
	}
	return cn, nil
}

// WithConnectPlugins runs the worker from the classpath of another pom of
// poms/ that holds connect.xml's runtime and more connectors:
// "connect-debezium" adds Debezium's JDBC sink (StartConnect).
func WithConnectPlugins(pom string) Option { return func(c *config) { c.plugins = pom } }

// WithConnectGroup names a Connect worker's group and the prefix of its
// storage topics (StartConnect).
func WithConnectGroup(id string) Option { return func(c *config) { c.group = id } }

// wait polls GET /health until it answers 200, the worker exits or ctx
// ends.
func (cn *Connect) wait(ctx context.Context) error {
	cl := &http.Client{Timeout: 5 * time.Second}
	last := "no answer"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cn.URL+"/health", nil)
		resp, err := cl.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		}
		if !cn.worker.Alive() {
			return fmt.Errorf("engines: connect exited before it was ready; its log %s ends:\n%s", cn.worker.Log, cn.worker.LogTail(3000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("engines: connect at %s was not ready (GET /health: %s): %w; its log %s ends:\n%s",
				cn.URL, strings.TrimSpace(last), ctx.Err(), cn.worker.Log, cn.worker.LogTail(3000))
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// Process is the worker's process.
func (cn *Connect) Process() *Process { return cn.worker }

// Close kills the worker and waits until it is gone.
func (cn *Connect) Close() error { return cn.worker.Kill() }
