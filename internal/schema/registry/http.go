package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/sr"
)

// contentType is what the Schema Registry answers with.
const contentType = "application/vnd.schemaregistry.v1+json"

// maxBody bounds a request body.
const maxBody = 16 << 20

// subjectSchemaJSON is a subject version as the registry shows it.
type subjectSchemaJSON struct {
	Subject    string               `json:"subject"`
	Version    int                  `json:"version"`
	ID         int                  `json:"id"`
	SchemaType string               `json:"schemaType"`
	References []sr.SchemaReference `json:"references,omitempty"`
	Schema     string               `json:"schema"`
}

func (st *regState) show(subject string, v subjectVersion) subjectSchemaJSON {
	rs := st.ids[v.id]
	return subjectSchemaJSON{Subject: subject, Version: v.version, ID: v.id, SchemaType: rs.typ, References: rs.refs, Schema: rs.text}
}

// request is one API call: its method, path segments (unescaped), query
// and body.
type request struct {
	method string
	seg    []string
	query  url.Values
	body   []byte
}

func (q request) flag(name string) bool { return strings.EqualFold(q.query.Get(name), "true") }

// answer is a successful reply: a value to encode as JSON, or raw text.
type answer struct {
	value any
	raw   *string
}

func (r *Server) serveHTTP(w http.ResponseWriter, hr *http.Request) {
	w.Header().Set("Content-Type", contentType)
	q, aerr := readRequest(w, hr)
	var a answer
	if aerr == nil {
		a, aerr = r.route(q)
	}
	if aerr != nil {
		if aerr.status >= 500 {
			r.logger.Error("schema registry request failed", "method", hr.Method, "path", hr.URL.Path, "err", aerr.msg)
		}
		writeJSON(w, aerr.status, sr.ResponseError{ErrorCode: aerr.code, Message: aerr.msg})
		return
	}
	if a.raw != nil {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, *a.raw)
		return
	}
	writeJSON(w, http.StatusOK, a.value)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func readRequest(w http.ResponseWriter, hr *http.Request) (request, *apiError) {
	q := request{method: hr.Method, query: hr.URL.Query()}
	p := strings.TrimSuffix(strings.TrimPrefix(hr.URL.EscapedPath(), "/"), "/")
	if p != "" {
		for _, s := range strings.Split(p, "/") {
			u, err := url.PathUnescape(s)
			if err != nil || u == "" {
				return q, errHTTPNotFound()
			}
			q.seg = append(q.seg, u)
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, hr.Body, maxBody))
	if err != nil {
		return q, &apiError{http.StatusRequestEntityTooLarge, 413, "request body too large or unreadable: " + err.Error()}
	}
	q.body = b
	return q, nil
}

func errHTTPNotFound() *apiError { return &apiError{http.StatusNotFound, 404, "HTTP 404 Not Found"} }

func errMethodNotAllowed() *apiError {
	return &apiError{http.StatusMethodNotAllowed, 405, "HTTP 405 Method Not Allowed"}
}

// decode reads a JSON body as Jackson-based Confluent does: no body is 422,
// broken JSON 400, a value of the wrong type 422.
func decode(body []byte, into any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 || string(bytes.TrimSpace(body)) == "null" {
		return &apiError{http.StatusUnprocessableEntity, 422, "request body must not be empty"}
	}
	err := json.Unmarshal(body, into)
	var syn *json.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF):
		return &apiError{http.StatusBadRequest, 400, "Unexpected character in request body: " + err.Error()}
	default:
		return &apiError{http.StatusUnprocessableEntity, 422, "Unrecognized request body: " + err.Error()}
	}
}

