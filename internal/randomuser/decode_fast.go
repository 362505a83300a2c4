package randomuser

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// fastDecode decodes body b straight into the API's types when b is an
// API response as servers send it: one object of known names (each once,
// spelled as the API spells them), values of the expected JSON types, no
// nulls but id.value, no "error". It reports false for anything else, even
// valid JSON, and the caller decodes b again with encoding/json, which
// decides and names the error: the fast road never accepts a body that
// encoding/json would decode differently (FuzzDecode checks it), and never
// makes an error of its own.
//
// Strings that need no unescaping are sliced from one copy of the body, so
// a response costs one allocation for its text instead of one a field.
func fastDecode(b []byte) (wireResponse, bool) {
	d := fastDecoder{s: string(b)}
	var w wireResponse
	// "error", a name in another case, twice or unknown: encoding/json
	// decides.
	ok := d.object(responseNames, func(k int) bool {
		if k == 0 {
			users, ok := d.users(len(b))
			w.Results = &users
			return ok
		}
		w.Info = &Info{}
		return d.info(w.Info)
	})
	if !ok {
		return wireResponse{}, false
	}
	d.ws()
	return w, d.i == len(d.s)
}

// fastDecoder reads JSON from s at i. Every method reports false when the
// input is not what it handles, leaving i anywhere: the decode is then
// abandoned as a whole.
type fastDecoder struct {
	s string
	i int
}

func (d *fastDecoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and reports whether the next byte is c, consuming
// it if so.
func (d *fastDecoder) next(c byte) bool {
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	return false
}

// object reads an object whose member names are all in names, each at
// most once (a name given twice goes to encoding/json, which merges
// duplicates its own way), calling value(k) with the decoder at the value
// of names[k]; value reads it.
func (d *fastDecoder) object(names []string, value func(k int) bool) bool {
	if !d.next('{') {
		return false
	}
	var seen uint32
	for n := 0; ; n++ {
		key, done, ok := d.member(n)
		if !ok || done {
			return ok
		}
		// Servers send the names in the API's order: try that first.
		k := n
		if k >= len(names) || names[k] != key {
			k = slices.Index(names, key)
		}
		if k < 0 || seen&(1<<k) != 0 || !value(k) {
			return false
		}
		seen |= 1 << k
	}
}

// member reads up to the value of the n-th member (from 0) of an object
// whose '{' has been read, and returns its name; done is true, and the
// object read, at its '}'.
func (d *fastDecoder) member(n int) (key string, done, ok bool) {
	d.ws()
	if d.i >= len(d.s) {
		return "", false, false
	}
	switch c := d.s[d.i]; {
	case c == '}':
		d.i++
		return "", true, true
	case n > 0 && c != ',':
		return "", false, false
	case n > 0:
		d.i++
		d.ws()
	}
	if key, ok = d.str(); !ok || !d.next(':') {
		return "", false, false
	}
	d.ws()
	return key, false, true
}

// str reads a string. Invalid UTF-8 and surrogate escapes, which
// encoding/json replaces with U+FFFD, are left to it.
func (d *fastDecoder) str() (string, bool) {
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return "", false
	}
	start := d.i + 1
	ascii := true
	j := start
	for ; j < len(d.s); j++ {
		c := d.s[j]
		if !special[c] {
			continue
		}
		switch {
		case c == '"':
			d.i = j + 1
			v := d.s[start:j]
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			return v, true
		case c == '\\':
			return d.unescape(start)
		case c < 0x20:
			return "", false
		default:
			ascii = false
		}
	}
	return "", false
}

// special marks the bytes str must look at: the quote, the backslash,
// control characters and the bytes of multi-byte UTF-8.
var special = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf
	}
	return t
}()

