package sinktest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/user"
)

// The cases of Browser (Page, Stats). Each runs against a fresh sink, as
// the others do.

func (h *harness) page(t *testing.T, q sink.PageQuery) sink.Page {
	t.Helper()
	p, err := h.Page(t.Context(), q)
	if err != nil {
		t.Fatalf("Page(%+v): %v", q, err)
	}
	if p.Users == nil {
		t.Fatalf("Page(%+v).Users is nil, want a non-nil slice (an empty page is [] in JSON)", q)
	}
	if len(p.Users) > q.Limit {
		t.Fatalf("Page(%+v) = %d users, over the limit", q, len(p.Users))
	}
	return p
}

// pageAll follows Next from the first page to the last and returns every
// user met, in order, and the number of pages. between runs after each
// page (nil: nothing).
func (h *harness) pageAll(t *testing.T, q sink.PageQuery, between func()) ([]user.Record, int) {
	t.Helper()
	var all []user.Record
	pages := 0
	for {
		p := h.page(t, q)
		pages++
		all = append(all, p.Users...)
		if p.Next == "" {
			return all, pages
		}
		if p.Next == q.After {
			t.Fatalf("Page(%+v).Next is the cursor it was given: the walk would never end", q)
		}
		if pages > 10000 {
			t.Fatalf("more than 10000 pages of %d: Next never ends", q.Limit)
		}
		q.After = p.Next
		if between != nil {
			between()
		}
	}
}

// wantUsers checks that got is want, in order, each user whole.
func (h *harness) wantUsers(t *testing.T, what string, want, got []user.Record) {
	t.Helper()
	ids := func(rs []user.Record) string {
		var b strings.Builder
		for i, r := range rs {
			if i == 8 {
				fmt.Fprintf(&b, " ... (%d in all)", len(rs))
				break
			}
			fmt.Fprintf(&b, " %s", r.ID[:8])
		}
		return b.String()
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d users, want %d\n got:%s\nwant:%s", what, len(got), len(want), ids(got), ids(want))
	}
	for i := range want {
		if d := h.diff(want[i], got[i]); d != "" {
			t.Fatalf("%s: user %d of %d: %s\n got:%s\nwant:%s", what, i, len(want), d, ids(got), ids(want))
		}
	}
}

