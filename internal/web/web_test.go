package web_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/ingest"
	"github.com/userstream/userstream/internal/ingest/ingestdag"
	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/stream"
	"github.com/userstream/userstream/internal/testwait"
)

// getJSON reads a JSON twin into v and returns its status.
func (c *client) getJSON(path string, v any) int {
	c.t.Helper()
	resp := c.get(path)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		c.t.Fatalf("GET %s: Content-Type %q, want JSON: %.300s", path, ct, resp.body)
	}
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(resp.body), v); err != nil {
			c.t.Fatalf("GET %s: %v: %.300s", path, err, resp.body)
		}
	}
	return resp.StatusCode
}

// stateChanges are the forms that change something, as (path, form).
func stateChanges(runID string) []struct {
	path string
	form url.Values
} {
	return []struct {
		path string
		form url.Values
	}{
		{"/dags/user_automation/trigger", url.Values{"conf": {`{"users": 10}`}}},
		{"/dags/user_automation/pause", url.Values{"paused": {"true"}}},
		{"/dags/user_automation/runs/" + runID + "/clear", nil},
		{"/dags/user_automation/runs/" + runID + "/mark", url.Values{"state": {"failed"}}},
		{"/groups/" + stream.DefaultGroup + "/reset", url.Values{"topic": {broker.Topic}, "to": {"earliest"}, "action": {"apply"}, "confirm": {"yes"}}},
	}
}

