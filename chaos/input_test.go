package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/testwait"
)

// TestPoison: 1% poison among the messages of a run (random bytes,
// truncated JSON, JSON without an id, an unknown schema id, an oversize
// record, a bad email, a bad date, and a NUL in a name). Every valid user is
// stored, the NUL one too (SQLite keeps it intact), every other poison
// message is dead-lettered with its kind, and the stream never stops.
func TestPoison(t *testing.T) {
	skipShort(t)
	n := size(20_000, 100_000)
	s := proctest.StartStack(t)
	worker(t, s, "stream", s.Sink)
	prod := produceUsers(t, s, n, size(5000, 10000))
	poison := n / 100
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := map[string]int{}
	var values [][]byte
	nul := 0
	for i := range poison {
		var v []byte
		var kind string
		switch i % 8 {
		case 0:
			v = make([]byte, 1+rng.IntN(300))
			for j := range v {
				v[j] = byte(rng.Uint32())
			}
			v[0] = '#' // neither Avro's magic 0 nor JSON
			kind = "decode"
		case 1:
			v = []byte(originalJSON(900_000+i, `"Trunc"`))
			v = v[:len(v)/2]
			kind = "decode"
		case 2:
			v = []byte(strings.Replace(originalJSON(900_000+i, `"NoID"`), `"id": "`, `"not_id": "`, 1))
			kind = "validate"
		case 3:
			v = []byte{0, 0, 0x06, 0x7a, 0x3b, 2, 'x', 'y'} // schema id 424507
			kind = "decode"
		case 4:
			v = []byte(originalJSON(900_000+i, `"`+strings.Repeat("O", 600_000)+`"`))
			kind = "validate"
		case 5:
			v = []byte(strings.Replace(originalJSON(900_000+i, `"BadMail"`), `@example.com`, ` at example dot com`, 1))
			kind = "validate"
		case 6:
			v = []byte(strings.Replace(originalJSON(900_000+i, `"BadDate"`), `1972-04-16T10:36:10.290Z`, `16/04/1972`, 1))
			kind = "validate"
		case 7:
			v = []byte(originalJSON(900_000+i, `"nul\u0000name"`))
			nul++
			kind = ""
		}
		values = append(values, v)
		if kind != "" {
			kinds[kind]++
		}
	}
	// Poison goes in while the valid users flow, in ten slices.
	for i := range 10 {
		produceRaw(t, s.Kafka, values[i*len(values)/10:(i+1)*len(values)/10]...)
		time.Sleep(100 * time.Millisecond) // paces the slices over the produce
	}
	if code := prod.Wait(t, 120*time.Second); code != 0 {
		t.Fatalf("produce exited %d:\n%s", code, prod.Output())
	}
	end := time.Now()
	acked := produced(t, prod.Output())
	conv := waitCount(t, s.Sink, int(acked)+nul, end, 30*time.Second)
	wantDead := poison - nul
	dl := testwait.For(t, 20*time.Second, fmt.Sprintf("%d dead letters", wantDead), func() ([]*kgo.Record, bool) {
		dl := deadLetters(t, s.Kafka)
		return dl, len(dl) >= wantDead
	}, testwait.Every(200*time.Millisecond))
	got := map[string]int{}
	for _, r := range dl {
		got[headers(r)["userstream.error_kind"]]++
	}
	if len(dl) != wantDead || got["decode"] != kinds["decode"] || got["validate"] != kinds["validate"] {
		t.Errorf("dead letters by kind = %v (%d), want %v (%d)", got, len(dl), kinds, wantDead)
	}
	report(t, figures{Acked: acked + int64(poison), Stored: acked + int64(nul), Duplicates: duplicates(t, s.Sink),
		DeadLettered: int64(len(dl)), Converge: conv.Seconds(),
		Note: fmt.Sprintf("%d poison of %d: %v dead-lettered, %d NUL names stored", poison, int(acked)+poison, got, nul)})
}

// TestAPIFaults: the built-in API answers 30% of requests with a fault
// (20% HTTP 500/503, 10% a malformed body). The producer retries them and
// every user is produced and stored once.
func TestAPIFaults(t *testing.T) {
	skipShort(t)
	n := size(20_000, 100_000)
	s := proctest.StartStack(t)
	faulty := proctest.FreeAddr(t)
	api := proctest.Start(t, "faulty-api", "api", "--addr", faulty, "--fail-rate", "0.2", "--garbage-rate", "0.1", "--fault-seed", "7")
	proctest.WaitListening(t, api, faulty)
	worker(t, s, "stream", s.Sink)
	prod := proctest.Start(t, "produce", "produce", "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
		"--source", "http://"+faulty+"/api/", "--users", fmt.Sprint(n), "--batch-size", "500", "--request-retries", "8")
	converge(t, s, prod, s.Sink, 0, "API at 30% faults (fault seed 7), 8 retries a request")
}

