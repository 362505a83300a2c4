// Package sinktest is the conformance suite every sink driver runs, shipped
// beside the drivers as test support.
//
// One set of table-driven cases (upsert, idempotence, count, recent, get,
// bad rows, concurrency, closed and broken connections, Page and Stats)
// runs against a fresh, empty sink per case.
//
// A driver's test calls Run with a function that opens an empty sink:
//
//	func TestConformance(t *testing.T) {
//		sinktest.Run(t, func(t *testing.T) sink.Sink {
//			s, err := mydriver.Open(t.Context(), freshURL(t))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		}, sinktest.TimePrecision(time.Millisecond))
//	}
//
// Run closes each sink when its case ends (a second Close is fine: the suite
// ignores its ErrClosed); open should register with t.Cleanup whatever else
// must go (a schema, a keyspace, a temp server).
package sinktest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/testwait"
	"github.com/userstream/userstream/internal/user"
)

type config struct {
	precision  time.Duration
	nonAtomic  bool
	breakConn  func(t *testing.T, s sink.Sink)
	rejected   []user.Record
	largeBatch int
	asciiFold  bool
}

// Option changes what Run expects of a driver.
type Option func(*config)

// TimePrecision is the precision the backend keeps ingested_at with: a
// stored time may differ from the written one by less than d. The default
// is time.Millisecond (Cassandra's timestamp); pass time.Nanosecond to
// demand exact round trips, time.Microsecond for PostgreSQL.
func TimePrecision(d time.Duration) Option { return func(c *config) { c.precision = d } }

// NonAtomic says a failing batch may leave part of itself stored (Cassandra
// without logged batches). The bad-row cases then check only that Upsert
// fails and that a retry of the good rows stores them; by default they also
// check that nothing of the failed batch was stored.
func NonAtomic() Option { return func(c *config) { c.nonAtomic = true } }

// BreakConnection enables the "broken connection" case: after some rows are
// stored, f breaks the sink's connection to its backend (terminates its
// server sessions, drops its sockets, restarts the test server). The case
// then retries an Upsert until it succeeds (at most 50 tries, 100 ms apart)
// and checks that every row is there: the sink must recover by itself,
// without being reopened.
func BreakConnection(f func(t *testing.T, s sink.Sink)) Option {
	return func(c *config) { c.breakConn = f }
}

// Rejects lists records the backend refuses to store although their id is
// valid (for PostgreSQL: text with a NUL byte). The "rejected record" case
// puts each at the end of a batch of 3000 good records and expects Upsert to
// fail with a *sink.RejectedError giving the backend's reason (matching
// sink.ErrRejected) and, unless NonAtomic, to store none of the batch.
func Rejects(rs ...user.Record) Option {
	return func(c *config) { c.rejected = append(c.rejected, rs...) }
}

// LargeBatch sets the size of the "large batch" case (default 5000).
func LargeBatch(n int) Option { return func(c *config) { c.largeBatch = n } }

// ASCIIFoldOnly says the backend's Search folds the case of ASCII letters
// only (PostgreSQL in a database whose ctype is C): the search case then
// skips its non-ASCII letter.
func ASCIIFoldOnly() Option { return func(c *config) { c.asciiFold = true } }

