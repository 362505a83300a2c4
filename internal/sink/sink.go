// Package sink is where the stream lands users: one small interface, with
// drivers in their own packages and one conformance suite.
//
// The drivers are sink/sqlite, sink/postgres and sink/cassandra; sink/sinks
// opens one from its URL; sink/sinktest is the suite each must pass.
//
// Every driver upserts by id, so replaying a batch after a crash leaves the
// same rows: that, with offsets committed only after Upsert returns, gives the
// pipeline its exactly-once effect.
package sink

import (
	"context"
	"errors"

	"github.com/userstream/userstream/internal/user"
)

// Sink stores user records.
type Sink interface {
	// Upsert writes the batch atomically where the backend allows it (SQLite,
	// PostgreSQL: one transaction) and idempotently everywhere: a record whose
	// id is already stored replaces the stored row. An empty batch is a no-op.
	// When Upsert returns an error, the caller must assume none of the batch
	// is stored and retry it.
	Upsert(ctx context.Context, batch []user.Record) error
	// Count returns the number of stored users, exactly.
	Count(ctx context.Context) (int64, error)
	// Recent returns up to n users, most recently ingested first.
	Recent(ctx context.Context, n int) ([]user.Record, error)
	// Get returns the user with the given id, or an error matching
	// ErrNotFound.
	Get(ctx context.Context, id string) (user.Record, error)
	// Close releases the connection. Calls after Close fail with an error
	// matching ErrClosed.
	Close() error

	// Sink embeds Browser instead of leaving it to a second interface
	// found by type assertion: every driver implements it, sinks.Open
	// returns a Sink, so whoever holds a sink (the composition root, the
	// web UI) can page through it with the compiler's word for it and no
	// "this sink cannot list users" branch. A consumer that only reads
	// pages still depends on Browser alone.
	Browser
}

// Browser is what a UI's Users page reads: pages of users in a stable
// order, and counts that cost no scan.
type Browser interface {
	// Page returns up to q.Limit users that match q's filters, newest
	// ingested first, users with the same ingested_at by id (ascending),
	// users without ingested_at last (by id). It pages by keyset: q.After
	// is the previous page's Next, and the page starts right after that
	// position, so rows written meanwhile at the head (newer) neither
	// shift nor repeat the pages that follow; a user re-ingested meanwhile
	// moves to the head and is not met again further down. An invalid
	// query (Limit outside 1..MaxPageLimit, an After that is not a
	// cursor) is an error matching ErrBadQuery (ErrBadCursor for the
	// cursor) and reads nothing. No match is an empty page with Next "".
	Page(ctx context.Context, q PageQuery) (Page, error)
	// Stats returns the number of stored users, in total and by
	// nationality as stored (case kept; "" for users without one). Total
	// equals Count. SQLite and PostgreSQL keep the counts up to date as
	// rows are written, so Stats reads a few rows whatever the table's
	// size; Cassandra scans the nat column of every row (docs/cassandra.md).
	Stats(ctx context.Context) (Stats, error)
}

var (
	// ErrNotFound is returned (wrapped) by Get when no user has the id.
	ErrNotFound = errors.New("user not found")
	// ErrClosed is returned (wrapped) by every call on a closed sink.
	ErrClosed = errors.New("sink is closed")
	// ErrNoTable is returned (wrapped) by a read-only open of a backend
	// that holds no users table yet.
	ErrNoTable = errors.New("no users table")
)

// ErrRejected is matched (errors.Is) by Upsert errors that are about the
// data, not the backend: the backend refused one or more records of the
// batch (a NUL byte PostgreSQL's text cannot hold, a value over a column's
// limit, an id that is not a UUID) and would refuse them again however often
// the batch is retried. The stream then splits the batch to find the
// offending records, dead-letters them with the error as the reason, and
// stores the rest. Every other Upsert error is taken as the backend being
// unavailable, and the batch is retried whole.
var ErrRejected = errors.New("the backend rejected the data")

// RejectedError is how drivers report data the backend refused: Reason is
// the backend's own words (with its error code where it has one), Err the
// driver's error. It matches ErrRejected.
type RejectedError struct {
	Reason string
	Err    error
}

func (e *RejectedError) Error() string { return e.Err.Error() }
func (e *RejectedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// Rejected wraps err as a *RejectedError with reason; a nil err stays nil.
func Rejected(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &RejectedError{Reason: reason, Err: err}
}
