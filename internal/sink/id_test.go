package sink

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/userstream/userstream/internal/user"
)

func TestCanonicalID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e10", "6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e10"},
		{"6F0C7A52-3C1E-4D55-9A5B-2F4A7B1C9E10", "6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e10"},
		{"6f0c7a52-3c1e-4d55-9a5b-2f4a7b1C9e10", "6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e10"},
		{"00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"},
		{"6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e1", ""},    // 35
		{"6f0c7a523c1e4d559a5b2f4a7b1c9e10", ""},       // no hyphens
		{"{6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e10}", ""}, // braces
		{"6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e1g", ""},   // not hex
		{"6f0c7a52_3c1e-4d55-9a5b-2f4a7b1c9e10", ""},   // not a hyphen
		{"urn:uuid:6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e10", ""}, {"", ""},
	} {
		got, err := CanonicalID(tc.in)
		if tc.want == "" {
			if !errors.Is(err, user.ErrInvalid) {
				t.Errorf("CanonicalID(%q) = %q, %v; want an error matching user.ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("CanonicalID(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzCanonicalID: the shortcut for ids already canonical agrees with
// uuid.Parse on every 36-byte string.
func FuzzCanonicalID(f *testing.F) {
	f.Add("6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e10")
	f.Add("6F0C7A52-3C1E-4D55-9A5B-2F4A7B1C9E10")
	f.Fuzz(func(t *testing.T, id string) {
		got, err := CanonicalID(id)
		u, perr := uuid.Parse(id)
		if perr != nil || len(id) != 36 {
			if err == nil {
				t.Fatalf("CanonicalID(%q) = %q, want an error (uuid.Parse: %v)", id, got, perr)
			}
			return
		}
		if err != nil || got != u.String() {
			t.Fatalf("CanonicalID(%q) = %q, %v; want %q", id, got, err, u.String())
		}
	})
}
