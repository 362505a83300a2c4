package user

import (
	"time"
	"unicode/utf8"
)

// decodeJSONFast is DecodeJSON's fast road: a flat object of our or the
// original's shape with exact field names, string values without escapes
// (post_code also a plain integer), null for a field left unset, as our
// encoder and the original's json.dumps write them. It reports false for
// anything else (an escape, an unknown or differently cased key, a number
// in another form, a syntax error, trailing data) and DecodeJSON then
// decodes with encoding/json, so results and errors are encoding/json's
// (FuzzDecodeJSONFast checks the two agree wherever the fast road answers).
func decodeJSONFast(b []byte) (Record, bool) {
	var r Record
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return Record{}, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return r, skipWS(b, i+1) == len(b)
	}
	for {
		key, next, ok := plainString(b, i)
		if !ok {
			return Record{}, false
		}
		i = skipWS(b, next)
		if i >= len(b) || b[i] != ':' {
			return Record{}, false
		}
		i = skipWS(b, i+1)
		if i+4 <= len(b) && string(b[i:i+4]) == "null" {
			switch {
			case string(key) == "post_code":
				r.PostCode = "" // DecodeJSON's reading of a null post_code
			case string(key) == "ingested_at" || fieldOf(&r, key) != nil:
				// encoding/json leaves the field as it is for null.
			default:
				return Record{}, false
			}
			i += 4
		} else if string(key) == "post_code" && i < len(b) && b[i] != '"' {
			end, ok := plainInteger(b, i)
			if !ok {
				return Record{}, false
			}
			r.PostCode = string(b[i:end])
			i = end
		} else {
			val, next, ok := plainString(b, i)
			if !ok {
				return Record{}, false
			}
			if string(key) == "ingested_at" {
				var t time.Time
				// What encoding/json calls for a time.Time.
				if t.UnmarshalJSON(b[i:next]) != nil {
					return Record{}, false
				}
				r.IngestedAt = t
			} else if f := fieldOf(&r, key); f != nil {
				*f = string(val)
			} else {
				return Record{}, false
			}
			i = next
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return Record{}, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return r, skipWS(b, i+1) == len(b)
		default:
			return Record{}, false
		}
	}
}

// fieldOf returns the string field a JSON key names exactly, or nil.
func fieldOf(r *Record, key []byte) *string {
	switch string(key) {
	case "id":
		return &r.ID
	case "first_name":
		return &r.FirstName
	case "last_name":
		return &r.LastName
	case "gender":
		return &r.Gender
	case "address":
		return &r.Address
	case "post_code":
		return &r.PostCode
	case "email":
		return &r.Email
	case "username":
		return &r.Username
	case "dob":
		return &r.DOB
	case "registered_date":
		return &r.RegisteredDate
	case "phone":
		return &r.Phone
	case "picture":
		return &r.Picture
	case "nat":
		return &r.Nat
	case "run_id":
		return &r.RunID
	}
	return nil
}

// plainString reads the JSON string at b[i] when it has no escape and no
// control character and is valid UTF-8 (then its bytes are its value). It
// returns the value, the index after the closing quote, and whether it could.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			v := b[i+1 : j]
			if !ascii && !utf8.Valid(v) {
				return nil, 0, false // encoding/json replaces invalid bytes
			}
			return v, j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, 0, false
}

// plainInteger returns the end of the JSON integer at b[i] (an optional
// minus, then 0 or digits without a leading zero) when nothing that would
// make it another number (a fraction or an exponent) follows.
func plainInteger(b []byte, i int) (int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	start := j
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == start || (b[start] == '0' && j-start > 1) {
		return 0, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, false
	}
	return j, true
}

// skipWS returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
