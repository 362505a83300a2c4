package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kcatPath returns the kcat (or older kafkacat) binary, skipping the test
// when neither is installed.
func kcatPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("kcat/kafkacat is not installed (Debian package kcat); this interop test needs it")
	return ""
}

func runCmd(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestKcatListsTopics: kcat (librdkafka) reads the embedded broker's
// metadata and sees both pipeline topics with their partitions.
func TestKcatListsTopics(t *testing.T) {
	kcat := kcatPath(t)
	e := startBroker(t, t.TempDir())
	out := runCmd(t, 20*time.Second, kcat, "-b", e.Addr(), "-L")
	for _, want := range []string{
		`topic "users_created" with 3 partitions`,
		`topic "users_created.dlq" with 3 partitions`,
		"broker 0 at " + e.Addr(),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kcat -L output lacks %q:\n%s", want, out)
		}
	}
}

// TestKcatReadsOurMessages: records produced by franz-go, keyed, are read
// back by kcat with their keys and values.
func TestKcatReadsOurMessages(t *testing.T) {
	kcat := kcatPath(t)
	e := startBroker(t, t.TempDir())
	cl, _ := testClient(t, e.Addr())
	const n = 25
	want := produceKeyed(t, cl, Topic, n)

	out := runCmd(t, 30*time.Second, kcat, "-C", "-b", e.Addr(), "-t", Topic, "-e", "-o", "beginning", "-q", "-f", `%k %s\n`)
	got := make(map[string]string)
	for line := range strings.Lines(out) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\n"), " ")
		if !ok {
			t.Fatalf("kcat line %q is not \"key value\"", line)
		}
		got[k] = v
	}
	if len(got) != n {
		t.Errorf("kcat read %d distinct keys, want %d:\n%s", len(got), n, out)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("kcat: key %s = %q, want %q", k, got[k], v)
		}
	}
}

// originalShape is the JSON the original pipeline's producer writes.
type originalShape struct {
	ID             string          `json:"id"`
	FirstName      string          `json:"first_name"`
	LastName       string          `json:"last_name"`
	Gender         string          `json:"gender"`
	Address        string          `json:"address"`
	PostCode       json.RawMessage `json:"post_code"` // a number or a string, as in the original
	Email          string          `json:"email"`
	Username       string          `json:"username"`
	DOB            string          `json:"dob"`
	RegisteredDate string          `json:"registered_date"`
	Phone          string          `json:"phone"`
	Picture        string          `json:"picture"`
}

// TestKafkaPythonProducesOriginalShape: Debian's kafka-python (the client
// the original pipeline used) produces 10 unkeyed messages in the original's
// JSON shape, letting it negotiate the protocol version itself, and
// franz-go reads every one back.
func TestKafkaPythonProducesOriginalShape(t *testing.T) {
	const python = "/usr/bin/python3" // Debian's, which has python3-kafka
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s is missing; this interop test needs Debian's python3 with python3-kafka", python)
	}
	if err := exec.Command(python, "-c", "import kafka").Run(); err != nil {
		t.Skipf("%s cannot import kafka (install Debian package python3-kafka): %v", python, err)
	}
	e := startBroker(t, t.TempDir())
	out := runCmd(t, 60*time.Second, python, "testdata/produce_original.py", e.Addr(), "10", Topic)
	if lines := strings.Count(out, "\n"); lines != 10 {
		t.Fatalf("script acknowledged %d messages, want 10:\n%s", lines, out)
	}

	cl, _ := testClient(t, e.Addr(), kgo.ConsumeTopics(Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ids := make(map[string]bool)
	var numeric, text int
	for len(ids) < 10 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of 10 messages: %v", len(ids), ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Key != nil {
				t.Errorf("message at %d/%d has key %q, want none (the original sends no key)", r.Partition, r.Offset, r.Key)
			}
			var u originalShape
			dec := json.NewDecoder(bytes.NewReader(r.Value))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&u); err != nil {
				t.Fatalf("message %s is not the original shape: %v", r.Value, err)
			}
			if _, err := uuid.Parse(u.ID); err != nil {
				t.Errorf("id %q is not a UUID string: %v", u.ID, err)
			}
			if u.FirstName == "" || u.Email == "" || !strings.HasPrefix(u.Picture, "https://randomuser.me/") {
				t.Errorf("message lacks fields: %s", r.Value)
			}
			if len(u.PostCode) > 0 && u.PostCode[0] == '"' {
				text++
			} else {
				numeric++
			}
			ids[u.ID] = true
		})
	}
	if numeric == 0 || text == 0 {
		t.Errorf("post_code: %d numbers and %d strings, want both kinds as in the original", numeric, text)
	}
}
