package ingest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/user"
)

// reference returns the users of the reference fixture (real API 1.4
// output, three per nationality), keyed by nationality.
func reference(t *testing.T) map[string][]randomuser.User {
	t.Helper()
	b, err := os.ReadFile("../randomuser/testdata/reference/randomuser-1.4-sample.json")
	if err != nil {
		t.Fatalf("read reference fixture: %v", err)
	}
	var m map[string]randomuser.Response
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("parse reference fixture: %v", err)
	}
	out := make(map[string][]randomuser.User, len(m))
	for nat, r := range m {
		out[nat] = r.Results
	}
	if len(out) != 21 {
		t.Fatalf("fixture has %d nationalities, want 21", len(out))
	}
	return out
}

var ingested = time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))

// TestFromAPIReferenceUsers maps known users of the reference fixture and
// checks each column against the API's values.
func TestFromAPIReferenceUsers(t *testing.T) {
	ref := reference(t)
	tests := []struct {
		nat  string
		i    int
		want user.Record
	}{
		{"AU", 0, user.Record{ID: "9313706e-d4de-4d85-bcc9-b7da0ca02fba", FirstName: "Kenneth", LastName: "Fields", Gender: "male",
			Address: "2494 Lone Wolf Trail, Adelaide, Queensland, Australia", PostCode: "1395",
			Email: "kenneth.fields@example.com", Username: "smallmouse740", DOB: "1972-04-16T10:36:10.290Z",
			RegisteredDate: "2018-10-21T00:27:38.583Z", Phone: "00-7601-9760",
			Picture: "https://randomuser.me/api/portraits/med/men/68.jpg", Nat: "AU",
			IngestedAt: ingested.UTC(), RunID: "run-1"}},
	}
	for _, tt := range tests {
		got := FromAPI(ref[tt.nat][tt.i], ingested, "run-1")
		if got != tt.want {
			t.Errorf("%s[%d]:\n got %+v\nwant %+v", tt.nat, tt.i, got, tt.want)
		}
	}
}

// TestFromAPIEveryNat maps every reference user: the record carries the
// API's fields as design.md says, post_code is text whatever the JSON type,
// and every record validates.
func TestFromAPIEveryNat(t *testing.T) {
	for nat, users := range reference(t) {
		for i, u := range users {
			r := FromAPI(u, ingested, "run-1")
			if r.ID != u.Login.UUID {
				t.Errorf("%s[%d]: id %q, want login.uuid %q", nat, i, r.ID, u.Login.UUID)
			}
			wantAddr := strings.Join([]string{
				strings.Join([]string{itoa(u.Location.Street.Number), strings.TrimSpace(u.Location.Street.Name)}, " "),
				u.Location.City, u.Location.State, u.Location.Country}, ", ")
			if strings.Contains(r.Address, " ,") {
				t.Errorf("%s[%d]: address %q keeps a stray space before a comma", nat, i, r.Address)
			}
			if r.Address != wantAddr {
				t.Errorf("%s[%d]: address %q, want %q", nat, i, r.Address, wantAddr)
			}
			if r.PostCode == "" || r.PostCode != u.Location.Postcode.Value {
				t.Errorf("%s[%d]: post_code %q, want %q", nat, i, r.PostCode, u.Location.Postcode.Value)
			}
			if r.DOB != u.DOB.Date || r.RegisteredDate != u.Registered.Date || r.Picture != u.Picture.Medium ||
				r.Phone != u.Phone || r.Username != u.Login.Username || r.Email != u.Email || r.Nat != nat {
				t.Errorf("%s[%d]: record %+v does not carry the API's dob/registered/picture.medium/phone/username/email/nat", nat, i, r)
			}
			if !r.IngestedAt.Equal(ingested) || r.IngestedAt.Location() != time.UTC {
				t.Errorf("%s[%d]: ingested_at %v, want %v in UTC", nat, i, r.IngestedAt, ingested)
			}
			if err := r.Validate(); err != nil {
				t.Errorf("%s[%d]: reference user does not validate: %v", nat, i, err)
			}
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestFromAPIPostcodeText(t *testing.T) {
	tests := []struct {
		pc   randomuser.Postcode
		want string
	}{
		{randomuser.NumericPostcode(2000), "2000"},
		{randomuser.TextPostcode("M9R 6A5"), "M9R 6A5"},
		{randomuser.TextPostcode("0805"), "0805"},
	}
	for _, tt := range tests {
		var u randomuser.User
		u.Location.Postcode = tt.pc
		if got := FromAPI(u, ingested, "").PostCode; got != tt.want {
			t.Errorf("postcode %#v -> %q, want %q", tt.pc, got, tt.want)
		}
	}
}

func TestFromAPIID(t *testing.T) {
	base := reference(t)["FR"][1]
	withUUID := func(id string) randomuser.User { u := base; u.Login.UUID = id; return u }
	canonical := strings.ToLower(base.Login.UUID)

	t.Run("non-canonical UUIDs are normalised", func(t *testing.T) {
		for _, id := range []string{strings.ToUpper(canonical), "urn:uuid:" + canonical, "{" + canonical + "}", strings.ReplaceAll(canonical, "-", "")} {
			if got := FromAPI(withUUID(id), ingested, "").ID; got != canonical {
				t.Errorf("login.uuid %q -> id %q, want %q", id, got, canonical)
			}
		}
	})

	t.Run("missing or invalid: deterministic UUIDv5", func(t *testing.T) {
		var ids []string
		for _, id := range []string{"", "not-a-uuid", "9313706e-d4de-4d85-bcc9"} {
			r1 := FromAPI(withUUID(id), ingested, "run-1")
			r2 := FromAPI(withUUID(id), ingested.Add(time.Hour), "run-2")
			if r1.ID != r2.ID {
				t.Errorf("uuid %q: ids %q and %q differ across fetches of the same user", id, r1.ID, r2.ID)
			}
			parsed, err := uuid.Parse(r1.ID)
			if err != nil || parsed.Version() != 5 || parsed.String() != r1.ID {
				t.Errorf("uuid %q: fallback id %q is not a canonical UUIDv5", id, r1.ID)
			}
			if err := r1.Validate(); err != nil {
				t.Errorf("uuid %q: %v", id, err)
			}
			ids = append(ids, r1.ID)
		}
		if ids[0] != ids[1] || ids[1] != ids[2] {
			t.Errorf("same content, different ids: %v", ids)
		}
		other := withUUID("")
		other.Email = "someone.else@example.com"
		if FromAPI(other, ingested, "").ID == ids[0] {
			t.Error("different content gave the same fallback id")
		}
		if ids[0] == canonical {
			t.Error("fallback id equals the real uuid")
		}
	})
}
