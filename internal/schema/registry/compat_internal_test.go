package registry

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/userstream/userstream/internal/schema"
)

// rec is a record User with the given fields (JSON field objects).
func rec(fields ...string) string {
	return `{"type":"record","name":"User","namespace":"io.test","fields":[` + strings.Join(fields, ",") + `]}`
}

// field is a field named f of type typ (a JSON type).
func field(name, typ string) string { return fmt.Sprintf(`{"name":%q,"type":%s}`, name, typ) }

// TestAvroCompatibility checks the reader/writer rules of Avro's schema
// resolution case by case, with the kind and JSON-pointer location Java's
// SchemaCompatibility reports, and that hamba/avro's own checker gives the
// same verdict on every case.
func TestAvroCompatibility(t *testing.T) {
	enumABC := `{"type":"enum","name":"Color","symbols":["A","B","C"]}`
	enumAB := `{"type":"enum","name":"Color","symbols":["A","B"]}`
	enumABDefault := `{"type":"enum","name":"Color","symbols":["A","B"],"default":"A"}`
	list := func(extra string) string {
		return `{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"],"default":null}` + extra + `]}`
	}
	tests := []struct {
		name           string
		reader, writer string
		want           []string // "KIND location detail"
	}{
		{"identical", rec(field("a", `"string"`)), rec(field("a", `"string"`)), nil},
		{"new field without default", rec(field("a", `"string"`), field("b", `"string"`)), rec(field("a", `"string"`)),
			[]string{"READER_FIELD_MISSING_DEFAULT_VALUE /fields/1 b"}},
		{"new field with default", rec(field("a", `"string"`), `{"name":"b","type":"string","default":""}`), rec(field("a", `"string"`)), nil},
		{"new optional field", rec(field("a", `"string"`), `{"name":"b","type":["null","string"],"default":null}`), rec(field("a", `"string"`)), nil},
		{"removed field", rec(field("a", `"string"`)), rec(field("a", `"string"`), field("b", `"int"`)), nil},
		{"int to long", rec(field("a", `"long"`)), rec(field("a", `"int"`)), nil},
		{"int to float", rec(field("a", `"float"`)), rec(field("a", `"int"`)), nil},
		{"int to double", rec(field("a", `"double"`)), rec(field("a", `"int"`)), nil},
		{"long to float", rec(field("a", `"float"`)), rec(field("a", `"long"`)), nil},
		{"long to double", rec(field("a", `"double"`)), rec(field("a", `"long"`)), nil},
		{"float to double", rec(field("a", `"double"`)), rec(field("a", `"float"`)), nil},
		{"long to int", rec(field("a", `"int"`)), rec(field("a", `"long"`)),
			[]string{"TYPE_MISMATCH /fields/0/type reader type: INT not compatible with writer type: LONG"}},
		{"double to float", rec(field("a", `"float"`)), rec(field("a", `"double"`)),
			[]string{"TYPE_MISMATCH /fields/0/type reader type: FLOAT not compatible with writer type: DOUBLE"}},
		{"string to bytes", rec(field("a", `"bytes"`)), rec(field("a", `"string"`)), nil},
		{"bytes to string", rec(field("a", `"string"`)), rec(field("a", `"bytes"`)), nil},
		{"string to int (post_code)", rec(field("post_code", `"int"`)), rec(field("post_code", `"string"`)),
			[]string{"TYPE_MISMATCH /fields/0/type reader type: INT not compatible with writer type: STRING"}},
		{"uuid string to plain string", rec(field("id", `"string"`)), rec(field("id", `{"type":"string","logicalType":"uuid"}`)), nil},
		{"renamed field without alias", rec(field("zip", `"string"`)), rec(field("post_code", `"string"`)),
			[]string{"READER_FIELD_MISSING_DEFAULT_VALUE /fields/0 zip"}},
		{"renamed field with alias", rec(`{"name":"zip","type":"string","aliases":["post_code"]}`), rec(field("post_code", `"string"`)), nil},
		{"renamed record", `{"type":"record","name":"Person","namespace":"io.test","fields":[]}`, rec(),
			[]string{"NAME_MISMATCH /name expected: io.test.User"}},
		{"renamed record with alias", `{"type":"record","name":"Person","namespace":"io.test","aliases":["User"],"fields":[]}`, rec(), nil},
		{"namespace changed", `{"type":"record","name":"User","namespace":"io.other","fields":[]}`, rec(), nil},
		{"enum symbol removed", rec(field("c", enumAB)), rec(field("c", enumABC)),
			[]string{"MISSING_ENUM_SYMBOLS /fields/0/type/symbols [C]"}},
		{"enum symbol removed, reader default", rec(field("c", enumABDefault)), rec(field("c", enumABC)), nil},
		{"enum symbol added", rec(field("c", enumABC)), rec(field("c", enumAB)), nil},
		{"enum field without default is new", rec(field("a", `"int"`), field("c", enumABDefault)), rec(field("a", `"int"`)),
			[]string{"TYPE_MISMATCH /fields/1/type reader type: ENUM not compatible with writer type: RECORD"}},
		{"union writer, plain reader", rec(field("a", `"string"`)), rec(field("a", `["null","string"]`)),
			[]string{"TYPE_MISMATCH /fields/0/type/0 reader type: STRING not compatible with writer type: NULL"}},
		{"plain writer, union reader", rec(field("a", `["null","string"]`)), rec(field("a", `"string"`)), nil},
		{"plain writer missing from reader union", rec(field("a", `["null","string"]`)), rec(field("a", `"int"`)),
			[]string{"MISSING_UNION_BRANCH /fields/0/type reader union lacking writer type: INT"}},
		{"union branch removed", rec(field("a", `["null","string"]`)), rec(field("a", `["null","string","int"]`)),
			[]string{"MISSING_UNION_BRANCH /fields/0/type/2 reader union lacking writer type: INT"}},
		{"union branch added", rec(field("a", `["null","string","int"]`)), rec(field("a", `["null","string"]`)), nil},
		{"union branch promoted", rec(field("a", `["null","long"]`)), rec(field("a", `["null","int"]`)), nil},
		{"fixed size changed", rec(field("f", `{"type":"fixed","name":"F","size":8}`)), rec(field("f", `{"type":"fixed","name":"F","size":4}`)),
			[]string{"FIXED_SIZE_MISMATCH /fields/0/type/size expected: 4, found: 8"}},
		{"array items changed", rec(field("xs", `{"type":"array","items":"int"}`)), rec(field("xs", `{"type":"array","items":"string"}`)),
			[]string{"TYPE_MISMATCH /fields/0/type/items reader type: INT not compatible with writer type: STRING"}},
		{"map values promoted", rec(field("m", `{"type":"map","values":"long"}`)), rec(field("m", `{"type":"map","values":"int"}`)), nil},
		{"nested record new field", rec(field("addr", `{"type":"record","name":"Addr","fields":[{"name":"street","type":"string"},{"name":"city","type":"string"}]}`)),
			rec(field("addr", `{"type":"record","name":"Addr","fields":[{"name":"street","type":"string"}]}`)),
			[]string{"READER_FIELD_MISSING_DEFAULT_VALUE /fields/0/type/fields/1 city"}},
		{"recursive identical", list(""), list(""), nil},
		{"recursive new field with default", list(`,{"name":"w","type":"int","default":0}`), list(""), nil},
		{"recursive new field without default", list(`,{"name":"w","type":"int"}`), list(""),
			[]string{"READER_FIELD_MISSING_DEFAULT_VALUE /fields/2 w"}},
		{"two faults, both reported", rec(field("a", `"int"`), field("b", `"string"`)), rec(field("a", `"string"`)),
			[]string{"TYPE_MISMATCH /fields/0/type reader type: INT not compatible with writer type: STRING", "READER_FIELD_MISSING_DEFAULT_VALUE /fields/1 b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reader, err := schema.Parse(tt.reader)
			if err != nil {
				t.Fatalf("reader: %v", err)
			}
			writer, err := schema.Parse(tt.writer)
			if err != nil {
				t.Fatalf("writer: %v", err)
			}
			var got []string
			for _, i := range avroIncompatibilities(reader, writer) {
				got = append(got, strings.TrimSpace(i.kind+" "+i.location+" "+i.detail))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("incompatibilities = %q, want %q", got, tt.want)
			}
			hamba := avro.NewSchemaCompatibility().Compatible(reader, writer)
			if (hamba == nil) != (len(got) == 0) {
				t.Fatalf("hamba/avro says %v, this checker says %q: the two disagree", hamba, got)
			}
		})
	}
}

