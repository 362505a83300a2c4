package registry

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// Compatibility levels of the Schema Registry, spelled as its API spells
// them.
const (
	LevelNone               = "NONE"
	LevelBackward           = "BACKWARD"
	LevelBackwardTransitive = "BACKWARD_TRANSITIVE"
	LevelForward            = "FORWARD"
	LevelForwardTransitive  = "FORWARD_TRANSITIVE"
	LevelFull               = "FULL"
	LevelFullTransitive     = "FULL_TRANSITIVE"
)

// defaultLevel is the level of a registry nobody configured.
const defaultLevel = LevelBackward

// parseLevel returns the level s names (any case), or false.
func parseLevel(s string) (string, bool) {
	l := strings.ToUpper(s)
	switch l {
	case LevelNone, LevelBackward, LevelBackwardTransitive, LevelForward,
		LevelForwardTransitive, LevelFull, LevelFullTransitive:
		return l, true
	}
	return "", false
}

// Kinds of incompatibility, named as Avro's SchemaCompatibility (and so the
// Schema Registry's verbose messages) names them.
const (
	kindTypeMismatch       = "TYPE_MISMATCH"
	kindNameMismatch       = "NAME_MISMATCH"
	kindFixedSize          = "FIXED_SIZE_MISMATCH"
	kindMissingEnumSymbols = "MISSING_ENUM_SYMBOLS"
	kindMissingUnionBranch = "MISSING_UNION_BRANCH"
	kindMissingDefault     = "READER_FIELD_MISSING_DEFAULT_VALUE"
)

// incompatibility is one reason a reader schema cannot read what a writer
// schema wrote: its kind, where in the reader schema (a JSON pointer such
// as /fields/3/type) and a detail.
type incompatibility struct {
	kind     string
	location string
	detail   string
}

// describe renders i as the Schema Registry does in its messages, with
// reader and writer being "new" or "old".
func (i incompatibility) describe(reader, writer string) string {
	var d string
	switch i.kind {
	case kindFixedSize:
		d = fmt.Sprintf("The size of FIXED type field at path '%s' in the %s schema does not match with the %s schema", i.location, reader, writer)
	case kindTypeMismatch:
		d = fmt.Sprintf("The type (path '%s') of a field in the %s schema does not match with the %s schema", i.location, reader, writer)
	case kindNameMismatch:
		d = fmt.Sprintf("The name of the schema has changed (path '%s')", i.location)
	case kindMissingEnumSymbols:
		d = fmt.Sprintf("The %s schema is missing enum symbols '%s' at path '%s' in the %s schema", reader, i.detail, i.location, writer)
	case kindMissingUnionBranch:
		d = fmt.Sprintf("The %s schema is missing a type inside a union field at path '%s' in the %s schema", reader, i.location, writer)
	case kindMissingDefault:
		d = fmt.Sprintf("The field '%s' at path '%s' in the %s schema has no default value and is missing in the %s schema", i.detail, i.location, reader, writer)
	}
	return fmt.Sprintf("{errorType:'%s', description:'%s', additionalInfo:'%s'}", i.kind, d, i.detail)
}

// avroIncompatibilities lists why reader cannot read data written with
// writer under Avro's schema resolution rules, nil if it can. It follows
// Apache Avro's Java SchemaCompatibility (which the Schema Registry runs):
// numeric promotion int->long->float->double, string<->bytes, named types
// matched by unqualified name or a reader alias of the writer's full name,
// reader fields matched by name or alias and needing a default when the
// writer lacks them, enum symbols the reader lacks allowed only with a
// reader default, every writer union branch readable, recursion cut.
func avroIncompatibilities(reader, writer avro.Schema) []incompatibility {
	c := &compatChecker{memo: map[schemaPair]*pairResult{}}
	return c.check("", reader, writer, nil)
}

type schemaPair struct{ reader, writer avro.Schema }

type pairResult struct {
	done bool // false while the pair is being checked (recursion)
	list []incompatibility
}

type compatChecker struct {
	memo map[schemaPair]*pairResult
}

