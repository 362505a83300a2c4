package registry

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/userstream/userstream/internal/schema"
)

// Modes of the Schema Registry.
const (
	modeReadWrite        = "READWRITE"
	modeReadOnly         = "READONLY"
	modeReadOnlyOverride = "READONLY_OVERRIDE"
	modeImport           = "IMPORT"
)

func parseMode(s string) (string, bool) {
	m := strings.ToUpper(s)
	switch m {
	case modeReadWrite, modeReadOnly, modeReadOnlyOverride, modeImport:
		return m, true
	}
	return "", false
}

// typeAvro is the only schema type the embedded registry serves.
const typeAvro = "AVRO"

// apiError is an answer of the registry other than success, as the Schema
// Registry gives it: an HTTP status and an error code with a message.
type apiError struct {
	status int
	code   int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %d %s", e.status, e.code, e.msg) }

// The Schema Registry's errors, with its codes and messages.
func errSubjectNotFound(s string) *apiError {
	return &apiError{http.StatusNotFound, 40401, fmt.Sprintf("Subject '%s' not found.", s)}
}

func errVersionNotFound(v int) *apiError {
	return &apiError{http.StatusNotFound, 40402, fmt.Sprintf("Version %d not found.", v)}
}

func errSchemaNotFound() *apiError {
	return &apiError{http.StatusNotFound, 40403, "Schema not found"}
}

func errSchemaIDNotFound(id int) *apiError {
	return &apiError{http.StatusNotFound, 40403, fmt.Sprintf("Schema %d not found", id)}
}

func errSubjectSoftDeleted(s string) *apiError {
	return &apiError{http.StatusNotFound, 40404, fmt.Sprintf("Subject '%s' was soft deleted.Set permanent=true to delete permanently", s)}
}

func errSubjectNotSoftDeleted(s string) *apiError {
	return &apiError{http.StatusNotFound, 40405, fmt.Sprintf("Subject '%s' was not deleted first before being permanently deleted", s)}
}

func errVersionSoftDeleted(s string, v int) *apiError {
	return &apiError{http.StatusNotFound, 40406, fmt.Sprintf("Subject '%s' Version %d was soft deleted.Set permanent=true to delete permanently", s, v)}
}

func errVersionNotSoftDeleted(s string, v int) *apiError {
	return &apiError{http.StatusNotFound, 40407, fmt.Sprintf("Subject '%s' Version %d was not deleted first before being permanently deleted", s, v)}
}

func errNoSubjectLevel(s string) *apiError {
	return &apiError{http.StatusNotFound, 40408, fmt.Sprintf("Subject '%s' does not have subject-level compatibility configured", s)}
}

func errNoSubjectMode(s string) *apiError {
	return &apiError{http.StatusNotFound, 40409, fmt.Sprintf("Subject '%s' does not have subject-level mode configured", s)}
}

// errIncompatible carries error code 409, as Confluent Platform up to
// 8.0.3 answers (8.0.4 and later say 40901 with the same status).
func errIncompatible(subject string, msgs []string) *apiError {
	return &apiError{http.StatusConflict, 409, fmt.Sprintf("Schema being registered is incompatible with an earlier schema for subject \"%s\", details: [%s]", subject, strings.Join(msgs, ", "))}
}

func errInvalidSchema(msg string) *apiError {
	return &apiError{http.StatusUnprocessableEntity, 42201, msg}
}

func errInvalidVersion(v string) *apiError {
	return &apiError{http.StatusUnprocessableEntity, 42202, fmt.Sprintf("The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", v)}
}

func errInvalidLevel() *apiError {
	return &apiError{http.StatusUnprocessableEntity, 42203, "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"}
}

func errInvalidMode() *apiError {
	return &apiError{http.StatusUnprocessableEntity, 42204, "Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE and IMPORT."}
}

func errNotPermitted(format string, args ...any) *apiError {
	return &apiError{http.StatusUnprocessableEntity, 42205, fmt.Sprintf(format, args...)}
}

// latestVersion is how "latest" (or -1) is kept after parsing a version.
const latestVersion = -1

// parseVersion reads a version as the Schema Registry does: "latest" (any
// case) or -1 for the latest, else an integer in [1, 2^31-1].
func parseVersion(s string) (int, *apiError) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "latest") {
		return latestVersion, nil
	}
	v, err := strconv.ParseInt(t, 10, 32)
	if err != nil || (v <= 0 && v != latestVersion) {
		return 0, errInvalidVersion(s)
	}
	return int(v), nil
}

