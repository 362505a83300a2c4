package sink

import (
	"strings"

	"github.com/google/uuid"

	"github.com/userstream/userstream/internal/user"
)

// CanonicalID returns id in the canonical form every driver stores: a
// lower-case, hyphenated UUID, so "ABC…" and "abc…" are one row in every
// backend. An id that is not a 36-character UUID gives a
// *user.ValidationError (errors.Is(err, user.ErrInvalid) is true): drivers
// reject the whole batch with it before writing anything.
func CanonicalID(id string) (string, error) {
	if user.IsCanonicalID(id) {
		return id, nil // the form every producer of ours writes: no parse, no copy
	}
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", &user.ValidationError{ID: id, Fields: []user.FieldError{{Field: "id", Reason: "not a UUID"}}}
	}
	return strings.ToLower(u.String()), nil
}

// Dedup returns the batch with one record per id, the last one given for
// each id winning, in the order each id was first seen. Ids are compared in
// canonical form and the records it returns carry canonical ids; the first
// id that is not a UUID makes it return that error and no records. Drivers
// whose upsert statement cannot name a key twice (PostgreSQL's ON CONFLICT)
// use it; the input slice is not modified.
func Dedup(batch []user.Record) ([]user.Record, error) {
	out := make([]user.Record, 0, len(batch))
	at := make(map[string]int, len(batch))
	for _, r := range batch {
		id, err := CanonicalID(r.ID)
		if err != nil {
			return nil, err
		}
		r.ID = id
		if i, ok := at[id]; ok {
			out[i] = r
			continue
		}
		at[id] = len(out)
		out = append(out, r)
	}
	return out, nil
}
