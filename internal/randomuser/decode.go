package randomuser

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// ErrMalformed is matched, with errors.Is, by every error that says a
// response body is not an API response: not JSON, truncated, or JSON of the
// wrong shape. See *DecodeError for where.
var ErrMalformed = errors.New("malformed API response")

// DecodeError says where and why a response body does not have the API's
// shape. It matches ErrMalformed with errors.Is.
type DecodeError struct {
	// Path is the JSON path of the offending value, such as
	// "results[3].location.postcode"; empty when the body as a whole is
	// wrong (not JSON, truncated, not an object).
	Path string
	// Offset is the byte offset in the body where the problem was found,
	// or -1 when unknown.
	Offset int64
	// Reason says what is wrong, for example "want an object, got string".
	Reason string
	// Err is the underlying encoding/json error, if any.
	Err error
}

// Error returns "malformed API response: <path>: <reason>".
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString(ErrMalformed.Error())
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	if e.Offset >= 0 {
		b.WriteString(" (at byte ")
		b.WriteString(strconv.FormatInt(e.Offset, 10))
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the underlying encoding/json error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Is reports whether target is ErrMalformed.
func (e *DecodeError) Is(target error) bool { return target == ErrMalformed }

// APIError is an error the API itself reported, as a body of the form
// {"error": "..."}.
type APIError struct {
	// StatusCode is the HTTP status the error came with; zero when the
	// body was decoded without an HTTP exchange (Decode).
	StatusCode int
	// Message is the API's message, verbatim.
	Message string
}

// Error returns "API error: <message>".
func (e *APIError) Error() string { return "API error: " + e.Message }

// wireResponse is Response as it is decoded: a pointer to the results tells
// a missing or null "results" from an empty list.
type wireResponse struct {
	Results *[]User `json:"results"`
	Info    *Info   `json:"info"`
	Error   *string `json:"error"`
}

// Decode reads one API response from r and checks its shape.
//
// It is strict about shape and tolerant where the real API varies:
//   - a body that is not a single JSON object, or whose "results" is missing,
//     null or not an array, or with a value of the wrong JSON type anywhere
//     (a string where the API sends an object, ...), is a *DecodeError
//     naming the path, for example "results[3].name";
//   - unknown fields are ignored, and fields the API leaves out (inc, exc,
//     noinfo) stay zero;
//   - location.postcode may be a number or a string and id.value may be
//     null, as the API sends them.
//
// A body {"error": "..."} is returned as an *APIError carrying the API's
// message, whatever else the body holds. Decode reads r to the end; it does
// not limit how much it reads (the Client does).
func Decode(r io.Reader) (Response, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return Response{}, fmt.Errorf("read API response: %w", err)
	}
	return decode(b)
}

// decode is Decode on a body already read. A body is decoded first by
// fastDecode, straight into the API's types (4x encoding/json here,
// docs/benchmarks.md); a body it does not take, for any reason, is decoded
// again by encoding/json, which decides and names the error as before. The
// fast road takes only bodies encoding/json reads the same way (names as
// the API spells them, each once, valid UTF-8, the expected types), so the
// result is encoding/json's: FuzzDecode checks both roads agree on every
// body.
func decode(b []byte) (Response, error) { return decodeWith(b, true) }

// decodeWith is decode with the fast road taken or not.
func decodeWith(b []byte, fast bool) (Response, error) {
	var w wireResponse
	ok := false
	if fast {
		w, ok = fastDecode(b)
	}
	if !ok {
		w = wireResponse{}
		if err := json.Unmarshal(b, &w); err != nil {
			return Response{}, decodeError(b, err)
		}
	}
	if w.Error != nil && *w.Error != "" {
		return Response{}, &APIError{Message: *w.Error}
	}
	if w.Results == nil {
		return Response{}, &DecodeError{Path: "results", Offset: -1, Reason: "missing or null, want an array of users"}
	}
	return Response{Results: *w.Results, Info: w.Info}, nil
}

// decodeError turns an encoding/json error on body b into a *DecodeError
// with the JSON path of the offending value.
func decodeError(b []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		reason := "not valid JSON: " + syn.Error()
		if syn.Offset >= int64(len(b)) && strings.Contains(syn.Error(), "end of JSON input") {
			reason = "truncated JSON: " + syn.Error()
		}
		return &DecodeError{Offset: syn.Offset, Reason: reason, Err: err}
	}
	var typ *json.UnmarshalTypeError
	if !errors.As(err, &typ) {
		return &DecodeError{Offset: -1, Reason: err.Error(), Err: err}
	}
	if typ.Field == "" {
		return &DecodeError{Offset: typ.Offset, Reason: "want a JSON object, got " + typ.Value, Err: err}
	}
	path := typ.Field
	if typ.Field == "results" && typ.Type != reflect.TypeFor[[]User]() || strings.HasPrefix(typ.Field, "results.") {
		// encoding/json paths carry no array index: find the first user
		// that fails on its own to name it.
		var utyp *json.UnmarshalTypeError
		if i, uerr := firstBadUser(b); uerr != nil && errors.As(uerr, &utyp) {
			path = fmt.Sprintf("results[%d]", i)
			if utyp.Field != "" {
				path += "." + utyp.Field
			}
		}
	}
	offset := typ.Offset
	if offset == 0 { // unknown: a field's value never starts at byte 0
		offset = -1
	}
	return &DecodeError{Path: path, Offset: offset, Reason: fmt.Sprintf("want %s, got %s", describe(typ.Type), typ.Value), Err: err}
}

// firstBadUser decodes the users of body b one by one and returns the index
// and error of the first that does not decode.
func firstBadUser(b []byte) (int, error) {
	var w struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return -1, err
	}
	for i, raw := range w.Results {
		var u User
		if err := json.Unmarshal(raw, &u); err != nil {
			return i, err
		}
	}
	return -1, nil
}

// describe names the JSON a Go type is decoded from.
func describe(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	if t == reflect.TypeFor[Postcode]() {
		return "a number or a string"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return describe(t.Elem()) + " or null"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}
