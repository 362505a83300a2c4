package randomuser

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// natSource is how a nationality is written down in nat_tables.go.
type natSource struct {
	code, country            string
	maleTitles, femaleTitles []string // default Mr / Mrs, Ms, Miss
	male, female, last       []string // "display" or "display=ascii"
	streets, cities, states  []string
	post                     postRule
	phones, cells            []string // patterns
	idName                   string   // "" with a nil id: id.value is null
	id                       idFunc
}

// natTable is a natSource ready for the generator: names carry their
// e-mail form, computed once.
type natTable struct {
	code, country            string
	maleTitles, femaleTitles []string
	male, female, last       []nameEntry
	streets, cities, states  []string
	post                     postRule
	phones, cells            []string
	idName                   string
	id                       idFunc
}

// nameEntry is a name as shown and as it appears in the e-mail address.
type nameEntry struct{ display, email string }

// natTables is built once from natSources and only read afterwards.
var natTables = buildNatTables()

func buildNatTables() []*natTable {
	out := make([]*natTable, len(natSources))
	for i := range natSources {
		s := &natSources[i]
		t := &natTable{
			code: s.code, country: s.country,
			maleTitles: s.maleTitles, femaleTitles: s.femaleTitles,
			male: nameEntries(s.male), female: nameEntries(s.female), last: nameEntries(s.last),
			streets: s.streets, cities: s.cities, states: s.states,
			post: s.post, phones: s.phones, cells: s.cells,
			idName: s.idName, id: s.id,
		}
		if t.maleTitles == nil {
			t.maleTitles = []string{"Mr"}
		}
		if t.femaleTitles == nil {
			t.femaleTitles = []string{"Mrs", "Ms", "Miss"}
		}
		out[i] = t
	}
	return out
}

func allNatTables() []*natTable { return natTables }

// lookupNat finds a nationality by its code, case-insensitively; nil if
// there is none.
func lookupNat(code string) *natTable {
	for _, t := range natTables {
		if strings.EqualFold(t.code, code) {
			return t
		}
	}
	return nil
}

func nameEntries(in []string) []nameEntry {
	out := make([]nameEntry, len(in))
	for i, s := range in {
		display, ascii, ok := strings.Cut(s, "=")
		if !ok {
			ascii = display
		}
		out[i] = nameEntry{display: display, email: emailFold(ascii)}
	}
	return out
}

// emailFold turns a name into the ASCII local-part form the API uses:
// lower case, accents dropped ("Zoë Müller" -> "zoe", "muller"), letters
// without a decomposition spelled out (ø -> o, ß -> ss), spaces and
// apostrophes removed, hyphens kept.
func emailFold(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		r = unicode.ToLower(r)
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		case unicode.Is(unicode.Mn, r):
		default:
			if rep, ok := foldSpecial[r]; ok {
				b.WriteString(rep)
			}
		}
	}
	return b.String()
}

var foldSpecial = map[rune]string{
	'ø': "o", 'æ': "ae", 'œ': "oe", 'ß': "ss", 'ı': "i", 'ł': "l", 'đ': "d", 'ð': "d", 'þ': "th", 'ħ': "h",
}

// postRule says how a nationality's postcode is drawn and which JSON type
// it has: a number in [lo, hi], or a string from a pattern or the GB rules.
type postRule struct {
	lo, hi  int
	pattern string
	gb      bool
}

func postRange(lo, hi int) postRule       { return postRule{lo: lo, hi: hi} }
func postPatternText(pat string) postRule { return postRule{pattern: pat} }
func (p postRule) numeric() bool          { return p.pattern == "" && !p.gb }

var postGB = postRule{gb: true}

// gbOutward are the six shapes of a GB outward code.
var gbOutward = [...]string{"AN", "ANN", "ANA", "AAN", "AANN", "AANA"}

func (p postRule) appendTo(r *rand.Rand, b []byte) []byte {
	switch {
	case p.gb:
		b = appendPattern(r, b, gbOutward[r.IntN(len(gbOutward))])
		return appendPattern(r, b, " NAA")
	case p.pattern != "":
		return appendPattern(r, b, p.pattern)
	default:
		return strconv.AppendInt(b, int64(p.lo+r.IntN(p.hi-p.lo+1)), 10)
	}
}

// idContext is what some national ids are built from.
type idContext struct {
	dob    time.Time
	female bool
	last   string // e-mail form of the last name
}