// registeredSchema is one schema id: the text as first registered, and
// what the registry derived from it.
type registeredSchema struct {
	id     int
	typ    string
	text   string
	refs   []sr.SchemaReference
	parsed avro.Schema // nil when the text does not parse (kept from an old state file)
	key    string      // identity: schemas with the same key are the same schema
	canon  string      // normalized text, quoted in compatibility messages
}

// subjectVersion is one version of a subject.
type subjectVersion struct {
	version int
	id      int
	deleted bool
}

// regState is everything the registry knows. It is copied for every
// change (clone), so a change that cannot be saved is dropped whole.
type regState struct {
	ids      map[int]*registeredSchema // never modified in place
	byKey    map[string]int            // identity key -> lowest id with it
	subjects map[string][]subjectVersion
	levels   settings // compatibility levels
	modes    settings
	maxID    int  // highest id ever given; ids are never reused
	dirty    bool // changed since cloned
}

func newRegState() *regState {
	return &regState{
		ids: map[int]*registeredSchema{}, byKey: map[string]int{}, subjects: map[string][]subjectVersion{},
		levels: newSettings(defaultLevel), modes: newSettings(modeReadWrite),
	}
}

// settings is a value kept globally and per subject: the compatibility
// level or the mode. Subject "" stands for the global value.
type settings struct {
	def      string
	global   string // "" = def
	subjects map[string]string
}

func newSettings(def string) settings { return settings{def: def, subjects: map[string]string{}} }

// get returns the value set for subject; the global one always exists.
func (s settings) get(subject string) (string, bool) {
	if subject == "" {
		return cmp.Or(s.global, s.def), true
	}
	v, ok := s.subjects[subject]
	return v, ok
}

// of returns the value in force for subject: its own, else the global one.
func (s settings) of(subject string) string {
	if v, ok := s.get(subject); ok {
		return v
	}
	return cmp.Or(s.global, s.def)
}

func (s *settings) set(subject, v string) {
	if subject == "" {
		s.global = v
	} else {
		s.subjects[subject] = v
	}
}

// reset removes a subject's value (40401 if it has none) or sets the
// global one back to the default, returning the value it had.
func (s *settings) reset(subject string) (string, *apiError) {
	old, ok := s.get(subject)
	if !ok {
		return "", errSubjectNotFound(subject)
	}
	if subject == "" {
		s.global = ""
	} else {
		delete(s.subjects, subject)
	}
	return old, nil
}

func (s settings) clone() settings {
	s.subjects = maps.Clone(s.subjects)
	return s
}

func (st *regState) clone() *regState {
	c := *st
	c.ids = maps.Clone(st.ids)
	c.byKey = maps.Clone(st.byKey)
	c.subjects = make(map[string][]subjectVersion, len(st.subjects))
	for s, vs := range st.subjects {
		c.subjects[s] = slices.Clone(vs)
	}
	c.levels = st.levels.clone()
	c.modes = st.modes.clone()
	c.dirty = false
	return &c
}

// candidate is a schema a request carries, parsed.
type candidate struct {
	typ    string
	text   string
	parsed avro.Schema
	key    string
	canon  string
}

