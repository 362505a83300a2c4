package user

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", 513)
	tests := []struct {
		name   string
		edit   func(r *Record)
		fields []string // the fields named in the error, in order; nil = valid
	}{
		{"valid", func(*Record) {}, nil},
		{"original shape without nat, ingested_at, run_id", func(r *Record) { r.Nat, r.IngestedAt, r.RunID = "", time.Time{}, "" }, nil},
		{"gender may be empty", func(r *Record) { r.Gender = "" }, nil},
		{"upper-case uuid", func(r *Record) { r.ID = strings.ToUpper(r.ID) }, nil},
		{"empty id", func(r *Record) { r.ID = "" }, []string{"id"}},
		{"uuid without dashes", func(r *Record) { r.ID = strings.ReplaceAll(r.ID, "-", "") }, []string{"id"}},
		{"empty first name", func(r *Record) { r.FirstName = "  " }, []string{"first_name"}},
		{"empty last name", func(r *Record) { r.LastName = "" }, []string{"last_name"}},
		{"empty email", func(r *Record) { r.Email = "" }, []string{"email"}},
		{"empty username", func(r *Record) { r.Username = "" }, []string{"username"}},
		{"bad gender", func(r *Record) { r.Gender = "robot" }, []string{"gender"}},
		{"bad email", func(r *Record) { r.Email = "Kenneth <kenneth.fields@example.com>" }, []string{"email"}},
		{"email without at", func(r *Record) { r.Email = "kenneth" }, []string{"email"}},
		{"dob not ISO", func(r *Record) { r.DOB = "16/04/1972" }, []string{"dob"}},
		{"registered not ISO", func(r *Record) { r.RegisteredDate = "yesterday" }, []string{"registered_date"}},
		{"picture not http", func(r *Record) { r.Picture = "ftp://x/y.jpg" }, []string{"picture"}},
		{"picture relative", func(r *Record) { r.Picture = "portraits/1.jpg" }, []string{"picture"}},
		{"nat too long", func(r *Record) { r.Nat = "AUST" }, []string{"nat"}},
		{"address too long", func(r *Record) { r.Address = long }, []string{"address"}},
		{"post code too long", func(r *Record) { r.PostCode = long }, []string{"post_code"}},
		{"several at once", func(r *Record) { r.ID, r.FirstName, r.DOB = "x", "", "never" },
			[]string{"id", "first_name", "dob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRecord()
			tt.edit(&r)
			err := r.Validate()
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want an error matching ErrInvalid", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %T, want *ValidationError", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
				if f.Reason == "" {
					t.Errorf("field %s has no reason", f.Field)
				}
				if !strings.Contains(err.Error(), f.Field+": "+f.Reason) {
					t.Errorf("message %q does not name %s", err, f.Field)
				}
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("fields %v, want %v (%v)", got, tt.fields, err)
			}
			if ve.ID != r.ID {
				t.Errorf("error names id %q, want %q", ve.ID, r.ID)
			}
		})
	}
}

func TestJSONRoundTripOurShape(t *testing.T) {
	var codec JSON
	for _, r := range []Record{validRecord(), {ID: validRecord().ID, FirstName: "A", PostCode: "0805"}} {
		b, err := codec.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := codec.Decode(b)
		if err != nil {
			t.Fatalf("Decode(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v\nvia %s", got, r, b)
		}
	}
	// Our shape carries the extra columns under these names.
	b, _ := codec.Encode(validRecord())
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "first_name", "last_name", "gender", "address", "post_code", "email",
		"username", "dob", "registered_date", "phone", "picture", "nat", "ingested_at", "run_id"} {
		if _, ok := m[k]; !ok {
			t.Errorf("encoded record has no %q: %s", k, b)
		}
	}
	if m["post_code"] != "1395" {
		t.Errorf("post_code encoded as %#v, want the string \"1395\"", m["post_code"])
	}
}