// TestAccessControl: without a login every page redirects to the login
// and every JSON twin answers 401; every state change needs a login, the
// session's CSRF token and the admin role; the viewer reads everything.
func TestAccessControl(t *testing.T) {
	f := newFixture(t)
	f.produce(t, 20)
	stop := f.startStream(t)
	f.waitStored(t, 20, 60*time.Second)
	stop()
	run, err := f.sched.Service().Trigger(context.Background(), ingestdag.UserAutomationID, nil, time.Time{}, "probe")
	if err != nil {
		t.Fatal(err)
	}
	anon := f.client(t)
	pages := []string{"/", "/topics", "/topics/users_created", "/topics/users_created/messages", "/topics/users_created/export?format=csv",
		"/groups", "/groups/" + stream.DefaultGroup, "/workers", "/schemas", "/schemas/users_created-value", "/dags", "/dags/user_automation",
		"/dags/user_automation/runs/" + run.RunID, "/users"}

	t.Run("anonymous pages redirect to the login", func(t *testing.T) {
		for _, p := range pages {
			resp := anon.get(p)
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
				t.Errorf("GET %s: %d Location %q, want 303 to /login", p, resp.StatusCode, loc)
				continue
			}
			if next, _ := url.QueryUnescape(strings.TrimPrefix(loc, "/login?next=")); !strings.HasPrefix(p, next) {
				t.Errorf("GET %s: next=%q, want the page", p, next)
			}
		}
		if resp := anon.get("/login"); resp.StatusCode != http.StatusOK || !strings.Contains(resp.body, `name="password"`) {
			t.Errorf("the login page: %d", resp.StatusCode)
		}
		if resp := anon.get("/static/htmx.min.js"); resp.StatusCode != http.StatusOK {
			t.Errorf("static files need no login: %d", resp.StatusCode)
		}
	})
	t.Run("anonymous JSON twins answer 401", func(t *testing.T) {
		for _, p := range []string{"/api/ui", "/api/ui/topics", "/api/ui/users", "/api/ui/dags", "/api/ui/series", "/api/ui/workers"} {
			resp := anon.get(p)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s: %d, want 401 with WWW-Authenticate", p, resp.StatusCode)
			}
		}
		if resp := anon.get("/events"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /events: %d, want 401", resp.StatusCode)
		}
	})
	t.Run("anonymous state changes redirect to the login", func(t *testing.T) {
		for _, sc := range stateChanges(run.RunID) {
			resp := anon.post(sc.path, sc.form)
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
				t.Errorf("POST %s: %d, want 303 to /login", sc.path, resp.StatusCode)
			}
		}
	})

	admin := f.loggedIn(t, login.AdminUser, adminPassword)
	viewer := f.loggedIn(t, login.ViewerUser, viewerPassword)
	t.Run("without the CSRF token: 403", func(t *testing.T) {
		for _, c := range []*client{admin, viewer} {
			for _, sc := range stateChanges(run.RunID) {
				for _, token := range []string{"", "forged"} {
					form := url.Values{}
					for k, v := range sc.form {
						form[k] = v
					}
					if token != "" {
						form.Set("csrf", token)
					}
					if resp := c.post(sc.path, form); resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.body, "CSRF") {
						t.Errorf("POST %s with csrf %q: %d %q, want 403 naming CSRF", sc.path, token, resp.StatusCode, resp.body)
					}
				}
			}
		}
		// The other session's token is no better.
		form := url.Values{"csrf": {admin.csrf()}, "paused": {"true"}}
		if resp := viewer.post("/dags/user_automation/pause", form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("the admin's token on the viewer's session: %d, want 403", resp.StatusCode)
		}
	})
	t.Run("the viewer reads but cannot change", func(t *testing.T) {
		for _, p := range pages {
			if resp := viewer.get(p); resp.StatusCode != http.StatusOK {
				t.Errorf("viewer GET %s: %d %.200s", p, resp.StatusCode, resp.body)
			}
		}
		token := viewer.csrf()
		for _, sc := range stateChanges(run.RunID) {
			form := url.Values{"csrf": {token}}
			for k, v := range sc.form {
				form[k] = v
			}
			if resp := viewer.post(sc.path, form); resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.body, "viewer") {
				t.Errorf("viewer POST %s: %d %q, want 403", sc.path, resp.StatusCode, resp.body)
			}
		}
		d, err := f.meta.GetDAG(context.Background(), ingestdag.UserAutomationID)
		if err != nil {
			t.Fatal(err)
		}
		if d.IsPaused {
			t.Error("the viewer paused the DAG")
		}
		_, n, err := f.meta.ListRuns(context.Background(), scheduler.RunFilter{DagID: ingestdag.UserAutomationID, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%d runs after the viewer's tries, want the 1 probe", n)
		}
		// A compatibility check changes nothing: the viewer may run it.
		resp := viewer.post("/schemas/users_created-value/check", url.Values{"csrf": {token}, "schema": {`"string"`}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.body, `id="check-result"`) {
			t.Errorf("viewer schema check: %d", resp.StatusCode)
		}
	})
	t.Run("the admin changes with the token", func(t *testing.T) {
		token := admin.csrf()
		resp := admin.post("/dags/user_automation/pause", url.Values{"csrf": {token}, "paused": {"true"}, "back": {"/dags"}})
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/dags?flash=") {
			t.Fatalf("admin pause: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		d, err := f.meta.GetDAG(context.Background(), ingestdag.UserAutomationID)
		if err != nil {
			t.Fatal(err)
		}
		if !d.IsPaused {
			t.Error("the admin's pause did not pause")
		}
		// An htmx request carries the token in a header.
		req, _ := http.NewRequest(http.MethodPost, f.url+"/dags/user_automation/pause", strings.NewReader("paused=false"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-CSRF-Token", token)
		if resp := admin.do(req); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("unpause with X-CSRF-Token: %d", resp.StatusCode)
		}
		// A redirect after a form stays on this site.
		resp = admin.post("/dags/user_automation/pause", url.Values{"csrf": {token}, "paused": {"false"}, "back": {"//evil.example/x"}})
		if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/?flash=") {
			t.Errorf("back=//evil.example: Location %q, want this site", loc)
		}
	})
	t.Run("basic auth and tokens reach the JSON twins", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, f.url+"/api/ui/dags", nil)
		req.SetBasicAuth(login.ViewerUser, viewerPassword)
		if resp := anon.do(req); resp.StatusCode != http.StatusOK {
			t.Errorf("basic auth: %d", resp.StatusCode)
		}
		req, _ = http.NewRequest(http.MethodGet, f.url+"/api/ui/dags", nil)
		req.SetBasicAuth(login.ViewerUser, "wrong")
		if resp := anon.do(req); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("wrong basic auth: %d, want 401", resp.StatusCode)
		}
		// Basic auth is for scripts, not pages: a page still wants a login.
		req, _ = http.NewRequest(http.MethodGet, f.url+"/dags", nil)
		req.SetBasicAuth(login.AdminUser, adminPassword)
		if resp := anon.do(req); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("basic auth on a page: %d, want 303", resp.StatusCode)
		}
	})
	t.Run("logout ends the session", func(t *testing.T) {
		c := f.loggedIn(t, login.ViewerUser, viewerPassword)
		c.post("/logout", url.Values{"csrf": {c.csrf()}})
		if resp := c.get("/dags"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("after logout: %d, want 303 to the login", resp.StatusCode)
		}
	})
}