// idFunc appends a national id value.
type idFunc func(r *rand.Rand, b []byte, c idContext) []byte

func idPattern(pat string) idFunc {
	return func(r *rand.Rand, b []byte, _ idContext) []byte { return appendPattern(r, b, pat) }
}

func digits(r *rand.Rand, d []int) {
	for i := range d {
		d[i] = r.IntN(10)
	}
}

func appendDigits(b []byte, d []int) []byte {
	for _, x := range d {
		b = append(b, byte('0'+x))
	}
	return b
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10%10), byte('0'+n%10)) }

// appendDDMMYY writes the birth date as day, month and two-digit year.
func appendDDMMYY(b []byte, t time.Time) []byte {
	b = append2(b, t.Day())
	b = append2(b, int(t.Month()))
	return append2(b, t.Year()%100)
}

// idCPF is a Brazilian CPF with valid check digits: NNN.NNN.NNN-NN.
func idCPF(r *rand.Rand, b []byte, _ idContext) []byte {
	var d [11]int
	digits(r, d[:9])
	for k := 9; k <= 10; k++ {
		sum := 0
		for i := range k {
			sum += d[i] * (k + 1 - i)
		}
		if rem := sum % 11; rem >= 2 {
			d[k] = 11 - rem
		}
	}
	b = appendDigits(b, d[0:3])
	b = append(b, '.')
	b = appendDigits(b, d[3:6])
	b = append(b, '.')
	b = appendDigits(b, d[6:9])
	b = append(b, '-')
	return appendDigits(b, d[9:11])
}

// idSIN is a Canadian SIN that passes the Luhn check: NNNNNNNNN.
func idSIN(r *rand.Rand, b []byte, _ idContext) []byte {
	var d [9]int
	d[0] = 1 + r.IntN(7) // 1-7: the ranges issued to residents
	digits(r, d[1:8])
	d[8] = luhnCheck(d[:8])
	return appendDigits(b, d[:])
}

// luhnCheck returns the digit that makes d+check pass the Luhn test.
func luhnCheck(d []int) int {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		x := d[i]
		if (len(d)-1-i)%2 == 0 {
			x *= 2
			if x > 9 {
				x -= 9
			}
		}
		sum += x
	}
	return (10 - sum%10) % 10
}

// idAVS is a Swiss AHV/AVS number with its EAN-13 check digit:
// 756.NNNN.NNNN.NN.
func idAVS(r *rand.Rand, b []byte, _ idContext) []byte {
	d := [13]int{7, 5, 6}
	digits(r, d[3:12])
	sum := 0
	for i := range 12 {
		if i%2 == 0 {
			sum += d[i]
		} else {
			sum += 3 * d[i]
		}
	}
	d[12] = (10 - sum%10) % 10
	b = appendDigits(b, d[0:3])
	b = append(b, '.')
	b = appendDigits(b, d[3:7])
	b = append(b, '.')
	b = appendDigits(b, d[7:11])
	b = append(b, '.')
	return appendDigits(b, d[11:13])
}

// idSVNR is a German Sozialversicherungsnummer: area, birth date, the
// initial of the last name, serial: NN DDMMYY A NNN. Unlike the original,
// the year always has two digits.
func idSVNR(r *rand.Rand, b []byte, c idContext) []byte {
	b = appendPattern(r, b, "NN ")
	b = appendDDMMYY(b, c.dob)
	b = append(b, ' ')
	initial := byte('X')
	if c.last != "" && c.last[0] >= 'a' && c.last[0] <= 'z' {
		initial = c.last[0] - 'a' + 'A'
	}
	b = append(b, initial, ' ')
	return appendPattern(r, b, "NNN")
}

// idCPR is a Danish CPR number: DDMMYY-NNNN.
func idCPR(r *rand.Rand, b []byte, c idContext) []byte {
	b = appendDDMMYY(b, c.dob)
	return appendPattern(r, b, "-NNNN")
}

// idDNI is a Spanish DNI with its check letter: NNNNNNNN-L.
func idDNI(r *rand.Rand, b []byte, _ idContext) []byte {
	n := r.IntN(100_000_000)
	b = append(b, strconv.Itoa(100_000_000 + n)[1:]...)
	return append(b, '-', "TRWAGMYFPDXBNJZSQVHLCKE"[n%23])
}

