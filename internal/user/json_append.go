package user

import (
	"time"
	"unicode/utf8"
)

// AppendJSON appends r as JSON, byte for byte what json.Marshal(r) writes,
// without reflection (FuzzAppendJSON compares the two). ok is false, and
// nothing appended, for what json.Marshal refuses (an IngestedAt outside
// the years 0-9999): the caller asks json.Marshal for its error.
func AppendJSON(b []byte, r Record) (_ []byte, ok bool) {
	if !r.IngestedAt.IsZero() {
		if y := r.IngestedAt.Year(); y < 0 || y > 9999 {
			return b, false
		}
	}
	b = append(b, `{"id":`...)
	b = AppendJSONString(b, r.ID)
	for _, f := range [...]struct{ key, v string }{
		{`,"first_name":`, r.FirstName}, {`,"last_name":`, r.LastName}, {`,"gender":`, r.Gender},
		{`,"address":`, r.Address}, {`,"post_code":`, r.PostCode}, {`,"email":`, r.Email},
		{`,"username":`, r.Username}, {`,"dob":`, r.DOB}, {`,"registered_date":`, r.RegisteredDate},
		{`,"phone":`, r.Phone}, {`,"picture":`, r.Picture},
	} {
		b = append(b, f.key...)
		b = AppendJSONString(b, f.v)
	}
	if r.Nat != "" {
		b = append(b, `,"nat":`...)
		b = AppendJSONString(b, r.Nat)
	}
	if !r.IngestedAt.IsZero() {
		b = append(b, `,"ingested_at":"`...)
		b = r.IngestedAt.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if r.RunID != "" {
		b = append(b, `,"run_id":`...)
		b = AppendJSONString(b, r.RunID)
	}
	return append(b, '}'), true
}

const lowerHex = "0123456789abcdef"

// plain marks the ASCII bytes encoding/json writes as they are.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendJSONString appends s as a JSON string exactly as encoding/json
// writes it by default: HTML-safe (<, >, & escaped), U+2028 and U+2029
// escaped, invalid UTF-8 replaced by U+FFFD.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', lowerHex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
