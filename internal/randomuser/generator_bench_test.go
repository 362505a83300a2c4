package randomuser

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkGenerate measures users generated and encoded as JSON per second
// on one goroutine, 5000 users per request (the API's largest page).
func BenchmarkGenerate(b *testing.B) {
	for _, bc := range []struct {
		name string
		p    Params
	}{
		{"json", Params{Results: MaxResults, Seed: "bench"}},
		{"json-generated-passwords", Params{Results: MaxResults, Seed: "bench", Password: "upper,lower,number,8-16"}},
		{"csv", Params{Results: MaxResults, Seed: "bench", Format: "csv"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := NewGenerator()
			users := 0
			for b.Loop() {
				if err := g.WriteResponse(io.Discard, bc.p); err != nil {
					b.Fatal(err)
				}
				users += bc.p.Results
			}
			b.ReportMetric(float64(users)/b.Elapsed().Seconds(), "users/s")
		})
	}
}

// BenchmarkGenerateStructs measures Generate, which returns []User without
// encoding.
func BenchmarkGenerateStructs(b *testing.B) {
	g := NewGenerator()
	users := 0
	for b.Loop() {
		if _, err := g.Generate(Params{Results: MaxResults, Seed: "bench"}); err != nil {
			b.Fatal(err)
		}
		users += MaxResults
	}
	b.ReportMetric(float64(users)/b.Elapsed().Seconds(), "users/s")
}

// BenchmarkHTTP measures users per second served as JSON over HTTP by the
// handler (httptest server on loopback, results=5000 per request, body read
// in full by a Go client).
func BenchmarkHTTP(b *testing.B) {
	srv := httptest.NewServer(NewHandler())
	defer srv.Close()
	url := srv.URL + "/api/?results=5000&seed=bench"
	users, bytes := 0, int64(0)
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		users += MaxResults
		bytes += n
	}
	b.SetBytes(bytes / int64(b.N))
	b.ReportMetric(float64(users)/b.Elapsed().Seconds(), "users/s")
}
