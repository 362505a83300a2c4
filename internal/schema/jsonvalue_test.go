package schema_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/schema/schematest"
)

func TestEncodeJSON(t *testing.T) {
	s := schematest.NewSerde(t, schematest.NewClient(t, newFakeRegistry(t).srv.URL))
	want := schematest.Sample(4)
	want.IngestedAt = time.Date(2026, 12, 6, 21, 0, 0, 123e6, time.UTC)
	doc := map[string]any{"id": want.ID, "first_name": want.FirstName, "last_name": want.LastName, "gender": want.Gender,
		"address": want.Address, "post_code": want.PostCode, "email": want.Email, "username": want.Username, "dob": want.DOB,
		"registered_date": want.RegisteredDate, "phone": want.Phone, "picture": want.Picture, "nat": want.Nat,
		"ingested_at": "2026-12-06T21:00:00.123Z", "run_id": want.RunID}
	b, _ := json.Marshal(doc)
	enc, err := s.EncodeJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got != schematest.WantRecord(want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	// Epoch milliseconds read alike, and a field with a default may be left out.
	doc["ingested_at"] = json.Number("1796590800123")
	delete(doc, "nat")
	b, _ = json.Marshal(doc)
	if enc, err = s.EncodeJSON(b); err != nil {
		t.Fatal(err)
	}
	if got, err = s.Decode(enc); err != nil || got.IngestedAt.UnixMilli() != 1796590800123 || got.Nat != "" {
		t.Fatalf("decoded %+v, %v", got, err)
	}

	for _, tc := range []struct {
		name, value, says string
	}{
		{"a field of the wrong type", `"email": 42`, `field email: want a string, got a number`},
		{"a time that is not one", `"ingested_at": "yesterday"`, `field ingested_at: "yesterday" is not an RFC 3339 time`},
		{"a field the schema lacks", `"age": 3`, `field age: not in the schema`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			k, v, _ := strings.Cut(tc.value, ": ")
			var jv any
			_ = json.Unmarshal([]byte(v), &jv)
			m[strings.Trim(k, `"`)] = jv
			bad, _ := json.Marshal(m)
			_, err := s.EncodeJSON(bad)
			if !errors.Is(err, schema.ErrValueMismatch) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err %v, want ErrValueMismatch saying %q", err, tc.says)
			}
		})
	}
	t.Run("a field without a default missing", func(t *testing.T) {
		_, err := s.EncodeJSON([]byte(`{"id": "x"}`))
		if !errors.Is(err, schema.ErrValueMismatch) || !strings.Contains(err.Error(), "field first_name: missing") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("not JSON", func(t *testing.T) {
		if _, err := s.EncodeJSON([]byte(`{"id": `)); err == nil || !strings.Contains(err.Error(), "not JSON") {
			t.Fatalf("err %v", err)
		}
	})
}
