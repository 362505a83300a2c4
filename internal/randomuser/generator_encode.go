package randomuser

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/userstream/userstream/internal/user"
)

// flushAt is how many encoded bytes WriteResponse gathers before it writes.
const flushAt = 64 << 10

// ContentType returns the media type WriteResponse uses for the format of p
// (json for an unknown one).
func ContentType(p Params) string {
	switch p.Format {
	case "csv":
		return "text/csv; charset=utf-8"
	case "yaml":
		return "application/yaml; charset=utf-8"
	case "xml":
		return "application/xml; charset=utf-8"
	default:
		return "application/json; charset=utf-8"
	}
}

// WriteResponse generates the users p asks for and writes them to w in the
// requested format, in chunks, without building a Response first. For
// json, the bytes are exactly what encoding/json gives for the Response
// Generate returns (less the fields inc/exc leave out). It returns
// ErrInvalidParam (before writing anything) for a request it will not
// serve, or the error of w.
func (g *Generator) WriteResponse(w io.Writer, p Params) error {
	pl, err := g.prepare(p)
	if err != nil {
		return err
	}
	return g.writePlan(w, &pl)
}

// writePlan writes the response of a validated request.
func (g *Generator) writePlan(w io.Writer, pl *plan) error {
	st := newGenState(pl, g.now())
	switch pl.format {
	case "csv":
		return writeCSV(w, st)
	case "json":
		return g.writeJSON(w, st)
	default:
		// pretty, yaml and xml are made from the compact JSON.
		var buf bytes.Buffer
		if err := g.writeJSON(&buf, st); err != nil {
			return err
		}
		return writeConverted(w, pl.format, buf.Bytes())
	}
}

