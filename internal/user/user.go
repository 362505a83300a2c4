// Package user is the pipeline's record: one row per person, its validation,
// and its JSON in the original pipeline's shape and ours.
//
// It is plain data and imports nothing of the pipeline: mapping a Random
// User API user to a record is ingest's job (ingest.FromAPI).
package user

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Record is one user as the pipeline stores it: every column of the original
// pipeline's record, with dob kept and post_code always text, plus where and
// when it came from.
type Record struct {
	// ID is the API's login.uuid, so the same user fetched twice is one
	// row; a UUIDv5 of the user's content where the source gives none.
	ID             string `json:"id"`
	FirstName      string `json:"first_name"`
	LastName       string `json:"last_name"`
	Gender         string `json:"gender"`
	Address        string `json:"address"`
	PostCode       string `json:"post_code"`
	Email          string `json:"email"`
	Username       string `json:"username"`
	DOB            string `json:"dob"`
	RegisteredDate string `json:"registered_date"`
	Phone          string `json:"phone"`
	Picture        string `json:"picture"`
	// Nat is the API's nationality code (AU ... US); empty for records in
	// the original's shape, which dropped it.
	Nat string `json:"nat,omitempty"`
	// IngestedAt is when the producer fetched the user (UTC).
	IngestedAt time.Time `json:"ingested_at,omitzero"`
	// RunID names the ingest run that produced the record.
	RunID string `json:"run_id,omitempty"`
}

// namespace is the UUIDv5 namespace for ids derived from content.
var namespace = uuid.MustParse("6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e10")

// IsCanonicalID reports whether id is a UUID in uuid.UUID.String's form
// (lower-case hex, hyphenated): the API's form, and the one every sink
// stores, so it can be kept as it is without a parse.
func IsCanonicalID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// ContentID returns a UUIDv5 over the fields that identify a person, for
// sources that send no usable id: the same content always gives the same id.
func ContentID(r Record) string {
	key := strings.Join([]string{r.FirstName, r.LastName, r.Gender, r.Email, r.Username,
		r.DOB, r.RegisteredDate, r.Phone, r.Address, r.PostCode}, "\x1f")
	return uuid.NewHash(sha1.New(), namespace, []byte(key), 5).String()
}

// FieldError says which field of a record is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Reason }

// ValidationError lists every field error of one record.
type ValidationError struct {
	ID     string
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return fmt.Sprintf("invalid user %q: %s", e.ID, strings.Join(parts, "; "))
}

// ErrInvalid is matched by every *ValidationError with errors.Is.
var ErrInvalid = errors.New("invalid user record")

// Is makes errors.Is(err, ErrInvalid) true for validation errors.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Validate checks the record's fields and returns a *ValidationError naming
// every bad one, or nil.
func (r Record) Validate() error {
	var errs []FieldError
	add := func(field, reason string) { errs = append(errs, FieldError{field, reason}) }
	if _, err := uuid.Parse(r.ID); err != nil || len(r.ID) != 36 {
		add("id", "not a UUID")
	}
	required := []struct{ name, v string }{
		{"first_name", r.FirstName}, {"last_name", r.LastName}, {"email", r.Email}, {"username", r.Username},
	}
	for _, f := range required {
		if strings.TrimSpace(f.v) == "" {
			add(f.name, "empty")
		}
	}
	for _, f := range []struct{ name, v string }{
		{"first_name", r.FirstName}, {"last_name", r.LastName}, {"gender", r.Gender}, {"address", r.Address},
		{"post_code", r.PostCode}, {"email", r.Email}, {"username", r.Username}, {"phone", r.Phone},
		{"picture", r.Picture}, {"nat", r.Nat}, {"run_id", r.RunID},
	} {
		if len(f.v) > 512 {
			add(f.name, "longer than 512 bytes")
		}
	}
	switch r.Gender {
	case "male", "female", "":
	default:
		add("gender", fmt.Sprintf("%q is not male or female", r.Gender))
	}
	if r.Email != "" {
		if !validEmail(r.Email) {
			add("email", "not an e-mail address")
		}
	}
	if r.DOB != "" {
		if _, err := time.Parse(time.RFC3339, r.DOB); err != nil {
			add("dob", "not an ISO 8601 timestamp")
		}
	}
	if r.RegisteredDate != "" {
		if _, err := time.Parse(time.RFC3339, r.RegisteredDate); err != nil {
			add("registered_date", "not an ISO 8601 timestamp")
		}
	}
	if r.Picture != "" {
		if !validPicture(r.Picture) {
			add("picture", "not an http(s) URL")
		}
	}
	if len(r.Nat) > 3 {
		add("nat", "not a nationality code")
	}
	if len(errs) == 0 {
		return nil
	}
	return &ValidationError{ID: r.ID, Fields: errs}
}

