package randomuser

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary bodies to Decode. It must never panic; every
// failure must be an *APIError or a *DecodeError (ErrMalformed); and a body
// that decodes must re-encode to JSON that decodes to the same value; and
// the fast road (fastDecode) must give what encoding/json gives.
func FuzzDecode(f *testing.F) {
	for _, raw := range referenceResponses(f) {
		f.Add([]byte(raw))
		if len(raw) > 40 {
			f.Add([]byte(raw[:len(raw)/2])) // truncated, as the fault server sends
		}
	}
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `"x"`, `{"results":null}`, `{"results":{}}`, `{"results":[null]}`,
		`{"results":[{"name":"x"}]}`, `{"results":[{"location":{"postcode":true}}]}`,
		`{"results":[{"location":{"postcode":-1.5e3}}]}`, `{"results":[{"location":{"postcode":"0805"}}]}`,
		`{"results":[{"id":{"name":"","value":null}}]}`, `{"error":"Uh oh"}`, `{"error":""}`,
		`{"results":[]} trailing`, "{\"results\":[{\"name\":{\"first\":\"\xff\"}}]}",
		`{"RESULTS":[{"NAT":"fr"}],"info":{"page":1e2}}`, `{"results":[{"dob":{"age":99999999999999999999}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Decode(bytes.NewReader(body))
		// The fast road (fastDecode) gives what encoding/json gives.
		slow, slowErr := decodeWith(body, false)
		if fmt.Sprint(err) != fmt.Sprint(slowErr) || !reflect.DeepEqual(r, slow) {
			t.Fatalf("the fast decoder disagrees with encoding/json:\n fast %v %+v\n slow %v %+v", err, r, slowErr, slow)
		}
		if err != nil {
			var apiErr *APIError
			if !errors.As(err, &apiErr) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %T %v is neither an *APIError nor ErrMalformed", err, err)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if r.Results == nil || r.Error != "" {
			t.Fatalf("successful decode with results %v, error %q", r.Results, r.Error)
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", r, err)
		}
		r2, err := Decode(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("decode of re-encoded %s: %v", again, err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed the response:\nfirst  %+v\nsecond %+v\nvia %s", r, r2, again)
		}
	})
}
