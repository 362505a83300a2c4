package user

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeJSON feeds arbitrary messages to the decoder of the original
// pipeline's JSON (and ours). It must never panic, every failure must say
// something, and a message that decodes must survive our own encoding: the
// record encoded and decoded again is the same record.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"id": "6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e10", "first_name": "Kenneth", "last_name": "Fields", "gender": "male",
		"address": "2494 Lone Wolf Trail, Adelaide, Queensland, Australia", "post_code": 1395,
		"email": "kenneth.fields@example.com", "username": "smallmouse740",
		"dob": "1972-04-16T10:36:10.290Z", "registered_date": "2018-10-21T00:27:38.583Z",
		"phone": "00-7601-9760", "picture": "https://randomuser.me/api/portraits/med/men/68.jpg"}`,
		`{"id":"x","post_code":"SW1 1AA"}`, `{"post_code":-1.5e3}`, `{"post_code":null}`, `{"post_code":true}`,
		`{"first_name":"a\u0000b"}`, `null`, `[]`, ``, "\x00\x00\x00\x00\x01", `{} {}`, `{"nat":"FR","ingested_at":"2026-01-01T00:00:00Z"}`,
		`{"ingested_at":"not a time"}`, "{\"first_name\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeJSON(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		_ = r.Validate() // must not panic either
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("encode %+v: %v", r, err)
		}
		r2, err := DecodeJSON(again)
		if err != nil {
			t.Fatalf("decode of our own encoding %s: %v", again, err)
		}
		if !reflect.DeepEqual(r, r2) && !(r.IngestedAt.Equal(r2.IngestedAt) && sameButTime(r, r2)) {
			t.Fatalf("round trip changed the record:\nfirst  %+v\nsecond %+v", r, r2)
		}
	})
}

func sameButTime(a, b Record) bool {
	a.IngestedAt = b.IngestedAt
	return reflect.DeepEqual(a, b)
}
