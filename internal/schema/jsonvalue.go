package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// ErrValueMismatch means a JSON value does not fit the Avro schema it is to
// be written with; the error that wraps it names the field and says why.
var ErrValueMismatch = errors.New("value does not match the schema")

// EncodeJSON writes a JSON document as Avro of the serde's schema in the
// Confluent wire format, as Encode writes a record: what a person types
// into the UI's produce form. The document must fit the schema: every
// field without a default present, no field the schema lacks, each of its
// type (a timestamp as RFC 3339 text or epoch milliseconds, an optional
// field's value as itself or as {"type": value}); otherwise the error wraps
// ErrValueMismatch and names the field. It returns ErrNotRegistered if the
// serde has no schema id.
func (s *Serde) EncodeJSON(b []byte) ([]byte, error) {
	if s.id == 0 {
		return nil, fmt.Errorf("schema: encode for %s: %w", s.subject, ErrNotRegistered)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("schema: the value is not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("schema: the value is more than one JSON document")
	}
	native, err := fromJSON(s.reader, v, "")
	if err != nil {
		return nil, fmt.Errorf("schema: %w: %w", ErrValueMismatch, err)
	}
	body, err := s.api.Marshal(s.reader, native)
	if err != nil {
		return nil, fmt.Errorf("schema: %w: %w", ErrValueMismatch, err)
	}
	out := make([]byte, 0, headerLen+len(body))
	return append(append(out, s.header[:]...), body...), nil
}

// fieldError is a value at path that does not fit its schema.
func fieldError(path string, format string, args ...any) error {
	where := "the value"
	if path != "" {
		where = "field " + path
	}
	return fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// fromJSON turns a JSON value (numbers as json.Number) into what hamba
// encodes with schema s, checking it fits.
func fromJSON(s avro.Schema, v any, path string) (any, error) {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	want := func(what string) error { return fieldError(path, "want %s, got %s", what, jsonKind(v)) }
	logical := ""
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		logical = string(ls.Logical().Type())
	}
	switch s.Type() {
	case avro.Null:
		if v != nil {
			return nil, want("null")
		}
		return nil, nil
	case avro.Boolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, want("true or false")
	case avro.String:
		if str, ok := v.(string); ok {
			return str, nil
		}
		return nil, want("a string")
	case avro.Bytes:
		if str, ok := v.(string); ok {
			return []byte(str), nil
		}
		return nil, want("a string (the bytes)")
	case avro.Int, avro.Long:
		if logical == string(avro.TimestampMillis) || logical == string(avro.TimestampMicros) {
			switch x := v.(type) {
			case string:
				t, err := time.Parse(time.RFC3339Nano, x)
				if err != nil {
					return nil, fieldError(path, "%q is not an RFC 3339 time (2006-01-02T15:04:05.000Z)", x)
				}
				return t.UTC(), nil
			case json.Number:
				n, err := x.Int64()
				if err != nil {
					return nil, fieldError(path, "%s is not whole epoch milliseconds", x)
				}
				if logical == string(avro.TimestampMicros) {
					return time.UnixMicro(n).UTC(), nil
				}
				return time.UnixMilli(n).UTC(), nil
			}
			return nil, want("an RFC 3339 time or epoch milliseconds")
		}
		if logical != "" {
			return nil, fieldError(path, "the %s logical type is not supported here", logical)
		}
		x, ok := v.(json.Number)
		if !ok {
			return nil, want("a whole number")
		}
		n, err := x.Int64()
		if err != nil {
			return nil, fieldError(path, "%s is not a whole number", x)
		}
		if s.Type() == avro.Int {
			if n != int64(int32(n)) {
				return nil, fieldError(path, "%d does not fit an Avro int (32 bits)", n)
			}
			return int(n), nil
		}
		return n, nil
	case avro.Float, avro.Double:
		x, ok := v.(json.Number)
		if !ok {
			return nil, want("a number")
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fieldError(path, "%s: %v", x, err)
		}
		if s.Type() == avro.Float {
			return float32(f), nil
		}
		return f, nil
	case avro.Enum:
		str, ok := v.(string)
		if !ok {
			return nil, want("one of " + strings.Join(s.(*avro.EnumSchema).Symbols(), ", "))
		}
		if !slices.Contains(s.(*avro.EnumSchema).Symbols(), str) {
			return nil, fieldError(path, "%q is not one of %s", str, strings.Join(s.(*avro.EnumSchema).Symbols(), ", "))
		}
		return str, nil
	case avro.Array:
		items, ok := v.([]any)
		if !ok {
			return nil, want("an array")
		}
		out := make([]any, len(items))
		for i, it := range items {
			var err error
			if out[i], err = fromJSON(s.(*avro.ArraySchema).Items(), it, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case avro.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, want("an object")
		}
		out := make(map[string]any, len(m))
		for k, it := range m {
			var err error
			if out[k], err = fromJSON(s.(*avro.MapSchema).Values(), it, join(path, k)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case avro.Record:
		return recordFromJSON(s.(*avro.RecordSchema), v, path)
	case avro.Union:
		return unionFromJSON(s.(*avro.UnionSchema), v, path)
	}
	return nil, fieldError(path, "Avro %s fields are not supported here", s.Type())
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func recordFromJSON(rs *avro.RecordSchema, v any, path string) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fieldError(path, "want an object (record %s), got %s", rs.FullName(), jsonKind(v))
	}
	out := make(map[string]any, len(m))
	known := make(map[string]bool, len(rs.Fields()))
	for _, f := range rs.Fields() {
		known[f.Name()] = true
		fv, ok := m[f.Name()]
		if !ok {
			if !f.HasDefault() {
				return nil, fieldError(join(path, f.Name()), "missing, and the schema gives it no default")
			}
			continue // hamba writes the default
		}
		nv, err := fromJSON(f.Type(), fv, join(path, f.Name()))
		if err != nil {
			return nil, err
		}
		out[f.Name()] = nv
	}
	for k := range m {
		if !known[k] {
			return nil, fieldError(join(path, k), "not in the schema (record %s)", rs.FullName())
		}
	}
	return out, nil
}

// unionFromJSON picks the union's branch: null for null, the branch a
// {"type": value} object names, else the first branch the value fits.
// hamba encodes a union from a map of the branch's name to its value.
func unionFromJSON(us *avro.UnionSchema, v any, path string) (any, error) {
	name := func(s avro.Schema) string {
		if n, ok := s.(avro.NamedSchema); ok {
			return n.FullName()
		}
		if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
			return string(s.Type()) + "." + string(ls.Logical().Type())
		}
		return string(s.Type())
	}
	if v == nil {
		if _, i := us.Types().Get("null"); i < 0 {
			return nil, fieldError(path, "null is not allowed (the union has no null)")
		}
		return map[string]any{"null": nil}, nil
	}
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for k, inner := range m {
			if bs, _ := us.Types().Get(k); bs != nil {
				nv, err := fromJSON(bs, inner, path)
				if err != nil {
					return nil, err
				}
				return map[string]any{k: nv}, nil
			}
		}
	}
	var names []string
	for _, bs := range us.Types() {
		if bs.Type() == avro.Null {
			continue
		}
		if nv, err := fromJSON(bs, v, path); err == nil {
			return map[string]any{name(bs): nv}, nil
		}
		names = append(names, name(bs))
	}
	return nil, fieldError(path, "%s fits none of %s", jsonKind(v), strings.Join(names, ", "))
}