// route dispatches a call by its path. Paths follow the Schema Registry
// API reference; unknown paths are 404 and known paths with another method
// 405, both with an error_code equal to the status, as Jersey answers.
func (r *Server) route(q request) (answer, *apiError) {
	s := q.seg
	n := len(s)
	switch {
	case n == 0:
		return only(q, http.MethodGet, func() (answer, *apiError) { return answer{value: struct{}{}}, nil })
	case s[0] == "schemas":
		return r.routeSchemas(q)
	case s[0] == "subjects":
		return r.routeSubjects(q)
	case s[0] == "compatibility" && n >= 4 && n <= 5 && s[1] == "subjects" && s[3] == "versions":
		version := ""
		if n == 5 {
			version = s[4]
		}
		return only(q, http.MethodPost, func() (answer, *apiError) { return r.testCompatibility(q, s[2], version) })
	case s[0] == "config" && n <= 2:
		return r.routeSetting(q, settingConfig)
	case s[0] == "mode" && n <= 2:
		return r.routeSetting(q, settingMode)
	case s[0] == "contexts" && n == 1:
		return only(q, http.MethodGet, func() (answer, *apiError) { return answer{value: []string{"."}}, nil })
	}
	return answer{}, errHTTPNotFound()
}

func only(q request, method string, fn func() (answer, *apiError)) (answer, *apiError) {
	if q.method != method {
		return answer{}, errMethodNotAllowed()
	}
	return fn()
}

func (r *Server) routeSchemas(q request) (answer, *apiError) {
	s := q.seg
	switch {
	case len(s) == 1:
		return only(q, http.MethodGet, func() (answer, *apiError) { return r.listSchemas(q), nil })
	case len(s) == 2 && s[1] == "types":
		return only(q, http.MethodGet, func() (answer, *apiError) { return answer{value: []string{typeAvro}}, nil })
	case len(s) >= 3 && len(s) <= 4 && s[1] == "ids":
		id, err := strconv.ParseInt(s[2], 10, 32)
		if err != nil {
			return answer{}, errHTTPNotFound()
		}
		what := ""
		if len(s) == 4 {
			what = s[3]
		}
		if what != "" && what != "schema" && what != "subjects" && what != "versions" {
			return answer{}, errHTTPNotFound()
		}
		return only(q, http.MethodGet, func() (answer, *apiError) { return r.byID(q, int(id), what) })
	}
	return answer{}, errHTTPNotFound()
}

func (r *Server) listSchemas(q request) answer {
	out := []subjectSchemaJSON{}
	prefix, withDeleted, latestOnly := q.query.Get("subjectPrefix"), q.flag("deleted"), q.flag("latestOnly")
	r.read(func(st *regState) {
		for _, subject := range st.listSubjects(prefix, withDeleted, false) {
			vs := st.subjects[subject]
			if latestOnly {
				if v, ok := st.get(subject, latestVersion, false); ok {
					out = append(out, st.show(subject, v))
				}
				continue
			}
			for _, v := range vs {
				if withDeleted || !v.deleted {
					out = append(out, st.show(subject, v))
				}
			}
		}
	})
	return answer{value: out}
}

func (r *Server) byID(q request, id int, what string) (a answer, aerr *apiError) {
	r.read(func(st *regState) {
		switch what {
		case "subjects", "versions":
			us, err := st.usages(id, q.flag("deleted"))
			if err != nil {
				aerr = err
				return
			}
			if what == "versions" {
				a.value = us
				return
			}
			subjects := []string{}
			for _, u := range us {
				if len(subjects) == 0 || subjects[len(subjects)-1] != u.Subject {
					subjects = append(subjects, u.Subject)
				}
			}
			a.value = subjects
		default:
			rs, ok := st.ids[id]
			if !ok {
				aerr = errSchemaIDNotFound(id)
				return
			}
			if what == "schema" {
				a.raw = &rs.text
				return
			}
			a.value = struct {
				SchemaType string               `json:"schemaType"`
				References []sr.SchemaReference `json:"references,omitempty"`
				Schema     string               `json:"schema"`
			}{rs.typ, rs.refs, rs.text}
		}
	})
	return a, aerr
}