// Run runs every case of the contract against sinks from open, each case as
// a subtest with a sink of its own, which open must return empty.
func Run(t *testing.T, open func(t *testing.T) sink.Sink, opts ...Option) {
	cfg := config{precision: time.Millisecond, largeBatch: 5000}
	for _, o := range opts {
		o(&cfg)
	}
	type tcase struct {
		name string
		run  func(t *testing.T, h *harness)
		skip string
	}
	cases := []tcase{
		{name: "empty sink", run: testEmpty},
		{name: "upsert then count and get", run: testUpsertCount},
		{name: "idempotent replay", run: testIdempotent},
		{name: "update replaces the row", run: testUpdate},
		{name: "duplicate ids in one batch: last wins", run: testDuplicates},
		{name: "empty batch is a no-op", run: testEmptyBatch},
		{name: "recent order and limit", run: testRecent},
		{name: "get miss", run: testGetMiss},
		{name: "every column round-trips", run: testRoundTrip},
		{name: "id case does not matter", run: testIDCase},
		{name: "bad id rejects the batch", run: testBadID},
		{name: "rejected record fails the batch", run: testRejected},
		{name: "canceled context stores nothing", run: testCanceled},
		{name: "concurrent overlapping upserts", run: testConcurrent},
		{name: "large batch", run: testLarge},
		{name: "closed sink", run: testClosed},
		{name: "broken connection recovers", run: testBroken},
		{name: "page order, ties and limit", run: testPageOrder},
		{name: "page cursor holds while the head grows", run: testPageConcurrentHead},
		{name: "page search", run: testPageSearch},
		{name: "page nat filter", run: testPageNat},
		{name: "page run filter", run: testPageRun},
		{name: "page empty results", run: testPageEmpty},
		{name: "page bad cursor", run: testPageBadCursor},
		{name: "page limit out of range", run: testPageLimit},
		{name: "stats by nat", run: testStats},
		{name: "stats after concurrent writers", run: testStatsConcurrent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "rejected record fails the batch" && len(cfg.rejected) == 0 {
				t.Skip("the driver lists no record its backend rejects (sinktest.Rejects)")
			}
			if c.name == "broken connection recovers" && cfg.breakConn == nil {
				t.Skip("the driver gives no way to break its connection (sinktest.BreakConnection)")
			}
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil sink")
			}
			t.Cleanup(func() {
				if err := s.Close(); err != nil && !errors.Is(err, sink.ErrClosed) {
					t.Errorf("Close: %v", err)
				}
			})
			c.run(t, &harness{Sink: s, cfg: cfg})
		})
	}
}

// harness is a sink with the suite's checks around it.
type harness struct {
	sink.Sink
	cfg config
}

var base = time.Date(2026, 11, 24, 9, 30, 15, 123456789, time.UTC)

// Record returns the i-th test user: a valid record with a stable id (a
// UUIDv5 of i), every field set, and ingested_at i milliseconds (plus some
// nanoseconds) after a fixed instant. Drivers' benchmarks use it too.
func Record(i int) user.Record {
	gender, pic := "female", "women"
	if i%2 == 0 {
		gender, pic = "male", "men"
	}
	return user.Record{
		ID:             uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "sinktest-%d", i)).String(),
		FirstName:      fmt.Sprintf("First%d", i),
		LastName:       fmt.Sprintf("Last%d", i),
		Gender:         gender,
		Address:        fmt.Sprintf("%d Main Street, Springfield, Oregon, United States", i),
		PostCode:       fmt.Sprintf("%05d", i%100000),
		Email:          fmt.Sprintf("first%d.last%d@example.com", i, i),
		Username:       fmt.Sprintf("user%d", i),
		DOB:            "1980-05-17T04:12:31.123Z",
		RegisteredDate: "2012-01-02T03:04:05.678Z",
		Phone:          fmt.Sprintf("(555) %03d-%04d", i%1000, i%10000),
		Picture:        fmt.Sprintf("https://randomuser.me/api/portraits/med/%s/%d.jpg", pic, i%100),
		Nat:            "US",
		IngestedAt:     base.Add(time.Duration(i) * time.Millisecond),
		RunID:          "run-sinktest",
	}
}

// Records returns Record(from) ... Record(from+n-1).
func Records(from, n int) []user.Record {
	out := make([]user.Record, n)
	for i := range out {
		out[i] = Record(from + i)
	}
	return out
}

func (h *harness) upsert(t *testing.T, batch []user.Record) {
	t.Helper()
	if err := h.Upsert(t.Context(), batch); err != nil {
		t.Fatalf("Upsert(%d records): %v", len(batch), err)
	}
}

func (h *harness) count(t *testing.T) int64 {
	t.Helper()
	n, err := h.Count(t.Context())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	return n
}

func (h *harness) wantCount(t *testing.T, want int64) {
	t.Helper()
	if got := h.count(t); got != want {
		t.Fatalf("Count = %d, want %d", got, want)
	}
}

