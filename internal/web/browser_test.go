package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/ingest/ingestdag"
	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/testwait"
)

// chromium finds the browser: $USERSTREAM_CHROMIUM, else chromium or
// google-chrome on PATH.
func chromium(t *testing.T) string {
	if p := os.Getenv("USERSTREAM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on PATH (Debian package chromium; .ci/run installs it): the browser tests need a real browser")
	return ""
}

// browser is one headless Chromium with a tab per login (each in its own
// browser context, so cookies are apart).
type browser struct {
	t     *testing.T
	alloc context.Context
	base  string
	shots string // where screenshots go; "" = nowhere
}

func newBrowser(t *testing.T, base string) *browser {
	path := chromium(t)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("no-proxy-server", true))...)
	t.Cleanup(cancel)
	root, cancelRoot := chromedp.NewContext(alloc)
	t.Cleanup(cancelRoot)
	if err := chromedp.Do(root); err != nil { // starts the browser
		t.Fatalf("start %s: %v", path, err)
	}
	return &browser{t: t, alloc: root, base: base, shots: os.Getenv("USERSTREAM_SCREENSHOTS")}
}

// tab is one browser context (its own cookies) and its tab.
type tab struct {
	b   *browser
	ctx context.Context
}

func (b *browser) tab() *tab {
	ctx, cancel := chromedp.NewContext(b.alloc, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatal(err)
	}
	return &tab{b: b, ctx: ctx}
}

// do runs steps with a bound, failing the test on an error.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.b.t.Fatalf("%s: %v (at %s)", what, err, tb.location())
	}
}

func (tb *tab) location() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

func (tb *tab) open(path string) {
	tb.b.t.Helper()
	tb.do("open "+path, chromedp.Navigate(tb.b.base+path))
}

// eval evaluates a JavaScript expression to a string.
func (tb *tab) eval(js string) string {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(`+js+`)`))
	if err != nil {
		tb.b.t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// wait polls a JavaScript predicate until it holds, failing after timeout.
// An evaluation that fails because the page is navigating (a form post, a
// redirect) is tried again: only the deadline ends the wait.
func (tb *tab) wait(what, js string, timeout time.Duration) {
	tb.b.t.Helper()
	testwait.For(tb.b.t, timeout, what+": "+js, func() (string, bool) {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		defer cancel()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+js+`)`))
		return fmt.Sprintf("%v at %s (error: %v)", ok, tb.location(), err), err == nil && ok
	}, testwait.Every(100*time.Millisecond))
}

// waitReload reloads path until a JavaScript predicate holds on it.
func (tb *tab) waitReload(what, path, js string, timeout time.Duration) {
	tb.b.t.Helper()
	testwait.For(tb.b.t, timeout, what+": "+js+" on "+path, func() (string, bool) {
		tb.open(path)
		got := tb.eval(`!!(` + js + `)`)
		return got, got == "true"
	}, testwait.Every(500*time.Millisecond))
}

func (tb *tab) text(sel string) string {
	return tb.eval(`(document.querySelector(` + strconv.Quote(sel) + `) || {textContent: ""}).textContent`)
}

// shot saves a full-page screenshot as NAME.png when screenshots are asked
// for (USERSTREAM_SCREENSHOTS=dir).
func (tb *tab) shot(name string) {
	tb.b.t.Helper()
	if tb.b.shots == "" {
		return
	}
	// A page still laying out (just navigated) has no size yet: try again
	// for a few seconds.
	var png []byte
	testwait.For(tb.b.t, 5*time.Second, "a screenshot of "+name, func() (error, bool) {
		ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
		defer cancel()
		var err error
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		return err, err == nil
	}, testwait.Every(250*time.Millisecond))
	if err := os.WriteFile(filepath.Join(tb.b.shots, name+".png"), png, 0o644); err != nil {
		tb.b.t.Fatal(err)
	}
}

// login logs the tab in through the login form, from a page that needs it.
func (tb *tab) login(user, password, from string) {
	tb.b.t.Helper()
	tb.open(from)
	tb.wait("the login form", `location.pathname === "/login" && document.querySelector("input[name=password]")`, 10*time.Second)
	tb.do("log in as "+user,
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	tb.wait("back on "+from, `location.pathname === `+strconv.Quote(from)+` && document.querySelector("form.logout")`, 10*time.Second)
}

// fetchStatus POSTs a form from the page's own origin with the browser's
// cookies and returns the final status and URL.
func (tb *tab) fetchStatus(path, body string) (int, string) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	js := fmt.Sprintf(`fetch(%q, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: %q})
		.then(r => r.status + " " + new URL(r.url).pathname)`, path, body)
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.b.t.Fatalf("fetch %s: %v", path, err)
	}
	status, url, _ := strings.Cut(v, " ")
	n, _ := strconv.Atoi(status)
	return n, url
}

// produceFrom sends n users of src to users_created.
func (f *fixture) produceFrom(t testing.TB, src ingest.Source, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod, err := f.st.Producer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if _, err := ingest.Run(ctx, src, prod, f.st.Encoder, ingest.Config{Users: n, BatchSize: 100, SourceName: `"><b>src</b>`}); err != nil {
		t.Fatal(err)
	}
}

