package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/testwait"
)

// apiOut is a goroutine-safe buffer for a command running in the background.
type apiOut struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *apiOut) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *apiOut) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func TestAPISample(t *testing.T) {
	sample := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"api", "sample"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errOut := sample("--results", "3", "--seed", "x", "--nat", "fr")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "\n  \"results\": [\n") {
		t.Fatalf("not pretty JSON:\n%.200s", out)
	}
	var resp randomuser.Response
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 3 || resp.Info == nil || resp.Info.Seed != "x" {
		t.Fatalf("got %d users, info %+v; want 3 users with seed x", len(resp.Results), resp.Info)
	}
	for _, u := range resp.Results {
		if u.Nat != "FR" {
			t.Fatalf("nat %q, want FR", u.Nat)
		}
	}
	if _, again, _ := sample("--results", "3", "--seed", "x", "--nat", "fr"); again != out {
		t.Fatal("the same seed printed other users")
	}
	if _, page2, _ := sample("--results", "3", "--seed", "x", "--nat", "fr", "--page", "2"); page2 == out {
		t.Fatal("page 2 printed the users of page 1")
	}
	// The flags' environment variables work too.
	t.Setenv("USERSTREAM_SEED", "x")
	t.Setenv("USERSTREAM_NAT", "fr")
	if _, env, _ := sample(); env != out {
		t.Fatal("USERSTREAM_SEED/USERSTREAM_NAT did not give the same users as the flags")
	}

	for _, bad := range [][]string{{"--nat", "xx"}, {"--format", "html"}, {"extra"}} {
		code, _, errOut := sample(bad...)
		if code != 2 || !strings.Contains(errOut, "userstream:") {
			t.Errorf("%v: exit %d (%s), want usage error 2", bad, code, errOut)
		}
	}
}

func TestAPIServe(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb apiOut
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"api", "--addr", addr}, &out, &errb) }()

	url := "http://" + addr + "/api/?results=7&seed=abc&nat=fr"
	var body []byte
	testwait.For(t, 10*time.Second, "the API to answer", func() (string, bool) {
		resp, err := http.Get(url)
		if err != nil {
			return fmt.Sprintf("%v; stderr: %s", err, errb.String()), false
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.Status, true
	}, testwait.Every(20*time.Millisecond))
	var resp randomuser.Response
	if err := json.Unmarshal(body, &resp); err != nil || len(resp.Results) != 7 || resp.Results[0].Nat != "FR" {
		t.Fatalf("GET %s: %d users, err %v", url, len(resp.Results), err)
	}
	if !strings.Contains(errb.String(), addr) {
		t.Errorf("the log does not name the address %s: %s", addr, errb.String())
	}

	// A second server on the same port fails with a clear error.
	var errb2 bytes.Buffer
	if code := run(context.Background(), []string{"api", "--addr", addr}, io.Discard, &errb2); code != 1 || !strings.Contains(errb2.String(), "--addr") {
		t.Errorf("busy port: exit %d, stderr %q; want 1 and a hint about --addr", code, errb2.String())
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after cancel: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after its context ended")
	}
}

func TestAPIFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"api", "--fail-rate", "1.5"},
		{"api", "--garbage-rate", "-0.1"},
		{"api", "--latency", "-1s"},
		{"api", "--latency", "soon"},
	} {
		var errb bytes.Buffer
		if code := run(context.Background(), args, io.Discard, &errb); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, errb.String())
		}
	}
}