func (h *harness) get(t *testing.T, id string) user.Record {
	t.Helper()
	r, err := h.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

// wantStored checks that every record is stored exactly as given.
func (h *harness) wantStored(t *testing.T, rs ...user.Record) {
	t.Helper()
	for _, want := range rs {
		h.wantEqual(t, want, h.get(t, want.ID))
	}
}

func (h *harness) wantMissing(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if r, err := h.Get(t.Context(), id); !errors.Is(err, sink.ErrNotFound) {
			t.Fatalf("Get(%s) = %+v, %v; want an error matching sink.ErrNotFound", id, r, err)
		}
	}
}

// diff describes how got differs from want, or returns "".
func (h *harness) diff(want, got user.Record) string {
	var d []string
	str := func(name, w, g string) {
		if w != g {
			d = append(d, fmt.Sprintf("%s = %q, want %q", name, g, w))
		}
	}
	str("id", strings.ToLower(want.ID), got.ID)
	str("first_name", want.FirstName, got.FirstName)
	str("last_name", want.LastName, got.LastName)
	str("gender", want.Gender, got.Gender)
	str("address", want.Address, got.Address)
	str("post_code", want.PostCode, got.PostCode)
	str("email", want.Email, got.Email)
	str("username", want.Username, got.Username)
	str("dob", want.DOB, got.DOB)
	str("registered_date", want.RegisteredDate, got.RegisteredDate)
	str("phone", want.Phone, got.Phone)
	str("picture", want.Picture, got.Picture)
	str("nat", want.Nat, got.Nat)
	str("run_id", want.RunID, got.RunID)
	switch {
	case want.IngestedAt.IsZero() != got.IngestedAt.IsZero():
		d = append(d, fmt.Sprintf("ingested_at = %v, want %v", got.IngestedAt, want.IngestedAt))
	case !want.IngestedAt.IsZero():
		if delta := got.IngestedAt.Sub(want.IngestedAt).Abs(); delta >= h.cfg.precision {
			d = append(d, fmt.Sprintf("ingested_at = %s, want %s (off by %v, precision %v)",
				got.IngestedAt.Format(time.RFC3339Nano), want.IngestedAt.Format(time.RFC3339Nano), delta, h.cfg.precision))
		}
		if got.IngestedAt.Location() != time.UTC {
			d = append(d, fmt.Sprintf("ingested_at is in %v, want UTC", got.IngestedAt.Location()))
		}
	}
	return strings.Join(d, "; ")
}

func (h *harness) wantEqual(t *testing.T, want, got user.Record) {
	t.Helper()
	if d := h.diff(want, got); d != "" {
		t.Fatalf("user %s: %s", want.ID, d)
	}
}

func testEmpty(t *testing.T, h *harness) {
	h.wantCount(t, 0)
	rs, err := h.Recent(t.Context(), 10)
	if err != nil {
		t.Fatalf("Recent(10): %v", err)
	}
	if len(rs) != 0 {
		t.Fatalf("Recent(10) on an empty sink = %d users, want 0", len(rs))
	}
}

func testUpsertCount(t *testing.T, h *harness) {
	batch := Records(0, 10)
	h.upsert(t, batch)
	h.wantCount(t, 10)
	h.wantStored(t, batch...)
	h.upsert(t, Records(10, 5))
	h.wantCount(t, 15)
}

func testIdempotent(t *testing.T, h *harness) {
	batch := Records(0, 50)
	h.upsert(t, batch)
	h.upsert(t, batch)
	h.wantCount(t, 50)
	h.wantStored(t, batch...)
	// A replay of part of the batch, as after a crash between write and commit.
	h.upsert(t, batch[10:30])
	h.wantCount(t, 50)
	h.wantStored(t, batch...)
}

// changed returns r with every field but the id different.
func changed(r user.Record, tag string) user.Record {
	r.FirstName += "-" + tag
	r.LastName += "-" + tag
	if r.Gender == "male" {
		r.Gender = "female"
	} else {
		r.Gender = "male"
	}
	r.Address = tag + " " + r.Address
	r.PostCode = "0" + r.PostCode
	r.Email = tag + "." + r.Email
	r.Username += tag
	r.DOB = "1990-01-01T00:00:00.000Z"
	r.RegisteredDate = "2020-02-29T23:59:59.999Z"
	r.Phone += "-" + tag
	r.Picture += "?" + tag
	r.Nat = "FR"
	r.IngestedAt = r.IngestedAt.Add(time.Hour + 7*time.Millisecond)
	r.RunID = "run-" + tag
	return r
}

