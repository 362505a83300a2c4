package randomuser

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrInvalidParam is wrapped by every error the generator returns for a
// request it will not serve (an unknown nationality, field, format, gender or
// password charset). The handler answers those with HTTP 400.
var ErrInvalidParam = errors.New("invalid parameter")

// Nationalities lists the API's 21 nationality codes, in the API's order.
// Every one has its own tables in the generator.
func Nationalities() []string {
	out := make([]string, len(natSources))
	for i := range natSources {
		out[i] = natSources[i].code
	}
	return out
}

// ValidNat reports whether code (any case) is one of the API's
// nationalities.
func ValidNat(code string) bool {
	for i := range natSources {
		if strings.EqualFold(natSources[i].code, code) {
			return true
		}
	}
	return false
}

// Fields lists the top-level user fields that inc and exc name, in the
// order they appear in a user object.
func Fields() []string { return slices.Clone(fieldNames[:]) }

var fieldNames = [...]string{"gender", "name", "location", "email", "login", "registered", "dob", "phone", "cell", "id", "picture", "nat"}

// fieldMask has one bit per top-level user field.
type fieldMask uint16

const (
	fGender fieldMask = 1 << iota
	fName
	fLocation
	fEmail
	fLogin
	fRegistered
	fDOB
	fPhone
	fCell
	fID
	fPicture
	fNat
	fAll = fGender | fName | fLocation | fEmail | fLogin | fRegistered | fDOB | fPhone | fCell | fID | fPicture | fNat
)

func fieldBit(name string) fieldMask {
	for i, n := range fieldNames {
		if n == name {
			return 1 << i
		}
	}
	return 0
}

// ParseQuery reads the API's query parameters the way the documented API
// does: results outside 1..5000 or not a number fall back to 1, a page
// below 1 or not a number falls back to 1, noinfo counts when present with
// any value, list parameters are comma separated. It does not check names
// (nationalities, fields, formats); the generator does, when it serves the
// request, and answers ErrInvalidParam for what it does not know.
func ParseQuery(q url.Values) Params {
	p := Params{
		Results:  clampResults(atoiOr(q.Get("results"), 1)),
		Seed:     q.Get("seed"),
		Page:     atoiOr(q.Get("page"), 1),
		Gender:   q.Get("gender"),
		Nat:      splitList(q.Get("nat")),
		Inc:      splitList(q.Get("inc")),
		Exc:      splitList(q.Get("exc")),
		Password: q.Get("password"),
		Format:   q.Get("format"),
		NoInfo:   q.Has("noinfo"),
	}
	if q.Has("fmt") && p.Format == "" { // the API's short alias
		p.Format = q.Get("fmt")
	}
	if p.Page < 1 {
		p.Page = 1
	}
	return p
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def
	}
	return n
}

func clampResults(n int) int {
	if n < 1 || n > MaxResults {
		return 1
	}
	return n
}

func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Generator produces API 1.4 users offline. It is safe for concurrent use:
// every request draws from its own random stream, seeded from the request's
// seed and page only, so the same seed, page and parameters give the same
// users (byte for byte once encoded) whatever ran before.
type Generator struct {
	now  func() time.Time
	bufs sync.Pool // *[]byte scratch buffers for WriteResponse
}

// GeneratorOption configures a Generator.
type GeneratorOption func(*Generator)

// WithClock sets the clock the ages (dob.age, registered.age) are computed
// against; the default is time.Now. The dates themselves never depend on it.
func WithClock(now func() time.Time) GeneratorOption {
	return func(g *Generator) { g.now = now }
}

// NewGenerator returns a Generator.
func NewGenerator(opts ...GeneratorOption) *Generator {
	g := &Generator{now: time.Now}
	for _, o := range opts {
		o(g)
	}
	return g
}

// plan is a validated request.
type plan struct {
	results  int
	seed     string
	page     int
	gender   string // "", "male" or "female"
	nats     []*natTable
	mask     fieldMask
	pw       pwSpec
	format   string
	noInfo   bool
	download bool
}

