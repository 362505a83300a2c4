package user

import (
	"net/mail"
	"net/url"
	"testing"
)

// FuzzPlainEmail checks the fast road of Validate's e-mail check: every
// address plainEmail takes must be one net/mail parses to itself, so the
// road changes no verdict (the rest go to net/mail as before).
func FuzzPlainEmail(f *testing.F) {
	for _, s := range []string{"kenneth.fields@example.com", "a@b", ".a@b", "a.@b", "a..b@c", "a@b..c",
		"a@.b", "a@b.", "a@@b", "@b", "a@", "a b@c", "a@[1.2.3.4]", "\"a\"@b", "a+tag@x-y.z", "ü@b", "a@-b", "a@b-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plainEmail(s) {
			return
		}
		if a, err := mail.ParseAddress(s); err != nil || a.Address != s {
			t.Fatalf("plainEmail(%q) is true, but net/mail gives %v, %v", s, a, err)
		}
	})
}

// FuzzPlainURL checks the fast road of Validate's picture check: every
// string plainURL takes must parse with net/url as http or https.
func FuzzPlainURL(f *testing.F) {
	for _, s := range []string{"https://randomuser.me/api/portraits/med/men/68.jpg", "http://a", "https://",
		"http://a:b/", "https://a b", "https://%zz", "ftp://a", "https://[::1]/", "HTTPS://a", "https://a/~u_x-y.z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plainURL(s) {
			return
		}
		if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			t.Fatalf("plainURL(%q) is true, but net/url gives %v, %v", s, u, err)
		}
	})
}

// TestPlainRoadsTakeTheGeneratorsValues checks that the fast roads are
// taken for what the generator and randomuser.me send (else they would
// cost without saving), and refused for what needs the full parsers.
func TestPlainRoadsTakeTheGeneratorsValues(t *testing.T) {
	r := validRecord()
	for _, c := range []struct {
		s    string
		f    func(string) bool
		want bool
	}{
		{r.Email, plainEmail, true},
		{"ayşe.yıldız@example.com", plainEmail, false}, // net/mail decides
		{"\"a b\"@example.com", plainEmail, false},
		{"a..b@example.com", plainEmail, false},
		{r.Picture, plainURL, true},
		{"https://randomuser.me/api/portraits/med/men/68.jpg?x=1", plainURL, false},
		{"https://host:8080/p.jpg", plainURL, false},
	} {
		if got := c.f(c.s); got != c.want {
			t.Errorf("fast road for %q = %v, want %v", c.s, got, c.want)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	r := validRecord()
	for b.Loop() {
		if err := r.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
