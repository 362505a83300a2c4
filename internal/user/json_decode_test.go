package user

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeJSONFast is differential: wherever the fast road takes a
// message, encoding/json must take it too and read the same record.
func FuzzDecodeJSONFast(f *testing.F) {
	r := sampleRecord()
	ours, _ := AppendJSON(nil, r)
	for _, s := range []string{
		string(ours), originalShape,
		`{}`, ` { } `, `{"post_code":1,"post_code":null}`, `{"post_code":null,"post_code":"7"}`,
		`{"post_code":-0}`, `{"post_code":01}`, `{"post_code":1.5}`, `{"post_code":1e3}`, `{"post_code":-}`,
		`{"first_name":null}`, `{"first_name":"a","first_name":null}`, `{"ingested_at":null}`,
		`{"ingested_at":"2026-01-01T00:00:00Z"}`, `{"ingested_at":"2026-01-01T00:00:00+01:00"}`,
		`{"ingested_at":"2026-13-01T00:00:00Z"}`, `{"First_Name":"x"}`, `{"unknown":"x"}`,
		`{"id":"a",}`, `{"id":"a"} x`, `{"id":"a\"b"}`, "{\"id\":\"\xff\"}", `{"id":"é"}`,
		"{\"id\":\"a\tb\"}", `{"nat":nullx}`, `{"id" "a"}`, `{"id":"a" "b":"c"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeJSONFast(b)
		if !ok {
			return
		}
		std, err := decodeJSONStd(b)
		if err != nil {
			t.Fatalf("the fast road took %q, encoding/json refuses it: %v", b, err)
		}
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("%q:\nfast %+v\nstd  %+v", b, fast, std)
		}
	})
}

// originalShape is a message as the original pipeline's producer wrote it
// (json.dumps: a space after each separator, post_code a number).
const originalShape = `{"id": "6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e10", "first_name": "Kenneth", "last_name": "Fields", ` +
	`"gender": "male", "address": "2494 Lone Wolf Trail, Adelaide, Queensland, Australia", "post_code": 1395, ` +
	`"email": "kenneth.fields@example.com", "username": "smallmouse740", "dob": "1972-04-16T10:36:10.290Z", ` +
	`"registered_date": "2018-10-21T00:27:38.583Z", "phone": "00-7601-9760", ` +
	`"picture": "https://randomuser.me/api/portraits/med/men/68.jpg"}`

func sampleRecord() Record {
	return Record{ID: "6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e10", FirstName: "Ayşe", LastName: "Öztürk", Gender: "female",
		Address: "4517 Atatürk Sk, Kırklareli, Bitlis, Turkey", PostCode: "22571", Email: "ayse.ozturk@example.com",
		Username: "bluebird310", DOB: "1961-07-09T03:12:46.101Z", RegisteredDate: "2010-03-05T18:20:31.452Z",
		Phone: "(744)-205-1148", Picture: "https://randomuser.me/api/portraits/med/women/12.jpg", Nat: "TR",
		IngestedAt: time.Date(2026, 12, 3, 6, 40, 1, 123456789, time.UTC), RunID: "manual__2026-12-03T06:40:00Z"}
}

// TestFastDecodeTakesWhatProducersWrite: the fast road must take what our
// encoder writes (non-ASCII names included) and the original producer's
// shape, or its speed is never used.
func TestFastDecodeTakesWhatProducersWrite(t *testing.T) {
	r := sampleRecord()
	ours, ok := AppendJSON(nil, r)
	if !ok {
		t.Fatal("AppendJSON refused the sample")
	}
	for name, b := range map[string][]byte{"ours": ours, "original": []byte(originalShape),
		"ours, pretty": []byte(strings.ReplaceAll(string(ours), `","`, "\",\n  \""))} {
		got, ok := decodeJSONFast(b)
		if !ok {
			t.Errorf("%s: the fast road refused %s", name, b)
			continue
		}
		want, err := decodeJSONStd(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fast %+v, std %+v (%v)", name, got, want, err)
		}
	}
	if got, _ := decodeJSONFast(ours); !reflect.DeepEqual(got, r) {
		t.Errorf("ours read back as %+v, want %+v", got, r)
	}
}

// go test -run '^$' -bench DecodeJSON ./internal/user/
func BenchmarkDecodeJSON(b *testing.B) {
	ours, _ := AppendJSON(nil, sampleRecord())
	for _, bc := range []struct {
		name string
		f    func([]byte) (Record, error)
	}{{"fast", DecodeJSON}, {"encoding-json", decodeJSONStd}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.f(ours); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