// check checks one pair at location loc+token. Pairs of named types are
// memoized by identity as Java's checker does, so a recursive type is
// compatible unless proven otherwise and a repeated pair keeps the
// locations of its first visit.
func (c *compatChecker) check(token string, reader, writer avro.Schema, loc []string) []incompatibility {
	reader, writer = deref(reader), deref(writer)
	loc = append(slices.Clip(loc), token)
	_, named1 := reader.(avro.NamedSchema)
	_, named2 := writer.(avro.NamedSchema)
	if !named1 && !named2 {
		// Only named types recur or repeat by identity; hamba may share
		// one value for every "string", which Java would not.
		return c.calculate(reader, writer, loc)
	}
	key := schemaPair{reader, writer}
	if r, ok := c.memo[key]; ok {
		if !r.done {
			return nil
		}
		return r.list
	}
	r := &pairResult{}
	c.memo[key] = r
	r.list = c.calculate(reader, writer, loc)
	r.done = true
	return r.list
}

func deref(s avro.Schema) avro.Schema {
	if ref, ok := s.(*avro.RefSchema); ok {
		return ref.Schema()
	}
	return s
}

// kind is an Avro type as Java names it; error records are records.
func kind(s avro.Schema) avro.Type {
	if s.Type() == avro.Error {
		return avro.Record
	}
	return s.Type()
}

func pointer(loc []string, more ...string) string {
	parts := append(slices.Clip(loc[1:]), more...)
	for i, p := range parts {
		parts[i] = strings.NewReplacer("~", "~0", "/", "~1").Replace(p)
	}
	return "/" + strings.Join(parts, "/")
}

func (c *compatChecker) calculate(reader, writer avro.Schema, loc []string) []incompatibility {
	rt, wt := kind(reader), kind(writer)
	if rt == wt {
		switch rt {
		case avro.Array:
			return c.check("items", reader.(*avro.ArraySchema).Items(), writer.(*avro.ArraySchema).Items(), loc)
		case avro.Map:
			return c.check("values", reader.(*avro.MapSchema).Values(), writer.(*avro.MapSchema).Values(), loc)
		case avro.Fixed:
			r, w := reader.(*avro.FixedSchema), writer.(*avro.FixedSchema)
			out := checkNames(r, w, loc)
			if r.Size() != w.Size() {
				out = append(out, incompatibility{kindFixedSize, pointer(loc, "size"), fmt.Sprintf("expected: %d, found: %d", w.Size(), r.Size())})
			}
			return out
		case avro.Enum:
			r, w := reader.(*avro.EnumSchema), writer.(*avro.EnumSchema)
			out := checkNames(r, w, loc)
			var missing []string
			for _, s := range w.Symbols() {
				if !slices.Contains(r.Symbols(), s) {
					missing = append(missing, s)
				}
			}
			if len(missing) > 0 && !(r.HasDefault() && slices.Contains(r.Symbols(), r.Default())) {
				slices.Sort(missing)
				out = append(out, incompatibility{kindMissingEnumSymbols, pointer(loc, "symbols"), "[" + strings.Join(missing, ", ") + "]"})
			}
			return out
		case avro.Record:
			r, w := reader.(*avro.RecordSchema), writer.(*avro.RecordSchema)
			return append(checkNames(r, w, loc), c.checkFields(r, w, loc)...)
		case avro.Union:
			var out []incompatibility
			for i, branch := range writer.(*avro.UnionSchema).Types() {
				// Java checks each branch from a fresh root and reports
				// only the missing branch.
				if len(c.check("", reader, branch, nil)) > 0 {
					out = append(out, incompatibility{kindMissingUnionBranch, pointer(loc, strconv.Itoa(i)),
						"reader union lacking writer type: " + upper(kind(deref(branch)))})
				}
			}
			return out
		default:
			return nil
		}
	}
	if wt == avro.Union {
		var out []incompatibility
		for i, branch := range writer.(*avro.UnionSchema).Types() {
			out = append(out, c.check(strconv.Itoa(i), reader, branch, loc)...)
		}
		return out
	}
	switch rt {
	case avro.Long:
		if wt == avro.Int {
			return nil
		}
	case avro.Float:
		if wt == avro.Int || wt == avro.Long {
			return nil
		}
	case avro.Double:
		if wt == avro.Int || wt == avro.Long || wt == avro.Float {
			return nil
		}
	case avro.Bytes:
		if wt == avro.String {
			return nil
		}
	case avro.String:
		if wt == avro.Bytes {
			return nil
		}
	case avro.Union:
		for _, branch := range reader.(*avro.UnionSchema).Types() {
			if len(c.check("", branch, writer, nil)) == 0 {
				return nil
			}
		}
		return []incompatibility{{kindMissingUnionBranch, pointer(loc), "reader union lacking writer type: " + upper(wt)}}
	}
	return []incompatibility{typeMismatch(rt, wt, loc)}
}