// prepare validates p and fills in the defaults: a random seed when none is
// given, page 1, every nationality, every field, JSON.
func (g *Generator) prepare(p Params) (plan, error) {
	pl := plan{
		results: clampResults(p.Results),
		seed:    p.Seed,
		page:    max(p.Page, 1),
		noInfo:  p.NoInfo,
		mask:    fAll,
	}
	if len(pl.seed) > 1024 {
		return pl, fmt.Errorf("%w: seed is %d bytes long; keep it under 1024", ErrInvalidParam, len(pl.seed))
	}
	if pl.seed == "" {
		// Like the API: a fresh 16-hex-digit seed, echoed in info.seed so
		// the response can be asked for again.
		pl.seed = strconv.FormatUint(rand.Uint64()|1<<63, 16)
	}
	switch g := strings.ToLower(strings.TrimSpace(p.Gender)); g {
	case "", "male", "female":
		pl.gender = g
	default:
		return pl, fmt.Errorf("%w: gender %q is not male or female (leave it out for both)", ErrInvalidParam, p.Gender)
	}
	if len(p.Nat) == 0 {
		pl.nats = allNatTables()
	} else {
		seen := map[*natTable]bool{}
		for _, n := range p.Nat {
			for part := range strings.SplitSeq(n, ",") {
				part = strings.TrimSpace(part)
				if part == "" {
					continue
				}
				t := lookupNat(part)
				if t == nil {
					return pl, fmt.Errorf("%w: nat %q is not one of %s", ErrInvalidParam, part, strings.Join(Nationalities(), ", "))
				}
				if !seen[t] {
					seen[t] = true
					pl.nats = append(pl.nats, t)
				}
			}
		}
		if len(pl.nats) == 0 {
			pl.nats = allNatTables()
		}
	}
	if len(p.Inc) > 0 {
		pl.mask = 0
	}
	for _, f := range p.Inc {
		bit := fieldBit(strings.ToLower(strings.TrimSpace(f)))
		if bit == 0 {
			return pl, fmt.Errorf("%w: inc field %q is not one of %s", ErrInvalidParam, f, strings.Join(fieldNames[:], ", "))
		}
		pl.mask |= bit
	}
	for _, f := range p.Exc {
		bit := fieldBit(strings.ToLower(strings.TrimSpace(f)))
		if bit == 0 {
			return pl, fmt.Errorf("%w: exc field %q is not one of %s", ErrInvalidParam, f, strings.Join(fieldNames[:], ", "))
		}
		pl.mask &^= bit
	}
	var err error
	if pl.pw, err = parsePassword(p.Password); err != nil {
		return pl, err
	}
	switch f := strings.ToLower(strings.TrimSpace(p.Format)); f {
	case "", "json":
		pl.format = "json"
	case "pretty", "prettyjson":
		pl.format = "pretty"
	case "csv":
		pl.format = "csv"
	case "yaml":
		pl.format = "yaml"
	case "xml":
		pl.format = "xml"
	default:
		return pl, fmt.Errorf("%w: format %q is not one of json, pretty, csv, yaml, xml", ErrInvalidParam, p.Format)
	}
	return pl, nil
}

// Generate returns the users p asks for, with the info block unless
// p.NoInfo. Inc, Exc and Format shape only the bytes WriteResponse writes:
// Generate always returns whole users. It fails only with ErrInvalidParam.
// Get is Generate as a source of users, the way a *Client is one: ingest
// can read from the generator in process, without HTTP. It fails only
// when ctx is done or the parameters are invalid.
func (g *Generator) Get(ctx context.Context, p Params) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	return g.Generate(p)
}

func (g *Generator) Generate(p Params) (Response, error) {
	pl, err := g.prepare(p)
	if err != nil {
		return Response{}, err
	}
	st := newGenState(&pl, g.now())
	resp := Response{Results: make([]User, pl.results)}
	for i := range resp.Results {
		st.user(&resp.Results[i])
	}
	if !pl.noInfo {
		resp.Info = &Info{Seed: pl.seed, Results: pl.results, Page: pl.page, Version: Version}
	}
	return resp, nil
}

// pwSpec is a parsed password parameter. A zero spec picks from the word
// list, as the API does when no password parameter is given.
type pwSpec struct {
	chars    string
	min, max int
}

const (
	pwSpecial = " !\"#$%&'()*+,- ./:;<=>?@[\\]^_`{|}~"
	pwUpper   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	pwLower   = "abcdefghijklmnopqrstuvwxyz"
	pwNumber  = "0123456789"
	pwMaxLen  = 64
)