// TestBrowser drives the UI in real headless Chromium against the real
// in-process stack, as a user would, and takes the screenshots of
// docs/ui.md (USERSTREAM_SCREENSHOTS=docs/ui).
func TestBrowser(t *testing.T) {
	f := newFixture(t, withConnect())
	b := newBrowser(t, f.url)
	admin := b.tab()

	t.Run("a page without login goes to the login, and back after it", func(t *testing.T) {
		admin.open("/users")
		admin.wait("the login page", `location.pathname === "/login"`, 10*time.Second)
		admin.shot("login")
		admin.login(login.AdminUser, adminPassword, "/dags")
	})

	t.Run("the overview's counters move while data flows", func(t *testing.T) {
		admin.open("/")
		admin.wait("the overview", `document.getElementById("stored")`, 10*time.Second)
		if got := admin.text("#stored"); got != "0" {
			t.Fatalf("stored before anything flows = %q, want 0", got)
		}
		admin.eval(`window.__same_page = 1`)
		stop := f.startStream(t)
		defer stop()
		done := make(chan struct{})
		go func() { // in five steps, so that the charts show a flow
			defer close(done)
			for i := range int64(5) {
				f.produce(t, 200)
				f.waitStored(t, 200*(i+1), 30*time.Second)
			}
		}()
		// The counters change without a reload: the marker survives.
		admin.wait("stored moves", `Number(document.getElementById("stored").textContent) > 0`, 30*time.Second)
		admin.wait("in-topic moves", `Number(document.getElementById("in-topic").textContent) > 0`, 30*time.Second)
		// The charts' tables show the flow as numbers while it lasts.
		positive := func(chart string) string {
			return `[...document.querySelectorAll("#` + chart + ` table.numbers tbody td")].some(td => Number(td.textContent) > 0)`
		}
		admin.wait("the throughput chart shows messages/s", positive("chart-throughput"), 30*time.Second)
		<-done
		admin.wait("all stored", `Number(document.getElementById("stored").textContent) === 1000`, 30*time.Second)
		admin.wait("a worker and a latency", `document.getElementById("workers").textContent === "1" && /ms$/.test(document.getElementById("p50").textContent)`, 30*time.Second)
		// Each chart is drawn (a canvas) and gains points as the sampler
		// takes them, without a reload.
		points := func(chart string) string { return `Number(document.getElementById("` + chart + `").dataset.points)` }
		for _, c := range []string{"chart-throughput", "chart-lag", "chart-latency", "chart-dead"} {
			admin.wait(c+" drawn with 10 points", `document.querySelector("#`+c+` .plot canvas") && `+points(c)+` >= 10`, 30*time.Second)
			n := admin.eval(points(c))
			admin.wait(c+" moving on", points(c)+` > `+n, 10*time.Second)
			if rows := admin.eval(`document.querySelectorAll("#` + c + ` table.numbers tbody tr").length`); rows != "10" {
				t.Errorf("%s's table has %s rows, want the newest 10", c, rows)
			}
		}
		if admin.eval(`window.__same_page`) != "1" {
			t.Error("the overview reloaded instead of updating in place")
		}
		admin.shot("overview")
	})

	t.Run("a group's and a topic's charts fill by themselves", func(t *testing.T) {
		for _, pg := range []struct{ path, chart string }{
			{"/groups/" + stream.DefaultGroup, "chart-group-lag"},
			{"/topics/" + broker.Topic, "chart-topic-rate"},
		} {
			admin.open(pg.path)
			points := `Number(document.getElementById("` + pg.chart + `").dataset.points)`
			admin.wait(pg.chart+" drawn", `document.querySelector("#`+pg.chart+` .plot canvas") && `+points+` >= 10`, 20*time.Second)
			n := admin.eval(points)
			admin.wait(pg.chart+" moving on", points+` > `+n, 10*time.Second)
		}
		row := admin.eval(`[...document.querySelectorAll("#chart-topic-rate table.numbers tbody tr:first-child td")].map(td => td.textContent).join("|")`)
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\|(\d+(\.\d)?|–)$`).MatchString(row) {
			t.Errorf("the topic chart's newest row is %q, want a UTC time and a rate", row)
		}
	})

	t.Run("the workers page: two stream workers with their partitions and rows, one stopped shows as gone", func(t *testing.T) {
		stop1, stop2 := f.startStream(t), f.startStream(t)
		defer stop1()
		defer stop2()
		group := `document.querySelector("section[data-group='` + stream.DefaultGroup + `']")`
		rows := group + `.querySelectorAll("tr.active")`
		admin.open("/workers")
		admin.wait("two active workers sharing the 3 partitions", group+` && `+group+`.querySelector(".active").textContent === "2" && `+
			`[...`+rows+`].map(r => r.querySelector(".partitions").textContent.split(", ").filter(Boolean).length).sort().join() === "1,2"`, 30*time.Second)
		stored, err := f.st.Sink.Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// Rows count per worker since it was first seen (a static member
		// restarted under its instance id goes on counting).
		sum := `[...` + rows + `].map(r => Number(r.querySelector(".rows").textContent)).reduce((a, b) => a + b, 0)`
		before := admin.eval(sum)
		f.produce(t, 600)
		f.waitStored(t, stored+600, 60*time.Second)
		// The rows each committed while it held its partitions add up to
		// the 600, and each shows a rate.
		admin.wait("the 600 rows shared by the two", sum+` === `+before+` + 600 && `+
			`[...`+rows+`].every(r => Number(r.querySelector(".rows").textContent) > 0 && /^\d+\.\d$/.test(r.querySelector(".rate").textContent))`, 30*time.Second)
		stop2()
		admin.wait("one gone, the other with every partition", group+`.querySelector(".active").textContent === "1" && `+
			group+`.querySelector("tr.gone .state").textContent.startsWith("gone at ") && `+
			rows+`[0].querySelector(".partitions").textContent.split(", ").length === 3`, 30*time.Second)
		admin.shot("workers")
		var ws struct {
			Groups []struct {
				Group   string
				Active  int
				Workers []struct {
					Partitions []string
					Gone       time.Time
				}
			}
		}
		body := admin.eval(`(() => { const x = new XMLHttpRequest(); x.open("GET", "/api/ui/workers", false); x.send(); return x.responseText; })()`)
		if err := json.Unmarshal([]byte(body), &ws); err != nil {
			t.Fatalf("/api/ui/workers: %v: %.300s", err, body)
		}
		for _, g := range ws.Groups {
			if g.Group == stream.DefaultGroup && (g.Active != 1 || len(g.Workers) < 2 || g.Workers[1].Gone.IsZero()) {
				t.Errorf("/api/ui/workers: %+v, want one active and one gone", g)
			}
		}
	})

	t.Run("a message decoded from Avro with its schema id, and a dead letter with its reason", func(t *testing.T) {
		stop := f.startStream(t)
		defer stop()
		f.produceRaw(t, broker.Topic, []byte("poison-1"), []byte("not a user"), map[string]string{"userstream.run_id": "manual"})
		admin.open("/topics")
		admin.shot("topics")
		admin.open("/topics/" + broker.Topic)
		admin.shot("topic")
		admin.open("/topics/" + broker.Topic + "/messages?limit=10&filter=email")
		admin.wait("decoded messages", `document.querySelectorAll("table.messages .format").length >= 5`, 10*time.Second)
		if n := admin.eval(`[...document.querySelectorAll("table.messages .format")].filter(e => !/^avro · schema id [1-9]/.test(e.textContent)).length`); n != "0" {
			t.Errorf("%s messages are not shown as Avro with a schema id: %q", n, admin.text("table.messages .format"))
		}
		if v := admin.text("table.messages pre.value"); !strings.Contains(v, `"email"`) {
			t.Errorf("the value is not decoded: %q", v)
		}
		admin.shot("messages")
		testwait.For(t, 20*time.Second, "one dead letter of kind decode", func() (float64, bool) {
			n := testutil.ToFloat64(f.metrics.DeadLettered.WithLabelValues("decode"))
			return n, n == 1
		})
		admin.open("/topics/" + broker.DLQTopic + "/messages")
		admin.wait("the dead letter", `document.querySelector("p.reason")`, 10*time.Second)
		if r := admin.text("p.reason"); !strings.HasPrefix(r, "rejected (decode): ") || len(r) < 30 {
			t.Errorf("reason %q, want the decode error", r)
		}
		admin.shot("dlq")
	})

	t.Run("schemas", func(t *testing.T) {
		admin.open("/schemas")
		admin.wait("the subject", `document.querySelector("a[href='/schemas/users_created-value']")`, 10*time.Second)
		admin.shot("schemas")
		admin.open("/schemas/users_created-value")
		admin.do("check the schema against itself",
			chromedp.SetValue(chromedp.CSS("textarea[name=schema]"), admin.text("pre.schema")),
			chromedp.Click(chromedp.CSS(`form[action$="/check"] button`)))
		admin.wait("the result", `document.getElementById("check-result")`, 10*time.Second)
		if r := admin.text("#check-result"); r != "compatible" {
			t.Errorf("check result %q, want compatible", r)
		}
		admin.shot("schema")
	})

	t.Run("trigger a DAG run: it appears in the grid, succeeds, and its log opens", func(t *testing.T) {
		before, err := f.st.Sink.Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		stop := f.startStream(t)
		defer stop()
		admin.open("/dags")
		admin.shot("dags")
		admin.open("/dags/" + ingestdag.UserAutomationID)
		admin.do("trigger", chromedp.SetValue(chromedp.CSS("input[name=conf]"), `{"users": 100}`), chromedp.Click(chromedp.CSS("#trigger")))
		admin.wait("the flash", `document.querySelector("p.flash") && document.querySelector("p.flash").textContent.startsWith("triggered manual__")`, 10*time.Second)
		// The grid refreshes itself (htmx, every 3 s) until the run is green.
		admin.wait("the run in the grid", `document.querySelector("table.grid thead a.run")`, 10*time.Second)
		admin.wait("the run succeeds", `document.querySelector("table.grid thead a.run.st-success")`, 60*time.Second)
		admin.shot("dag")
		// Followed by its href: the grid re-renders every 3 s, and a click
		// can land on the element being replaced.
		admin.open(admin.eval(`document.querySelector("table.grid thead a.run").getAttribute("href")`))
		admin.wait("the run page", `document.getElementById("run-state") && document.getElementById("run-state").textContent === "success"`, 10*time.Second)
		admin.shot("run")
		admin.open(admin.eval(`document.querySelector("a.log-link").getAttribute("href")`))
		admin.wait("the log", `document.getElementById("log") && document.getElementById("log").textContent.length > 0`, 10*time.Second)
		if l := admin.text("#log"); !strings.Contains(l, "produced 100") {
			t.Errorf("the log does not tell the 100 users: %q", l)
		}
		admin.shot("log")
		// Lineage: from the newest user (of that run), two clicks reach the
		// log of the run that fetched it.
		f.waitStored(t, before+100, 30*time.Second)
		admin.open("/users")
		admin.do("open the newest user's lineage", chromedp.Click(chromedp.CSS(`#users a.lineage`)))
		admin.wait("its message and run", `document.getElementById("message-offset") && document.getElementById("lineage-run")`, 20*time.Second)
		if h := admin.text("#message dl.headers"); !strings.Contains(h, "userstream.run_id") {
			t.Errorf("the message's headers: %q", h)
		}
		admin.shot("lineage")
		// The second step by the link's href, as the grid's: a click met a
		// node gone from the document once in CI.
		admin.open(admin.eval(`document.querySelector("#tasks a.log-link").getAttribute("href")`))
		admin.wait("the log of the run", `document.getElementById("log") && document.getElementById("log").textContent.includes("produced 100")`, 10*time.Second)
	})

	t.Run("the DAG's run durations by state, a run's Gantt with its retry, and from a run to its users", func(t *testing.T) {
		seeded := seedRuns(t, f.meta, 9)
		admin.open("/dags/" + ingestdag.UserAutomationID)
		// uPlot drew a point a run that has a duration (the table's rows).
		admin.wait("the durations chart", `document.querySelector("#chart-durations .plot canvas") &&
			document.querySelector("#chart-durations").getAttribute("data-points") ===
			String(document.querySelectorAll("#chart-durations tr[data-s]").length)`, 10*time.Second)
		if n, _ := strconv.Atoi(admin.eval(`document.querySelector("#chart-durations").getAttribute("data-points")`)); n < len(seeded)+1 {
			t.Errorf("the chart has %d points, want at least the %d seeded runs and the manual one", n, len(seeded))
		}
		// The failed runs are marked in the failed colour (#cf222e) on the
		// canvas, the successful ones in green (#1a7f37).
		colours := `(function(){var c=document.querySelector("#chart-durations .plot canvas");var d=c.getContext("2d").getImageData(0,0,c.width,c.height).data;
			var red=0,green=0;for(var i=0;i<d.length;i+=4){if(d[i]>190&&d[i+1]<60&&d[i+2]<70)red++;if(d[i]<50&&d[i+1]>110&&d[i+1]<140&&d[i+2]<80)green++;}return red+","+green;})()`
		if rg := strings.Split(admin.eval(colours), ","); rg[0] == "0" || rg[1] == "0" {
			t.Errorf("red and green pixels on the chart: %v, want both (failed and successful runs)", rg)
		}
		// The grid: the duration on hover.
		if title := admin.eval(`document.querySelector("table.grid a.cell.st-success[title*='load']").getAttribute("title")`); title != "load: success, 1s" {
			t.Errorf("a grid cell's title %q, want its task, state and duration", title)
		}
		admin.shot("dag")

		// The Gantt of a run whose fetch failed once: the retry on its own
		// row, after the failed try.
		admin.open("/dags/" + ingestdag.UserAutomationID + "/runs/" + seeded[1].RunID)
		admin.wait("the Gantt", `document.querySelectorAll("#gantt svg g.try").length === 4`, 10*time.Second)
		bars := `(function(){var q=function(n){return document.querySelector("#gantt g.try[data-task='` + ingestdag.UserAutomationTask + `'][data-try='"+n+"'] rect.ran").getBBox();};
			var a=q(1),b=q(2);return (a.x+a.width<b.x)+","+(b.y>a.y);})()`
		if got := admin.eval(bars); got != "true,true" {
			t.Errorf("the retry's bar: after the failed try's end, below it: %s, want true,true", got)
		}
		if got := admin.eval(`document.querySelector("#gantt g.try[data-try='1'][data-task='` + ingestdag.UserAutomationTask + `']").getAttribute("class")`); got != "try st-failed" {
			t.Errorf("the failed try's bar is %q", got)
		}
		if got := admin.eval(`document.querySelectorAll("#gantt table.numbers tbody tr").length`); got != "4" {
			t.Errorf("the Gantt's table has %s rows, want 4", got)
		}
		admin.shot("gantt")

		// From the manual run (100 users) to its users, and back.
		admin.open("/dags/" + ingestdag.UserAutomationID)
		admin.open(admin.eval(`document.querySelector("table.grid thead a.run[href*='manual__']").getAttribute("href")`))
		admin.wait("the run page", `document.getElementById("run-users") && document.querySelectorAll("#gantt g.try").length === 1`, 10*time.Second)
		runID := admin.text("h1")[len("Run "):]
		admin.do("open its users", chromedp.Click(chromedp.CSS("#run-users")))
		admin.wait("the run's users", `document.getElementById("run-filter") && document.querySelectorAll("#users tbody tr").length === 50`, 10*time.Second)
		runs := admin.eval(`Array.from(document.querySelectorAll("#users tbody tr td:last-child")).map(function(td){return td.textContent;}).join("\n")`)
		for _, r := range strings.Split(runs, "\n") {
			if r != runID {
				t.Fatalf("a user of run %q on the page of run %s", r, runID)
			}
		}
		if admin.eval(`!!document.getElementById("next")`) != "true" {
			t.Error("the run's 100 users fit one page of 50: no next link")
		}
		// The picture: a short page of them.
		admin.open(admin.eval(`location.pathname + location.search`) + "&limit=6")
		admin.wait("a page of 6", `document.querySelectorAll("#users tbody tr").length === 6`, 10*time.Second)
		admin.shot("users-run")
		admin.do("back to the run", chromedp.Click(chromedp.CSS("#users-run")))
		admin.wait("the run page again", `document.getElementById("run-users") && document.querySelector("h1").textContent === "Run `+runID+`"`, 10*time.Second)
	})

	t.Run("an offset reset of the empty group: preview, confirm, and the stream re-reads without duplicates", func(t *testing.T) {
		stored, err := f.st.Sink.Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		group := "/groups/" + stream.DefaultGroup
		admin.waitReload("the group is empty", group, `document.getElementById("state").textContent === "Empty"`, 30*time.Second)
		admin.wait("no lag", `document.getElementById("group-lag").textContent === "0"`, 5*time.Second)
		admin.do("preview", chromedp.Click(chromedp.CSS(`button[value=preview]`)))
		admin.wait("the preview", `document.getElementById("preview") && document.getElementById("preview").textContent.startsWith("Preview")`, 10*time.Second)
		if lag := admin.text("#group-lag"); lag != "0" {
			t.Fatalf("the preview moved the group: lag %s", lag)
		}
		// Apply without the box: refused, nothing moves.
		admin.do("apply unconfirmed", chromedp.Click(chromedp.CSS(`button[value=apply]`)))
		admin.wait("the refusal", `document.querySelector("p.error") && document.querySelector("p.error").textContent.includes("tick")`, 10*time.Second)
		admin.do("apply", chromedp.Click(chromedp.CSS(`input[name=confirm]`)), chromedp.Click(chromedp.CSS(`button[value=apply]`)))
		admin.wait("applied", `document.getElementById("preview") && document.getElementById("preview").textContent === "Applied"`, 10*time.Second)
		if lag := admin.text("#group-lag"); lag != strconv.Itoa(int(stored)+1) { // the poison message is re-read too
			t.Errorf("lag after the reset = %s, want every message (%d)", lag, stored+1)
		}
		admin.shot("group")
		consumed := testutil.ToFloat64(f.metrics.Consumed)
		stop := f.startStream(t)
		defer stop()
		testwait.For(t, 60*time.Second, "the stream re-reads everything", func() (float64, bool) {
			n := testutil.ToFloat64(f.metrics.Consumed) - consumed
			return n, n >= float64(stored)
		})
		if n, err := f.st.Sink.Count(context.Background()); err != nil || n != stored {
			t.Errorf("after the re-read the sink holds %d users (%v), want the same %d", n, err, stored)
		}
		admin.open("/groups")
		admin.shot("groups")
	})

	t.Run("a user whose name is an XSS payload shows as text and runs nothing", func(t *testing.T) {
		src, err := f.st.Source()
		if err != nil {
			t.Fatal(err)
		}
		before, err := f.st.Sink.Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		f.produceFrom(t, hostile{src}, 20)
		f.produceRaw(t, broker.Topic, []byte(xssFirst), []byte(xssLast), map[string]string{"x-evil": xssLast})
		stop := f.startStream(t)
		defer stop()
		f.waitStored(t, before+20, 60*time.Second)
		for _, p := range []string{"/users", "/topics/" + broker.Topic + "/messages?limit=50", "/topics/" + broker.DLQTopic + "/messages"} {
			admin.open(p)
			admin.wait("the page", `document.querySelector("main h1")`, 10*time.Second)
			if got := admin.eval(`typeof window.__xss`); got != "undefined" {
				t.Errorf("%s ran the payload: window.__xss is %s", p, got)
			}
			if n := admin.eval(`document.querySelectorAll("main script, main img[src='x']").length`); n != "0" {
				t.Errorf("%s has %s injected elements", p, n)
			}
		}
		admin.open("/users")
		if name := admin.text("#users td.name"); !strings.HasPrefix(name, xssFirst) {
			t.Errorf("the newest user's name cell is %q, want the payload as text", name)
		}
		admin.shot("users")
	})

	t.Run("Kafka Connect: a connector in the list, its page, and a pause that Connect applies", func(t *testing.T) {
		const name = "users-sqlite"
		f.createConnector(t, name, f.jdbcSink(t, "connect.db"))
		f.waitConnector(t, name, "RUNNING")
		admin.open("/connect")
		admin.wait("the connector in the list", `document.querySelector("#connectors a.name")`, 10*time.Second)
		if st := admin.text("#connectors td.state"); st != "RUNNING" {
			t.Errorf("the list says %q, want RUNNING", st)
		}
		admin.shot("connect")
		admin.do("open the connector", chromedp.Click(chromedp.CSS(`#connectors a.name`)))
		admin.wait("its page", `document.getElementById("connector-state") && document.getElementById("connector-state").textContent === "RUNNING"`, 10*time.Second)
		admin.wait("its offsets", `document.querySelectorAll("#connector-offsets td").length >= 3`, 30*time.Second)
		// The offsets follow the task without a reload: more users, and
		// the page's table moves on by itself.
		offsets := admin.text("#connector-offsets tbody")
		f.produce(t, 20)
		admin.wait("the offsets moving on", `document.querySelector("#connector-offsets tbody").textContent !== `+strconv.Quote(offsets), 20*time.Second)
		admin.do("pause", chromedp.Click(chromedp.CSS(`#pause`)))
		admin.wait("PAUSED", `document.querySelector("p.flash") && document.getElementById("connector-state").textContent === "PAUSED"`, 15*time.Second)
		if st := f.connectorState(t, name); st != "PAUSED" {
			t.Errorf("Connect says %s after the pause, want PAUSED", st)
		}
		admin.shot("connector")
		admin.do("resume", chromedp.Click(chromedp.CSS(`#resume`)))
		admin.wait("RUNNING", `document.getElementById("connector-state").textContent === "RUNNING" && document.getElementById("pause")`, 15*time.Second)
	})

	t.Run("state changes need a login, the CSRF token and the admin role", func(t *testing.T) {
		runs := func() int {
			_, n, err := f.meta.ListRuns(context.Background(), scheduler.RunFilter{DagID: ingestdag.UserAutomationID, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := runs()
		// Logged in, a POST without the form's token (a forged request) is
		// refused.
		admin.open("/dags")
		if st, _ := admin.fetchStatus("/dags/user_automation/trigger", "conf="); st != 403 {
			t.Errorf("admin trigger without CSRF: %d, want 403", st)
		}
		if st, _ := admin.fetchStatus("/dags/user_automation/pause", "paused=true"); st != 403 {
			t.Errorf("admin pause without CSRF: %d, want 403", st)
		}
		// Without a login, every state change lands on the login page.
		anon := b.tab()
		anon.open("/login")
		for _, p := range []string{"/dags/user_automation/trigger", "/dags/user_automation/pause", "/groups/" + stream.DefaultGroup + "/reset"} {
			if st, at := anon.fetchStatus(p, "x=1"); st != 200 || at != "/login" {
				t.Errorf("anonymous POST %s: %d at %s, want the login page", p, st, at)
			}
		}
		// The viewer sees the buttons and is refused at each.
		viewer := b.tab()
		viewer.login(login.ViewerUser, viewerPassword, "/dags")
		for _, step := range []struct {
			page, button string
		}{
			{"/dags/" + ingestdag.UserAutomationID, "#trigger"},
			{"/dags/" + ingestdag.UserAutomationID, "#pause"},
			{"/dags", "button.toggle"},
			{"/groups/" + stream.DefaultGroup, `button[value=preview]`},
		} {
			viewer.open(step.page)
			viewer.do("click "+step.button, chromedp.Click(chromedp.CSS(step.button)))
			viewer.wait("the refusal", `document.body.innerText.includes("403 forbidden")`, 10*time.Second)
			if txt := viewer.eval(`document.body.innerText`); !strings.Contains(txt, "may look but not change anything") {
				t.Errorf("viewer at %s %s: %q", step.page, step.button, txt)
			}
		}
		viewer.open("/dags")
		viewer.shot("viewer-dags")
		if n := runs(); n != before {
			t.Errorf("runs went from %d to %d by refused requests", before, n)
		}
		d, err := f.meta.GetDAG(context.Background(), ingestdag.UserAutomationID)
		if err != nil || d.IsPaused {
			t.Errorf("the DAG is paused (%v) after refused requests", err)
		}
	})
}
