// Package proctest is test support: it runs the userstream binary as
// separate processes, as a user would, for end-to-end and fault tests.
//
// It builds the binary once, starts commands on loopback ports, signals and
// waits for them, and reads the sink's count with `userstream users count`.
//
// It is test support, used by the end-to-end tests of cmd/userstream and the
// fault suite in chaos/; nothing in the pipeline imports it.
package proctest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/engines"
	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/testwait"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary builds userstream once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "userstream-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "userstream")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/userstream/userstream/cmd/userstream").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// Proc is a running userstream command.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// Start runs the binary with args in the background; its output goes to a
// file that is printed (its tail) if the test fails. The process is killed
// when the test ends.
func Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return StartEnv(t, name, nil, args...)
}

// StartEnv is Start with extra environment variables (KEY=VALUE).
func StartEnv(t testing.TB, name string, env []string, args ...string) *Proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Binary(t), args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(CleanEnv(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.Signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("--- %s output:\n%s", name, Tail(p.Output(), 4000))
		}
	})
	return p
}

// CleanEnv is the environment without USERSTREAM_* variables, so the
// developer's settings cannot change what a test runs.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "USERSTREAM_") {
			env = append(env, kv)
		}
	}
	return env
}

// Tail returns the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Signal sends sig unless the process has exited.
func (p *Proc) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Wait waits at most d for the process to exit and returns its exit code.
func (p *Proc) Wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("%s did not exit within %s; output:\n%s", p.Name, d, Tail(p.Output(), 4000))
		return -1
	}
}

// WaitOutput waits until the process has printed want, failing the test
// when it exits first or within (scaled by testwait) passes.
func (p *Proc) WaitOutput(t testing.TB, want string, within time.Duration) {
	t.Helper()
	testwait.For(t, within, fmt.Sprintf("%s to print %q", p.Name, want), func() (string, bool) {
		out := p.Output()
		if strings.Contains(out, want) {
			return "", true
		}
		if p.Exited() {
			t.Fatalf("%s exited before printing %q:\n%s", p.Name, want, Tail(out, 4000))
		}
		return Tail(out, 3000), false
	}, testwait.Every(100*time.Millisecond))
}

// Kill sends SIGKILL and waits for the process to go.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	p.Signal(syscall.SIGKILL)
	p.Wait(t, 10*time.Second)
}

// Output is everything the process printed so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Run runs the binary to completion and returns stdout, stderr and the
// exit code.
func Run(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	return RunContext(context.Background(), t, args...)
}

// RunContext is Run bounded by ctx (the process is killed when it ends).
func RunContext(ctx context.Context, t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	return RunContextEnv(ctx, t, nil, args...)
}

// RunContextEnv is RunContext with extra environment variables (KEY=VALUE).
func RunContextEnv(ctx context.Context, t testing.TB, env []string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(CleanEnv(), env...)
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// FreeAddr returns a loopback host:port that was free a moment ago, below
// the kernel's ephemeral range (engines.FreePort): a port of that range,
// picked here and bound by a process started after, was taken meanwhile by
// an outgoing connection on a busy machine (the registry of
// TestBrokerRestart found its port in use).
func FreeAddr(t testing.TB) string {
	t.Helper()
	port, err := engines.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// WaitListening waits until addr accepts connections, failing the test if
// p exits first or 30 s (scaled by testwait) pass.
func WaitListening(t testing.TB, p *Proc, addr string) {
	t.Helper()
	testwait.For(t, 30*time.Second, p.Name+" listening on "+addr, func() (error, bool) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil, true
		}
		if p.Exited() {
			t.Fatalf("%s exited before listening on %s:\n%s", p.Name, addr, p.Output())
		}
		return err, false
	})
}

// Count is `userstream users count --sink URL`; a SQLite file the stream
// has not created yet counts 0.
func Count(t testing.TB, sinkURL string) int {
	t.Helper()
	out, errOut, code := Run(t, "users", "count", "--sink", sinkURL)
	if code != 0 && (strings.Contains(errOut, "no SQLite database") || strings.Contains(errOut, "no users table")) {
		return 0
	}
	if code != 0 {
		t.Fatalf("users count: exit %d: %s", code, errOut)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("users count printed %q, not one integer", out)
	}
	return n
}

// WaitCount waits until the sink holds want users, failing when it holds
// more or within (scaled by testwait) passes first.
func WaitCount(t testing.TB, sinkURL string, want int, within time.Duration) {
	t.Helper()
	testwait.For(t, within, fmt.Sprintf("%d users in the sink", want), func() (int, bool) {
		n := Count(t, sinkURL)
		if n > want {
			t.Fatalf("the sink holds %d users, more than the %d produced", n, want)
		}
		return n, n == want
	}, testwait.Every(200*time.Millisecond))
}