func (r *Server) routeSubjects(q request) (answer, *apiError) {
	s := q.seg
	n := len(s)
	if n == 1 {
		return only(q, http.MethodGet, func() (answer, *apiError) {
			var out []string
			r.read(func(st *regState) {
				out = st.listSubjects(q.query.Get("subjectPrefix"), q.flag("deleted"), q.flag("deletedOnly"))
			})
			return answer{value: out}, nil
		})
	}
	subject := s[1]
	switch {
	case n == 2 && q.method == http.MethodPost:
		return r.lookup(q, subject)
	case n == 2 && q.method == http.MethodDelete:
		return r.remove(q, subject, func(st *regState, permanent bool) (any, *apiError) {
			return st.deleteSubject(subject, permanent)
		})
	case n == 2:
		return answer{}, errMethodNotAllowed()
	case n == 3 && s[2] == "versions" && q.method == http.MethodGet:
		var out []int
		var aerr *apiError
		r.read(func(st *regState) { out, aerr = st.listVersions(subject, q.flag("deleted"), q.flag("deletedOnly")) })
		return answer{value: out}, aerr
	case n == 3 && s[2] == "versions" && q.method == http.MethodPost:
		return r.register(q, subject)
	case n == 3 && s[2] == "versions":
		return answer{}, errMethodNotAllowed()
	case n == 4 && s[2] == "versions" && q.method == http.MethodGet:
		return r.getVersion(q, subject, s[3], false)
	case n == 4 && s[2] == "versions" && q.method == http.MethodDelete:
		return r.remove(q, subject, func(st *regState, permanent bool) (any, *apiError) {
			return st.deleteVersion(subject, s[3], permanent)
		})
	case n == 4 && s[2] == "versions":
		return answer{}, errMethodNotAllowed()
	case n == 5 && s[2] == "versions" && s[4] == "schema":
		return only(q, http.MethodGet, func() (answer, *apiError) { return r.getVersion(q, subject, s[3], true) })
	case n == 5 && s[2] == "versions" && s[4] == "referencedby":
		return only(q, http.MethodGet, func() (answer, *apiError) {
			// References are not supported, so nothing refers to anything.
			if a, aerr := r.getVersion(q, subject, s[3], false); aerr != nil {
				return a, aerr
			}
			return answer{value: []int{}}, nil
		})
	}
	return answer{}, errHTTPNotFound()
}

func (r *Server) register(q request, subject string) (answer, *apiError) {
	var req registerRequest
	if aerr := decode(q.body, &req); aerr != nil {
		return answer{}, aerr
	}
	var (
		v     subjectVersion
		out   subjectSchemaJSON
		added bool
	)
	aerr := r.change(func(st *regState) *apiError {
		var aerr *apiError
		v, aerr = st.register(subject, req)
		if aerr == nil {
			out, added = st.show(subject, v), st.dirty
		}
		return aerr
	})
	if aerr != nil {
		return answer{}, aerr
	}
	if added {
		r.logger.Info("schema registered", "subject", subject, "version", v.version, "id", v.id)
	}
	return answer{value: struct {
		ID         int    `json:"id"`
		Version    int    `json:"version"`
		SchemaType string `json:"schemaType"`
		Schema     string `json:"schema"`
	}{out.ID, out.Version, out.SchemaType, out.Schema}}, nil
}

func (r *Server) lookup(q request, subject string) (a answer, aerr *apiError) {
	var req registerRequest
	if aerr := decode(q.body, &req); aerr != nil {
		return answer{}, aerr
	}
	r.read(func(st *regState) {
		var v subjectVersion
		if v, aerr = st.lookup(subject, req, q.flag("deleted")); aerr == nil {
			a.value = st.show(subject, v)
		}
	})
	return a, aerr
}

func (r *Server) getVersion(q request, subject, version string, raw bool) (a answer, aerr *apiError) {
	r.read(func(st *regState) {
		var v subjectVersion
		if v, aerr = st.getVersion(subject, version, q.flag("deleted")); aerr != nil {
			return
		}
		if raw {
			a.raw = &st.ids[v.id].text
			return
		}
		a.value = st.show(subject, v)
	})
	return a, aerr
}

