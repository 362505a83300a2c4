package web_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/userstream/userstream/internal/broker"
)

// TestBrowserSearchProduce: in Chromium, an admin produces a user from the
// topic's produce form and sees its offset, then searches the topic for
// that user's email and sees the match stream in with the scanned count.
func TestBrowserSearchProduce(t *testing.T) {
	f := newFixture(t)
	f.produce(t, 2000)
	b := newBrowser(t, f.url)
	admin := b.tab()
	topic := "/topics/" + broker.Topic
	admin.login("admin", adminPassword, topic)

	const email = "grace.browser@example.org"
	value := `{"id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "first_name": "Grace", "last_name": "Hopper",
  "gender": "female", "address": "1 Navy Way, Arlington, VA, United States", "post_code": "22202",
  "email": "` + email + `", "username": "grace", "dob": "1906-12-09T00:00:00.000Z",
  "registered_date": "1944-01-01T00:00:00.000Z", "phone": "555-0199", "picture": "https://randomuser.me/api/portraits/med/women/2.jpg",
  "nat": "US", "ingested_at": "2026-12-06T22:00:00.000Z", "run_id": "manual__browser"}`
	t.Run("produce: the admin fills the form and sees the offset", func(t *testing.T) {
		admin.do("open the produce form", chromedp.Click(chromedp.CSS(`#produce-link`)))
		admin.wait("the produce form", `document.querySelector("#produce-form textarea")`, 10*time.Second)
		admin.do("fill the form",
			chromedp.SendKeys(chromedp.CSS(`#produce-form input[name=key]`), "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
			chromedp.SetValue(chromedp.CSS(`#produce-form textarea`), value),
			chromedp.Click(chromedp.CSS(`#produce`)))
		admin.wait("the offset shown", `document.querySelector("#produced-offset")`, 10*time.Second)
		if off, err := strconv.Atoi(admin.text("#produced-offset")); err != nil || off < 0 {
			t.Fatalf("offset %q", admin.text("#produced-offset"))
		}
		admin.shot("produce")
	})
	t.Run("search: type an email, the match appears with the scanned count", func(t *testing.T) {
		admin.open(topic)
		admin.do("open the search", chromedp.Click(chromedp.CSS(`#search-link`)))
		admin.wait("the search form", `document.querySelector("#search-form input[name=field]")`, 10*time.Second)
		admin.eval(`window.__samePage = 1`)
		admin.do("search by email",
			chromedp.SendKeys(chromedp.CSS(`#search-form input[name=field]`), "email"),
			chromedp.SendKeys(chromedp.CSS(`#search-value`), email),
			chromedp.Click(chromedp.CSS(`#search-start`)))
		admin.wait("the match", `[...document.querySelectorAll("#search-results tbody pre.value")].some(p => p.textContent.includes(`+strconv.Quote(email)+`))`, 30*time.Second)
		admin.wait("the summary", `document.querySelector("#search-summary").textContent.includes("1 match in 2001 messages scanned")`, 30*time.Second)
		if admin.eval(`window.__samePage`) != "1" {
			t.Fatal("the search reloaded the page: the results did not stream in")
		}
		if got := admin.text("#search-scanned"); got != "2001" {
			t.Fatalf("scanned %q, want 2001", got)
		}
		if got := admin.eval(`document.querySelectorAll("#search-results tbody tr").length`); got != "1" {
			t.Fatalf("%s rows, want 1", got)
		}
		admin.shot("search")
	})
}