// registerRequest is the body of register, lookup and compatibility
// requests.
type registerRequest struct {
	Schema     string               `json:"schema"`
	SchemaType string               `json:"schemaType"`
	References []sr.SchemaReference `json:"references"`
	ID         *int                 `json:"id"`
	Version    *int                 `json:"version"`
	Metadata   json.RawMessage      `json:"metadata"`
	RuleSet    json.RawMessage      `json:"ruleSet"`
}

func isNull(m json.RawMessage) bool { return len(m) == 0 || string(m) == "null" }

// parseCandidate validates a request's schema: Avro only, no references,
// no metadata or rule set, and it must parse (hamba/avro, which also checks
// defaults against their types).
func parseCandidate(req registerRequest) (*candidate, *apiError) {
	typ := strings.ToUpper(strings.TrimSpace(req.SchemaType))
	if typ == "" {
		typ = typeAvro
	}
	if typ != typeAvro {
		return nil, errInvalidSchema("Invalid schema type " + req.SchemaType)
	}
	if len(req.References) > 0 {
		return nil, errInvalidSchema("Invalid schema of type AVRO, details: schema references are not supported by the embedded registry")
	}
	if !isNull(req.Metadata) || !isNull(req.RuleSet) {
		return nil, errInvalidSchema("Invalid schema of type AVRO, details: metadata and ruleSet are not supported by the embedded registry")
	}
	if strings.TrimSpace(req.Schema) == "" {
		return nil, errInvalidSchema("Empty schema")
	}
	parsed, err := schema.Parse(req.Schema)
	if err != nil {
		return nil, errInvalidSchema("Invalid schema of type AVRO, details: " + err.Error())
	}
	canon, err := json.Marshal(parsed)
	if err != nil {
		return nil, errInvalidSchema("Invalid schema of type AVRO, details: " + err.Error())
	}
	return &candidate{typ: typ, text: req.Schema, parsed: parsed, key: typ + " " + string(canon), canon: string(canon)}, nil
}

// newRegisteredSchema derives what the registry keeps of a stored text; a
// text that does not parse is kept as it is, known by its exact text.
func newRegisteredSchema(id int, s sr.Schema) *registeredSchema {
	rs := &registeredSchema{id: id, typ: s.Type.String(), text: s.Schema, refs: s.References}
	if rs.typ == typeAvro && len(s.References) == 0 {
		if c, err := parseCandidate(registerRequest{Schema: s.Schema}); err == nil {
			rs.parsed, rs.key, rs.canon = c.parsed, c.key, c.canon
			return rs
		}
	}
	refs, _ := json.Marshal(s.References)
	rs.key = "unparsed " + rs.typ + " " + string(refs) + " " + s.Schema
	rs.canon = s.Schema
	return rs
}

func (st *regState) hasSubject(subject string, withDeleted bool) bool {
	for _, v := range st.subjects[subject] {
		if withDeleted || !v.deleted {
			return true
		}
	}
	return false
}

// get returns a version of the subject: latestVersion is the newest one
// not deleted; a soft-deleted version only if withDeleted.
func (st *regState) get(subject string, version int, withDeleted bool) (subjectVersion, bool) {
	vs := st.subjects[subject]
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		if version == latestVersion && !v.deleted || v.version == version && (withDeleted || !v.deleted) {
			return v, true
		}
	}
	return subjectVersion{}, false
}

// active returns the versions of subject not deleted whose schema parses,
// oldest first, for compatibility checks.
func (st *regState) active(subject string) []previous {
	var out []previous
	for _, v := range st.subjects[subject] {
		if rs := st.ids[v.id]; !v.deleted && rs.parsed != nil {
			out = append(out, previous{version: v.version, schema: rs.parsed, text: rs.canon})
		}
	}
	return out
}

// find returns the newest version of subject holding the schema with key.
func (st *regState) find(subject, key string, withDeleted bool) (subjectVersion, bool) {
	vs := st.subjects[subject]
	for i := len(vs) - 1; i >= 0; i-- {
		if v := vs[i]; (withDeleted || !v.deleted) && st.ids[v.id].key == key {
			return v, true
		}
	}
	return subjectVersion{}, false
}