// parsePassword reads "charset,charset,...,MIN-MAX" (or ",LEN"). Charsets
// are special, upper, lower and number; none given means all four. No
// length means 8-64, as the API does.
func parsePassword(s string) (pwSpec, error) {
	var spec pwSpec
	if strings.TrimSpace(s) == "" {
		return spec, nil
	}
	spec.min, spec.max = 8, pwMaxLen
	var sets [4]bool
	for part := range strings.SplitSeq(s, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		switch part {
		case "":
		case "special":
			sets[0] = true
		case "upper":
			sets[1] = true
		case "lower":
			sets[2] = true
		case "number":
			sets[3] = true
		default:
			lo, hi, isRange := strings.Cut(part, "-")
			a, errA := strconv.Atoi(lo)
			b := a
			var errB error
			if isRange {
				b, errB = strconv.Atoi(hi)
			}
			if errA != nil || errB != nil {
				return spec, fmt.Errorf("%w: password %q: %q is neither a charset (special, upper, lower, number) nor a length like 8-16", ErrInvalidParam, s, part)
			}
			if a < 1 || b < a || b > pwMaxLen {
				return spec, fmt.Errorf("%w: password %q: length %q must be within 1-%d with min <= max", ErrInvalidParam, s, part, pwMaxLen)
			}
			spec.min, spec.max = a, b
		}
	}
	if sets == [4]bool{} {
		sets = [4]bool{true, true, true, true}
	}
	for i, cs := range [...]string{pwSpecial, pwUpper, pwLower, pwNumber} {
		if sets[i] {
			spec.chars += cs
		}
	}
	return spec, nil
}

