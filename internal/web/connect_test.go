package web_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler/store/sqlite"
	"github.com/userstream/userstream/internal/testwait"
	"github.com/userstream/userstream/internal/web"
)

// connectList is the JSON twin of /connect.
type connectList struct {
	URL        string `json:"connect_url"`
	Error      string `json:"error"`
	Connectors []struct {
		Name         string   `json:"name"`
		Plugin       string   `json:"plugin"`
		State        string   `json:"state"`
		TasksRunning int      `json:"tasks_running"`
		TasksTotal   int      `json:"tasks_total"`
		Topics       []string `json:"topics"`
	} `json:"connectors"`
}

// connectorTwin is the JSON twin of /connect/{name}.
type connectorTwin struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Tasks []struct {
		ID       int    `json:"id"`
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
		Trace    string `json:"trace"`
	} `json:"tasks"`
	Config []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"config"`
	Active  []string `json:"active_topics"`
	Offsets []struct {
		Topic  string `json:"topic"`
		Offset int64  `json:"offset"`
	} `json:"offsets"`
}

// TestConnect drives a real Kafka Connect worker (on the embedded broker,
// writing SQLite) through the UI: the list and a connector's page show
// what Connect says; pause, resume, stop, offsets reset, restarts and
// delete reach it with the admin's token; a viewer's and a forged POST
// change nothing; names and values with markup stay text; a worker that
// is down is said to be.
func TestConnect(t *testing.T) {
	f := newFixture(t, withConnect())
	f.produce(t, 20)
	const name = "users-sqlite"
	f.createConnector(t, name, f.jdbcSink(t, "connect.db"))
	f.waitConnector(t, name, "RUNNING")
	admin := f.loggedIn(t, login.AdminUser, adminPassword)
	viewer := f.loggedIn(t, login.ViewerUser, viewerPassword)
	page := "/connect/" + name

	t.Run("the list and the connector's page", func(t *testing.T) {
		var l connectList
		if st := viewer.getJSON("/api/ui/connect", &l); st != http.StatusOK || l.URL != f.connect || len(l.Connectors) != 1 {
			t.Fatalf("list: %d %+v", st, l)
		}
		c := l.Connectors[0]
		if c.Name != name || c.Plugin != "JdbcSinkConnector" || c.State != "RUNNING" || c.TasksRunning != 1 || c.TasksTotal != 1 ||
			len(c.Topics) != 1 || c.Topics[0] != broker.Topic {
			t.Errorf("list row: %+v", c)
		}
		body := viewer.get("/connect").body
		for _, want := range []string{`href="/connect"`, `href="/connect/` + name + `"`, `cs-RUNNING">RUNNING<`, ">1/1<"} {
			if !strings.Contains(body, want) {
				t.Errorf("the list lacks %q", want)
			}
		}
		// The worker stores the 20 users and commits: the offsets say so.
		var d connectorTwin
		testwait.For(t, 30*time.Second, "offsets at 20", func() (string, bool) {
			d = connectorTwin{}
			viewer.getJSON("/api/ui"+page, &d)
			var sum int64
			for _, o := range d.Offsets {
				sum += o.Offset
			}
			return fmt.Sprintf("offsets summing to %d, active %s", sum, strings.Join(d.Active, ",")), sum == 20
		})
		if d.State != "RUNNING" || len(d.Tasks) != 1 || d.Tasks[0].WorkerID != "connect-1:8083" || len(d.Active) != 1 {
			t.Errorf("connector twin: %+v", d)
		}
		body = viewer.get(page).body
		for _, want := range []string{`id="connector-state" class="cs-RUNNING">RUNNING<`, "connection.url", `id="pause" disabled`, `id="read-only"`} {
			if !strings.Contains(body, want) {
				t.Errorf("the viewer's page lacks %q", want)
			}
		}
		if body := admin.get(page).body; strings.Contains(body, "disabled") || !strings.Contains(body, `id="pause"`) {
			t.Errorf("the admin's actions are disabled or missing")
		}
		if st := viewer.getJSON("/api/ui/connect/nope", nil); st != http.StatusNotFound {
			t.Errorf("unknown connector: %d, want 404", st)
		}
	})

	t.Run("a viewer's POST and a forged one change nothing", func(t *testing.T) {
		token := viewer.csrf()
		for _, a := range []string{"/pause", "/stop", "/restart", "/tasks/0/restart"} {
			if resp := viewer.post(page+a, url.Values{"csrf": {token}}); resp.StatusCode != http.StatusForbidden {
				t.Errorf("viewer POST %s: %d, want 403", a, resp.StatusCode)
			}
		}
		resp := viewer.post(page+"/delete", url.Values{"csrf": {token}, "confirm": {"yes"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.body, "may look but not change anything") {
			t.Errorf("viewer delete: %d %q", resp.StatusCode, resp.body)
		}
		for _, form := range []url.Values{{}, {"csrf": {"forged"}}, {"csrf": {token}}} { // the viewer's token is not the admin's
			if resp := admin.post(page+"/pause", form); resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.body, "CSRF") {
				t.Errorf("admin pause with %v: %d, want 403 naming CSRF", form, resp.StatusCode)
			}
		}
		testwait.Holds(t, 300*time.Millisecond, "the connector RUNNING after refused POSTs", func() (string, bool) {
			st := f.connectorState(t, name)
			return st, st == "RUNNING"
		})
		anon := f.client(t)
		if resp := anon.post(page+"/pause", nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			t.Errorf("anonymous pause: %d", resp.StatusCode)
		}
	})

	token := admin.csrf()
	act := func(t *testing.T, action string, form url.Values) response {
		t.Helper()
		if form == nil {
			form = url.Values{}
		}
		form.Set("csrf", token)
		return admin.post(page+"/"+action, form)
	}
	t.Run("pause, resume and stop reach Connect", func(t *testing.T) {
		for _, step := range []struct{ action, state string }{{"pause", "PAUSED"}, {"resume", "RUNNING"}, {"stop", "STOPPED"}} {
			resp := act(t, step.action, nil)
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, page+"?flash=") {
				t.Fatalf("%s: %d %q %.300s", step.action, resp.StatusCode, loc, resp.body)
			}
			f.waitConnector(t, name, step.state)
			if body := admin.get(page).body; !strings.Contains(body, `id="connector-state" class="cs-`+step.state+`">`+step.state+`<`) {
				t.Errorf("after %s the page does not say %s", step.action, step.state)
			}
		}
	})

	t.Run("offsets reset: confirmed, while stopped; Connect's refusal shown", func(t *testing.T) {
		if resp := act(t, "reset-offsets", nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.body, "tick the confirmation box") {
			t.Errorf("reset without the tick: %d", resp.StatusCode)
		}
		if !strings.Contains(admin.get(page).body, `id="reset-offsets"`) {
			t.Error("a stopped connector's page offers no offsets reset")
		}
		if resp := act(t, "reset-offsets", url.Values{"confirm": {"yes"}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("reset: %d %.300s", resp.StatusCode, resp.body)
		}
		var d connectorTwin
		admin.getJSON("/api/ui"+page, &d)
		if len(d.Offsets) != 0 {
			t.Errorf("offsets after the reset: %+v", d.Offsets)
		}
		act(t, "resume", nil)
		f.waitConnector(t, name, "RUNNING")
		if strings.Contains(admin.get(page).body, `id="reset-offsets"`) {
			t.Error("a running connector's page offers an offsets reset")
		}
		// Connect refuses a reset while running: its message is shown.
		resp := act(t, "reset-offsets", url.Values{"confirm": {"yes"}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.body, `id="action-error"`) ||
			!strings.Contains(resp.body, "Connectors must be in the STOPPED state before their offsets can be modified") {
			t.Errorf("reset while running: %d %.600s", resp.StatusCode, resp.body)
		}
		// It re-reads the topic from the start into the same rows.
		testwait.For(t, 30*time.Second, "offsets read again", func() (any, bool) {
			d = connectorTwin{}
			admin.getJSON("/api/ui"+page, &d)
			return d.Offsets, len(d.Offsets) > 0 && d.Offsets[0].Offset > 0
		})
	})

	t.Run("a failed task: its trace, restarts", func(t *testing.T) {
		cfg := f.jdbcSink(t, "x.db")
		// A file where its directory should be: the sink cannot open.
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg["connection.url"] = "jdbc:sqlite:" + filepath.Join(file, "<b>dir</b>", "x.db")
		f.createConnector(t, "broken", cfg)
		var d connectorTwin
		testwait.For(t, 20*time.Second, "the task FAILED", func() (any, bool) {
			d = connectorTwin{}
			admin.getJSON("/api/ui/connect/broken", &d)
			return d.Tasks, len(d.Tasks) == 1 && d.Tasks[0].State == "FAILED"
		})
		body := admin.get("/connect/broken").body
		if !strings.Contains(body, `<pre class="trace">org.apache.kafka.connect.errors.ConnectException: open sink`) ||
			!strings.Contains(body, "&lt;b&gt;dir&lt;/b&gt;") || strings.Contains(body, "<b>dir</b>") {
			t.Errorf("the failed task's trace is not shown as text in a <pre>: %.2000s", body)
		}
		for _, a := range []string{"restart", "tasks/0/restart"} {
			resp := admin.post("/connect/broken/"+a, url.Values{"csrf": {token}})
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/connect/broken?flash=") {
				t.Errorf("%s: %d %.300s", a, resp.StatusCode, resp.body)
			}
		}
		if resp := admin.post("/connect/broken/tasks/7/restart", url.Values{"csrf": {token}}); resp.StatusCode != http.StatusNotFound ||
			!strings.Contains(resp.body, "Task broken-7 not found") {
			t.Errorf("a task that is not there: %d %.300s", resp.StatusCode, resp.body)
		}
		if resp := admin.post("/connect/broken/tasks/x/restart", url.Values{"csrf": {token}}); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("task x: %d, want 400", resp.StatusCode)
		}
		if resp := admin.post("/connect/broken/sideways", url.Values{"csrf": {token}}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("an unknown action: %d, want 404", resp.StatusCode)
		}
	})

	t.Run("delete needs the tick", func(t *testing.T) {
		if resp := admin.post("/connect/broken/delete", url.Values{"csrf": {token}}); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("delete without the tick: %d", resp.StatusCode)
		}
		if st := f.connectorState(t, "broken"); st == "Not Found" {
			t.Fatal("deleted without the tick")
		}
		resp := admin.post("/connect/broken/delete", url.Values{"csrf": {token}, "confirm": {"yes"}})
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/connect?flash=") {
			t.Fatalf("delete: %d %.300s", resp.StatusCode, resp.body)
		}
		if st := f.connectCall(t, http.MethodGet, "/connectors/broken", nil, nil); st != http.StatusNotFound {
			t.Errorf("after the delete GET /connectors/broken: %d", st)
		}
		if resp := admin.get("/connect/broken"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("the deleted connector's page: %d", resp.StatusCode)
		}
	})

	t.Run("a hostile name and config value are text, and reach Connect escaped", func(t *testing.T) {
		const evil = `x"><img src=x onerror=alert(1)> &?#%25`
		cfg := f.jdbcSink(t, "evil.db")
		cfg["connection.user"] = xssFirst
		cfg["connection.password"] = "hunter2-pw"
		f.createConnector(t, evil, cfg)
		f.waitConnector(t, evil, "RUNNING")
		esc := "/connect/" + url.PathEscape(evil)
		for _, p := range []string{"/connect", esc} {
			resp := admin.get(p)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d", p, resp.StatusCode)
			}
			for _, raw := range []string{"<img src=x", xssFirst, "hunter2-pw"} {
				if strings.Contains(resp.body, raw) {
					t.Errorf("%s shows %q", p, raw)
				}
			}
		}
		if body := admin.get("/connect").body; !strings.Contains(body, `href="`+strings.ReplaceAll(esc, "&", "&amp;")+`"`) {
			t.Errorf("the list's link is not %s: %.1500s", esc, body)
		}
		if body := admin.get(esc).body; !strings.Contains(body, "&lt;script&gt;window.__xss=1&lt;/script&gt;") ||
			!strings.Contains(body, "[hidden]") {
			t.Errorf("the config value is not shown as text, or the password is not hidden")
		}
		var d connectorTwin
		if st := admin.getJSON("/api/ui"+esc, &d); st != http.StatusOK || d.Name != evil {
			t.Errorf("twin of the hostile name: %d %q", st, d.Name)
		}
		if resp := admin.post(esc+"/pause", url.Values{"csrf": {token}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("pause %s: %d %.300s", evil, resp.StatusCode, resp.body)
		}
		f.waitConnector(t, evil, "PAUSED")
		if st := f.connectorState(t, name); st != "RUNNING" {
			t.Errorf("pausing %q changed %s: %s", evil, name, st)
		}
	})

	t.Run("Connect checks the forwarded login against the store", func(t *testing.T) {
		// An admin logs in to the UI, then the store makes it a viewer (its
		// password, and so its token's key, unchanged): the UI's session
		// still says admin, Connect says no.
		ctx := context.Background()
		if _, err := login.EnsureUser(ctx, f.meta, "ops", login.RoleAdmin, "ops-secret-1"); err != nil {
			t.Fatal(err)
		}
		ops := f.loggedIn(t, "ops", "ops-secret-1")
		u, err := f.meta.GetUser(ctx, "ops")
		if err != nil {
			t.Fatal(err)
		}
		u.Role = login.RoleViewer
		if err := f.meta.PutUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		resp := ops.post(page+"/pause", url.Values{"csrf": {ops.csrf()}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.body, `id="action-error"`) ||
			!strings.Contains(resp.body, "Kafka Connect refused (403): user &#34;ops&#34; (viewer) may read but not change anything") {
			t.Errorf("pause by a login Connect knows as a viewer: %d %.1500s", resp.StatusCode, resp.body)
		}
		if st := f.connectorState(t, name); st != "RUNNING" {
			t.Errorf("Connect's refusal paused it: %s", st)
		}
	})

	t.Run("a worker that is down is said to be", func(t *testing.T) {
		f.connectSrv.Close()
		resp := admin.get("/connect")
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.body, `id="connect-error"`) ||
			!strings.Contains(resp.body, "Kafka Connect at "+f.connect+" is unreachable") {
			t.Errorf("/connect with the worker down: %d %.1000s", resp.StatusCode, resp.body)
		}
		resp = admin.get(page)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.body, "unreachable") {
			t.Errorf("%s with the worker down: %d", page, resp.StatusCode)
		}
		if resp := act(t, "pause", nil); resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.body, "unreachable") {
			t.Errorf("pause with the worker down: %d", resp.StatusCode)
		}
	})
}

