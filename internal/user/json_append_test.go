package user

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " backslash \ slash /`, "<script>&amp;</script>", "\x00\x01\b\f\n\r\t\x1f\x7f",
		"Zoë Müller", "عباس زارعی", "\u2028\u2029", "bad \xff\xfe utf8", "\xc3", "emoji 😀", "ok\xed\xa0\x80",
	} {
		want, _ := json.Marshal(s)
		if got := AppendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("AppendJSONString(%q) = %s, encoding/json gives %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a<b>&c", "\u2028", "\xff", "é\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSONString(%q) = %s, encoding/json gives %s", s, got, want)
		}
	})
}

// FuzzAppendJSON: AppendJSON writes what json.Marshal writes, for any
// strings and any instant (or refuses what json.Marshal refuses).
func FuzzAppendJSON(f *testing.F) {
	f.Add("3f2504e0-4f89-41d3-9a0c-0305e82c3301", "Zoé", "<b>&", "\u2028\xff", "", int64(1764700000123456789), "run")
	f.Add("", "", "", "", "", int64(0), "")
	f.Add("x", "\x00", "\"\\", "\t\n", "FR", int64(-62167219200000000), "")
	f.Fuzz(func(t *testing.T, id, first, last, addr, nat string, at int64, run string) {
		r := Record{ID: id, FirstName: first, LastName: last, Gender: last, Address: addr, PostCode: first,
			Email: addr, Username: id, DOB: first, RegisteredDate: last, Phone: addr, Picture: id, Nat: nat, RunID: run}
		if at != 0 {
			r.IngestedAt = time.Unix(0, at).UTC()
		}
		want, werr := json.Marshal(r)
		got, ok := AppendJSON(nil, r)
		switch {
		case !ok && werr == nil:
			t.Fatalf("AppendJSON refused %+v, which json.Marshal writes as %s", r, want)
		case ok && werr != nil:
			t.Fatalf("AppendJSON wrote %s for %+v, which json.Marshal refuses: %v", got, r, werr)
		case ok && !bytes.Equal(got, want):
			t.Fatalf("AppendJSON = %s\njson.Marshal = %s", got, want)
		}
	})
}

// TestJSONEncodeRefusesWhatMarshalRefuses: a time json.Marshal cannot write
// is an error from Encode, not a record written some other way.
func TestJSONEncodeRefusesWhatMarshalRefuses(t *testing.T) {
	r := Record{ID: "x", IngestedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if b, err := (JSON{}).Encode(r); err == nil {
		t.Fatalf("Encode of year 10000 = %s, want json.Marshal's error", b)
	}
	r.IngestedAt = time.Date(2026, 12, 2, 23, 0, 0, 5, time.FixedZone("X", 3600))
	got, err := (JSON{}).Encode(r)
	want, _ := json.Marshal(r)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Encode = %s, %v; want %s", got, err, want)
	}
}

// go test -run '^$' -bench JSONEncode ./internal/user/
func BenchmarkJSONEncode(b *testing.B) {
	r := Record{ID: "3f2504e0-4f89-41d3-9a0c-0305e82c3301", FirstName: "Zoé", LastName: "Martin", Gender: "female",
		Address: "12 rue de la Paix, Paris, Île-de-France, France", PostCode: "75002", Email: "zoe.martin@example.com",
		Username: "bluecat123", DOB: "1990-04-12T08:15:30.123Z", RegisteredDate: "2015-06-01T10:00:00.000Z",
		Phone: "01-23-45-67-89", Picture: "https://randomuser.me/api/portraits/med/women/12.jpg", Nat: "FR",
		IngestedAt: time.Now().UTC(), RunID: "scheduled__2026-12-02T23:00:00+00:00"}
	for _, road := range []struct {
		name string
		enc  func(Record) ([]byte, error)
	}{{"append", JSON{}.Encode}, {"encoding-json", func(r Record) ([]byte, error) { return json.Marshal(r) }}} {
		b.Run("road="+road.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := road.enc(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
