// Package schematest holds what the tests of the Avro serde and of the
// embedded registry share: a sample record, schema variants, and a
// registry and serde that clean up after the test.
package schematest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/schema/registry"
	"github.com/userstream/userstream/internal/user"
)

// Sample is a full record, its id made unique by i.
func Sample(i int) user.Record {
	return user.Record{
		ID:             fmt.Sprintf("6f1b2c3d-4e5f-4a6b-8c7d-%012d", i),
		FirstName:      "Jeanne",
		LastName:       "Müller",
		Gender:         "female",
		Address:        "4821 Rue de l'Abbé-Groult, Rennes, Loire-Atlantique, France",
		PostCode:       "35042",
		Email:          "jeanne.muller@example.com",
		Username:       "tinybird815",
		DOB:            "1987-03-14T08:21:55.123Z",
		RegisteredDate: "2011-09-02T17:44:10.511Z",
		Phone:          "02-41-15-28-67",
		Picture:        "https://randomuser.me/api/portraits/med/women/17.jpg",
		Nat:            "FR",
		IngestedAt:     time.Date(2026, 11, 24, 23, 50, 1, 987654321, time.UTC),
		RunID:          "manual__2026-11-24T23:50:00",
	}
}

// V2Schema is the embedded schema plus an optional field with a default.
func V2Schema(t testing.TB) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(schema.UserSchema()), &m); err != nil {
		t.Fatal(err)
	}
	m["fields"] = append(m["fields"].([]any), map[string]any{
		"name": "middle_name", "type": []any{"null", "string"}, "default": nil,
	})
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// WithField returns the embedded schema with field name replaced by (or, if
// absent, extended with) def.
func WithField(t testing.TB, name string, def map[string]any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(schema.UserSchema()), &m); err != nil {
		t.Fatal(err)
	}
	fields := m["fields"].([]any)
	replaced := false
	for i, f := range fields {
		if f.(map[string]any)["name"] == name {
			fields[i], replaced = def, true
		}
	}
	if !replaced {
		fields = append(fields, def)
	}
	m["fields"] = fields
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// NewClient is a Schema Registry client for url; failing to build one fails t.
func NewClient(t testing.TB, url string) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// NewSerde is schema.NewSerde on cl; an error fails t.
func NewSerde(t testing.TB, cl *sr.Client, opts ...schema.Option) *schema.Serde {
	t.Helper()
	s, err := schema.NewSerde(t.Context(), cl, opts...)
	if err != nil {
		t.Fatalf("NewSerde: %v", err)
	}
	return s
}

// StartRegistry starts an embedded registry on a free port of 127.0.0.1,
// keeping its state in dir ("" = in memory), and closes it when t ends.
func StartRegistry(t testing.TB, dir string) *registry.Server {
	t.Helper()
	reg, err := registry.Start(t.Context(), "127.0.0.1:0", dir)
	if err != nil {
		t.Fatalf("StartRegistry: %v", err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	return reg
}

// WantRecord is what a record looks like after an Avro round trip:
// ingested_at has millisecond precision.
func WantRecord(r user.Record) user.Record {
	r.IngestedAt = r.IngestedAt.Truncate(time.Millisecond)
	return r
}
