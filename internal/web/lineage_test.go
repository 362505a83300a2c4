package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/ingest/ingestdag"
	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/testwait"
)

// TestLineage: from a stored user to its Kafka message (partition, offset,
// headers) and the DAG run that fetched it, with its tries' logs; and from
// the run to its messages.
func TestLineage(t *testing.T) {
	f := newFixture(t)
	stop := f.startStream(t)
	defer stop()
	ctx := context.Background()
	run, err := f.sched.Service().Trigger(ctx, ingestdag.UserAutomationID, nil, time.Time{}, "lineage")
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 60*time.Second, "the run succeeds", func() (scheduler.RunState, bool) {
		r, err := f.meta.GetRun(ctx, ingestdag.UserAutomationID, run.RunID)
		if err != nil {
			t.Fatal(err)
		}
		return r.State, r.State == scheduler.RunSuccess
	})
	f.waitStored(t, 200, 60*time.Second)
	c := f.loggedIn(t, login.ViewerUser, viewerPassword)
	var users struct {
		Users []struct{ ID, Email, RunID string }
	}
	c.getJSON("/api/ui/users?limit=3", &users)
	if len(users.Users) != 3 {
		t.Fatalf("users: %+v", users)
	}
	for _, u := range users.Users {
		var l struct {
			User struct {
				ID    string
				RunID string `json:"run_id"`
			}
			Message *struct {
				Topic     string
				Partition int32
				Offset    int64
				Headers   map[string]string
			}
			Note string `json:"message_note"`
			Run  *struct {
				DagID string `json:"dag_id"`
				RunID string `json:"dag_run_id"`
			}
			Tasks []struct {
				TaskID string `json:"task_id"`
				Tries  []struct {
					TryNumber int `json:"try_number"`
				}
			} `json:"task_instances"`
			RunMessages string `json:"run_messages"`
			RunUsers    string `json:"run_users"`
		}
		if st := c.getJSON("/api/ui/users/"+u.ID, &l); st != http.StatusOK {
			t.Fatalf("lineage of %s: %d", u.ID, st)
		}
		if l.User.ID != u.ID || l.User.RunID != run.RunID {
			t.Errorf("lineage row %+v, want %s of run %s", l.User, u.ID, run.RunID)
		}
		if l.Message == nil {
			t.Fatalf("no message for %s: %s", u.ID, l.Note)
		}
		if l.Message.Topic != "users_created" || l.Message.Headers["userstream.run_id"] != run.RunID {
			t.Errorf("message %+v, want users_created with the run id header", *l.Message)
		}
		// The message at that partition and offset is the user's.
		var m struct {
			Messages []struct {
				Key     string
				Headers map[string]string
			}
		}
		c.getJSON("/api/ui/topics/users_created/messages?mode=offset&limit=1&partition="+strconv.Itoa(int(l.Message.Partition))+"&offset="+strconv.FormatInt(l.Message.Offset, 10), &m)
		if len(m.Messages) != 1 || m.Messages[0].Key != u.ID {
			t.Errorf("the message at %d/%d is %+v, want key %s", l.Message.Partition, l.Message.Offset, m.Messages, u.ID)
		}
		if l.Run == nil || l.Run.RunID != run.RunID || l.Run.DagID != ingestdag.UserAutomationID || len(l.Tasks) == 0 || len(l.Tasks[0].Tries) == 0 || l.Tasks[0].Tries[0].TryNumber != 1 {
			t.Fatalf("run %+v tasks %+v, want %s with its tries", l.Run, l.Tasks, run.RunID)
		}
		if !strings.Contains(l.RunMessages, "header="+url.QueryEscape("userstream.run_id="+run.RunID)) {
			t.Errorf("run messages link %q", l.RunMessages)
		}
		if l.RunUsers != "/users?run="+url.QueryEscape(run.RunID) {
			t.Errorf("run users link %q", l.RunUsers)
		}
	}
	// The page: a link from the users page, and from it to the log.
	page := c.get("/users")
	if !strings.Contains(page.body, `class="lineage" href="/users/`+users.Users[0].ID+`"`) {
		t.Errorf("the users page has no lineage link for %s", users.Users[0].ID)
	}
	lp := c.get("/users/" + users.Users[0].ID)
	if !strings.Contains(lp.body, `class="log-link" href="/dags/user_automation/runs/`+url.PathEscape(run.RunID)+`/tasks/`) {
		t.Errorf("the lineage page has no log link: %.2000s", lp.body)
	}
	// Back from the run: its messages, a search by the run id header.
	var rp struct{ Messages, Users string }
	c.getJSON("/api/ui/dags/user_automation/runs/"+url.PathEscape(run.RunID), &rp)
	runMessages := func(link string) (matches []map[string]string, stopped string) {
		u, err := url.Parse(link)
		if err != nil || u.Path != "/topics/users_created/search" {
			t.Fatalf("the run's messages link %q: want the topic's search (%v)", link, err)
		}
		st, events := c.search("users_created", u.Query())
		if st != http.StatusOK {
			t.Fatalf("search %s: %d %+v", link, st, events)
		}
		for _, e := range events {
			switch e.Type {
			case "match":
				matches = append(matches, e.Message.Headers)
			case "done":
				stopped = e.Stopped
			}
		}
		return matches, stopped
	}
	// The search stops at its 100 matches: each is the run's.
	ms, stopped := runMessages(rp.Messages)
	if len(ms) != 100 || stopped != "max_results" {
		t.Errorf("the run's messages: %d (stopped: %s), want the search's 100 of its 200", len(ms), stopped)
	}
	for _, h := range ms {
		if h["userstream.run_id"] != run.RunID {
			t.Fatalf("a message of another run: %v", h)
		}
	}
	// And its users, by the run filter: a second run's users are not among
	// them, and it has its own.
	second, err := f.sched.Service().Trigger(ctx, ingestdag.UserAutomationID, map[string]any{"users": 30.0}, time.Time{}, "lineage-2")
	if err != nil {
		t.Fatal(err)
	}
	f.waitStored(t, 230, 60*time.Second)
	var rp2 struct{ Messages, Users string }
	c.getJSON("/api/ui/dags/user_automation/runs/"+url.PathEscape(second.RunID), &rp2)
	for _, r := range []struct {
		link, run string
		want      int
	}{{rp.Users, run.RunID, 200}, {rp2.Users, second.RunID, 30}} {
		var ru struct {
			Users []struct {
				RunID string `json:"run_id"`
			}
			Next string
		}
		if st := c.getJSON("/api/ui"+r.link+"&limit=500", &ru); st != http.StatusOK || len(ru.Users) != r.want || ru.Next != "" {
			t.Fatalf("users of %s (%s): %d, %d users, next %q; want %d", r.run, r.link, st, len(ru.Users), ru.Next, r.want)
		}
		for _, u := range ru.Users {
			if u.RunID != r.run {
				t.Fatalf("users of %s: one of run %q", r.run, u.RunID)
			}
		}
	}
	// The second run's 30 messages, all found, none of the first run's.
	if ms, stopped := runMessages(rp2.Messages); len(ms) != 30 || stopped != "end" {
		t.Errorf("the second run's messages: %d (stopped: %s), want its 30, the topic read to its end", len(ms), stopped)
	} else {
		for _, h := range ms {
			if h["userstream.run_id"] != second.RunID {
				t.Fatalf("a message of another run: %v", h)
			}
		}
	}
	up := c.get(rp2.Users)
	if !strings.Contains(up.body, `id="users-run" href="/dags/user_automation/runs/`+url.PathEscape(second.RunID)+`"`) {
		t.Errorf("the users page of a run does not link back to the run: %.2000s", up.body)
	}
	if st := c.getJSON("/api/ui/users/no-such-user", nil); st != http.StatusNotFound {
		t.Errorf("an unknown user: %d, want 404", st)
	}
}
