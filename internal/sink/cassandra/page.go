package cassandra

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/user"
)

// PageScan is the most recent_users entries one Page call examines (each
// costs a point read of the user). A page that has not filled by then
// ends there, short, with a Next that resumes after the last entry read.
const PageScan = 2000

// pageFetch is how many users Page reads at once, in parallel.
const pageFetch = 64

// entry is one recent_users row: where a user stands in the order.
type entry struct {
	at time.Time
	id string
}

// Page returns a page of users (see sink.Browser) from the index Recent
// uses: recent_days (newest day first) and, per day, recent_users in
// clustering order (ingested_at DESC, id ASC), so the order is Page's,
// at milliseconds. A cursor (x, y) resumes in x's day with two slices,
// the ties (ingested_at = x AND id > y) and the older entries
// (ingested_at < x), then the older days whole: the cost of a page does
// not depend on its depth. Each entry is checked against its user (a point
// read, up to 64 at once): entries a re-ingestion left behind are skipped.
//
// Search and Nat are applied to the users read, in the client: CQL cannot
// filter on those columns without ALLOW FILTERING or secondary indexes.
// A call reads at most PageScan entries; a rare filter can use them all
// and return a short or empty page with a non-empty Next (keep calling).
// Unfiltered pages read limit+1 users plus the stale entries met.
// Users without ingested_at sit at the Unix epoch, after every other.
// With Run, the entries come from the index on run_id instead (pageRun).
func (s *Sink) Page(ctx context.Context, q sink.PageQuery) (sink.Page, error) {
	if s.closed.Load() {
		return sink.Page{}, fmt.Errorf("cassandra sink: page: %w", sink.ErrClosed)
	}
	c, err := q.Check()
	if err != nil {
		return sink.Page{}, fmt.Errorf("cassandra sink: page: %w", err)
	}
	if q.Run != "" {
		return s.pageRun(ctx, q, c)
	}
	days, err := s.readDays(ctx)
	if err != nil {
		return sink.Page{}, fmt.Errorf("cassandra sink: page: read days: %w", err)
	}
	var from entry // the cursor's position
	if c != nil {
		from = entry{at: recentTime(c.IngestedAt).Truncate(time.Millisecond), id: c.ID}
	}
	out := make([]user.Record, 0, min(q.Limit+1, 64))
	examined := 0
	var last entry
	for _, d := range days {
		if c != nil && d > day(from.at) {
			continue // newer than the cursor: pages already given
		}
		var entries []entry
		want := PageScan - examined
		if c != nil && d == day(from.at) {
			if entries, err = s.entries(ctx, s.q.recentTies, want, d, from.at, from.id); err == nil && len(entries) < want {
				var older []entry
				older, err = s.entries(ctx, s.q.recentOlder, want-len(entries), d, from.at)
				entries = append(entries, older...)
			}
		} else {
			entries, err = s.entries(ctx, s.q.recentIDs, want, d)
		}
		if err != nil {
			return sink.Page{}, fmt.Errorf("cassandra sink: page: read day %s: %w", d, err)
		}
		if full, err := s.collect(ctx, q, entries, &out, &examined, &last); err != nil || full {
			return sink.PageOf(out, q.Limit), err
		}
		if examined >= PageScan {
			return outOfScan(out, last), nil
		}
	}
	return sink.Page{Users: out}, nil
}

// outOfScan is the page of a call that read PageScan entries: what it
// found, and a Next that resumes after the last entry read.
func outOfScan(out []user.Record, last entry) sink.Page {
	return sink.Page{Users: out, Next: sink.Cursor{IngestedAt: fromRecent(last.at), ID: last.id}.String()}
}

