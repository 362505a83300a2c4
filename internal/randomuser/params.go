package randomuser

import (
	"net/url"
	"strconv"
	"strings"
)

// Params are the query parameters of one API request. The zero value asks
// for the API's defaults: one user, a random seed, page 1, every
// nationality, every field, JSON with the info block.
//
// The same type describes a request the Client sends and a request the
// generator serves; a zero field is simply not sent.
type Params struct {
	// Results is the number of users, 1..5000. The API answers one user
	// for anything outside that range; zero is not sent.
	Results int
	// Seed makes the response reproducible: the same seed, page and
	// parameters give the same users.
	Seed string
	// Page selects a page of a seeded sequence; zero is not sent (page 1).
	Page int
	// Gender is "male" or "female"; empty means both. The API ignores it
	// when Seed is set.
	Gender string
	// Nat restricts nationalities (AU, BR, CA, ...); sent as a comma list.
	Nat []string
	// Inc lists the only fields to include (name, location, ...).
	Inc []string
	// Exc lists fields to leave out.
	Exc []string
	// Password is the API's password spec: charsets and a length range,
	// for example "upper,lower,number,8-16".
	Password string
	// Format is the response format: "" or "json" (the default), "pretty",
	// "csv", "yaml" or "xml". The Client accepts only the JSON formats.
	Format string
	// NoInfo leaves the info block out of the response.
	NoInfo bool
}

// Values returns the query parameters to send: only the fields that are not
// zero, with list fields joined by commas, in the API's parameter names.
func (p Params) Values() url.Values {
	v := url.Values{}
	if p.Results != 0 {
		v.Set("results", strconv.Itoa(p.Results))
	}
	if p.Seed != "" {
		v.Set("seed", p.Seed)
	}
	if p.Page != 0 {
		v.Set("page", strconv.Itoa(p.Page))
	}
	if p.Gender != "" {
		v.Set("gender", p.Gender)
	}
	if len(p.Nat) > 0 {
		v.Set("nat", strings.Join(p.Nat, ","))
	}
	if len(p.Inc) > 0 {
		v.Set("inc", strings.Join(p.Inc, ","))
	}
	if len(p.Exc) > 0 {
		v.Set("exc", strings.Join(p.Exc, ","))
	}
	if p.Password != "" {
		v.Set("password", p.Password)
	}
	if p.Format != "" {
		v.Set("format", p.Format)
	}
	if p.NoInfo {
		v.Set("noinfo", "")
	}
	return v
}
