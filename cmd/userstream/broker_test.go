package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/testwait"
)

// lockedBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBrokerCommand runs `userstream broker` until its context ends, uses
// `userstream topics` against it, and restarts it on the same data dir.
func TestBrokerCommand(t *testing.T) {
	dir := t.TempDir()
	addrRE := regexp.MustCompile(`msg="kafka broker listening" addr=(\S+)`)

	start := func() (addr string, stop func() int) {
		ctx, cancel := context.WithCancel(context.Background())
		var stderr lockedBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"broker", "--addr", "127.0.0.1:0", "--registry-addr", "127.0.0.1:0", "--data-dir", dir}, new(bytes.Buffer), &stderr)
		}()
		testwait.For(t, 10*time.Second, "the broker to log its address", func() (string, bool) {
			out := stderr.String()
			if m := addrRE.FindStringSubmatch(out); m != nil {
				addr = m[1]
				return out, true
			}
			select {
			case code := <-done:
				t.Fatalf("broker exited with %d: %s", code, out)
			default:
			}
			return out, false
		}, testwait.Every(10*time.Millisecond))
		return addr, func() int { cancel(); return <-done }
	}
	topics := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"topics"}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	addr, stop := start()
	code, out, errOut := topics("list", "--brokers", addr, "--json")
	if code != 0 {
		t.Fatalf("topics list: exit %d: %s", code, errOut)
	}
	var list []broker.TopicSummary
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("topics list --json: %v\n%s", err, out)
	}
	if len(list) != 2 || list[0].Topic != broker.Topic || list[1].Topic != broker.DLQTopic || list[0].Partitions != 3 {
		t.Errorf("topics list = %+v, want the two topics with 3 partitions", list)
	}
	if code := stop(); code != 0 {
		t.Fatalf("broker exited with %d after its context ended, want 0", code)
	}

	// Same data dir, again: the topics are still there.
	addr, stop = start()
	defer stop()
	code, out, errOut = topics("describe", broker.DLQTopic, "--brokers", addr)
	if code != 0 || !strings.Contains(out, "topic "+broker.DLQTopic) || !strings.Contains(out, "PARTITION") {
		t.Errorf("topics describe: exit %d\n%s%s", code, out, errOut)
	}
}

func TestBrokerCommandErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()

	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "busy port", args: []string{"broker", "--addr", busy, "--data-dir", t.TempDir()}, wantCode: 1,
			wantErr: busy + " is already in use (another broker running?): stop it, or pass another --addr"},
		{name: "busy registry port", args: []string{"broker", "--addr", "127.0.0.1:0", "--registry-addr", busy, "--data-dir", t.TempDir()}, wantCode: 1,
			wantErr: busy + " is already in use"},
		{name: "bad partitions", args: []string{"broker", "--partitions", "0"}, wantCode: 2, wantErr: "--partitions"},
		{name: "topics without subcommand", args: []string{"topics"}, wantCode: 2, wantErr: "give a subcommand"},
		{name: "describe without topic", args: []string{"topics", "describe"}, wantCode: 2, wantErr: "give exactly one topic"},
		{name: "sasl user without mechanism", args: []string{"topics", "list", "--sasl-user", "u"}, wantCode: 2, wantErr: "--sasl-mechanism"},
		{name: "nothing listening", args: []string{"topics", "list", "--brokers", "127.0.0.1:1"}, wantCode: 1,
			wantErr: "cannot reach Kafka at 127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tc.wantCode, tc.wantErr)
			}
			// A broker that fails to start never says it listens.
			if strings.Contains(stderr.String(), "kafka broker listening") {
				t.Errorf("a failed start logged that the broker listens: %s", stderr.String())
			}
		})
	}
}
