package randomuser

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// bigBody returns a 5000-user response built from the reference users.
func bigBody(b *testing.B) []byte {
	b.Helper()
	var users []User
	for _, raw := range referenceResponses(b) {
		r, err := Decode(bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		users = append(users, r.Results...)
	}
	resp := Response{Info: &Info{Seed: "bench", Results: MaxResults, Page: 1, Version: Version}}
	for len(resp.Results) < MaxResults {
		resp.Results = append(resp.Results, users[len(resp.Results)%len(users)])
	}
	body, err := json.Marshal(resp)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkDecode measures decoding a full 5000-user response, by the
// fast road (what Decode takes) and by encoding/json alone (where Decode
// falls back).
func BenchmarkDecode(b *testing.B) {
	body := bigBody(b)
	for _, road := range []struct {
		name string
		fast bool
	}{{"fast", true}, {"encoding-json", false}} {
		b.Run("road="+road.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeWith(body, road.fast); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*MaxResults)/b.Elapsed().Seconds(), "users/s")
		})
	}
}

// BenchmarkClientGet measures Get of 5000 users over HTTP on 127.0.0.1
// from a server that sends a prepared body: the client's cost, not the
// generator's.
func BenchmarkClientGet(b *testing.B) {
	body := bigBody(b)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) }))
	b.Cleanup(srv.Close)
	c, err := NewClient(srv.URL + "/api/")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(b.Context(), Params{Results: MaxResults}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*MaxResults)/b.Elapsed().Seconds(), "users/s")
}