func (g *Generator) writeJSON(w io.Writer, st *genState) error {
	bp, _ := g.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, flushAt+8<<10)
		bp = &b
	}
	defer g.bufs.Put(bp)
	b := append((*bp)[:0], `{"results":[`...)
	var u User
	for i := range st.pl.results {
		if i > 0 {
			b = append(b, ',')
		}
		st.user(&u)
		b = appendUserJSON(b, &u, st.pl.mask)
		if len(b) >= flushAt {
			if _, err := w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	b = append(b, ']')
	if !st.pl.noInfo {
		b = append(b, `,"info":{"seed":`...)
		b = user.AppendJSONString(b, st.pl.seed)
		b = append(b, `,"results":`...)
		b = strconv.AppendInt(b, int64(st.pl.results), 10)
		b = append(b, `,"page":`...)
		b = strconv.AppendInt(b, int64(st.pl.page), 10)
		b = append(b, `,"version":"`+Version+`"}`...)
	}
	b = append(b, '}')
	_, err := w.Write(b)
	*bp = b[:0]
	return err
}

// appendUserJSON appends u as a JSON object with the top-level fields m
// selects, in the order and exact form encoding/json uses for User.
func appendUserJSON(b []byte, u *User, m fieldMask) []byte {
	b = append(b, '{')
	n := 0
	key := func(b []byte, k string) []byte {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, '"')
		b = append(b, k...)
		return append(b, '"', ':')
	}
	if m&fGender != 0 {
		b = key(b, "gender")
		b = user.AppendJSONString(b, u.Gender)
	}
	if m&fName != 0 {
		b = key(b, "name")
		b = append(b, `{"title":`...)
		b = user.AppendJSONString(b, u.Name.Title)
		b = append(b, `,"first":`...)
		b = user.AppendJSONString(b, u.Name.First)
		b = append(b, `,"last":`...)
		b = user.AppendJSONString(b, u.Name.Last)
		b = append(b, '}')
	}
	if m&fLocation != 0 {
		l := &u.Location
		b = key(b, "location")
		b = append(b, `{"street":{"number":`...)
		b = strconv.AppendInt(b, int64(l.Street.Number), 10)
		b = append(b, `,"name":`...)
		b = user.AppendJSONString(b, l.Street.Name)
		b = append(b, `},"city":`...)
		b = user.AppendJSONString(b, l.City)
		b = append(b, `,"state":`...)
		b = user.AppendJSONString(b, l.State)
		b = append(b, `,"country":`...)
		b = user.AppendJSONString(b, l.Country)
		b = append(b, `,"postcode":`...)
		if l.Postcode.Numeric {
			b = append(b, l.Postcode.Value...)
		} else {
			b = user.AppendJSONString(b, l.Postcode.Value)
		}
		b = append(b, `,"coordinates":{"latitude":`...)
		b = user.AppendJSONString(b, l.Coordinates.Latitude)
		b = append(b, `,"longitude":`...)
		b = user.AppendJSONString(b, l.Coordinates.Longitude)
		b = append(b, `},"timezone":{"offset":`...)
		b = user.AppendJSONString(b, l.Timezone.Offset)
		b = append(b, `,"description":`...)
		b = user.AppendJSONString(b, l.Timezone.Description)
		b = append(b, `}}`...)
	}
	if m&fEmail != 0 {
		b = key(b, "email")
		b = user.AppendJSONString(b, u.Email)
	}
	if m&fLogin != 0 {
		lg := &u.Login
		b = key(b, "login")
		b = append(b, `{"uuid":`...)
		b = user.AppendJSONString(b, lg.UUID)
		b = append(b, `,"username":`...)
		b = user.AppendJSONString(b, lg.Username)
		b = append(b, `,"password":`...)
		b = user.AppendJSONString(b, lg.Password)
		b = append(b, `,"salt":`...)
		b = user.AppendJSONString(b, lg.Salt)
		b = append(b, `,"md5":`...)
		b = user.AppendJSONString(b, lg.MD5)
		b = append(b, `,"sha1":`...)
		b = user.AppendJSONString(b, lg.SHA1)
		b = append(b, `,"sha256":`...)
		b = user.AppendJSONString(b, lg.SHA256)
		b = append(b, '}')
	}
	if m&fDOB != 0 {
		b = key(b, "dob")
		b = appendDatedAge(b, u.DOB)
	}
	if m&fRegistered != 0 {
		b = key(b, "registered")
		b = appendDatedAge(b, u.Registered)
	}
	if m&fPhone != 0 {
		b = key(b, "phone")
		b = user.AppendJSONString(b, u.Phone)
	}
	if m&fCell != 0 {
		b = key(b, "cell")
		b = user.AppendJSONString(b, u.Cell)
	}
	if m&fID != 0 {
		b = key(b, "id")
		b = append(b, `{"name":`...)
		b = user.AppendJSONString(b, u.ID.Name)
		b = append(b, `,"value":`...)
		if u.ID.Value == nil {
			b = append(b, "null"...)
		} else {
			b = user.AppendJSONString(b, *u.ID.Value)
		}
		b = append(b, '}')
	}
	if m&fPicture != 0 {
		b = key(b, "picture")
		b = append(b, `{"large":`...)
		b = user.AppendJSONString(b, u.Picture.Large)
		b = append(b, `,"medium":`...)
		b = user.AppendJSONString(b, u.Picture.Medium)
		b = append(b, `,"thumbnail":`...)
		b = user.AppendJSONString(b, u.Picture.Thumbnail)
		b = append(b, '}')
	}
	if m&fNat != 0 {
		b = key(b, "nat")
		b = user.AppendJSONString(b, u.Nat)
	}
	return append(b, '}')
}

func appendDatedAge(b []byte, d DatedAge) []byte {
	b = append(b, `{"date":`...)
	b = user.AppendJSONString(b, d.Date)
	b = append(b, `,"age":`...)
	b = strconv.AppendInt(b, int64(d.Age), 10)
	return append(b, '}')
}

// csvColumn is one flattened leaf of a user.
type csvColumn struct {
	field fieldMask
	key   string
	get   func(u *User) string
}