// remove runs a subject or version deletion and logs what went.
func (r *Server) remove(q request, subject string, del func(st *regState, permanent bool) (any, *apiError)) (answer, *apiError) {
	var out any
	permanent := q.flag("permanent")
	aerr := r.change(func(st *regState) *apiError {
		var aerr *apiError
		out, aerr = del(st, permanent)
		return aerr
	})
	if aerr != nil {
		return answer{}, aerr
	}
	r.logger.Info("schema registry deleted", "subject", subject, "versions", out, "permanent", permanent)
	return answer{value: out}, nil
}

func (r *Server) testCompatibility(q request, subject, version string) (answer, *apiError) {
	var req registerRequest
	if aerr := decode(q.body, &req); aerr != nil {
		return answer{}, aerr
	}
	verbose := q.flag("verbose")
	var (
		msgs []string
		aerr *apiError
	)
	r.read(func(st *regState) { msgs, aerr = st.compatibility(subject, version, req, verbose) })
	if aerr != nil {
		return answer{}, aerr
	}
	if !verbose {
		return answer{value: struct {
			Is bool `json:"is_compatible"`
		}{len(msgs) == 0}}, nil
	}
	if msgs == nil {
		msgs = []string{}
	}
	return answer{value: sr.CheckCompatibilityResult{Is: len(msgs) == 0, Messages: msgs}}, nil
}

// setting is /config (compatibility levels) or /mode: each has a global
// value and per-subject values, answered alike.
type setting struct {
	name       string // "compatibility" or "mode"
	getKey     string // the key of GET and DELETE answers
	putKey     string // the key of PUT bodies and answers
	notSet     func(subject string) *apiError
	of         func(st *regState) *settings
	set        func(st *regState, subject, value string, force bool) (string, *apiError)
	keepOnNull bool // a PUT without the key changes nothing
}

var (
	settingConfig = setting{
		name: "compatibility", getKey: "compatibilityLevel", putKey: "compatibility",
		notSet: errNoSubjectLevel, keepOnNull: true,
		of:  func(st *regState) *settings { return &st.levels },
		set: (*regState).setLevel,
	}
	settingMode = setting{
		name: "mode", getKey: "mode", putKey: "mode",
		notSet: errNoSubjectMode,
		of:     func(st *regState) *settings { return &st.modes },
		set:    (*regState).setMode,
	}
)

func (r *Server) routeSetting(q request, set setting) (answer, *apiError) {
	subject := ""
	if len(q.seg) == 2 {
		subject = q.seg[1]
	}
	switch q.method {
	case http.MethodGet:
		var (
			v  string
			ok bool
		)
		r.read(func(st *regState) {
			if v, ok = set.of(st).get(subject); !ok && q.flag("defaultToGlobal") {
				v, ok = set.of(st).get("")
			}
		})
		if !ok {
			return answer{}, set.notSet(subject)
		}
		return answer{value: map[string]string{set.getKey: v}}, nil
	case http.MethodPut:
		var body map[string]*string
		if aerr := decode(q.body, &body); aerr != nil {
			return answer{}, aerr
		}
		value := body[set.putKey]
		if value == nil && !set.keepOnNull {
			return answer{}, errInvalidMode()
		}
		var out string
		aerr := r.change(func(st *regState) *apiError {
			if value == nil {
				out, _ = set.of(st).get(subject)
				return nil
			}
			var aerr *apiError
			out, aerr = set.set(st, subject, *value, q.flag("force"))
			return aerr
		})
		if aerr != nil {
			return answer{}, aerr
		}
		if value != nil {
			r.logger.Info("schema registry "+set.name+" set", "subject", subject, set.name, out)
		}
		if out == "" {
			return answer{value: struct{}{}}, nil
		}
		return answer{value: map[string]string{set.putKey: out}}, nil
	case http.MethodDelete:
		var old string
		aerr := r.change(func(st *regState) *apiError {
			var aerr *apiError
			old, aerr = set.of(st).reset(subject)
			st.dirty = aerr == nil
			return aerr
		})
		if aerr != nil {
			return answer{}, aerr
		}
		r.logger.Info("schema registry "+set.name+" reset", "subject", subject, "was", old)
		return answer{value: map[string]string{set.getKey: old}}, nil
	}
	return answer{}, errMethodNotAllowed()
}