// TestConnectOffAndCredentials: without Connect the UI has no Connect entry
// and its pages answer 404 saying why; a Connect URL's password reaches no
// page, while the URL itself is named.
func TestConnectOffAndCredentials(t *testing.T) {
	ctx := context.Background()
	meta, err := sqlite.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	if _, err := login.EnsureUser(ctx, meta, login.AdminUser, login.RoleAdmin, adminPassword); err != nil {
		t.Fatal(err)
	}
	auth := login.New(meta)
	ui := func(conn *web.Connect) *client {
		s, err := web.New(web.Config{Auth: auth, Connect: conn})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		return (&fixture{url: srv.URL}).loggedIn(t, login.AdminUser, adminPassword)
	}

	off := ui(nil)
	if body := off.get("/dags").body; strings.Contains(body, `href="/connect"`) {
		t.Error("a UI without Connect links to its page")
	}
	for _, p := range []string{"/connect", "/connect/x", "/api/ui/connect"} {
		if resp := off.get(p); resp.StatusCode != http.StatusNotFound || !strings.Contains(resp.body, "--connect-url") {
			t.Errorf("GET %s without Connect: %d %.300s", p, resp.StatusCode, resp.body)
		}
	}
	if resp := off.post("/connect/x/pause", url.Values{"csrf": {off.csrf()}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST without Connect: %d", resp.StatusCode)
	}

	for _, bad := range []string{"127.0.0.1:8083", "ftp://h/", "http://", "http://u:hunter2@h:8083/?x=1"} {
		if _, err := web.NewConnect(bad); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("NewConnect(%q): %v", bad, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	conn, err := web.NewConnect("http://connect-user:hunter2@" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	down := ui(conn)
	for _, p := range []string{"/connect", "/api/ui/connect", "/connect/x", "/api/ui/connect/x"} {
		resp := down.get(p)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.body, "http://"+addr+" is unreachable") {
			t.Errorf("GET %s: %d %.500s, want 502 naming the URL", p, resp.StatusCode, resp.body)
		}
		if strings.Contains(resp.body, "hunter2") || strings.Contains(resp.body, "connect-user") {
			t.Errorf("GET %s shows the URL's credentials: %.500s", p, resp.body)
		}
	}
}