// The ranges dates are drawn from, in Unix milliseconds: dob in
// [1944-01-01, 2001-06-01), registered in [2002-03-01, 2022-06-01).
var (
	dobFrom = time.Date(1944, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	dobTo   = time.Date(2001, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	regFrom = time.Date(2002, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	regTo   = time.Date(2022, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
)

// isoMillis is the API's date layout.
const isoMillis = "2006-01-02T15:04:05.000Z"

// genState is one request's random stream and scratch space.
type genState struct {
	pl      *plan
	r       *rand.Rand
	now     time.Time
	scratch []byte
}

// newGenState seeds the request's stream from SHA-256(seed, page): the
// stream depends on nothing else, so requests are reproducible and pages
// differ.
func newGenState(pl *plan, now time.Time) *genState {
	h := sha256.New()
	h.Write([]byte("userstream/randomuser/1.4\x00"))
	h.Write([]byte(pl.seed))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(pl.page), 10))
	var sum [32]byte
	h.Sum(sum[:0])
	pcg := rand.NewPCG(binary.LittleEndian.Uint64(sum[0:8]), binary.LittleEndian.Uint64(sum[8:16]))
	return &genState{pl: pl, r: rand.New(pcg), now: now, scratch: make([]byte, 0, 1024)}
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// user fills u with the next user of the stream. All generated strings of
// one user share a single allocation.
func (st *genState) user(u *User) {
	r := st.r
	t := st.pl.nats[0]
	if len(st.pl.nats) > 1 {
		t = st.pl.nats[r.IntN(len(st.pl.nats))]
	}
	female := r.IntN(2) == 1
	switch st.pl.gender {
	case "male":
		female = false
	case "female":
		female = true
	}
	var first, last nameEntry
	if female {
		u.Gender = "female"
		u.Name.Title = pick(r, t.femaleTitles)
		first = pick(r, t.female)
	} else {
		u.Gender = "male"
		u.Name.Title = pick(r, t.maleTitles)
		first = pick(r, t.male)
	}
	last = pick(r, t.last)
	u.Name.First, u.Name.Last = first.display, last.display
	u.Location.Street.Number = 1 + r.IntN(9999)
	u.Location.Street.Name = pick(r, t.streets)
	u.Location.City = pick(r, t.cities)
	u.Location.State = pick(r, t.states)
	u.Location.Country = t.country
	u.Location.Timezone = timezones[r.IntN(len(timezones))]
	u.Nat = t.code

	dob := time.UnixMilli(dobFrom + r.Int64N(dobTo-dobFrom)).UTC()
	reg := time.UnixMilli(regFrom + r.Int64N(regTo-regFrom)).UTC()
	u.DOB.Age = ageAt(dob, st.now)
	u.Registered.Age = ageAt(reg, st.now)

	// Every generated string is appended to b; ends[i] marks where field i
	// stops. One string conversion at the end backs them all.
	b := st.scratch[:0]
	var ends [19]int
	mark := func(i int) { ends[i] = len(b) }

	b = t.post.appendTo(r, b)
	mark(0)
	b = appendCoord(b, r.IntN(1_800_001)-900_000)
	mark(1)
	b = appendCoord(b, r.IntN(3_600_001)-1_800_000)
	mark(2)
	b = append(b, first.email...)
	b = append(b, '.')
	b = append(b, last.email...)
	b = append(b, "@example.com"...)
	mark(3)
	b = appendUUID(b, r.Uint64(), r.Uint64())
	mark(4)
	b = append(b, usernameAdjectives[r.IntN(len(usernameAdjectives))]...)
	b = append(b, usernameNouns[r.IntN(len(usernameNouns))]...)
	b = strconv.AppendInt(b, int64(100+r.IntN(900)), 10)
	mark(5)
	pwStart := len(b)
	if st.pl.pw.chars == "" {
		b = append(b, passwordWords[r.IntN(len(passwordWords))]...)
	} else {
		n := st.pl.pw.min + r.IntN(st.pl.pw.max-st.pl.pw.min+1)
		for range n {
			b = append(b, st.pl.pw.chars[r.IntN(len(st.pl.pw.chars))])
		}
	}
	mark(6)
	const saltChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	for range 8 {
		b = append(b, saltChars[r.IntN(len(saltChars))])
	}
	mark(7)
	// password+salt are adjacent in b: hash them in place.
	md := md5.Sum(b[pwStart:ends[7]])
	b = hex.AppendEncode(b, md[:])
	mark(8)
	s1 := sha1.Sum(b[pwStart:ends[7]])
	b = hex.AppendEncode(b, s1[:])
	mark(9)
	s2 := sha256.Sum256(b[pwStart:ends[7]])
	b = hex.AppendEncode(b, s2[:])
	mark(10)
	b = dob.AppendFormat(b, isoMillis)
	mark(11)
	b = reg.AppendFormat(b, isoMillis)
	mark(12)
	b = appendPattern(r, b, pick(r, t.phones))
	mark(13)
	b = appendPattern(r, b, pick(r, t.cells))
	mark(14)
	hasID := t.id != nil
	if hasID {
		b = t.id(r, b, idContext{dob: dob, female: female, last: last.email})
	}
	mark(15)
	pic := r.IntN(100)
	who := "men/"
	if female {
		who = "women/"
	}
	const portraits = "https://randomuser.me/api/portraits/"
	for i, size := range [...]string{"", "med/", "thumb/"} {
		b = append(b, portraits...)
		b = append(b, size...)
		b = append(b, who...)
		b = strconv.AppendInt(b, int64(pic), 10)
		b = append(b, ".jpg"...)
		mark(16 + i)
	}
	st.scratch = b

	s := string(b)
	field := func(i int) string {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		return s[start:ends[i]]
	}
	u.Location.Postcode = Postcode{Value: field(0), Numeric: t.post.numeric()}
	u.Location.Coordinates = Coordinates{Latitude: field(1), Longitude: field(2)}
	u.Email = field(3)
	u.Login = Login{
		UUID: field(4), Username: field(5), Password: field(6), Salt: field(7),
		MD5: field(8), SHA1: field(9), SHA256: field(10),
	}
	u.DOB.Date = field(11)
	u.Registered.Date = field(12)
	u.Phone = field(13)
	u.Cell = field(14)
	u.ID = ID{Name: t.idName}
	if hasID {
		v := field(15)
		u.ID.Value = &v
	}
	u.Picture = Picture{Large: field(16), Medium: field(17), Thumbnail: field(18)}
}

// ageAt returns the whole years from d to now.
func ageAt(d, now time.Time) int {
	age := now.Year() - d.Year()
	if now.Before(d.AddDate(age, 0, 0)) {
		age--
	}
	return age
}

// appendCoord writes v/10000 with exactly four decimals ("-3.9291").
func appendCoord(b []byte, v int) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	b = strconv.AppendInt(b, int64(v/10000), 10)
	frac := v % 10000
	return append(b, '.', byte('0'+frac/1000), byte('0'+frac/100%10), byte('0'+frac/10%10), byte('0'+frac%10))
}

// appendUUID writes a version 4, variant 1 UUID made of hi and lo.
func appendUUID(b []byte, hi, lo uint64) []byte {
	var u [16]byte
	binary.BigEndian.PutUint64(u[:8], hi)
	binary.BigEndian.PutUint64(u[8:], lo)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	b = hex.AppendEncode(b, u[0:4])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[4:6])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[6:8])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[8:10])
	b = append(b, '-')
	return hex.AppendEncode(b, u[10:])
}

// appendPattern writes pat with every 'N' replaced by a random digit and
// every 'A' by a random upper-case letter.
func appendPattern(r *rand.Rand, b []byte, pat string) []byte {
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case 'N':
			b = append(b, byte('0'+r.IntN(10)))
		case 'A':
			b = append(b, byte('A'+r.IntN(26)))
		default:
			b = append(b, c)
		}
	}
	return b
}