// validEmail reports whether s is one e-mail address, as net/mail parses it
// to itself. The plain form nearly every source sends is checked by
// plainEmail without net/mail: with plainURL that took Validate from 1.9 µs
// and 6 allocations a record to 0.6 µs and none (BenchmarkValidate).
func validEmail(s string) bool {
	if plainEmail(s) {
		return true // net/mail agrees (FuzzPlainEmail)
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s
}

// validPicture reports whether s is an http(s) URL net/url parses.
func validPicture(s string) bool {
	if plainURL(s) {
		return true // net/url agrees (FuzzPlainURL)
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https")
}

// plainEmail reports whether s is an address of the plain form, local@domain
// in ASCII letters, digits and the usual punctuation, which net/mail accepts
// as itself. Anything else (quotes, comments, non-ASCII, a domain literal)
// is for net/mail to judge, so this road changes no verdict.
func plainEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 {
		return false
	}
	return dotAtom(s[:at], isAtext) && dotAtom(s[at+1:], isDomainChar)
}

// dotAtom reports whether s is non-empty runs of ok characters separated by
// single dots.
func dotAtom(s string, ok func(byte) bool) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c == '.' {
			if s[i-1] == '.' {
				return false
			}
		} else if !ok(c) {
			return false
		}
	}
	return true
}

func isAtext(c byte) bool {
	return isDomainChar(c) || strings.IndexByte("!#$%&'*+/=?^_`{|}~", c) >= 0
}

func isDomainChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

// plainURL reports whether s is an http(s) URL of only letters, digits and
// "-._~/" after the scheme (no port, query, escapes), which net/url parses
// with that scheme; the rest are for net/url to judge.
func plainURL(s string) bool {
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "http://"); !ok {
			return false
		}
	}
	for i := range len(rest) {
		if c := rest[i]; !isDomainChar(c) && c != '.' && c != '_' && c != '~' && c != '/' {
			return false
		}
	}
	return true
}

// MarshalJSON-free encoding: Record's struct tags give our shape directly.

// DecodeJSON reads a record in either JSON shape: ours, or the original
// pipeline's (no nat/ingested_at/run_id, post_code possibly a number). Unknown
// fields are ignored so newer producers do not break older streams; a body
// that is not a JSON object is an error.
func DecodeJSON(b []byte) (Record, error) {
	if len(b) > 0 && b[0] == 0 {
		return Record{}, errors.New("decode user JSON: the message is Avro in the Confluent wire format (magic byte 0); read it through a Schema Registry")
	}
	if r, ok := decodeJSONFast(b); ok {
		return r, nil
	}
	return decodeJSONStd(b)
}

// decodeJSONStd is DecodeJSON by encoding/json: every body the fast road
// does not take.
func decodeJSONStd(b []byte) (Record, error) {
	var wire struct {
		Record
		PostCode json.RawMessage `json:"post_code"`
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		// Decode would take null as an empty record.
		return Record{}, fmt.Errorf("decode user JSON: want a JSON object, got %.20q", t)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&wire); err != nil {
		return Record{}, fmt.Errorf("decode user JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Record{}, errors.New("decode user JSON: trailing data after the object")
	}
	r := wire.Record
	pc := bytes.TrimSpace(wire.PostCode)
	switch {
	case len(pc) == 0 || string(pc) == "null":
		r.PostCode = ""
	case pc[0] == '"':
		if err := json.Unmarshal(pc, &r.PostCode); err != nil {
			return Record{}, fmt.Errorf("decode user JSON: post_code: %w", err)
		}
	default:
		var n json.Number
		if err := json.Unmarshal(pc, &n); err != nil {
			return Record{}, fmt.Errorf("decode user JSON: post_code is neither a string nor a number")
		}
		if _, err := strconv.ParseFloat(n.String(), 64); err != nil {
			return Record{}, fmt.Errorf("decode user JSON: post_code: %w", err)
		}
		r.PostCode = n.String()
	}
	return r, nil
}

// JSON is the plain-JSON codec for records: it encodes our shape and decodes
// ours and the original's.
type JSON struct{}

// Encode writes the record as one JSON object.
func (JSON) Encode(r Record) ([]byte, error) {
	if b, ok := AppendJSON(make([]byte, 0, 512), r); ok {
		return b, nil
	}
	return json.Marshal(r)
}

// Decode reads a record in either JSON shape.
func (JSON) Decode(b []byte) (Record, error) { return DecodeJSON(b) }