func typeMismatch(rt, wt avro.Type, loc []string) incompatibility {
	return incompatibility{kindTypeMismatch, pointer(loc),
		fmt.Sprintf("reader type: %s not compatible with writer type: %s", upper(rt), upper(wt))}
}

func upper(t avro.Type) string { return strings.ToUpper(string(t)) }

// checkNames: the unqualified names must match, or a reader alias must
// name the writer's full name.
func checkNames(reader, writer avro.NamedSchema, loc []string) []incompatibility {
	if reader.Name() == writer.Name() || slices.Contains(reader.Aliases(), writer.FullName()) {
		return nil
	}
	return []incompatibility{{kindNameMismatch, pointer(loc, "name"), "expected: " + writer.FullName()}}
}

func (c *compatChecker) checkFields(reader, writer *avro.RecordSchema, loc []string) []incompatibility {
	var out []incompatibility
	floc := append(slices.Clip(loc), "fields")
	for pos, rf := range reader.Fields() {
		here := append(slices.Clip(floc), strconv.Itoa(pos))
		wf := writerField(writer, rf)
		switch {
		case wf != nil:
			out = append(out, c.check("type", rf.Type(), wf.Type(), here)...)
		case rf.HasDefault():
		default:
			if e, ok := deref(rf.Type()).(*avro.EnumSchema); ok && e.HasDefault() {
				// Java compares the enum with the writer record here, which
				// is always a type mismatch.
				out = append(out, c.check("type", rf.Type(), writer, here)...)
				continue
			}
			out = append(out, incompatibility{kindMissingDefault, pointer(here), rf.Name()})
		}
	}
	return out
}

// writerField is the writer's field of the reader field's name, else of
// one of its aliases.
func writerField(writer *avro.RecordSchema, rf *avro.Field) *avro.Field {
	names := append([]string{rf.Name()}, rf.Aliases()...)
	for _, n := range names {
		for _, wf := range writer.Fields() {
			if wf.Name() == n {
				return wf
			}
		}
	}
	return nil
}

// previous is one earlier version a new schema is checked against.
type previous struct {
	version int
	schema  avro.Schema
	text    string // the normalized text, quoted in messages
}

// compatibilityMessages checks next against prev (ascending versions) at
// level and returns the Schema Registry's messages, nil when compatible:
// BACKWARD checks that next reads the latest version, FORWARD that the
// latest reads next, FULL both; the _TRANSITIVE forms check every version,
// newest first, and stop at the first that fails.
func compatibilityMessages(level string, next avro.Schema, prev []previous) []string {
	if level == LevelNone || len(prev) == 0 {
		return nil
	}
	against := prev[len(prev)-1:]
	if strings.HasSuffix(level, "_TRANSITIVE") {
		against = slices.Clone(prev)
		slices.Reverse(against)
	}
	base := strings.TrimSuffix(level, "_TRANSITIVE")
	for _, old := range against {
		var msgs []string
		if base == LevelForward || base == LevelFull {
			// The old schema reads data written with the new one.
			for _, i := range avroIncompatibilities(old.schema, next) {
				msgs = append(msgs, i.describe("old", "new"))
			}
			if base == LevelForward && len(msgs) > 0 {
				msgs = append(msgs, oldSchemaNotes(old)...)
			}
		}
		if base == LevelBackward || base == LevelFull {
			var back []string
			for _, i := range avroIncompatibilities(next, old.schema) {
				back = append(back, i.describe("new", "old"))
			}
			if len(back) > 0 {
				msgs = append(append(msgs, back...), oldSchemaNotes(old)...)
			}
		}
		if len(msgs) > 0 {
			return append(msgs, fmt.Sprintf("{validateFields: 'false', compatibility: '%s'}", level))
		}
	}
	return nil
}

func oldSchemaNotes(old previous) []string {
	return []string{fmt.Sprintf("{oldSchemaVersion: %d}", old.version), fmt.Sprintf("{oldSchema: '%s'}", old.text)}
}