func TestLoginCookieHeadersAndRateLimit(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	resp := c.post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "next": {"//evil.example/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("login with next=//evil.example: %d %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "userstream_session" {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP", cookie)
	}
	page := c.get("/")
	for h, want := range map[string]string{
		"Content-Security-Policy": "script-src 'self'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := page.Header.Get(h); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want %q in it", h, got, want)
		}
	}
	if strings.Contains(page.body, "<script>") || strings.Contains(page.body, " onclick=") {
		t.Error("a page has inline script, which the CSP forbids")
	}

	other := f.client(t)
	for i := range 10 {
		if resp := other.post("/login", url.Values{"username": {"admin"}, "password": {fmt.Sprint("guess", i)}}); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i, resp.StatusCode)
		}
	}
	resp = other.post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after 10 failures the right password: %d, want 429", resp.StatusCode)
	}
	if strings.Contains(resp.body, adminPassword) {
		t.Error("the login page echoes the password")
	}
	// The REST API on the same listener shares the count: the guesses
	// cannot go on there.
	req, _ := http.NewRequest(http.MethodGet, f.url+"/api/v1/dags", nil)
	req.SetBasicAuth(login.AdminUser, adminPassword)
	api, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	api.Body.Close()
	if api.StatusCode != http.StatusTooManyRequests {
		t.Errorf("REST API after 10 failed UI logins: %d, want 429", api.StatusCode)
	}
}

