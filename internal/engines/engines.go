// Package engines runs the real engines userstream meets in production as
// local processes, without Docker: Apache Kafka 4 in KRaft mode (one or
// three nodes), Kafka 3.9 on ZooKeeper as the original stack runs it, and
// Cassandra. It is what testcontainers is to Docker users: tests start an
// engine in a temporary directory and stop it when they end; people use it
// through scripts/engines.sh.
//
// Versions are pinned in the poms under poms/ (one per engine, embedded in
// the package). The first start of an engine resolves its jars with Maven
// into Maven's local repository (~/.m2), which downloads them; later starts
// read a classpath cached under the user's cache directory and need no
// network. Each engine keeps its data, configuration and logs under the
// directory it is started in, and listens on 127.0.0.x only.
//
// Processes are started in their own process group. Those started for a
// test also die with the test binary (Linux's parent-death signal), so a
// test that panics or times out leaves nothing running.
package engines

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed poms/*.xml conf/*
var files embed.FS

// ErrMissingTool is returned (wrapped) when java or mvn is not on PATH; the
// message names the package that brings it.
var ErrMissingTool = errors.New("engines: a tool the engines need is missing")

// DefaultDir is where scripts/engines.sh keeps the engines' data and logs
// when ENGINES_DIR is not set.
func DefaultDir() string {
	if d := os.Getenv("ENGINES_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "userstream-engines")
}

// Available reports whether java and mvn are on PATH, and if not, an error
// that says what to install. Tests skip with that error's text when it is
// not nil, since then no engine can run here.
func Available() error {
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("%w: java is not on PATH (apt-get install openjdk-17-jdk-headless)", ErrMissingTool)
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		return fmt.Errorf("%w: mvn is not on PATH (apt-get install maven)", ErrMissingTool)
	}
	return nil
}

// Classpath returns the Java classpath of engine (a pom under poms/:
// "kafka", "kafka-zk", "cassandra", "connect", "connect-debezium" (Connect with
// Debezium's JDBC sink) and "spark-kafka", the jars
// the Spark job of compat/spark adds to pyspark), resolving it with Maven on
// first use. The classpath is cached per pom content, so changing a pinned version
// resolves again.
func Classpath(ctx context.Context, engine string) (string, error) {
	pom, err := files.ReadFile("poms/" + engine + ".xml")
	if err != nil {
		return "", fmt.Errorf("engines: no pom for engine %q", engine)
	}
	if err := Available(); err != nil {
		return "", err
	}
	sum := sha256.Sum256(pom)
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	key := engine + "-" + hex.EncodeToString(sum[:6])
	cpFile := filepath.Join(cache, key+".classpath")
	if cp, err := os.ReadFile(cpFile); err == nil && jarsExist(string(cp)) {
		return string(cp), nil
	}
	work := filepath.Join(cache, key)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", fmt.Errorf("engines: %w", err)
	}
	if err := os.WriteFile(filepath.Join(work, "pom.xml"), pom, 0o644); err != nil {
		return "", fmt.Errorf("engines: %w", err)
	}
	// A file of its own: two test binaries may resolve at once.
	f, err := os.CreateTemp(cache, key+"-*.tmp")
	if err != nil {
		return "", fmt.Errorf("engines: %w", err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "-f", filepath.Join(work, "pom.xml"),
		"dependency:build-classpath", "-Dmdep.outputFile="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("engines: resolving %s's jars with Maven failed (is Maven Central reachable? the pom is internal/engines/poms/%s.xml): %w\n%s",
			engine, engine, err, tail(string(out), 3000))
	}
	if err := os.Rename(tmp, cpFile); err != nil {
		return "", fmt.Errorf("engines: %w", err)
	}
	cp, err := os.ReadFile(cpFile)
	if err != nil {
		return "", fmt.Errorf("engines: %w", err)
	}
	return string(cp), nil
}

func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "userstream", "engines")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("engines: cache directory: %w", err)
	}
	return dir, nil
}

func jarsExist(cp string) bool {
	if strings.TrimSpace(cp) == "" {
		return false
	}
	for _, p := range filepath.SplitList(cp) {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// writeConf copies an embedded file from conf/ into dir and returns its
// path.
func writeConf(dir, name string) (string, error) {
	b, err := files.ReadFile("conf/" + name)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, b, 0o644)
}

// FreePort returns a port that was free a moment ago on every one of hosts,
// as was port+1 (engines listen on a pair: clients and their controller).
// It picks below the kernel's ephemeral range: a JVM binds its port tens
// of seconds after the pick, and a port of that range may meanwhile become
// the local end of any outgoing connection.
//
// Picks go in sequence from a random start in each process, so two picks
// of one process never coincide while neither is bound yet (random picks
// did, now and then, in a test that takes five addresses before starting
// anything), and two processes meet only if their runs of ports overlap
// and both pick the same one before either binds it.
func FreePort(hosts ...string) (int, error) {
	lo, hi := 15000, ephemeralLow()-2
	picks.Lock()
	defer picks.Unlock()
	if picks.next < lo || picks.next >= hi {
		picks.next = lo + rand.IntN(hi-lo)
	}
	for range 500 {
		port := picks.next
		if picks.next += 2; picks.next >= hi {
			picks.next = lo
		}
		if portsFree(hosts, port) && portsFree(hosts, port+1) {
			return port, nil
		}
	}
	return 0, errors.New("engines: found no free port pair on the loopback hosts")
}

// picks is where this process's next FreePort starts.
var picks struct {
	sync.Mutex
	next int
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 16000 {
				return n
			}
		}
	}
	return 32768
}

func portsFree(hosts []string, port int) bool {
	for _, h := range hosts {
		ln, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

// waitTCP waits until addr accepts a connection, the process p exits, or
// ctx ends.
func waitTCP(ctx context.Context, p *Process, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if !p.Alive() {
			return fmt.Errorf("%s exited before listening on %s; its log %s ends:\n%s", p.Name, addr, p.Log, p.LogTail(3000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not listen on %s: %w; its log %s ends:\n%s", p.Name, addr, ctx.Err(), p.Log, p.LogTail(3000))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return tail(string(bytes.ToValidUTF8(b, []byte("?"))), n)
}