func testUpdate(t *testing.T, h *harness) {
	batch := Records(0, 3)
	h.upsert(t, batch)
	upd := changed(batch[1], "v2")
	h.upsert(t, []user.Record{upd})
	h.wantCount(t, 3)
	h.wantStored(t, batch[0], upd, batch[2])
	// Clearing optional fields clears them: the update replaces, not merges.
	cleared := upd
	cleared.Nat, cleared.RunID, cleared.IngestedAt = "", "", time.Time{}
	h.upsert(t, []user.Record{cleared})
	h.wantStored(t, cleared)
}

func testDuplicates(t *testing.T, h *harness) {
	a, b := Record(1), Record(2)
	a2, a3 := changed(a, "second"), changed(a, "third")
	h.upsert(t, []user.Record{a, b, a2, a3})
	h.wantCount(t, 2)
	h.wantStored(t, a3, b)
}

func testEmptyBatch(t *testing.T, h *harness) {
	if err := h.Upsert(t.Context(), nil); err != nil {
		t.Fatalf("Upsert(nil): %v", err)
	}
	h.wantCount(t, 0)
	h.upsert(t, Records(0, 2))
	if err := h.Upsert(t.Context(), []user.Record{}); err != nil {
		t.Fatalf("Upsert(empty): %v", err)
	}
	h.wantCount(t, 2)
}

func testRecent(t *testing.T, h *harness) {
	rs := Records(0, 7)
	noTime := Record(100)
	noTime.IngestedAt = time.Time{}
	// Stored out of order, in three batches: the order must come from
	// ingested_at, not from the order of writes.
	h.upsert(t, []user.Record{rs[3], rs[0], noTime})
	h.upsert(t, []user.Record{rs[6], rs[1]})
	h.upsert(t, []user.Record{rs[2], rs[5], rs[4]})
	newestFirst := []user.Record{rs[6], rs[5], rs[4], rs[3], rs[2], rs[1], rs[0], noTime}
	for _, n := range []int{0, 1, 3, 8, 100} {
		got, err := h.Recent(t.Context(), n)
		if err != nil {
			t.Fatalf("Recent(%d): %v", n, err)
		}
		want := newestFirst[:min(n, len(newestFirst))]
		if len(got) != len(want) {
			t.Fatalf("Recent(%d) = %d users, want %d", n, len(got), len(want))
		}
		for i := range want {
			if d := h.diff(want[i], got[i]); d != "" {
				t.Fatalf("Recent(%d)[%d]: %s", n, i, d)
			}
		}
	}
}

func testGetMiss(t *testing.T, h *harness) {
	h.upsert(t, Records(0, 3))
	h.wantMissing(t, Record(3).ID, uuid.NewString(), "not-a-uuid", "")
}

