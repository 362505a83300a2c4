package sink

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/userstream/userstream/internal/user"
)

// MaxPageLimit is the most users one Page call returns.
const MaxPageLimit = 500

// PageQuery selects a page of users, newest ingested first (ties: by id).
type PageQuery struct {
	Limit  int    `json:"limit"`  // 1..500
	After  string `json:"after"`  // cursor from the previous Page.Next; "" = first page
	Search string `json:"search"` // case-insensitive substring of first name, last name or email ("" = all)
	Nat    string `json:"nat"`    // exact nationality code, any case ("" = all)
	// Run is the exact run id the users were stored by (the DAG run's id,
	// carried in the message header userstream.run_id; "" = all). Each
	// driver keeps an index on run_id, so a run's users are found without
	// a scan of the table.
	Run string `json:"run"`
}

// Page is one page of users and the cursor of the next.
type Page struct {
	Users []user.Record `json:"users"`
	// Next is the cursor to pass as PageQuery.After for the following
	// page, or "" when no more users match (a full page followed by none
	// ends with ""). A driver that bounds its scan (Cassandra, with Search
	// or Nat) may return a short, even empty, page with a non-empty Next:
	// its scan stopped there, not the users; call again with Next.
	Next string `json:"next"`
}

// Stats counts the stored users.
type Stats struct {
	Total int64            `json:"total"`
	ByNat map[string]int64 `json:"by_nat"` // "" key for records without nat; a nat no user has is absent
}

var (
	// ErrBadQuery is matched (errors.Is) by the error of a Page call
	// whose query is invalid: a Limit outside 1..MaxPageLimit, or a
	// malformed cursor. Such a call reads nothing; the caller's request is
	// wrong (HTTP 400), not the backend.
	ErrBadQuery = errors.New("invalid page query")
	// ErrBadCursor is matched by the error of a Page call whose After is
	// not a cursor some Page.Next gave (truncated, edited, another
	// format). It matches ErrBadQuery too.
	ErrBadCursor = fmt.Errorf("%w: malformed cursor", ErrBadQuery)
)

// Cursor is the position a page ends at: the sort key (ingested_at, id)
// of its last user. A zero IngestedAt is a user without one; those sort
// after every user that has one.
type Cursor struct {
	IngestedAt time.Time
	ID         string // canonical (lower-case) UUID
}

// cursorVersion prefixes every encoded cursor, so a later format can tell
// old cursors apart.
const cursorVersion = "c1"

// CursorAfter returns the cursor of the position after r, which must carry
// a canonical id (as every driver's rows do).
func CursorAfter(r user.Record) Cursor { return Cursor{IngestedAt: r.IngestedAt, ID: r.ID} }

// String encodes the cursor as an opaque token: URL-safe base64 without
// padding, so it goes into a query string as it is. Times keep
// nanoseconds; the zero time encodes as "no ingested_at".
func (c Cursor) String() string {
	at := "-"
	if !c.IngestedAt.IsZero() {
		at = strconv.FormatInt(c.IngestedAt.UnixNano(), 10)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + "|" + at + "|" + c.ID))
}

// ParseCursor decodes a cursor made by Cursor.String. Anything else (bad
// base64, another version, a time that is not a number, an id that is not
// a UUID) is an error matching ErrBadCursor (and ErrBadQuery). The error
// does not echo the cursor.
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w (not base64url)", ErrBadCursor)
	}
	parts := strings.Split(string(b), "|")
	if len(parts) != 3 || parts[0] != cursorVersion {
		return Cursor{}, fmt.Errorf("%w (unknown format)", ErrBadCursor)
	}
	var c Cursor
	if parts[1] != "-" {
		ns, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil {
			return Cursor{}, fmt.Errorf("%w (bad time)", ErrBadCursor)
		}
		c.IngestedAt = time.Unix(0, ns).UTC()
	}
	if c.ID, err = CanonicalID(parts[2]); err != nil || c.ID != parts[2] {
		return Cursor{}, fmt.Errorf("%w (bad id)", ErrBadCursor)
	}
	return c, nil
}

// Check validates q for a driver: the Limit in range and After a cursor.
// It returns the decoded cursor, nil for the first page. Its errors match
// ErrBadQuery (and ErrBadCursor for a bad After); drivers wrap them.
func (q PageQuery) Check() (*Cursor, error) {
	if q.Limit < 1 || q.Limit > MaxPageLimit {
		return nil, fmt.Errorf("%w: limit is %d, want 1 to %d", ErrBadQuery, q.Limit, MaxPageLimit)
	}
	if q.After == "" {
		return nil, nil
	}
	c, err := ParseCursor(q.After)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Fold is the case folding Search and Nat compare with: Unicode lower
// case (strings.ToLower). The SQLite driver registers it as an SQL
// function, the Cassandra driver filters with it; PostgreSQL's lower()
// gives the same for the letters of a UTF-8 database's locale.
func Fold(s string) string { return strings.ToLower(s) }

// Matches reports whether r passes q's filters: Search a substring of the
// first name, last name or email, and Nat equal to r's nat, both compared
// after Fold, and Run equal to r's run id as it is. Empty filters pass
// everything. For drivers that filter in the client.
func (q PageQuery) Matches(r user.Record) bool {
	if q.Nat != "" && Fold(r.Nat) != Fold(q.Nat) {
		return false
	}
	if q.Run != "" && r.RunID != q.Run {
		return false
	}
	if q.Search == "" {
		return true
	}
	s := Fold(q.Search)
	return strings.Contains(Fold(r.FirstName), s) || strings.Contains(Fold(r.LastName), s) ||
		strings.Contains(Fold(r.Email), s)
}

// PageOf makes the page of a query that asked the backend for limit+1
// rows: the first limit are the page, and a row beyond them means more
// follow, so Next is the cursor after the last row of the page. rows must
// be in Page's order with canonical ids; a nil rows gives an empty,
// non-nil Users.
func PageOf(rows []user.Record, limit int) Page {
	if rows == nil {
		rows = []user.Record{}
	}
	if len(rows) <= limit {
		return Page{Users: rows}
	}
	rows = rows[:limit]
	return Page{Users: rows, Next: CursorAfter(rows[limit-1]).String()}
}
