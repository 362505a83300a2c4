package randomuser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// wantJSONError checks a JSON {"error": "..."} body with the status.
func wantJSONError(t *testing.T, resp *http.Response, body []byte, status int, contains string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON", ct)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, contains) {
		t.Fatalf("body %s: want {\"error\": ...%s...} (%v)", body, contains, err)
	}
}

func TestHandlerServesGenerator(t *testing.T) {
	g := testGenerator()
	srv := httptest.NewServer(NewHandler(WithGenerator(g)))
	defer srv.Close()

	want := writeBytes(t, g, Params{Results: 25, Seed: "h", Page: 3, Nat: []string{"fr"}})
	for _, path := range []string{"/api/", "/api", "/api/1.4/", "/api/1.4"} {
		resp, body := get(t, srv.URL+path+"?results=25&seed=h&page=3&nat=FR")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", path, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("%s: Content-Type %q", path, ct)
		}
		if !bytes.Equal(body, want) {
			t.Fatalf("%s: body differs from the generator's output for the same parameters", path)
		}
	}
	// The Must-show requests.
	_, a := get(t, srv.URL+"/api/?results=5000&seed=abc")
	_, b := get(t, srv.URL+"/api/?results=5000&seed=abc")
	if !bytes.Equal(a, b) {
		t.Fatal("the same URL twice gave different bytes")
	}
	if n := len(resultsOf(t, decodeGeneric(t, a))); n != 5000 {
		t.Fatalf("results=5000 gave %d users", n)
	}
	for _, q := range []string{"results=0", "results=5001"} {
		_, body := get(t, srv.URL+"/api/?"+q)
		if n := len(resultsOf(t, decodeGeneric(t, body))); n != 1 {
			t.Fatalf("%s gave %d users, want 1", q, n)
		}
	}
	resp, body := get(t, srv.URL+"/api/?results=3&format=csv&seed=c")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") || bytes.Count(body, []byte("\n")) != 4 {
		t.Fatalf("csv: Content-Type %q, %d lines", ct, bytes.Count(body, []byte("\n")))
	}
}