// register adds the request's schema to subject as Confluent's registry
// does: the existing version if the subject has it, otherwise a check
// against earlier versions at the subject's level, then a new version with
// the schema's global id (a new id only for a schema no subject has).
func (st *regState) register(subject string, req registerRequest) (subjectVersion, *apiError) {
	c, aerr := parseCandidate(req)
	if aerr != nil {
		return subjectVersion{}, aerr
	}
	reqID, reqVersion := -1, 0
	if req.ID != nil {
		reqID = *req.ID
	}
	if req.Version != nil {
		reqVersion = *req.Version
	}
	if v, ok := st.find(subject, c.key, false); ok && (reqID < 0 || reqID == v.id) && (reqVersion <= 0 || reqVersion == v.version) {
		return v, nil
	}
	mode := st.modes.of(subject)
	switch {
	case mode == modeReadOnly || mode == modeReadOnlyOverride:
		return subjectVersion{}, errNotPermitted("Subject %s in context . is in read-only mode", subject)
	case reqID >= 0 && mode != modeImport:
		return subjectVersion{}, errNotPermitted("Subject %s in context . is not in import mode", subject)
	case reqID < 0 && mode == modeImport:
		return subjectVersion{}, errNotPermitted("Subject %s in context . is not in read-write mode", subject)
	}
	next := 1
	for _, v := range st.subjects[subject] {
		next = max(next, v.version+1)
	}
	nv := subjectVersion{version: next}
	if mode == modeImport {
		if old, ok := st.ids[reqID]; ok && old.key != c.key {
			return subjectVersion{}, errNotPermitted("Overwrite new schema with id %d in context . is not permitted.", reqID)
		}
		if reqVersion > 0 {
			nv.version = reqVersion
		}
		if _, ok := st.get(subject, nv.version, true); ok {
			return subjectVersion{}, errNotPermitted("Subject %s version %d already exists with another schema", subject, nv.version)
		}
		nv.id = reqID
	} else {
		if msgs := compatibilityMessages(st.levels.of(subject), c.parsed, st.active(subject)); len(msgs) > 0 {
			return subjectVersion{}, errIncompatible(subject, msgs)
		}
		if reqVersion > 0 && reqVersion != next {
			return subjectVersion{}, errInvalidSchema("Version is not one more than previous version")
		}
		id, ok := st.byKey[c.key]
		if !ok {
			id = st.maxID + 1
		}
		nv.id = id
	}
	if _, ok := st.ids[nv.id]; !ok {
		st.ids[nv.id] = &registeredSchema{id: nv.id, typ: c.typ, text: c.text, parsed: c.parsed, key: c.key, canon: c.canon}
	}
	if old, ok := st.byKey[c.key]; !ok || nv.id < old {
		st.byKey[c.key] = nv.id
	}
	st.maxID = max(st.maxID, nv.id)
	// Earlier soft-deleted versions of the same schema go for good, as
	// Confluent's registry tombstones them.
	vs := slices.DeleteFunc(st.subjects[subject], func(v subjectVersion) bool {
		return v.deleted && v.id == nv.id && v.version < nv.version
	})
	vs = append(vs, nv)
	slices.SortFunc(vs, func(a, b subjectVersion) int { return cmp.Compare(a.version, b.version) })
	st.subjects[subject] = vs
	st.dirty = true
	return nv, nil
}

// lookup finds the request's schema among the subject's versions.
func (st *regState) lookup(subject string, req registerRequest, withDeleted bool) (subjectVersion, *apiError) {
	c, aerr := parseCandidate(req)
	if aerr != nil {
		return subjectVersion{}, aerr
	}
	if v, ok := st.find(subject, c.key, withDeleted); ok {
		return v, nil
	}
	if !st.hasSubject(subject, withDeleted) {
		return subjectVersion{}, errSubjectNotFound(subject)
	}
	return subjectVersion{}, errSchemaNotFound()
}