// unescape reads the rest of a string that has escapes, from start (just
// past its opening quote).
func (d *fastDecoder) unescape(start int) (string, bool) {
	var b strings.Builder
	b.Grow(32)
	j := start
	for j < len(d.s) {
		c := d.s[j]
		switch {
		case c == '"':
			d.i = j + 1
			v := b.String()
			return v, utf8.ValidString(v)
		case c < 0x20:
			return "", false
		case c != '\\':
			b.WriteByte(c)
			j++
			continue
		}
		if j+1 >= len(d.s) {
			return "", false
		}
		switch e := d.s[j+1]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			if j+6 > len(d.s) {
				return "", false
			}
			r, err := strconv.ParseUint(d.s[j+2:j+6], 16, 32)
			if err != nil || r >= 0xD800 && r < 0xE000 {
				return "", false
			}
			b.WriteRune(rune(r))
			j += 6
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

// integer reads a JSON number that is an int (a fraction, an exponent or
// an overflow go to encoding/json, which refuses them).
func (d *fastDecoder) integer() (int, bool) {
	text, ok := d.number()
	if !ok || strings.ContainsAny(text, ".eE") {
		return 0, false
	}
	n, err := strconv.Atoi(text)
	return n, err == nil
}

// number reads a JSON number and returns its text, as json.Number keeps
// it.
func (d *fastDecoder) number() (string, bool) {
	s, i := d.s, d.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return "", false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if d := digitsEnd(s, i); d == i {
			return "", false
		} else {
			i = d
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if d := digitsEnd(s, i); d == i {
			return "", false
		} else {
			i = d
		}
	}
	text := s[d.i:i]
	d.i = i
	return text, true
}

// digitsEnd returns the index past the run of digits at i.
func digitsEnd(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// strs reads an object whose members are all strings: the member named
// names[k] goes to *fields[k].
func (d *fastDecoder) strs(names []string, fields ...*string) bool {
	return d.object(names, func(k int) (ok bool) {
		*fields[k], ok = d.str()
		return ok
	})
}

func (d *fastDecoder) info(in *Info) bool {
	return d.object(infoNames, func(k int) (ok bool) {
		switch k {
		case 0:
			in.Seed, ok = d.str()
		case 1:
			in.Results, ok = d.integer()
		case 2:
			in.Page, ok = d.integer()
		default:
			in.Version, ok = d.str()
		}
		return ok
	})
}

// users reads the results array of a body of size bytes.
func (d *fastDecoder) users(size int) ([]User, bool) {
	if !d.next('[') {
		return nil, false
	}
	// A user is about 1 kB of JSON: one allocation for most responses.
	users := make([]User, 0, min(size/800+1, MaxResults))
	if d.next(']') {
		return users, true
	}
	for {
		d.ws()
		users = append(users, User{})
		if !d.user(&users[len(users)-1]) {
			return nil, false
		}
		if d.next(',') {
			continue
		}
		return users, d.next(']')
	}
}

// The names of each object's members, as the API spells them.
var (
	responseNames = []string{"results", "info"}
	infoNames     = []string{"seed", "results", "page", "version"}
	userNames     = []string{"gender", "name", "location", "email", "login", "dob", "registered", "phone", "cell", "id", "picture", "nat"}
	nameNames     = []string{"title", "first", "last"}
	locationNames = []string{"street", "city", "state", "country", "postcode", "coordinates", "timezone"}
	streetNames   = []string{"number", "name"}
	coordNames    = []string{"latitude", "longitude"}
	timezoneNames = []string{"offset", "description"}
	loginNames    = []string{"uuid", "username", "password", "salt", "md5", "sha1", "sha256"}
	datedAgeNames = []string{"date", "age"}
	idNames       = []string{"name", "value"}
	pictureNames  = []string{"large", "medium", "thumbnail"}
)

func (d *fastDecoder) user(u *User) bool {
	return d.object(userNames, func(k int) (ok bool) {
		switch k {
		case 0:
			u.Gender, ok = d.str()
		case 1:
			ok = d.strs(nameNames, &u.Name.Title, &u.Name.First, &u.Name.Last)
		case 2:
			ok = d.location(&u.Location)
		case 3:
			u.Email, ok = d.str()
		case 4:
			l := &u.Login
			ok = d.strs(loginNames, &l.UUID, &l.Username, &l.Password, &l.Salt, &l.MD5, &l.SHA1, &l.SHA256)
		case 5:
			ok = d.datedAge(&u.DOB)
		case 6:
			ok = d.datedAge(&u.Registered)
		case 7:
			u.Phone, ok = d.str()
		case 8:
			u.Cell, ok = d.str()
		case 9:
			ok = d.id(&u.ID)
		case 10:
			ok = d.strs(pictureNames, &u.Picture.Large, &u.Picture.Medium, &u.Picture.Thumbnail)
		default:
			u.Nat, ok = d.str()
		}
		return ok
	})
}

func (d *fastDecoder) location(l *Location) bool {
	return d.object(locationNames, func(k int) (ok bool) {
		switch k {
		case 0:
			ok = d.object(streetNames, func(k int) (ok bool) {
				if k == 0 {
					l.Street.Number, ok = d.integer()
				} else {
					l.Street.Name, ok = d.str()
				}
				return ok
			})
		case 1:
			l.City, ok = d.str()
		case 2:
			l.State, ok = d.str()
		case 3:
			l.Country, ok = d.str()
		case 4:
			ok = d.postcode(&l.Postcode)
		case 5:
			ok = d.strs(coordNames, &l.Coordinates.Latitude, &l.Coordinates.Longitude)
		default:
			ok = d.strs(timezoneNames, &l.Timezone.Offset, &l.Timezone.Description)
		}
		return ok
	})
}

func (d *fastDecoder) datedAge(a *DatedAge) bool {
	return d.object(datedAgeNames, func(k int) (ok bool) {
		if k == 0 {
			a.Date, ok = d.str()
		} else {
			a.Age, ok = d.integer()
		}
		return ok
	})
}

// postcode reads a number (kept as its text) or a string.
func (d *fastDecoder) postcode(p *Postcode) bool {
	if d.i < len(d.s) && d.s[d.i] == '"' {
		v, ok := d.str()
		*p = Postcode{Value: v}
		return ok
	}
	v, ok := d.number()
	*p = Postcode{Value: v, Numeric: true}
	return ok
}

// id reads {"name": string, "value": string or null}.
func (d *fastDecoder) id(id *ID) bool {
	return d.object(idNames, func(k int) (ok bool) {
		if k == 0 {
			id.Name, ok = d.str()
			return ok
		}
		if strings.HasPrefix(d.s[d.i:], "null") {
			d.i += len("null")
			id.Value = nil
			return true
		}
		v, ok := d.str()
		id.Value = &v
		return ok
	})
}