func testRoundTrip(t *testing.T, h *harness) {
	unicode := Record(1)
	unicode.FirstName, unicode.LastName = "Zoë 李", "Ñúñez-Ørsted محمد"
	unicode.Address = "7 Rue de l'Église, Saint-Étienne, Auvergne-Rhône-Alpes, France 🇫🇷"
	unicode.Phone = "+7 (495) 123-45-67"
	unicode.Username = "smallkoala923😀"
	unicode.PostCode = "0805"
	unicode.Nat = "FR"

	quotes := Record(2)
	quotes.LastName = `O'Brien "Bob"; DROP TABLE created_users; --`
	quotes.Address = "12 Quay, Dublin,\nLeinster, Ireland\t"
	quotes.PostCode = "A65 F4E2"

	original := Record(3) // a record in the original's shape: no nat, run id, ingested_at
	original.Nat, original.RunID, original.IngestedAt = "", "", time.Time{}
	original.PostCode = "00501"

	long := Record(4)
	long.Address = strings.Repeat("Long Road ", 51) // 510 bytes, below Validate's 512
	long.Picture = "https://randomuser.me/api/portraits/med/women/" + strings.Repeat("x", 400) + ".jpg"

	odd := Record(5)
	odd.IngestedAt = time.Date(2001, 2, 3, 4, 5, 6, 7_891_000, time.FixedZone("UTC+5", 5*3600))
	odd.DOB, odd.RegisteredDate = "1944-12-31T23:59:59.999Z", "2022-01-01T00:00:00Z"
	odd.Gender = ""

	all := []user.Record{unicode, quotes, original, long, odd}
	h.upsert(t, all)
	h.wantCount(t, int64(len(all)))
	h.wantStored(t, all...)
	recent, err := h.Recent(t.Context(), 10)
	if err != nil {
		t.Fatalf("Recent: %v", err)
	}
	if len(recent) != len(all) {
		t.Fatalf("Recent(10) = %d users, want %d", len(recent), len(all))
	}
	byID := map[string]user.Record{}
	for _, r := range all {
		byID[r.ID] = r
	}
	for _, got := range recent {
		want, ok := byID[got.ID]
		if !ok {
			t.Fatalf("Recent returned an unknown id %q", got.ID)
		}
		h.wantEqual(t, want, got)
	}
}

func testIDCase(t *testing.T, h *harness) {
	r := Record(1)
	upper := r
	upper.ID = strings.ToUpper(r.ID)
	h.upsert(t, []user.Record{upper})
	h.wantCount(t, 1)
	got := h.get(t, upper.ID)
	if got.ID != r.ID {
		t.Fatalf("stored id = %q, want the lower-case %q", got.ID, r.ID)
	}
	h.wantStored(t, r)
	h.upsert(t, []user.Record{changed(r, "lower")})
	h.wantCount(t, 1)
}

func testBadID(t *testing.T, h *harness) {
	good := Records(0, 20)
	for _, badID := range []string{"not-a-uuid", "", "6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e1", "6f0c7a523c1e4d559a5b2f4a7b1c9e10"} {
		bad := Record(99)
		bad.ID = badID
		batch := append(slices.Clone(good[:10]), bad)
		batch = append(batch, good[10:]...)
		err := h.Upsert(t.Context(), batch)
		if err == nil {
			t.Fatalf("Upsert with id %q succeeded, want an error", badID)
		}
		if !errors.Is(err, user.ErrInvalid) {
			t.Fatalf("Upsert with id %q: error %v does not match user.ErrInvalid", badID, err)
		}
		if !h.cfg.nonAtomic {
			h.wantCount(t, 0)
		}
	}
	h.upsert(t, good) // the caller drops the bad row and retries
	h.wantCount(t, int64(len(good)))
	h.wantStored(t, good...)
}

func testRejected(t *testing.T, h *harness) {
	for i, bad := range h.cfg.rejected {
		batch := append(Records(0, 3000), bad)
		err := h.Upsert(t.Context(), batch)
		if err == nil {
			t.Fatalf("Upsert with rejected record %d (%+v) succeeded, want an error", i, bad)
		}
		// The stream tells data errors from outages by this: a data error
		// it splits and dead-letters, an outage it retries for ever.
		var rj *sink.RejectedError
		if !errors.Is(err, sink.ErrRejected) || !errors.As(err, &rj) || rj.Reason == "" {
			t.Fatalf("Upsert with rejected record %d: error %v is not a *sink.RejectedError with a reason", i, err)
		}
		if !h.cfg.nonAtomic {
			h.wantCount(t, 0)
			h.wantMissing(t, batch[0].ID, batch[2999].ID)
		}
	}
	good := Records(0, 3000)
	h.upsert(t, good)
	h.wantCount(t, 3000)
}

func testCanceled(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := h.Upsert(ctx, Records(0, 100))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Upsert with a canceled context = %v, want an error matching context.Canceled", err)
	}
	h.wantCount(t, 0)
	h.upsert(t, Records(0, 100)) // the sink is still usable
	h.wantCount(t, 100)
}

