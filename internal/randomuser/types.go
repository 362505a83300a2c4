// Package randomuser speaks the Random User Generator API, version 1.4: its
// types, a client, an offline generator and a handler that serves it.
//
// The client talks to randomuser.me or any compatible server; the generator
// produces the same shapes per nationality; the handler serves the
// generator as the API.
package randomuser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
)

// Version is the API version this package speaks and serves.
const Version = "1.4"

// Response is one API response: the users and, unless noinfo was asked, the
// info block echoing seed, result count, page and version.
type Response struct {
	Results []User `json:"results"`
	Info    *Info  `json:"info,omitempty"`
	// Error is set by the API (and by the generator's handler) instead of
	// Results when a request cannot be served.
	Error string `json:"error,omitempty"`
}

// Info echoes the request that produced a response.
type Info struct {
	Seed    string `json:"seed"`
	Results int    `json:"results"`
	Page    int    `json:"page"`
	Version string `json:"version"`
}

// User is one generated person, field for field as API 1.4 returns it.
// Field order matches the API so encoded output reads the same.
type User struct {
	Gender     string   `json:"gender"`
	Name       Name     `json:"name"`
	Location   Location `json:"location"`
	Email      string   `json:"email"`
	Login      Login    `json:"login"`
	DOB        DatedAge `json:"dob"`
	Registered DatedAge `json:"registered"`
	Phone      string   `json:"phone"`
	Cell       string   `json:"cell"`
	ID         ID       `json:"id"`
	Picture    Picture  `json:"picture"`
	Nat        string   `json:"nat"`
}

// Name is the person's title, first and last name.
type Name struct {
	Title string `json:"title"`
	First string `json:"first"`
	Last  string `json:"last"`
}

// Location is a postal address plus coordinates and a time zone. The
// coordinates and time zone are drawn independently of the country, as the
// original generator does.
type Location struct {
	Street      Street      `json:"street"`
	City        string      `json:"city"`
	State       string      `json:"state"`
	Country     string      `json:"country"`
	Postcode    Postcode    `json:"postcode"`
	Coordinates Coordinates `json:"coordinates"`
	Timezone    Timezone    `json:"timezone"`
}

// Street is a house number and a street name.
type Street struct {
	Number int    `json:"number"`
	Name   string `json:"name"`
}

// Coordinates are decimal degrees as strings with four decimals, as the API
// sends them.
type Coordinates struct {
	Latitude  string `json:"latitude"`
	Longitude string `json:"longitude"`
}

// Timezone is an offset such as "-9:00" and a description such as "Alaska".
type Timezone struct {
	Offset      string `json:"offset"`
	Description string `json:"description"`
}

// Login holds the generated account: a UUID, a username, the password, its
// salt and the md5, sha1 and sha256 hex digests of password+salt.
type Login struct {
	UUID     string `json:"uuid"`
	Username string `json:"username"`
	Password string `json:"password"`
	Salt     string `json:"salt"`
	MD5      string `json:"md5"`
	SHA1     string `json:"sha1"`
	SHA256   string `json:"sha256"`
}

// DatedAge is an ISO 8601 timestamp and the age in whole years it implies.
type DatedAge struct {
	Date string `json:"date"`
	Age  int    `json:"age"`
}

// ID is a national identifier. Value is nil where the nationality has none
// (IR, NZ, TR, UA send null with an empty Name).
type ID struct {
	Name  string  `json:"name"`
	Value *string `json:"value"`
}

// Picture holds the portrait URLs in three sizes.
type Picture struct {
	Large     string `json:"large"`
	Medium    string `json:"medium"`
	Thumbnail string `json:"thumbnail"`
}

// Postcode is a postal code. The API sends a JSON number for most
// nationalities and a string for CA, GB and NO; Postcode keeps which one it
// was so that re-encoding gives the same JSON, and String always gives text.
type Postcode struct {
	Value   string
	Numeric bool
}

// NumericPostcode returns a Postcode that encodes as a JSON number.
func NumericPostcode(n int) Postcode { return Postcode{Value: strconv.Itoa(n), Numeric: true} }

// TextPostcode returns a Postcode that encodes as a JSON string.
func TextPostcode(s string) Postcode { return Postcode{Value: s} }

// String returns the postcode as text, whatever its JSON type.
func (p Postcode) String() string { return p.Value }

// MarshalJSON writes a number or a string, as the postcode was made.
func (p Postcode) MarshalJSON() ([]byte, error) {
	if p.Numeric {
		return []byte(p.Value), nil
	}
	return json.Marshal(p.Value)
}

// UnmarshalJSON accepts a JSON number or string; anything else is an error.
func (p *Postcode) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*p = Postcode{Value: s}
		return nil
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*p = Postcode{Value: n.String(), Numeric: true}
		return nil
	default:
		// An *json.UnmarshalTypeError lets encoding/json add the path
		// (results.location.postcode) to the error.
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[Postcode]()}
	}
}

// jsonKind names the kind of the JSON value b starts with, as
// json.UnmarshalTypeError.Value does.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "empty value"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return fmt.Sprintf("%.20q", b)
}
