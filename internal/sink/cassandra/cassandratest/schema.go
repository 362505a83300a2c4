package cassandratest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// CQL type option ids (native protocol spec, section 6).
const (
	typeBigint    = 0x0002
	typeBoolean   = 0x0004
	typeDouble    = 0x0007
	typeInt       = 0x0009
	typeTimestamp = 0x000B
	typeUUID      = 0x000C
	typeVarchar   = 0x000D
	typeTimeUUID  = 0x000F
	typeInet      = 0x0010
	typeList      = 0x0020
	typeMap       = 0x0021
	typeSet       = 0x0022
)

var scalarTypes = map[string]uint16{
	"text": typeVarchar, "varchar": typeVarchar, "ascii": typeVarchar,
	"uuid": typeUUID, "timeuuid": typeTimeUUID, "timestamp": typeTimestamp,
	"bigint": typeBigint, "int": typeInt, "boolean": typeBoolean,
	"double": typeDouble, "inet": typeInet,
}

func scalarTypeNames() string {
	names := make([]string, 0, len(scalarTypes))
	for n := range scalarTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ") + ", set, list, map"
}

// cqlType is a column type: a protocol option id and, for collections, the
// element types.
type cqlType struct {
	code  uint16
	elems []cqlType
}

func (t cqlType) write(w *writer) {
	w.short(t.code)
	for _, e := range t.elems {
		e.write(w)
	}
}

func (t cqlType) String() string {
	for n, c := range scalarTypes {
		if c == t.code && n != "varchar" && n != "ascii" {
			return n
		}
	}
	return fmt.Sprintf("type 0x%04x", t.code)
}

// check validates a serialized value against the type, as a server does
// before it stores a value.
func (t cqlType) check(v []byte) error {
	want := map[uint16]int{typeBigint: 8, typeTimestamp: 8, typeDouble: 8, typeInt: 4, typeBoolean: 1, typeUUID: 16, typeTimeUUID: 16}[t.code]
	switch {
	case want > 0 && len(v) != want:
		return fmt.Errorf("expected %d bytes for %s, got %d", want, t, len(v))
	case t.code == typeVarchar && !utf8.Valid(v):
		return fmt.Errorf("string is not valid UTF-8")
	case t.code == typeInet && len(v) != 4 && len(v) != 16:
		return fmt.Errorf("expected 4 or 16 bytes for inet, got %d", len(v))
	}
	return nil
}

// compare orders two serialized values of the type as CQL clustering does
// for the types the double supports.
func (t cqlType) compare(a, b []byte) int {
	switch t.code {
	case typeBigint, typeTimestamp, typeInt:
		return signedCompare(a, b)
	}
	return bytes.Compare(a, b)
}

func signedCompare(a, b []byte) int {
	if len(a) != len(b) || len(a) == 0 {
		return bytes.Compare(a, b)
	}
	x, y := slices.Clone(a), slices.Clone(b)
	x[0] ^= 0x80
	y[0] ^= 0x80
	return bytes.Compare(x, y)
}

// literal encodes a literal token as a value of the type.
func (t cqlType) literal(tok token) ([]byte, *cqlError) {
	switch t.code {
	case typeVarchar:
		if tok.kind == tkString {
			return []byte(tok.text), nil
		}
	case typeUUID, typeTimeUUID:
		if u, err := uuid.Parse(tok.text); err == nil {
			return u[:], nil
		}
	case typeInt, typeBigint:
		if n, err := strconv.ParseInt(tok.text, 10, 64); err == nil && tok.kind == tkNumber {
			if t.code == typeInt {
				return binary.BigEndian.AppendUint32(nil, uint32(n)), nil
			}
			return binary.BigEndian.AppendUint64(nil, uint64(n)), nil
		}
	}
	return nil, errInvalid("invalid literal %q for type %s", tok.text, t)
}

type column struct {
	name string
	typ  cqlType
}

type keyspace struct {
	name        string
	replication map[string]string
	durable     bool
	tables      map[string]*table
}

// table holds rows by partition key, then by clustering key.
type table struct {
	ks, name   string
	cols       []column
	byName     map[string]int
	partition  []string
	clustering []string
	desc       map[string]bool
	parts      map[string]*partition
	// indexes are the columns with a storage-attached index, by index
	// name.
	indexes map[string]string
}

type partition struct {
	rows map[string]*row
}

type row struct {
	ck    [][]byte
	cells map[string][]byte
}

func newTable(ks, name string, cols []column, pk, ck []string, desc map[string]bool) (*table, *cqlError) {
	t := &table{ks: ks, name: name, cols: cols, byName: map[string]int{}, partition: pk, clustering: ck,
		desc: desc, parts: map[string]*partition{}, indexes: map[string]string{}}
	for i, c := range cols {
		if _, dup := t.byName[c.name]; dup {
			return nil, errInvalid("multiple definition of identifier %s", c.name)
		}
		t.byName[c.name] = i
	}
	for _, k := range append(slices.Clone(pk), ck...) {
		if _, ok := t.byName[k]; !ok {
			return nil, errInvalid("unknown definition %s referenced in PRIMARY KEY", k)
		}
	}
	for c := range desc {
		if !slices.Contains(ck, c) {
			return nil, errInvalid("only clustering key columns can be defined in CLUSTERING ORDER directive: %s", c)
		}
	}
	return t, nil
}

// indexed reports whether col has a storage-attached index.
func (t *table) indexed(col string) bool {
	for _, c := range t.indexes {
		if c == col {
			return true
		}
	}
	return false
}

func (t *table) col(name string) (column, *cqlError) {
	i, ok := t.byName[name]
	if !ok {
		return column{}, errInvalid("undefined column name %s in table %s.%s", name, t.ks, t.name)
	}
	return t.cols[i], nil
}

// key encodes key components as one map key.
func key(parts [][]byte) string {
	var b []byte
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return string(b)
}

// upsert writes the cells of one row; a nil value deletes the cell, as an
// INSERT of null does.
func (t *table) upsert(cells map[string][]byte) {
	pk := make([][]byte, len(t.partition))
	for i, c := range t.partition {
		pk[i] = cells[c]
	}
	ck := make([][]byte, len(t.clustering))
	for i, c := range t.clustering {
		ck[i] = cells[c]
	}
	p := t.parts[key(pk)]
	if p == nil {
		p = &partition{rows: map[string]*row{}}
		t.parts[key(pk)] = p
	}
	r := p.rows[key(ck)]
	if r == nil {
		r = &row{ck: ck, cells: map[string][]byte{}}
		p.rows[key(ck)] = r
	}
	for c, v := range cells {
		if v == nil {
			delete(r.cells, c)
		} else {
			r.cells[c] = v
		}
	}
}

// sorted returns the rows of a partition in clustering order.
func (t *table) sorted(p *partition) []*row {
	rows := make([]*row, 0, len(p.rows))
	for _, r := range p.rows {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		for k, c := range t.clustering {
			typ := t.cols[t.byName[c]].typ
			n := typ.compare(rows[i].ck[k], rows[j].ck[k])
			if t.desc[c] {
				n = -n
			}
			if n != 0 {
				return n < 0
			}
		}
		return false
	})
	return rows
}

func (t *table) count() int {
	n := 0
	for _, p := range t.parts {
		n += len(p.rows)
	}
	return n
}