// hostile serves a Random User API that misbehaves in one way.
func hostile(t *testing.T, mode string) string {
	t.Helper()
	gen := randomuser.NewGenerator()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode {
		case "slow body":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			for i := 0; i < 600 && r.Context().Err() == nil; i++ {
				_, _ = w.Write([]byte(" "))
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond) // the drip: a deliberately slow body
			}
		case "100 MB body":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"results":[{"name":{"first":"`))
			chunk := []byte(strings.Repeat("A", 1<<20))
			for i := 0; i < 100 && r.Context().Err() == nil; i++ {
				_, _ = w.Write(chunk)
			}
		case "empty results":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"results":[],"info":{"seed":"x","results":0,"page":1,"version":"1.4"}}`))
		case "markup in names":
			p := randomuser.Params{Results: 10, Seed: r.URL.Query().Get("seed"), Page: 1}
			fmt.Sscan(r.URL.Query().Get("results"), &p.Results)
			fmt.Sscan(r.URL.Query().Get("page"), &p.Page)
			resp, err := gen.Generate(p)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			for i := range resp.Results {
				resp.Results[i].Name.First = `<script>window.__xss=1</script>`
				resp.Results[i].Name.Last = `"><img src=x onerror=alert(1)>`
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(resp)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/api/"
}

// TestHostileSource: an API that trickles its body, sends 100 MB, answers
// no users for ever, or puts markup in names. Each run ends within a
// bounded time with an error that says what the source did, or, for markup,
// stores the names as the text they are.
func TestHostileSource(t *testing.T) {
	skipShort(t)
	s := proctest.StartStack(t)
	worker(t, s, "stream", s.Sink)
	cases := []struct {
		mode  string
		args  []string
		bound time.Duration
		want  string // in stderr; "" means exit 0
	}{
		{"slow body", []string{"--users", "100", "--request-timeout", "2s", "--request-retries", "1"}, 20 * time.Second, "request timeout"},
		{"100 MB body", []string{"--users", "100"}, 30 * time.Second, "larger than"},
		{"empty results", []string{"--duration", "30s"}, 15 * time.Second, "the source returned no users"},
		{"markup in names", []string{"--users", "50"}, 30 * time.Second, ""},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			args := append([]string{"produce", "--brokers", s.Kafka, "--schema-registry", s.RegistryURL(),
				"--source", hostile(t, c.mode)}, c.args...)
			ctx, cancel := context.WithTimeout(context.Background(), c.bound+30*time.Second)
			defer cancel()
			start := time.Now()
			out, errOut, code := proctest.RunContext(ctx, t, args...)
			took := time.Since(start)
			if took > c.bound {
				t.Errorf("took %.1fs, over its bound of %s", took.Seconds(), c.bound)
			}
			if c.want == "" {
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				waitCount(t, s.Sink, 50, time.Now(), 30*time.Second)
				recent, _, _ := proctest.Run(t, "users", "recent", "1", "--sink", s.Sink, "--json")
				if !strings.Contains(recent, `\u003cscript\u003ewindow.__xss=1\u003c/script\u003e`) &&
					!strings.Contains(recent, `<script>window.__xss=1</script>`) {
					t.Errorf("the stored name is not the markup as text: %s", recent)
				}
			} else {
				if code == 0 || !strings.Contains(errOut, c.want) {
					t.Errorf("exit %d, stderr does not say %q:\n%s%s", code, c.want, out, errOut)
				}
			}
			t.Logf("FIGURES %s exit=%d after %.1fs: %s", t.Name(), code, took.Seconds(), firstLine(errOut))
		})
	}
}

// TestDiskFull: the SQLite sink's disk (a small tmpfs) fills up mid-stream.
// The stream says so clearly and retries; it commits nothing past what the
// database holds; once the disk has room again it stores every user.
func TestDiskFull(t *testing.T) {
	skipShort(t)
	dir, err := os.MkdirTemp("", "userstream-chaos-full")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	s := proctest.StartStack(t)
	sinkURL := "sqlite:" + filepath.Join(dir, "users.db")
	n := size(20_000, 50_000)
	w := worker(t, s, "stream", sinkURL)
	prod := produceUsers(t, s, n, 10000)
	if code := prod.Wait(t, 120*time.Second); code != 0 {
		t.Fatalf("produce exited %d:\n%s", code, prod.Output())
	}
	w.WaitOutput(t, "full", 60*time.Second)
	// While the disk stays full, the offsets never pass what it holds (the
	// offsets are read first: a commit follows its write).
	stored := 0
	testwait.Holds(t, 2*time.Second, "committed offsets within the users stored on the full disk", func() (string, bool) {
		c := committedOffsets(t, s.Kafka, "userstream-stream")
		stored = proctest.Count(t, sinkURL)
		return fmt.Sprintf("%d offsets committed, %d users stored", c, stored), c <= int64(stored)
	}, testwait.Every(500*time.Millisecond))
	if stored >= n {
		t.Fatalf("stored %d of %d: the disk never filled; the test proves nothing", stored, n)
	}
	if w.Exited() {
		t.Fatalf("the stream stopped on a full disk:\n%s", proctest.Tail(w.Output(), 3000))
	}
	if out, err := exec.Command("mount", "-o", "remount,size=256m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	freed := time.Now()
	conv := waitCount(t, sinkURL, n, freed, 30*time.Second)
	w.Signal(syscall.SIGTERM)
	report(t, figures{Acked: int64(n), Stored: int64(n), Duplicates: duplicates(t, sinkURL),
		DeadLettered: endOffsets(t, s.Kafka, "users_created.dlq"), Converge: conv.Seconds(),
		Note: fmt.Sprintf("4 MiB tmpfs filled at %d users; nothing committed past them; all stored after it grew", stored)})
}

// committedOffsets sums a group's committed offsets on users_created.
func committedOffsets(t *testing.T, kafka, group string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(kafka, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("committed offsets of %s: %v", group, err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == "users_created" && o.At > 0 {
			sum += o.At
		}
	})
	return sum
}
