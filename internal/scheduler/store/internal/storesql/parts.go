package storesql

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/userstream/userstream/internal/scheduler"
)

// encodeConf gives the stored form of a run's conf: nil (SQL NULL) for a
// nil map, so that nil comes back nil, and JSON text otherwise.
func encodeConf(m map[string]any) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	return string(b), nil
}

// decodeConf reads a stored conf: NULL, "" and "null" are nil; an object
// is a map (numbers as float64, as encoding/json gives them).
func decodeConf(b []byte) (map[string]any, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	return m, nil
}

// text gives the stored form of free text (log chunks, a try's error, a
// run's note, a DAG's description): valid UTF-8 without NUL bytes, each
// invalid sequence and NUL replaced by U+FFFD. PostgreSQL's text refuses
// both, and a try whose error message carries a stray byte must still be
// recorded; SQLite would keep them, but both drivers store the same.
func text(s string) string {
	if utf8.ValidString(s) && !strings.Contains(s, "\x00") {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// orderable reports whether RunFilter.OrderBy may name the column: the
// ones RunFilter lists, and a few more Airflow's API allows that cost the
// same.
func orderable(column string) bool {
	switch column {
	case "logical_date", "start_date", "end_date", "run_id", "state",
		"dag_id", "queued_at", "run_type", "data_interval_start", "data_interval_end":
		return true
	}
	return false
}

// check validates f and returns the column it orders by and whether the
// order is descending ("" orders by -logical_date).
func check(f scheduler.RunFilter) (column string, desc bool, err error) {
	if f.Limit < 0 || f.Offset < 0 {
		return "", false, fmt.Errorf("list runs: limit %d and offset %d must not be negative", f.Limit, f.Offset)
	}
	order := f.OrderBy
	if order == "" {
		order = "-logical_date"
	}
	column, desc = strings.CutPrefix(order, "-")
	if !orderable(column) {
		return "", false, fmt.Errorf("list runs: cannot order by %q; use logical_date, start_date, end_date, run_id or state, with - in front for descending", f.OrderBy)
	}
	return column, desc, nil
}

// orderClause is the ORDER BY clause of ListRuns in both dialects: the
// column in its direction with unset values (NULL) last either way, then
// dag_id and run_id ascending, so every order is total and the same on
// every driver. column must come from check.
func orderClause(column string, desc bool) string {
	dir := " ASC"
	if desc {
		dir = " DESC"
	}
	switch column {
	case "dag_id":
		return " ORDER BY dag_id" + dir + ", run_id ASC"
	case "run_id":
		return " ORDER BY run_id" + dir + ", dag_id ASC"
	}
	return " ORDER BY " + column + dir + " NULLS LAST, dag_id ASC, run_id ASC"
}

// dagFilter reports whether f.DagID selects one DAG ("" and "~" select all).
func dagFilter(f scheduler.RunFilter) (string, bool) {
	if f.DagID == "" || f.DagID == "~" {
		return "", false
	}
	return f.DagID, true
}