// TestDecodeJSONOriginalShape reads records as the original pipeline's
// producer wrote them: no nat/ingested_at/run_id, post_code a number for
// most nationalities.
func TestDecodeJSONOriginalShape(t *testing.T) {
	const orig = `{"id": "0b6c4a52-3c1e-4d55-9a5b-2f4a7b1c9e10", "first_name": "Kenneth", "last_name": "Fields",
		"gender": "male", "address": "2494 Lone Wolf Trail, Adelaide, Queensland, Australia", "post_code": %s,
		"email": "kenneth.fields@example.com", "username": "smallmouse740", "dob": "1972-04-16T10:36:10.290Z",
		"registered_date": "2018-10-21T00:27:38.583Z", "phone": "00-7601-9760",
		"picture": "https://randomuser.me/api/portraits/med/men/68.jpg"}`
	tests := []struct{ postCode, want string }{
		{`2000`, "2000"},
		{`"M9R 6A5"`, "M9R 6A5"},
		{`"0805"`, "0805"},
		{`null`, ""},
		{`91035.0`, "91035.0"},
	}
	for _, tt := range tests {
		r, err := DecodeJSON([]byte(strings.Replace(orig, "%s", tt.postCode, 1)))
		if err != nil {
			t.Fatalf("post_code %s: %v", tt.postCode, err)
		}
		if r.PostCode != tt.want {
			t.Errorf("post_code %s -> %q, want %q", tt.postCode, r.PostCode, tt.want)
		}
		if r.ID != "0b6c4a52-3c1e-4d55-9a5b-2f4a7b1c9e10" || r.FirstName != "Kenneth" || r.DOB != "1972-04-16T10:36:10.290Z" ||
			r.Nat != "" || !r.IngestedAt.IsZero() || r.RunID != "" {
			t.Errorf("post_code %s: decoded %+v", tt.postCode, r)
		}
		if tt.want != "" {
			if err := r.Validate(); err != nil {
				t.Errorf("original-shape record does not validate: %v", err)
			}
		}
	}
	// Unknown fields from newer producers are ignored.
	r, err := DecodeJSON([]byte(`{"id":"0b6c4a52-3c1e-4d55-9a5b-2f4a7b1c9e10","first_name":"A","schema_v":3,"extra":{"x":[1]}}`))
	if err != nil || r.FirstName != "A" {
		t.Errorf("unknown fields: %+v, %v", r, err)
	}
}

func TestDecodeJSONGarbage(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"empty", ``, "want a JSON object"},
		{"whitespace", "  \n", "want a JSON object"},
		{"null", `null`, "want a JSON object"},
		{"array", `[{"id":"x"}]`, "want a JSON object"},
		{"string", `"{}"`, "want a JSON object"},
		{"avro bytes", "\x00\x00\x00\x00\x01\x02", "Avro in the Confluent wire format"},
		{"truncated", `{"id":"0b6c4a52-3c1e-4d55-9a5b-2f4a7b1c9e10","first_name":"Ken`, "decode user JSON"},
		{"trailing object", `{"first_name":"A"}{"first_name":"B"}`, "trailing data"},
		{"trailing bracket", `{"first_name":"A"}]`, "trailing data"},
		{"post_code a bool", `{"post_code":true}`, "post_code"},
		{"post_code an object", `{"post_code":{"v":1}}`, "post_code"},
		{"first_name a number", `{"first_name":5}`, "first_name"},
		{"ingested_at not a time", `{"ingested_at":"yesterday"}`, "decode user JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeJSON([]byte(tt.body))
			if err == nil {
				t.Fatalf("DecodeJSON(%q) = %+v, want an error", tt.body, r)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if r != (Record{}) {
				t.Errorf("partial record returned with the error: %+v", r)
			}
		})
	}
}

func validRecord() Record {
	return Record{
		ID: "9313706e-d4de-4d85-bcc9-b7da0ca02fba", FirstName: "Kenneth", LastName: "Fields", Gender: "male",
		Address: "2494 Lone Wolf Trail, Adelaide, Queensland, Australia", PostCode: "1395",
		Email: "kenneth.fields@example.com", Username: "smallmouse740", DOB: "1972-04-16T10:36:10.290Z",
		RegisteredDate: "2018-10-21T00:27:38.583Z", Phone: "00-7601-9760",
		Picture: "https://randomuser.me/api/portraits/med/men/68.jpg", Nat: "AU", IngestedAt: time.Date(2026, 3, 4, 4, 6, 7, 0, time.UTC), RunID: "r",
	}
}