// TestPagesAndTwins: with users flowing, a poison message dead-lettered
// and a run done, every page renders and its JSON twin says what the
// parts say.
func TestPagesAndTwins(t *testing.T) {
	f := newFixture(t)
	f.produce(t, 300)
	f.produceRaw(t, broker.Topic, []byte("poison-1"), []byte("this is not a user"), nil)
	stop := f.startStream(t)
	f.waitStored(t, 300, 60*time.Second)
	c := f.loggedIn(t, login.ViewerUser, viewerPassword)

	t.Run("overview", func(t *testing.T) {
		var snap map[string]any
		testwait.For(t, 20*time.Second, "the overview shows the pipeline", func() (string, bool) {
			snap = nil
			c.getJSON("/api/ui", &snap)
			b, _ := json.Marshal(snap)
			workers, _ := snap["workers"].([]any)
			p50, known := snap["latency_p50_ms"].(float64)
			return string(b), snap["in_topic"] == 301.0 && snap["stored"] == 300.0 && snap["dead_lettered"] == 1.0 && snap["lag"] == 0.0 &&
				len(workers) == 1 && known && p50 >= 0
		})
		page := c.get("/")
		if !strings.Contains(page.body, `id="stored">300<`) || !strings.Contains(page.body, `data-events="/events"`) {
			t.Errorf("overview page lacks the counters: %.500s", page.body)
		}
	})
	t.Run("events", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url+"/events", nil)
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var events []string
		for len(events) < 2 && sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok && sc.Scan() {
				events = append(events, ev+" "+sc.Text())
			}
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || len(events) != 2 ||
			!strings.HasPrefix(events[0], "snapshot data: {") || !strings.HasPrefix(events[1], `series data: [{"name":"produced_per_s"`) {
			t.Errorf("events: %s %.300q", ct, events)
		}
	})
	t.Run("series", func(t *testing.T) {
		type line struct {
			Name, Unit, Group string
			Points            [][2]*float64
		}
		var lines []line
		byName := map[string]line{}
		// The 300 users went through while the fixture sampled: some point
		// of each rate is above zero, and the latency was observed.
		testwait.For(t, 20*time.Second, "series with the 300 users", func() (any, bool) {
			lines = nil
			c.getJSON("/api/ui/series", &lines)
			for _, l := range lines {
				byName[l.Name+l.Group] = l
			}
			peak := func(name string) float64 {
				m := -1.0
				for _, p := range byName[name].Points {
					if p[1] != nil {
						m = max(m, *p[1])
					}
				}
				return m
			}
			peaks := map[string]float64{}
			for _, n := range []string{"produced_per_s", "consumed_per_s", "stored_per_s", "lag", "latency_p50_ms", "latency_p99_ms",
				"dead_letters_per_min", "group_lag" + stream.DefaultGroup} {
				peaks[n] = peak(n)
			}
			return peaks, peaks["produced_per_s"] > 0 && peaks["stored_per_s"] > 0 && peaks["consumed_per_s"] > 0 &&
				peaks["latency_p50_ms"] > 0 && peaks["latency_p99_ms"] >= peaks["latency_p50_ms"] && peaks["dead_letters_per_min"] > 0 &&
				peaks["lag"] >= 0 && peaks["group_lag"+stream.DefaultGroup] >= 0
		})
		for name, unit := range map[string]string{"produced_per_s": "messages/s", "stored_per_s": "rows/s", "lag": "messages",
			"latency_p50_ms": "ms", "dead_letters_per_min": "messages/min"} {
			if byName[name].Unit != unit {
				t.Errorf("%s unit %q, want %q", name, byName[name].Unit, unit)
			}
		}
		var lag []line
		c.getJSON("/api/ui/series?name=lag,stored_per_s&since=1", &lag)
		if len(lag) != 2 || lag[0].Name != "stored_per_s" || lag[1].Name != "lag" || len(lag[1].Points) == 0 {
			t.Errorf("name=lag,stored_per_s: %+v", lag)
		}
		var group []line
		c.getJSON("/api/ui/series?group="+stream.DefaultGroup, &group)
		if len(group) != 1 || group[0].Name != "group_lag" || group[0].Group != stream.DefaultGroup {
			t.Errorf("group=%s: %+v", stream.DefaultGroup, group)
		}
		if st := c.getJSON("/api/ui/series?since=yesterday", nil); st != http.StatusBadRequest {
			t.Errorf("since=yesterday: %d, want 400", st)
		}
		var ws struct {
			Groups []struct {
				Group   string
				Active  int
				Workers []struct {
					ClientID   string `json:"client_id"`
					Partitions []string
					Committed  int64
				}
			}
		}
		testwait.For(t, 10*time.Second, "the stream worker on /api/ui/workers", func() (any, bool) {
			c.getJSON("/api/ui/workers", &ws)
			for _, g := range ws.Groups {
				if g.Group == stream.DefaultGroup && g.Active == 1 && len(g.Workers) == 1 {
					w := g.Workers[0]
					return ws, len(w.Partitions) == 3 && w.ClientID != "" && w.Committed > 0
				}
			}
			return ws, false
		})
		page := c.get("/")
		for _, id := range []string{"chart-throughput", "chart-lag", "chart-latency", "chart-dead"} {
			if !strings.Contains(page.body, `id="`+id+`"`) {
				t.Errorf("the overview has no %s", id)
			}
		}
	})
	t.Run("topics", func(t *testing.T) {
		var tp struct {
			Topics  []broker.TopicSummary
			Brokers []broker.BrokerSummary
		}
		c.getJSON("/api/ui/topics", &tp)
		// Every node of the cluster is listed: one embedded broker, or
		// each node of a real cluster (USERSTREAM_TEST_BROKER).
		if len(tp.Brokers) != len(f.st.Kafka.Brokers) {
			t.Errorf("topics page lists brokers %+v, want the cluster's %d", tp.Brokers, len(f.st.Kafka.Brokers))
		}
		found := false
		for _, ts := range tp.Topics {
			if ts.Topic == broker.Topic {
				found = ts.Records == 301 && ts.Partitions > 0
			}
		}
		if !found {
			t.Errorf("topics: %+v, want %s with 301 records", tp.Topics, broker.Topic)
		}
		var td struct {
			Records int64                `json:"records"`
			Configs []broker.ConfigEntry `json:"configs"`
		}
		if st := c.getJSON("/api/ui/topics/users_created", &td); st != http.StatusOK || td.Records != 301 || len(td.Configs) == 0 {
			t.Errorf("topic: %d %+v", st, td)
		}
		if st := c.getJSON("/api/ui/topics/nope", nil); st != http.StatusNotFound {
			t.Errorf("unknown topic: %d, want 404", st)
		}
	})
	t.Run("messages", func(t *testing.T) {
		type msgs struct {
			Messages []struct {
				Partition int32
				Offset    int64
				Key       string
				Value     struct {
					Format   string `json:"format"`
					SchemaID int    `json:"schema_id"`
					Text     string `json:"text"`
				}
				Headers map[string]string
				Reason  string `json:"dlq_reason"`
				Kind    string `json:"dlq_kind"`
			}
		}
		var m msgs
		c.getJSON("/api/ui/topics/users_created/messages?limit=10", &m)
		if len(m.Messages) != 10 {
			t.Fatalf("newest 10: got %d", len(m.Messages))
		}
		avro := 0
		for _, mm := range m.Messages {
			if mm.Value.Format == "avro" && mm.Value.SchemaID > 0 && strings.Contains(mm.Value.Text, `"first_name"`) && mm.Headers["userstream.run_id"] != "" {
				avro++
			}
		}
		if avro < 9 { // the poison message may be among the newest
			t.Errorf("decoded Avro messages: %d of 10: %+v", avro, m.Messages)
		}
		m = msgs{}
		c.getJSON("/api/ui/topics/users_created/messages?mode=offset&partition=0&offset=0&limit=5", &m)
		for i, mm := range m.Messages {
			if mm.Partition != 0 || mm.Offset != int64(i) {
				t.Errorf("from offset 0 of partition 0: message %d is %d/%d", i, mm.Partition, mm.Offset)
			}
		}
		m = msgs{}
		c.getJSON("/api/ui/topics/users_created/messages?limit=1000&filter=poison", &m)
		if len(m.Messages) != 1 || m.Messages[0].Key != "poison-1" || m.Messages[0].Value.Format != "text" {
			t.Errorf("filter poison: %+v", m.Messages)
		}
		m = msgs{}
		c.getJSON("/api/ui/topics/users_created.dlq/messages", &m)
		if len(m.Messages) != 1 || m.Messages[0].Reason == "" || m.Messages[0].Kind != "decode" {
			t.Errorf("the dead letter and its reason: %+v", m.Messages)
		}
		page := c.get("/topics/users_created.dlq/messages")
		if !strings.Contains(page.body, `class="reason"`) {
			t.Errorf("the DLQ page does not show the reason")
		}
		for _, bad := range []string{"limit=0", "limit=x", "mode=offset", "mode=sideways", "partition=-1", "mode=time&from=yesterday"} {
			if st := c.getJSON("/api/ui/topics/users_created/messages?"+bad, nil); st != http.StatusBadRequest {
				t.Errorf("messages?%s: %d, want 400", bad, st)
			}
		}
		from := time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04")
		m = msgs{}
		c.getJSON("/api/ui/topics/users_created/messages?mode=time&limit=1000&from="+from, &m)
		if len(m.Messages) != 301 {
			t.Errorf("from an hour ago: %d messages, want 301", len(m.Messages))
		}
	})
	t.Run("export", func(t *testing.T) {
		resp := c.get("/topics/users_created/export?limit=20&format=csv")
		rows, err := csv.NewReader(strings.NewReader(resp.body)).ReadAll()
		if err != nil || len(rows) != 21 || rows[0][0] != "partition" {
			t.Fatalf("CSV export: %v, %d rows", err, len(rows))
		}
		if !strings.Contains(resp.Header.Get("Content-Disposition"), "users_created.csv") {
			t.Errorf("CSV Content-Disposition %q", resp.Header.Get("Content-Disposition"))
		}
		resp = c.get("/topics/users_created/export?limit=20&format=json")
		var p struct{ Messages []any }
		if err := json.Unmarshal([]byte(resp.body), &p); err != nil || len(p.Messages) != 20 {
			t.Errorf("JSON export: %v, %d messages", err, len(p.Messages))
		}
	})
	t.Run("groups", func(t *testing.T) {
		var g struct {
			Group broker.GroupDescription `json:"group"`
		}
		c.getJSON("/api/ui/groups/"+stream.DefaultGroup, &g)
		if len(g.Group.Members) != 1 || g.Group.Lag != 0 || len(g.Group.Partitions) == 0 || g.Group.Members[0].Host == "" {
			t.Errorf("group: %+v", g.Group)
		}
		if st := c.getJSON("/api/ui/groups/nobody", nil); st != http.StatusNotFound {
			t.Errorf("unknown group: %d, want 404", st)
		}
	})
	t.Run("schemas", func(t *testing.T) {
		var s struct {
			Subject  string `json:"subject"`
			Versions []int  `json:"versions"`
			ID       int    `json:"id"`
			Schema   string `json:"schema"`
			Level    string `json:"compatibility"`
		}
		c.getJSON("/api/ui/schemas/users_created-value", &s)
		if len(s.Versions) == 0 || s.ID == 0 || !strings.Contains(s.Schema, `"first_name"`) || s.Level == "" {
			t.Errorf("schema: %+v", s)
		}
		token := c.csrf()
		resp := c.post("/schemas/users_created-value/check", url.Values{"csrf": {token}, "schema": {s.Schema}})
		if !strings.Contains(resp.body, `id="check-result">compatible<`) {
			t.Errorf("the latest schema against itself is not compatible: %.300s", resp.body)
		}
		resp = c.post("/schemas/users_created-value/check", url.Values{"csrf": {token}, "schema": {`{"type":"record","name":"user","namespace":"userstream","fields":[{"name":"id","type":"int"}]}`}})
		if !strings.Contains(resp.body, `id="check-result">not compatible<`) {
			t.Errorf("an id turned int is compatible: %.300s", resp.body)
		}
	})
	t.Run("users", func(t *testing.T) { checkUsersAPI(t, c, 300) })
	stop()
}