// idHETU is a valid Finnish personal identity code: DDMMYY, the century
// sign, an individual number (odd for men, even for women) and the check
// character. The original's is always "NaNNA...undefined"; ours is not.
func idHETU(r *rand.Rand, b []byte, c idContext) []byte {
	ind := 2 + r.IntN(449)*2 // even, 2..898
	if !c.female {
		ind++
	}
	start := len(b)
	b = appendDDMMYY(b, c.dob)
	n, _ := strconv.Atoi(string(b[start:]))
	n = n*1000 + ind
	sign := byte('-')
	if c.dob.Year() >= 2000 {
		sign = 'A'
	}
	b = append(b, sign)
	b = append(b, strconv.Itoa(1000 + ind)[1:]...)
	return append(b, "0123456789ABCDEFHJKLMNPRSTUVWXY"[n%31])
}

// idINSEE is a French social security number with its key:
// S YY MM DD CCC OOO, a space, KK (13 digits, space, 2 digits).
func idINSEE(r *rand.Rand, b []byte, c idContext) []byte {
	sex := int64(1)
	if c.female {
		sex = 2
	}
	n := sex
	n = n*100 + int64(c.dob.Year()%100)
	n = n*100 + int64(c.dob.Month())
	n = n*100 + int64(1+r.IntN(95))
	n = n*1000 + int64(1+r.IntN(990))
	n = n*1000 + int64(1+r.IntN(999))
	b = strconv.AppendInt(b, n, 10)
	b = append(b, ' ')
	return append2(b, int(97-n%97))
}

// idNINO is a UK National Insurance number: AA NN NN NN A.
func idNINO(r *rand.Rand, b []byte, _ idContext) []byte {
	const prefix = "ABCEGHJKLMNPRSTWXYZ"
	b = append(b, prefix[r.IntN(len(prefix))], prefix[r.IntN(len(prefix))])
	b = appendPattern(r, b, " NN NN NN ")
	return append(b, "ABCD"[r.IntN(4)])
}

// idPPS is an Irish PPS number with its check letter: NNNNNNNL. The
// original always ends in T; ours computes the letter.
func idPPS(r *rand.Rand, b []byte, _ idContext) []byte {
	var d [7]int
	digits(r, d[:])
	sum := 0
	for i, x := range d {
		sum += x * (8 - i)
	}
	b = appendDigits(b, d[:])
	if rem := sum % 23; rem == 0 {
		return append(b, 'W')
	} else {
		return append(b, byte('A'+rem-1))
	}
}

// idFN is a valid Norwegian fødselsnummer: DDMMYY, an individual number in
// the range for the birth century, and two mod-11 check digits.
func idFN(r *rand.Rand, b []byte, c idContext) []byte {
	var d [11]int
	d[0], d[1] = c.dob.Day()/10, c.dob.Day()%10
	d[2], d[3] = int(c.dob.Month())/10, int(c.dob.Month())%10
	d[4], d[5] = c.dob.Year()%100/10, c.dob.Year()%10
	w1 := [...]int{3, 7, 6, 1, 8, 9, 4, 5, 2}
	w2 := [...]int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}
	for {
		ind := r.IntN(500)
		if c.dob.Year() >= 2000 {
			ind += 500
		}
		d[6], d[7], d[8] = ind/100, ind/10%10, ind%10
		k1 := checkMod11(d[:9], w1[:])
		if k1 == 10 {
			continue
		}
		d[9] = k1
		k2 := checkMod11(d[:10], w2[:])
		if k2 == 10 {
			continue
		}
		d[10] = k2
		return appendDigits(b, d[:])
	}
}

func checkMod11(d, w []int) int {
	sum := 0
	for i := range d {
		sum += d[i] * w[i]
	}
	k := 11 - sum%11
	if k == 11 {
		return 0
	}
	return k
}

// idSSN is a US Social Security number outside the never-issued ranges:
// NNN-NN-NNNN.
func idSSN(r *rand.Rand, b []byte, _ idContext) []byte {
	area := 1 + r.IntN(899)
	if area == 666 {
		area = 665
	}
	b = append(b, strconv.Itoa(1000 + area)[1:]...)
	b = append(b, '-')
	b = append2(b, 1+r.IntN(99))
	b = append(b, '-')
	return append(b, strconv.Itoa(10000 + 1 + r.IntN(9999))[1:]...)
}