// collect reads the users of entries, pageFetch at a time, and appends
// those q matches to out, counting each entry in examined and keeping the
// last in last. It stops, reporting true, when out holds more than
// q.Limit users (the page and one more).
func (s *Sink) collect(ctx context.Context, q sink.PageQuery, entries []entry, out *[]user.Record, examined *int, last *entry) (bool, error) {
	for chunk := range chunks(entries, pageFetch) {
		users, err := s.fetch(ctx, chunk)
		if err != nil {
			return false, fmt.Errorf("cassandra sink: page: %w", err)
		}
		for i, e := range chunk {
			*examined++
			*last = e
			if r := users[i]; r != nil && q.Matches(*r) {
				*out = append(*out, *r)
				if len(*out) > q.Limit {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// pageRun is Page with a Run: the run's entries come from the index
// created_users_run (storage-attached, on run_id), which gives them in no
// order, so every entry of the run is read and the first PageScan after
// the cursor, in Page's order, are kept (memory bounded whatever the
// run's size; time in proportion to it). Their users are read and checked
// as Page does, and a page that has not filled after PageScan ends short,
// with a Next.
func (s *Sink) pageRun(ctx context.Context, q sink.PageQuery, c *sink.Cursor) (sink.Page, error) {
	var from *entry
	if c != nil {
		from = &entry{at: recentTime(c.IngestedAt).Truncate(time.Millisecond), id: c.ID}
	}
	var kept []entry
	err := s.do(ctx, func(sess *gocql.Session) error {
		kept = kept[:0]
		iter := sess.Query(s.q.runIDs, q.Run).PageSize(5000).Idempotent(true).IterContext(ctx)
		var e entry
		for iter.Scan(&e.at, &e.id) {
			e.at = recentTime(e.at).Truncate(time.Millisecond)
			if from != nil && !before(*from, e) {
				continue
			}
			kept = append(kept, e)
			if len(kept) >= 2*PageScan {
				kept = firstInOrder(kept, PageScan)
			}
		}
		return iter.Close()
	})
	if err != nil {
		return sink.Page{}, fmt.Errorf("cassandra sink: page: read run %q: %w", q.Run, err)
	}
	kept = firstInOrder(kept, PageScan)
	out := make([]user.Record, 0, min(q.Limit+1, 64))
	examined := 0
	var last entry
	if full, err := s.collect(ctx, q, kept, &out, &examined, &last); err != nil || full {
		return sink.PageOf(out, q.Limit), err
	}
	if examined >= PageScan {
		return outOfScan(out, last), nil
	}
	return sink.Page{Users: out}, nil
}

// before reports whether a comes before b in Page's order: newer first,
// then by id.
func before(a, b entry) bool {
	if !a.at.Equal(b.at) {
		return a.at.After(b.at)
	}
	return a.id < b.id
}

// firstInOrder sorts es in Page's order and keeps the first n.
func firstInOrder(es []entry, n int) []entry {
	slices.SortFunc(es, func(a, b entry) int {
		switch {
		case before(a, b):
			return -1
		case before(b, a):
			return 1
		}
		return 0
	})
	return es[:min(n, len(es))]
}

// fromRecent is the ingestion time of a recent_users time: zero for the
// epoch, where users without one are filed.
func fromRecent(t time.Time) time.Time {
	if t.UnixMilli() == 0 {
		return time.Time{}
	}
	return t.UTC()
}

func chunks(es []entry, n int) func(func([]entry) bool) {
	return func(yield func([]entry) bool) {
		for i := 0; i < len(es); i += n {
			if !yield(es[i:min(i+n, len(es))]) {
				return
			}
		}
	}
}

func (s *Sink) readDays(ctx context.Context) ([]string, error) {
	var days []string
	err := s.do(ctx, func(sess *gocql.Session) error {
		days = days[:0]
		iter := sess.Query(s.q.recentDays, 0).Idempotent(true).IterContext(ctx)
		var d string
		for iter.Scan(&d) {
			days = append(days, d)
		}
		return iter.Close()
	})
	return days, err
}

// entries reads up to max recent_users entries with the query, in
// clustering order.
func (s *Sink) entries(ctx context.Context, query string, max int, args ...any) ([]entry, error) {
	var out []entry
	err := s.do(ctx, func(sess *gocql.Session) error {
		out = out[:0]
		iter := sess.Query(query, args...).PageSize(min(max, 1000)).Idempotent(true).IterContext(ctx)
		var e entry
		for len(out) < max && iter.Scan(&e.at, &e.id) {
			out = append(out, e)
		}
		return iter.Close()
	})
	return out, err
}

// fetch reads the users of the entries, in parallel (up to
// Config.Concurrency at once). A user that is missing, or whose
// ingested_at is no longer the entry's (it was ingested again since, and
// has a newer entry), is nil.
func (s *Sink) fetch(ctx context.Context, es []entry) ([]*user.Record, error) {
	out := make([]*user.Record, len(es))
	errs := make([]error, len(es))
	sem := make(chan struct{}, max(1, s.cfg.Concurrency))
	var wg sync.WaitGroup
	for i, e := range es {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r, err := s.get(ctx, e.id)
			switch {
			case errors.Is(err, gocql.ErrNotFound):
			case err != nil:
				errs[i] = fmt.Errorf("read %s: %w", e.id, err)
			case recentTime(r.IngestedAt).Truncate(time.Millisecond).Equal(e.at.Truncate(time.Millisecond)):
				out[i] = &r
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// Stats counts the users by nat with a scan of created_users' nat column
// (SELECT nat FROM created_users, paged), summed in the client. It reads
// every row, as Count does: Cassandra cannot GROUP BY a column outside the
// primary key, and a counter table kept beside the rows could not stay
// exact, because counter updates are not idempotent (a write the driver
// retries after a timeout may count twice), cannot join the logged batch
// of the row they count, and moving a user between nats needs its old nat
// read before the write, which races with concurrent writers. The counts
// are of the rows the scan met: not a snapshot while writes go on.
func (s *Sink) Stats(ctx context.Context) (sink.Stats, error) {
	if s.closed.Load() {
		return sink.Stats{}, fmt.Errorf("cassandra sink: stats: %w", sink.ErrClosed)
	}
	var st sink.Stats
	err := s.do(ctx, func(sess *gocql.Session) error {
		st = sink.Stats{ByNat: map[string]int64{}}
		iter := sess.Query(s.q.nats).PageSize(5000).Idempotent(true).IterContext(ctx)
		var nat string // "" for null too
		for iter.Scan(&nat) {
			st.ByNat[nat]++
			st.Total++
		}
		return iter.Close()
	})
	if err != nil {
		return sink.Stats{}, fmt.Errorf("cassandra sink: stats: %w", err)
	}
	return st, nil
}