// checkUsersAPI checks the users page's API on a sink holding n users:
// keyset pages of 70 hold each user once, the stats count n in all and by
// nationality, search by e-mail and the nationality filter find a user,
// and a bad cursor is refused.
func checkUsersAPI(t *testing.T, c *client, n int64) {
	t.Helper()
	type users struct {
		Users []struct {
			ID, Email, Nat string
		}
		Next  string
		Stats struct {
			Total int64            `json:"total"`
			ByNat map[string]int64 `json:"by_nat"`
		}
	}
	seen := map[string]bool{}
	after := ""
	for range n/70 + 2 {
		var u users
		c.getJSON("/api/ui/users?limit=70&after="+url.QueryEscape(after), &u)
		if u.Stats.Total != 300 {
			t.Fatalf("stats total %d, want 300", u.Stats.Total)
		}
		for _, r := range u.Users {
			if seen[r.ID] {
				t.Fatalf("user %s on two pages", r.ID)
			}
			seen[r.ID] = true
		}
		if after = u.Next; after == "" {
			break
		}
	}
	if int64(len(seen)) != n {
		t.Errorf("pages held %d users, want %d", len(seen), n)
	}
	var u users
	c.getJSON("/api/ui/users?limit=1", &u)
	one := u.Users[0]
	var sum int64
	for _, n := range u.Stats.ByNat {
		sum += n
	}
	if sum != n {
		t.Errorf("by nat sums to %d, want %d", sum, n)
	}
	for _, q := range []string{"q=" + url.QueryEscape(one.Email), "nat=" + one.Nat} {
		var got users
		c.getJSON("/api/ui/users?limit=500&"+q, &got)
		found := false
		for _, r := range got.Users {
			found = found || r.ID == one.ID
			if strings.HasPrefix(q, "nat=") && r.Nat != one.Nat {
				t.Errorf("%s returned a user of %s", q, r.Nat)
			}
		}
		if !found {
			t.Errorf("%s does not find %s", q, one.ID)
		}
	}
	if st := c.getJSON("/api/ui/users?after=garbage", nil); st != http.StatusBadRequest {
		t.Errorf("a bad cursor: %d, want 400", st)
	}
}

