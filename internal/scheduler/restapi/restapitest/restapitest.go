// Package restapitest serves the REST API over a real SQLite store and a
// running scheduler with the tutorial's DAG, for the tests of its clients
// (restapi's own, and Airflow's client and spec in compat/).
package restapitest

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/restapi"
	"github.com/userstream/userstream/internal/scheduler/store/sqlite"
)

// Password is the password of both logins Server creates: "admin" (role
// admin) and "viewer" (role viewer).
const Password = "s3cret-test-password"

// Server runs the REST API with one DAG, user_automation (no schedule:
// only the test creates runs), whose task stream_data_from_api logs
// "streamed users=3" and succeeds. Everything stops when the test ends.
func Server(t testing.TB) (*httptest.Server, *scheduler.Scheduler) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for name, role := range map[string]login.Role{"admin": login.RoleAdmin, "viewer": login.RoleViewer} {
		if _, err := login.EnsureUser(context.Background(), st, name, role, Password); err != nil {
			t.Fatal(err)
		}
	}
	d := &scheduler.DAG{DagID: "user_automation", Owner: "airscholar", Schedule: "none",
		StartDate: time.Date(2023, 9, 3, 10, 0, 0, 0, time.UTC), Tags: []string{"userstream"},
		Tasks: []scheduler.Task{{TaskID: "stream_data_from_api", Run: func(_ context.Context, tc scheduler.TaskContext) error {
			tc.Log.Info("streamed", "users", 3)
			return nil
		}}}}
	s, err := scheduler.New(scheduler.Config{Store: st, DAGs: []*scheduler.DAG{d}, TickEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	srv := httptest.NewServer(restapi.New(s.Service(), login.New(st), restapi.Options{Heartbeat: s.LastTick}))
	t.Cleanup(srv.Close)
	return srv, s
}
