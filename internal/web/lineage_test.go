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
		if !strings.Contains(l.RunMessages, "filter="+url.QueryEscape(run.RunID)) {
			t.Errorf("run messages link %q", l.RunMessages)
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
	// Back from the run: its messages, by the run id header.
	var rp struct{ Messages string }
	c.getJSON("/api/ui/dags/user_automation/runs/"+url.PathEscape(run.RunID), &rp)
	var rm struct {
		Messages []struct{ Headers map[string]string }
	}
	c.getJSON("/api/ui"+rp.Messages, &rm)
	if len(rm.Messages) != 200 {
		t.Errorf("the run's messages: %d, want its 200", len(rm.Messages))
	}
	for _, m := range rm.Messages {
		if m.Headers["userstream.run_id"] != run.RunID {
			t.Fatalf("a message of another run: %v", m.Headers)
		}
	}
	if st := c.getJSON("/api/ui/users/no-such-user", nil); st != http.StatusNotFound {
		t.Errorf("an unknown user: %d, want 404", st)
	}
}