func testConcurrent(t *testing.T, h *harness) {
	const writers, rounds, span = 4, 3, 50
	// Writer w writes ids [w*span/2, w*span/2+span): each overlaps its
	// neighbours by half. Every version of a row is recorded, so whichever
	// write lands last, the stored row must be one of them, whole.
	versions := map[string][]user.Record{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := range writers {
		wg.Go(func() {
			for round := range rounds {
				batch := Records(w*span/2, span)
				for i := range batch {
					batch[i] = changed(batch[i], fmt.Sprintf("w%dr%d", w, round))
				}
				if w%2 == 1 {
					slices.Reverse(batch) // opposite lock order
				}
				mu.Lock()
				for _, r := range batch {
					versions[r.ID] = append(versions[r.ID], r)
				}
				mu.Unlock()
				if err := h.Upsert(t.Context(), batch); err != nil {
					errs <- fmt.Errorf("writer %d round %d: %w", w, round, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Upsert: %v", err)
	}
	if t.Failed() {
		return
	}
	h.wantCount(t, int64((writers-1)*span/2+span))
	h.stats(t) // Total equals Count, ByNat adds up
	for id, vs := range versions {
		got := h.get(t, id)
		ok := slices.ContainsFunc(vs, func(v user.Record) bool { return h.diff(v, got) == "" })
		if !ok {
			t.Fatalf("user %s is %+v, which none of its %d writes wrote", id, got, len(vs))
		}
	}
}

func testLarge(t *testing.T, h *harness) {
	n := h.cfg.largeBatch
	batch := Records(0, n)
	h.upsert(t, batch)
	h.wantCount(t, int64(n))
	for i := 0; i < n; i += max(1, n/50) {
		h.wantStored(t, batch[i])
	}
	h.wantStored(t, batch[n-1])
	// Replaying it changes nothing.
	h.upsert(t, batch)
	h.wantCount(t, int64(n))
	h.wantStats(t, "large batch", map[string]int64{"US": int64(n)})
	got, err := h.Recent(t.Context(), 3)
	if err != nil {
		t.Fatalf("Recent(3): %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("Recent(3) = %d users, want 3", len(got))
	}
	for i, want := range []user.Record{batch[n-1], batch[n-2], batch[n-3]} {
		if d := h.diff(want, got[i]); d != "" {
			t.Fatalf("Recent(3)[%d]: %s", i, d)
		}
	}
}

func testClosed(t *testing.T, h *harness) {
	h.upsert(t, Records(0, 2))
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"Upsert", func() error { return h.Upsert(ctx, Records(2, 1)) }},
		{"Upsert(empty)", func() error { return h.Upsert(ctx, nil) }},
		{"Count", func() error { _, err := h.Count(ctx); return err }},
		{"Recent", func() error { _, err := h.Recent(ctx, 1); return err }},
		{"Get", func() error { _, err := h.Get(ctx, Record(0).ID); return err }},
		{"Page", func() error { _, err := h.Page(ctx, sink.PageQuery{Limit: 1}); return err }},
		{"Stats", func() error { _, err := h.Stats(ctx); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, sink.ErrClosed) {
			t.Errorf("%s after Close = %v, want an error matching sink.ErrClosed", c.name, err)
		}
	}
	if err := h.Close(); err != nil && !errors.Is(err, sink.ErrClosed) {
		t.Errorf("second Close = %v, want nil or an error matching sink.ErrClosed", err)
	}
}

func testBroken(t *testing.T, h *harness) {
	first, second := Records(0, 100), Records(100, 100)
	h.upsert(t, first)
	h.cfg.breakConn(t, h.Sink)
	tries := 0
	testwait.For(t, 30*time.Second, "an Upsert to succeed after the connection broke", func() (error, bool) {
		tries++
		err := h.Upsert(t.Context(), second)
		if errors.Is(err, sink.ErrClosed) {
			t.Fatalf("Upsert after a broken connection = %v: the sink is not closed, it must reconnect", err)
		}
		return err, err == nil
	}, testwait.Every(100*time.Millisecond))
	t.Logf("Upsert succeeded on try %d after the connection broke", tries)
	h.wantCount(t, 200)
	h.wantStored(t, first...)
	h.wantStored(t, second...)
}