// pageOrder sorts records as Page must return them: ingested_at newest
// first (at the backend's precision), then id; without ingested_at last.
func (h *harness) pageOrder(rs []user.Record) []user.Record {
	out := slices.Clone(rs)
	for i := range out {
		out[i].ID = strings.ToLower(out[i].ID)
	}
	at := func(r user.Record) time.Time { return r.IngestedAt.Truncate(h.cfg.precision) }
	slices.SortStableFunc(out, func(a, b user.Record) int {
		switch {
		case a.IngestedAt.IsZero() != b.IngestedAt.IsZero():
			if a.IngestedAt.IsZero() {
				return 1
			}
			return -1
		case !at(a).Equal(at(b)):
			return at(b).Compare(at(a))
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// tiedRecords returns n records whose ingested_at come in groups of
// three equal times (whole milliseconds, so every backend keeps the ties),
// and two without ingested_at.
func tiedRecords(from, n int) []user.Record {
	rs := Records(from, n)
	for i := range rs {
		rs[i].IngestedAt = base.Truncate(time.Second).Add(time.Duration(i/3) * time.Millisecond)
	}
	rs[n-1].IngestedAt, rs[n-2].IngestedAt = time.Time{}, time.Time{}
	return rs
}

func testPageOrder(t *testing.T, h *harness) {
	rs := tiedRecords(0, 23)
	// Written out of order, in batches: the order must come from the keys.
	h.upsert(t, []user.Record{rs[22], rs[5], rs[11], rs[0]})
	h.upsert(t, rs[12:22])
	h.upsert(t, rs[:12])
	want := h.pageOrder(rs)
	for _, limit := range []int{1, 2, 3, 5, 22, 23, 24, sink.MaxPageLimit} {
		got, pages := h.pageAll(t, sink.PageQuery{Limit: limit}, nil)
		h.wantUsers(t, fmt.Sprintf("pages of %d", limit), want, got)
		// Full pages until the last; a full last page says there is no
		// more, so no empty page follows.
		if wantPages := (len(want) + limit - 1) / limit; pages != wantPages {
			t.Fatalf("pages of %d: %d pages, want %d (a full last page must end with Next \"\")", limit, pages, wantPages)
		}
	}
	first := h.page(t, sink.PageQuery{Limit: 4})
	h.wantUsers(t, "first page of 4", want[:4], first.Users)
	if first.Next == "" {
		t.Fatal("first page of 4 of 23 users: Next is empty")
	}
	// The same cursor gives the same page again: it is a position, not a
	// session.
	a := h.page(t, sink.PageQuery{Limit: 4, After: first.Next})
	b := h.page(t, sink.PageQuery{Limit: 4, After: first.Next})
	h.wantUsers(t, "second page of 4", want[4:8], a.Users)
	h.wantUsers(t, "second page of 4, asked again", want[4:8], b.Users)
	if a.Next != b.Next {
		t.Fatalf("the same page asked twice gave Next %q and %q", a.Next, b.Next)
	}
	// A user ingested again moves to the head, and is met once.
	again := rs[7]
	again.IngestedAt = base.Add(time.Hour).Truncate(time.Millisecond)
	h.upsert(t, []user.Record{again})
	rs[7] = again
	got, _ := h.pageAll(t, sink.PageQuery{Limit: 4}, nil)
	h.wantUsers(t, "pages after a user was ingested again", h.pageOrder(rs), got)
}

func testPageConcurrentHead(t *testing.T, h *harness) {
	old := Records(0, 120)
	h.upsert(t, old)
	want := h.pageOrder(old)

	// Once the first page is read, a writer keeps adding users newer than
	// every old one while the reader pages on, and more are added between
	// pages for sure, however fast the writer is. They go to the head, in
	// front of the first page's cursor: not one may show up, and the old
	// users must come each once, in order, without a gap.
	var wg sync.WaitGroup
	var start sync.Once
	stop := make(chan struct{})
	errs := make(chan error, 1)
	writer := func() {
		for i := 0; ; i += 5 {
			select {
			case <-stop:
				return
			default:
			}
			if err := h.Upsert(t.Context(), Records(100_000+i, 5)); err != nil {
				errs <- err
				return
			}
		}
	}
	next := 200_000
	got, _ := h.pageAll(t, sink.PageQuery{Limit: 7}, func() {
		start.Do(func() { wg.Go(writer) })
		h.upsert(t, Records(next, 3))
		next += 3
	})
	close(stop)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("concurrent Upsert: %v", err)
	}
	h.wantUsers(t, "pages read while new users were written at the head", want, got)
	if n := h.count(t); n <= int64(len(old)) {
		t.Fatalf("Count = %d: no user was written while paging, the case tested nothing", n)
	}
}

func testPageSearch(t *testing.T, h *harness) {
	rs := Records(0, 30)
	zoe, mac, mail := Record(100), Record(101), Record(102)
	zoe.FirstName = "Zoë"
	mac.LastName = "McAlister"
	mail.Email = "Wanda.Q@Example.ORG"
	pct := Record(103)
	pct.FirstName, pct.LastName = "100%_sure", "Under_score"
	all := append(rs, zoe, mac, mail, pct)
	h.upsert(t, all)

	cases := []struct {
		search string
		want   []user.Record
	}{
		{"", all},
		{"mcal", []user.Record{mac}},                 // last name, lower to mixed case
		{"MCALISTER", []user.Record{mac}},            // upper to mixed case
		{"wanda.q@example.org", []user.Record{mail}}, // email
		{"EXAMPLE.org", []user.Record{mail}},
		{"%", []user.Record{pct}}, // LIKE's wildcards are plain characters
		{"_s", []user.Record{pct}},
		{"first1", nil}, // first names and emails: First1, First10..First19, First100..
		{"last2", nil},  // last names and emails: Last2, Last20..Last29
		{"no such user", nil},
	}
	for _, r := range all {
		for i := 7; i <= 8; i++ {
			if strings.Contains(strings.ToLower(r.FirstName+"\n"+r.LastName+"\n"+r.Email), cases[i].search) {
				cases[i].want = append(cases[i].want, r)
			}
		}
	}
	if !h.cfg.asciiFold {
		cases = append(cases, struct {
			search string
			want   []user.Record
		}{"ZOË", []user.Record{zoe}})
	}
	for _, c := range cases {
		for _, limit := range []int{2, 100} {
			got, _ := h.pageAll(t, sink.PageQuery{Limit: limit, Search: c.search}, nil)
			h.wantUsers(t, fmt.Sprintf("Search %q, pages of %d", c.search, limit), h.pageOrder(c.want), got)
		}
	}
}

func testPageNat(t *testing.T, h *harness) {
	rs := Records(0, 20)
	for i := range rs {
		rs[i].Nat = []string{"US", "FR", "fr", "", "DE"}[i%5]
	}
	h.upsert(t, rs)
	pick := func(f func(r user.Record) bool) []user.Record { return filterRecords(rs, f) }
	cases := []struct {
		nat  string
		want []user.Record
	}{
		{"", rs},
		{"US", pick(func(r user.Record) bool { return r.Nat == "US" })},
		{"us", pick(func(r user.Record) bool { return r.Nat == "US" })},
		{"Fr", pick(func(r user.Record) bool { return r.Nat == "FR" || r.Nat == "fr" })},
		{"XX", nil},
		{"U", nil}, // exact, not a prefix
	}
	for _, c := range cases {
		got, _ := h.pageAll(t, sink.PageQuery{Limit: 3, Nat: c.nat}, nil)
		h.wantUsers(t, fmt.Sprintf("Nat %q", c.nat), h.pageOrder(c.want), got)
	}
	// Both filters at once.
	de := pick(func(r user.Record) bool { return r.Nat == "DE" })
	got, _ := h.pageAll(t, sink.PageQuery{Limit: 3, Nat: "de", Search: de[1].LastName}, nil)
	want := pick(func(r user.Record) bool { return r.Nat == "DE" && strings.Contains(r.LastName, de[1].LastName) })
	h.wantUsers(t, "Nat and Search", h.pageOrder(want), got)
}

func testPageRun(t *testing.T, h *harness) {
	// Three runs interleaved in time, with ties, and users of no run.
	rs := tiedRecords(0, 31)
	runs := []string{"scheduled__2026-12-06T10:00:00+00:00", "manual__2026-12-06T10:05:00+00:00", "Manual__2026-12-06T10:05:00+00:00", ""}
	for i := range rs {
		rs[i].RunID = runs[i%len(runs)]
	}
	h.upsert(t, rs)
	pick := func(f func(r user.Record) bool) []user.Record { return filterRecords(rs, f) }
	for _, run := range runs[:3] {
		want := h.pageOrder(pick(func(r user.Record) bool { return r.RunID == run }))
		for _, limit := range []int{1, 3, 100} {
			got, _ := h.pageAll(t, sink.PageQuery{Limit: limit, Run: run}, nil)
			// Exact, case and all: run ids differ in case only here.
			h.wantUsers(t, fmt.Sprintf("Run %q, pages of %d", run, limit), want, got)
		}
	}
	for _, run := range []string{"manual__", "no such run"} {
		got, _ := h.pageAll(t, sink.PageQuery{Limit: 5, Run: run}, nil)
		h.wantUsers(t, fmt.Sprintf("Run %q (no such run)", run), nil, got)
	}
	// With the other filters.
	run := runs[1]
	mine := pick(func(r user.Record) bool { return r.RunID == run })
	got, _ := h.pageAll(t, sink.PageQuery{Limit: 2, Run: run, Search: mine[2].LastName}, nil)
	want := pick(func(r user.Record) bool {
		return r.RunID == run && strings.Contains(strings.ToLower(r.FirstName+"\n"+r.LastName+"\n"+r.Email), strings.ToLower(mine[2].LastName))
	})
	h.wantUsers(t, "Run and Search", h.pageOrder(want), got)
	// A user stored again by another run leaves the first run's page.
	moved := rs[1]
	moved.RunID = runs[0]
	moved.IngestedAt = base.Add(time.Hour).Truncate(time.Millisecond)
	h.upsert(t, []user.Record{moved})
	rs[1] = moved
	for _, run := range runs[:2] {
		got, _ := h.pageAll(t, sink.PageQuery{Limit: 4, Run: run}, nil)
		h.wantUsers(t, fmt.Sprintf("Run %q after a user moved runs", run), h.pageOrder(pick(func(r user.Record) bool { return r.RunID == run })), got)
	}
}

func testPageEmpty(t *testing.T, h *harness) {
	for _, q := range []sink.PageQuery{{Limit: 10}, {Limit: 1, Search: "x"}, {Limit: 500, Nat: "US"}} {
		p := h.page(t, q)
		if len(p.Users) != 0 || p.Next != "" {
			t.Fatalf("Page(%+v) of an empty sink = %d users, Next %q; want none and \"\"", q, len(p.Users), p.Next)
		}
	}
	h.upsert(t, Records(0, 5))
	p := h.page(t, sink.PageQuery{Limit: 10, Search: "nobody"})
	if len(p.Users) != 0 || p.Next != "" {
		t.Fatalf("Page with no match = %d users, Next %q; want none and \"\"", len(p.Users), p.Next)
	}
	// After the last user: an empty page, no more.
	full := h.page(t, sink.PageQuery{Limit: 4})
	if full.Next == "" {
		t.Fatal("page of 4 of 5: Next is empty")
	}
	last := h.page(t, sink.PageQuery{Limit: 4, After: full.Next})
	if len(last.Users) != 1 || last.Next != "" {
		t.Fatalf("last page = %d users, Next %q; want 1 and \"\"", len(last.Users), last.Next)
	}
	// A cursor past every user (the last user's own) is valid: no users.
	beyond := sink.CursorAfter(user.Record{ID: strings.ToLower(last.Users[0].ID), IngestedAt: last.Users[0].IngestedAt}).String()
	if p := h.page(t, sink.PageQuery{Limit: 4, After: beyond}); len(p.Users) != 0 || p.Next != "" {
		t.Fatalf("page after the last user = %d users, Next %q; want none", len(p.Users), p.Next)
	}
}

func testPageBadCursor(t *testing.T, h *harness) {
	h.upsert(t, Records(0, 5))
	p := h.page(t, sink.PageQuery{Limit: 2})
	enc := base64.RawURLEncoding.EncodeToString
	id := Record(1).ID
	for _, bad := range []string{
		"garbage!",                                 // not base64url
		p.Next[:len(p.Next)-3],                     // truncated
		p.Next + "AA",                              // trailing bytes
		enc([]byte("c2|1|" + id)),                  // another version
		enc([]byte("c1|soon|" + id)),               // a time that is no number
		enc([]byte("c1|1|not-a-uuid")),             // an id that is no UUID
		enc([]byte("c1|1|" + strings.ToUpper(id))), // not as Next writes it
		enc([]byte("c1|1")),
		"",
	} {
		if bad == "" {
			continue // "" is the first page, not a bad cursor
		}
		_, err := h.Page(t.Context(), sink.PageQuery{Limit: 2, After: bad})
		if !errors.Is(err, sink.ErrBadCursor) || !errors.Is(err, sink.ErrBadQuery) {
			t.Errorf("Page(After: %q) = %v, want an error matching sink.ErrBadCursor and sink.ErrBadQuery", bad, err)
		}
	}
}

func testPageLimit(t *testing.T, h *harness) {
	h.upsert(t, Records(0, 3))
	for _, limit := range []int{0, -1, sink.MaxPageLimit + 1, 1 << 40} {
		_, err := h.Page(t.Context(), sink.PageQuery{Limit: limit})
		if !errors.Is(err, sink.ErrBadQuery) || errors.Is(err, sink.ErrBadCursor) {
			t.Errorf("Page(Limit: %d) = %v, want an error matching sink.ErrBadQuery (not ErrBadCursor)", limit, err)
		}
	}
	for _, limit := range []int{1, sink.MaxPageLimit} {
		p := h.page(t, sink.PageQuery{Limit: limit})
		if want := min(limit, 3); len(p.Users) != want {
			t.Errorf("Page(Limit: %d) = %d users, want %d", limit, len(p.Users), want)
		}
	}
}

// stats reads Stats and checks it against Count and itself.
func (h *harness) stats(t *testing.T) sink.Stats {
	t.Helper()
	st, err := h.Stats(t.Context())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	var sum int64
	for nat, n := range st.ByNat {
		if n <= 0 {
			t.Fatalf("Stats.ByNat[%q] = %d: a nat no user has must be absent", nat, n)
		}
		sum += n
	}
	if sum != st.Total {
		t.Fatalf("Stats: ByNat adds up to %d, Total is %d (%v)", sum, st.Total, st.ByNat)
	}
	if n := h.count(t); n != st.Total {
		t.Fatalf("Stats.Total = %d, Count = %d", st.Total, n)
	}
	return st
}

func (h *harness) wantStats(t *testing.T, what string, byNat map[string]int64) {
	t.Helper()
	st := h.stats(t)
	if byNat == nil {
		byNat = map[string]int64{}
	}
	if st.ByNat == nil {
		st.ByNat = map[string]int64{}
	}
	if !maps.Equal(st.ByNat, byNat) {
		t.Fatalf("%s: Stats.ByNat = %v, want %v", what, st.ByNat, byNat)
	}
}

func testStats(t *testing.T, h *harness) {
	h.wantStats(t, "empty sink", nil)
	rs := Records(0, 10)
	for i := range rs {
		rs[i].Nat = []string{"US", "US", "FR", "", "us"}[i%5]
	}
	h.upsert(t, rs)
	h.wantStats(t, "after 10 inserts", map[string]int64{"US": 4, "FR": 2, "": 2, "us": 2})

	// A replay changes nothing; nor does a replay of part, or an update
	// that keeps the nat.
	h.upsert(t, rs)
	h.upsert(t, rs[2:7])
	same := changed(rs[0], "same-nat")
	same.Nat = rs[0].Nat
	h.upsert(t, []user.Record{same})
	h.wantStats(t, "after replays", map[string]int64{"US": 4, "FR": 2, "": 2, "us": 2})

	// Updates that change the nat move the user between counts; a new
	// nat appears, an emptied one disappears.
	moved := []user.Record{rs[2], rs[7]} // the two FR
	moved[0].Nat, moved[1].Nat = "DE", ""
	cleared := rs[0]
	cleared.Nat = ""
	h.upsert(t, append(moved, cleared, Record(50)))
	h.wantStats(t, "after moves", map[string]int64{"US": 4, "DE": 1, "": 4, "us": 2})

	// Duplicates in one batch: only the last version counts.
	a := Record(60)
	a1, a2, a3 := a, a, a
	a1.Nat, a2.Nat, a3.Nat = "GB", "NZ", "IE"
	moved[0].Nat = "GB"
	h.upsert(t, []user.Record{a1, moved[0], a2, a3})
	h.wantStats(t, "after a batch with duplicates", map[string]int64{"US": 4, "GB": 1, "IE": 1, "": 4, "us": 2})

	// The id's case does not make a second user.
	upper := a3
	upper.ID = strings.ToUpper(a3.ID)
	upper.Nat = "IE"
	h.upsert(t, []user.Record{upper})
	h.wantStats(t, "after an upper-case id", map[string]int64{"US": 4, "GB": 1, "IE": 1, "": 4, "us": 2})

	// A failed batch (bad id) counts nothing, where the backend is atomic.
	bad := Record(70)
	bad.ID = "not-a-uuid"
	if err := h.Upsert(t.Context(), []user.Record{Record(71), bad}); err == nil {
		t.Fatal("Upsert with a bad id succeeded")
	}
	h.wantStats(t, "after a failed batch", map[string]int64{"US": 4, "GB": 1, "IE": 1, "": 4, "us": 2})
}

// testStatsConcurrent checks the counts after concurrent writers that
// insert and move the same users between nats.
func testStatsConcurrent(t *testing.T, h *harness) {
	const writers, rounds, span = 4, 4, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := range writers {
		wg.Go(func() {
			for round := range rounds {
				batch := Records(w*span/2, span)
				for i := range batch {
					batch[i].Nat = []string{"US", "FR", "DE"}[(w+round+i)%3]
				}
				if w%2 == 1 {
					slices.Reverse(batch)
				}
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
	// Whatever version won each row, the counts must be the rows' nats.
	want := map[string]int64{}
	for _, r := range Records(0, (writers-1)*span/2+span) {
		want[h.get(t, r.ID).Nat]++
	}
	h.wantStats(t, "after concurrent writers", want)
}

// filterRecords is the records of rs that f keeps, in order.
func filterRecords(rs []user.Record, f func(r user.Record) bool) []user.Record {
	var out []user.Record
	for _, r := range rs {
		if f(r) {
			out = append(out, r)
		}
	}
	return out
}