// compatibility tests the request's schema against one version of the
// subject (version 0: every version not deleted) at the subject's level.
// The "latest" of a subject without versions is compatible, as in
// Confluent's registry since 6.0. With verbose, an invalid schema is an
// incompatible answer instead of an error.
func (st *regState) compatibility(subject, version string, req registerRequest, verbose bool) ([]string, *apiError) {
	var against []previous
	if version == "" {
		against = st.active(subject)
	} else {
		v, aerr := parseVersion(version)
		if aerr != nil {
			return nil, aerr
		}
		sv, ok := st.get(subject, v, false)
		if !ok && v != latestVersion {
			return nil, errVersionNotFound(v)
		}
		if rs := st.ids[sv.id]; ok && rs.parsed != nil {
			against = []previous{{version: sv.version, schema: rs.parsed, text: rs.canon}}
		}
	}
	c, aerr := parseCandidate(req)
	if aerr != nil {
		if verbose {
			return []string{aerr.msg}, nil
		}
		return nil, aerr
	}
	return compatibilityMessages(st.levels.of(subject), c.parsed, against), nil
}

// getVersion returns a version of a subject (404 40401 or 40402).
func (st *regState) getVersion(subject, version string, withDeleted bool) (subjectVersion, *apiError) {
	v, aerr := parseVersion(version)
	if aerr != nil {
		return subjectVersion{}, aerr
	}
	sv, ok := st.get(subject, v, withDeleted)
	if !ok {
		if !st.hasSubject(subject, withDeleted) {
			return subjectVersion{}, errSubjectNotFound(subject)
		}
		return subjectVersion{}, errVersionNotFound(v)
	}
	return sv, nil
}

func (st *regState) listVersions(subject string, withDeleted, deletedOnly bool) ([]int, *apiError) {
	if !st.hasSubject(subject, withDeleted || deletedOnly) {
		return nil, errSubjectNotFound(subject)
	}
	out := []int{}
	for _, v := range st.subjects[subject] {
		if deletedOnly && v.deleted || !deletedOnly && (withDeleted || !v.deleted) {
			out = append(out, v.version)
		}
	}
	return out, nil
}