// TestHostileContentIsText: names, keys and headers with markup are shown
// escaped on every page that shows them.
func TestHostileContentIsText(t *testing.T) {
	f := newFixture(t, withSource(func(s ingest.Source) ingest.Source { return hostile{s} }, `"><b>src</b>`))
	f.produceRaw(t, broker.Topic, []byte(xssFirst), []byte(xssLast), map[string]string{"x-evil": xssLast})
	run, err := f.sched.Service().Trigger(context.Background(), ingestdag.UserAutomationID, nil, time.Time{}, "")
	if err != nil {
		t.Fatal(err)
	}
	f.startStream(t)
	f.waitStored(t, 200, 60*time.Second)
	c := f.loggedIn(t, login.AdminUser, adminPassword)
	for _, p := range []string{"/users", "/topics/users_created/messages?limit=300", "/topics/users_created.dlq/messages", "/dags/user_automation/runs/" + run.RunID} {
		body := c.get(p).body
		for _, raw := range []string{xssFirst, xssLast, "<b>src</b>", "<img src=x"} {
			if strings.Contains(body, raw) {
				t.Errorf("%s shows %q unescaped", p, raw)
			}
		}
	}
	body := c.get("/users").body
	if !strings.Contains(body, "&lt;script&gt;window.__xss=1&lt;/script&gt;") {
		t.Errorf("the users page does not show the name as text")
	}
}