var csvColumns = [...]csvColumn{
	{fGender, "gender", func(u *User) string { return u.Gender }},
	{fName, "name.title", func(u *User) string { return u.Name.Title }},
	{fName, "name.first", func(u *User) string { return u.Name.First }},
	{fName, "name.last", func(u *User) string { return u.Name.Last }},
	{fLocation, "location.street.number", func(u *User) string { return strconv.Itoa(u.Location.Street.Number) }},
	{fLocation, "location.street.name", func(u *User) string { return u.Location.Street.Name }},
	{fLocation, "location.city", func(u *User) string { return u.Location.City }},
	{fLocation, "location.state", func(u *User) string { return u.Location.State }},
	{fLocation, "location.country", func(u *User) string { return u.Location.Country }},
	{fLocation, "location.postcode", func(u *User) string { return u.Location.Postcode.Value }},
	{fLocation, "location.coordinates.latitude", func(u *User) string { return u.Location.Coordinates.Latitude }},
	{fLocation, "location.coordinates.longitude", func(u *User) string { return u.Location.Coordinates.Longitude }},
	{fLocation, "location.timezone.offset", func(u *User) string { return u.Location.Timezone.Offset }},
	{fLocation, "location.timezone.description", func(u *User) string { return u.Location.Timezone.Description }},
	{fEmail, "email", func(u *User) string { return u.Email }},
	{fLogin, "login.uuid", func(u *User) string { return u.Login.UUID }},
	{fLogin, "login.username", func(u *User) string { return u.Login.Username }},
	{fLogin, "login.password", func(u *User) string { return u.Login.Password }},
	{fLogin, "login.salt", func(u *User) string { return u.Login.Salt }},
	{fLogin, "login.md5", func(u *User) string { return u.Login.MD5 }},
	{fLogin, "login.sha1", func(u *User) string { return u.Login.SHA1 }},
	{fLogin, "login.sha256", func(u *User) string { return u.Login.SHA256 }},
	{fDOB, "dob.date", func(u *User) string { return u.DOB.Date }},
	{fDOB, "dob.age", func(u *User) string { return strconv.Itoa(u.DOB.Age) }},
	{fRegistered, "registered.date", func(u *User) string { return u.Registered.Date }},
	{fRegistered, "registered.age", func(u *User) string { return strconv.Itoa(u.Registered.Age) }},
	{fPhone, "phone", func(u *User) string { return u.Phone }},
	{fCell, "cell", func(u *User) string { return u.Cell }},
	{fID, "id.name", func(u *User) string { return u.ID.Name }},
	{fID, "id.value", func(u *User) string {
		if u.ID.Value == nil {
			return ""
		}
		return *u.ID.Value
	}},
	{fPicture, "picture.large", func(u *User) string { return u.Picture.Large }},
	{fPicture, "picture.medium", func(u *User) string { return u.Picture.Medium }},
	{fPicture, "picture.thumbnail", func(u *User) string { return u.Picture.Thumbnail }},
	{fNat, "nat", func(u *User) string { return u.Nat }},
}

// writeCSV writes a header of dotted keys (name.first, location.postcode,
// ...) for the selected fields, then one row per user. A null id.value is
// an empty cell. There is no info block in CSV.
func writeCSV(w io.Writer, st *genState) error {
	var cols []csvColumn
	for _, c := range csvColumns {
		if st.pl.mask&c.field != 0 {
			cols = append(cols, c)
		}
	}
	cw := csv.NewWriter(w)
	row := make([]string, len(cols))
	for i, c := range cols {
		row[i] = c.key
	}
	if err := cw.Write(row); err != nil {
		return err
	}
	var u User
	for range st.pl.results {
		st.user(&u)
		for i, c := range cols {
			row[i] = c.get(&u)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeConverted turns the compact JSON of a response into pretty JSON,
// YAML or XML.
func writeConverted(w io.Writer, format string, compact []byte) error {
	switch format {
	case "pretty":
		var out bytes.Buffer
		out.Grow(len(compact) * 2)
		if err := json.Indent(&out, compact, "", "  "); err != nil {
			return fmt.Errorf("indent response: %w", err)
		}
		out.WriteByte('\n')
		_, err := w.Write(out.Bytes())
		return err
	case "yaml", "xml":
		tree, err := decodeOrdered(compact)
		if err != nil {
			return err
		}
		var out bytes.Buffer
		if format == "yaml" {
			writeYAML(&out, tree, 0)
		} else {
			out.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<user>")
			writeXML(&out, tree)
			out.WriteString("</user>\n")
		}
		_, err = w.Write(out.Bytes())
		return err
	}
	return fmt.Errorf("%w: format %q", ErrInvalidParam, format)
}