func (st *regState) listSubjects(prefix string, withDeleted, deletedOnly bool) []string {
	out := []string{}
	for s := range st.subjects {
		if !strings.HasPrefix(s, prefix) {
			continue
		}
		live := st.hasSubject(s, false)
		if deletedOnly && !live || !deletedOnly && (live || withDeleted) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func (st *regState) checkWritable(subject string) *apiError {
	if m := st.modes.of(subject); m == modeReadOnly || m == modeReadOnlyOverride {
		return errNotPermitted("Subject %s in context . is in read-only mode", subject)
	}
	return nil
}

// deleteSubject soft-deletes every version of subject, or with permanent
// removes a soft-deleted subject with its compatibility level and mode.
func (st *regState) deleteSubject(subject string, permanent bool) ([]int, *apiError) {
	if !st.hasSubject(subject, true) {
		return nil, errSubjectNotFound(subject)
	}
	if !permanent && !st.hasSubject(subject, false) {
		return nil, errSubjectSoftDeleted(subject)
	}
	if aerr := st.checkWritable(subject); aerr != nil {
		return nil, aerr
	}
	vs := st.subjects[subject]
	out := []int{}
	if permanent {
		for _, v := range vs {
			if !v.deleted {
				return nil, errSubjectNotSoftDeleted(subject)
			}
			out = append(out, v.version)
		}
		st.dropSubject(subject)
	} else {
		for i, v := range vs {
			if !v.deleted {
				vs[i].deleted = true
				out = append(out, v.version)
			}
		}
	}
	st.dirty = true
	return out, nil
}

// deleteVersion soft-deletes one version, or with permanent removes a
// soft-deleted one.
func (st *regState) deleteVersion(subject, version string, permanent bool) (int, *apiError) {
	v, aerr := parseVersion(version)
	if aerr != nil {
		return 0, aerr
	}
	sv, ok := st.get(subject, v, true)
	if !ok {
		if !st.hasSubject(subject, true) {
			return 0, errSubjectNotFound(subject)
		}
		return 0, errVersionNotFound(v)
	}
	if !permanent && sv.deleted {
		return 0, errVersionSoftDeleted(subject, sv.version)
	}
	if aerr := st.checkWritable(subject); aerr != nil {
		return 0, aerr
	}
	if permanent && !sv.deleted {
		return 0, errVersionNotSoftDeleted(subject, sv.version)
	}
	vs := st.subjects[subject]
	i := slices.IndexFunc(vs, func(x subjectVersion) bool { return x.version == sv.version })
	if permanent {
		vs = slices.Delete(vs, i, i+1)
		if len(vs) == 0 {
			st.dropSubject(subject)
		} else {
			st.subjects[subject] = vs
			st.forget(sv.id)
		}
	} else {
		vs[i].deleted = true
	}
	st.dirty = true
	return sv.version, nil
}

// dropSubject removes a subject with its settings and forgets the ids only
// it used.
func (st *regState) dropSubject(subject string) {
	vs := st.subjects[subject]
	delete(st.subjects, subject)
	delete(st.levels.subjects, subject)
	delete(st.modes.subjects, subject)
	for _, v := range vs {
		st.forget(v.id)
	}
}

// forget drops an id no version uses any more; the id is not given again.
func (st *regState) forget(id int) {
	for _, vs := range st.subjects {
		for _, v := range vs {
			if v.id == id {
				return
			}
		}
	}
	rs, ok := st.ids[id]
	if !ok {
		return
	}
	delete(st.ids, id)
	if st.byKey[rs.key] == id {
		delete(st.byKey, rs.key)
		for _, other := range st.ids {
			if old, ok := st.byKey[rs.key]; other.key == rs.key && (!ok || other.id < old) {
				st.byKey[rs.key] = other.id
			}
		}
	}
}

// usages returns the (subject, version) pairs that use id, sorted.
func (st *regState) usages(id int, withDeleted bool) ([]sr.SubjectVersion, *apiError) {
	if _, ok := st.ids[id]; !ok {
		return nil, errSchemaNotFound()
	}
	out := []sr.SubjectVersion{}
	for s, vs := range st.subjects {
		for _, v := range vs {
			if v.id == id && (withDeleted || !v.deleted) {
				out = append(out, sr.SubjectVersion{Subject: s, Version: v.version})
			}
		}
	}
	slices.SortFunc(out, func(a, b sr.SubjectVersion) int {
		return cmp.Or(cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Version, b.Version))
	})
	return out, nil
}

// setLevel sets the global (subject "") or a subject's level.
func (st *regState) setLevel(subject, level string, _ bool) (string, *apiError) {
	l, ok := parseLevel(level)
	if !ok {
		return "", errInvalidLevel()
	}
	st.levels.set(subject, l)
	st.dirty = true
	return l, nil
}

// setMode sets the global (subject "") or a subject's mode. IMPORT needs
// no live subjects in scope unless force.
func (st *regState) setMode(subject, mode string, force bool) (string, *apiError) {
	m, ok := parseMode(mode)
	if !ok {
		return "", errInvalidMode()
	}
	if m == modeImport && st.modes.of(subject) != modeImport && !force {
		live := st.hasSubject(subject, false)
		if subject == "" {
			live = len(st.listSubjects("", false, false)) > 0
		}
		if live {
			return "", errNotPermitted("Cannot import since found existing subjects")
		}
	}
	st.modes.set(subject, m)
	st.dirty = true
	return m, nil
}