// Stack is a broker with a Schema Registry and `userstream api` on free
// loopback ports, with a SQLite sink URL in a temporary directory. The
// broker is the embedded one (`userstream broker`, which serves the
// registry too) or, when USERSTREAM_TEST_BROKER names one, a real Apache
// Kafka cluster of package engines beside `userstream registry`: the same
// end-to-end cases run on every broker (enginestest.BrokerKind).
type Stack struct {
	Kafka, Registry, API, Sink, Dir string
	Kind                            string         // enginestest.Embedded, Kafka, Kafka3 or KafkaZK
	Broker                          *Proc          // the embedded broker; nil on a real cluster
	Cluster                         *engines.Kafka // the real cluster; nil on the embedded broker
}

// StartStack starts the broker of USERSTREAM_TEST_BROKER's kind and the
// API, and waits until they listen.
func StartStack(t testing.TB) *Stack {
	t.Helper()
	return StartStackOn(t, enginestest.BrokerKind(t))
}

// StartStackOn is StartStack on a broker of the given kind, for cases that
// need one (a three-node cluster's faults).
func StartStackOn(t testing.TB, kind string) *Stack {
	t.Helper()
	dir := t.TempDir()
	s := &Stack{Registry: FreeAddr(t), API: FreeAddr(t), Dir: dir,
		Sink: "sqlite:" + filepath.Join(dir, "users.db"), Kind: kind}
	if s.Kind == enginestest.Embedded {
		s.Kafka = FreeAddr(t)
		s.StartBroker(t, "broker")
	} else {
		s.Cluster = enginestest.StartKafka(t, enginestest.KafkaOptions(s.Kind)...)
		s.Kafka = s.Cluster.Bootstrap()
		reg := Start(t, "registry", "registry", "--addr", s.Registry, "--data-dir", filepath.Join(dir, "schemas"))
		WaitListening(t, reg, s.Registry)
	}
	a := Start(t, "api", "api", "--addr", s.API)
	WaitListening(t, a, s.API)
	return s
}

// StartBroker (re)starts the embedded broker on the stack's addresses and
// data dir. On a real cluster it is RestartBroker.
func (s *Stack) StartBroker(t testing.TB, name string) *Proc {
	t.Helper()
	if s.Cluster != nil {
		s.RestartBroker(t)
		return nil
	}
	b := Start(t, name, "broker", "--addr", s.Kafka, "--registry-addr", s.Registry, "--data-dir", filepath.Join(s.Dir, "kafka"))
	WaitListening(t, b, s.Kafka)
	WaitListening(t, b, s.Registry)
	s.Broker = b
	return b
}

// KillBroker SIGKILLs the broker: the embedded one (and the registry it
// serves), or every node of a real cluster.
func (s *Stack) KillBroker(t testing.TB) {
	t.Helper()
	if s.Cluster == nil {
		s.Broker.Kill(t)
		return
	}
	for id := range s.Cluster.Brokers {
		if err := s.Cluster.Kill(id + 1); err != nil {
			t.Fatal(err)
		}
	}
}

// RestartBroker starts the broker KillBroker killed again on its data.
func (s *Stack) RestartBroker(t testing.TB) {
	t.Helper()
	if s.Cluster == nil {
		s.StartBroker(t, "broker-again")
		return
	}
	// Nodes of a cluster wait for each other's quorum: start them together.
	errs := make(chan error, len(s.Cluster.Brokers))
	for id := range s.Cluster.Brokers {
		go func() { errs <- s.Cluster.Restart(context.Background(), id+1) }()
	}
	for range s.Cluster.Brokers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// Client is a Kafka client seeded with kafka (a comma-separated list, as
// --brokers takes), closed when the test ends.
func Client(t testing.TB, kafka string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(kafka, ",")...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// SourceURL is the built-in API's endpoint.
func (s *Stack) SourceURL() string { return "http://" + s.API + "/api/" }

// RegistryURL is the embedded registry's URL.
func (s *Stack) RegistryURL() string { return "http://" + s.Registry }

// EndOffsets sums the end offsets of topic's partitions.
func EndOffsets(t testing.TB, kafka, topic string) int64 {
	t.Helper()
	cl := Client(t, kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum
}

// OutputJSON runs cmd, a script of a third-party client, and decodes the
// JSON it prints into out; a failure shows the script's stderr.
func OutputJSON(t testing.TB, cmd *exec.Cmd, out any) {
	t.Helper()
	name := filepath.Base(cmd.Path)
	if len(cmd.Args) > 1 {
		name = cmd.Args[1]
	}
	b, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%s: %v\n%s", name, err, ee.Stderr)
		}
		t.Fatalf("%s: %v", name, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s printed %.300q: %v", name, b, err)
	}
}

// WantResults compares the results a script printed with what it must
// have, key by key, and fails on any key the test does not check, so a
// result the script adds is never passed over.
func WantResults(t testing.TB, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %#v, want %#v", k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unchecked result %s = %v", k, got[k])
		}
	}
}