// TestCompatibilityMessages checks which versions each level compares
// against and in which direction, and the registry's message format.
func TestCompatibilityMessages(t *testing.T) {
	mustParse := func(s string) avro.Schema {
		t.Helper()
		p, err := schema.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	v1 := previous{version: 1, schema: mustParse(rec(field("a", `"int"`))), text: "v1"}
	v2 := previous{version: 2, schema: mustParse(rec(field("a", `"long"`))), text: "v2"}
	asInt := mustParse(rec(field("a", `"int"`)))
	asLong := mustParse(rec(field("a", `"long"`)))
	asDouble := mustParse(rec(field("a", `"double"`)))
	tests := []struct {
		level string
		next  avro.Schema
		prev  []previous
		want  []string // substrings, in order; nil = compatible
	}{
		{LevelBackward, asDouble, []previous{v1, v2}, nil},
		{LevelBackward, asInt, []previous{v1, v2}, []string{"TYPE_MISMATCH", "in the new schema does not match with the old schema", "{oldSchemaVersion: 2}", "{oldSchema: 'v2'}", "compatibility: 'BACKWARD'"}},
		{LevelBackwardTransitive, asLong, []previous{v1, v2}, nil},
		{LevelForward, asInt, []previous{v1, v2}, nil},
		{LevelForward, asDouble, []previous{v1, v2}, []string{"TYPE_MISMATCH", "in the old schema does not match with the new schema", "{oldSchemaVersion: 2}", "compatibility: 'FORWARD'"}},
		{LevelForwardTransitive, asLong, []previous{v1, v2}, []string{"in the old schema does not match", "{oldSchemaVersion: 1}", "'FORWARD_TRANSITIVE'"}},
		{LevelFull, asLong, []previous{v1, v2}, nil},
		{LevelFull, asDouble, []previous{v1, v2}, []string{"in the old schema does not match with the new schema", "compatibility: 'FULL'"}},
		// The old-reads-new half of FULL names no version, as Confluent's.
		{LevelFullTransitive, asLong, []previous{v1, v2}, []string{"in the old schema does not match with the new schema", "'FULL_TRANSITIVE'"}},
		{LevelBackwardTransitive, asInt, []previous{v1, v2}, []string{"{oldSchemaVersion: 2}"}},
		{LevelNone, asDouble, []previous{v1, v2}, nil},
		{LevelBackward, asInt, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			got := compatibilityMessages(tt.level, tt.next, tt.prev)
			if tt.want == nil {
				if got != nil {
					t.Fatalf("messages %q, want compatible", got)
				}
				return
			}
			all := strings.Join(got, "\n")
			rest := all
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("messages\n%s\ndo not say %q (in order)", all, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}