func TestHandlerErrors(t *testing.T) {
	srv := httptest.NewServer(NewHandler())
	defer srv.Close()

	resp, body := get(t, srv.URL+"/api/?nat=xx")
	wantJSONError(t, resp, body, http.StatusBadRequest, `nat "xx"`)
	resp, body = get(t, srv.URL+"/api/?inc=name,bogus")
	wantJSONError(t, resp, body, http.StatusBadRequest, `"bogus"`)
	resp, body = get(t, srv.URL+"/api/?format=html")
	wantJSONError(t, resp, body, http.StatusBadRequest, "format")
	resp, body = get(t, srv.URL+"/users")
	wantJSONError(t, resp, body, http.StatusNotFound, "/api/")

	r, err := http.Post(srv.URL+"/api/", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(r.Body)
	r.Body.Close()
	wantJSONError(t, r, body, http.StatusMethodNotAllowed, "GET")
	if r.Header.Get("Allow") == "" {
		t.Fatal("405 without an Allow header")
	}
}

func TestHandlerFaults(t *testing.T) {
	const n = 40
	g := testGenerator()
	clean := writeBytes(t, g, Params{Results: 5, Seed: "f"})
	url := "/api/?results=5&seed=f"

	t.Run("fail rate 1", func(t *testing.T) {
		srv := httptest.NewServer(NewHandler(WithGenerator(g), WithFailRate(1), WithFaultSeed(1)))
		defer srv.Close()
		seen := map[int]int{}
		for range n {
			resp, body := get(t, srv.URL+url)
			if resp.StatusCode != 500 && resp.StatusCode != 503 {
				t.Fatalf("status %d, want 500 or 503", resp.StatusCode)
			}
			wantJSONError(t, resp, body, resp.StatusCode, "injected fault")
			seen[resp.StatusCode]++
		}
		if seen[500] == 0 || seen[503] == 0 {
			t.Fatalf("statuses %v: want both 500 and 503", seen)
		}
	})
	t.Run("garbage rate 1", func(t *testing.T) {
		srv := httptest.NewServer(NewHandler(WithGenerator(g), WithGarbageRate(1), WithFaultSeed(2)))
		defer srv.Close()
		kinds := map[string]int{}
		for range n {
			resp, body := get(t, srv.URL+url)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200 with a bad body", resp.StatusCode)
			}
			var r Response
			if err := json.Unmarshal(body, &r); err == nil {
				t.Fatalf("garbage body decoded fine: %.100s", body)
			}
			if _, err := Decode(bytes.NewReader(body)); err == nil {
				t.Fatal("the client's decoder accepted a garbage body")
			}
			switch {
			case bytes.HasPrefix(clean, body):
				kinds["truncated"]++
			case bytes.Contains(body, []byte("<html>")):
				kinds["html"]++
			default:
				t.Fatalf("garbage is neither a truncated response nor HTML: %.100s", body)
			}
		}
		if kinds["truncated"] == 0 || kinds["html"] == 0 {
			t.Fatalf("garbage kinds %v: want both", kinds)
		}
	})
	t.Run("rates 0", func(t *testing.T) {
		srv := httptest.NewServer(NewHandler(WithGenerator(g), WithFailRate(0), WithGarbageRate(0)))
		defer srv.Close()
		for range n {
			resp, body := get(t, srv.URL+url)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, clean) {
				t.Fatalf("status %d, body differs: %v", resp.StatusCode, !bytes.Equal(body, clean))
			}
		}
	})
	t.Run("half the requests, replayable, data untouched", func(t *testing.T) {
		run := func() []int {
			srv := httptest.NewServer(NewHandler(WithGenerator(g), WithFailRate(0.3), WithGarbageRate(0.3), WithFaultSeed(42)))
			defer srv.Close()
			var statuses []int
			for range n {
				resp, body := get(t, srv.URL+url)
				code := resp.StatusCode
				if code == http.StatusOK && resp.Header.Get("X-Userstream-Fault") == "" {
					if !bytes.Equal(body, clean) {
						t.Fatal("a request without a fault got other users than the generator gives")
					}
				} else if code == http.StatusOK {
					code = -1 // garbage
				}
				statuses = append(statuses, code)
			}
			return statuses
		}
		a, b := run(), run()
		if !slices.Equal(a, b) {
			t.Fatalf("the same fault seed gave different fault sequences:\n%v\n%v", a, b)
		}
		counts := map[bool]int{}
		for _, s := range a {
			counts[s == http.StatusOK]++
		}
		if counts[true] == 0 || counts[false] == 0 {
			t.Fatalf("at rates 0.3/0.3 over %d requests: %d clean, %d faulty", n, counts[true], counts[false])
		}
	})
	t.Run("latency", func(t *testing.T) {
		const d = 60 * time.Millisecond
		srv := httptest.NewServer(NewHandler(WithGenerator(g), WithLatency(d)))
		defer srv.Close()
		start := time.Now()
		resp, body := get(t, srv.URL+url)
		if took := time.Since(start); took < d {
			t.Fatalf("answered after %v, before the %v latency", took, d)
		}
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, clean) {
			t.Fatal("latency changed the response")
		}
	})
}

// TestHandlerConcurrent runs requests in parallel (run with -race): each
// gets the users of its own seed, whatever runs beside it.
func TestHandlerConcurrent(t *testing.T) {
	g := testGenerator()
	srv := httptest.NewServer(NewHandler(WithGenerator(g), WithGarbageRate(0.2), WithFaultSeed(3)))
	defer srv.Close()
	want := map[string][]byte{}
	seeds := []string{"a", "b", "c", "d"}
	for _, s := range seeds {
		want[s] = writeBytes(t, g, Params{Results: 300, Seed: s})
	}
	errs := make(chan error, 32)
	for i := range 32 {
		go func() {
			s := seeds[i%len(seeds)]
			resp, err := http.Get(srv.URL + "/api/?results=300&seed=" + s)
			if err != nil {
				errs <- err
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.Header.Get("X-Userstream-Fault") == "" && !bytes.Equal(body, want[s]) {
				err = fmt.Errorf("seed %s: body differs from the generator's", s)
			}
			errs <- err
		}()
	}
	for range 32 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
