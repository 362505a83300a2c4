package storetest

// The cases of a store's life: a canceled context, use after Close.

import (
	"context"
	"errors"
	"testing"

	"github.com/riverqueue/river"

	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler"
)

func testCanceled(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r := newRun("a", 0)
	if err := h.CreateRun(ctx, r); err == nil {
		t.Error("CreateRun with a canceled context succeeded, want an error")
	}
	if _, err := h.GetRun(t.Context(), r.DagID, r.RunID); !errors.Is(err, scheduler.ErrNotFound) {
		t.Errorf("after a canceled CreateRun, GetRun gave %v, want ErrNotFound", err)
	}
	h.createRun(r) // and the store still works
}

func testClosed(t *testing.T, h *harness) {
	r := h.createRun(newRun("a", 0))
	tr := h.putTry(newTry(r, "t", 1))
	h.closed = true
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	calls := map[string]func() error{
		"SyncDAG":       func() error { _, err := h.SyncDAG(ctx, testDAG("a"), false); return err },
		"GetDAG":        func() error { _, err := h.GetDAG(ctx, "a"); return err },
		"ListDAGs":      func() error { _, err := h.ListDAGs(ctx); return err },
		"SetPaused":     func() error { return h.SetPaused(ctx, "a", true) },
		"SetNextDagRun": func() error { return h.SetNextDagRun(ctx, "a", base) },
		"CreateRun":     func() error { return h.CreateRun(ctx, newRun("a", 1)) },
		"GetRun":        func() error { _, err := h.GetRun(ctx, r.DagID, r.RunID); return err },
		"ListRuns":      func() error { _, _, err := h.ListRuns(ctx, scheduler.RunFilter{}); return err },
		"UpdateRun":     func() error { return h.UpdateRun(ctx, r) },
		"DeleteRun":     func() error { return h.DeleteRun(ctx, r.DagID, r.RunID) },
		"PutTry":        func() error { return h.PutTry(ctx, tr) },
		"ListTries":     func() error { _, err := h.ListTries(ctx, r.DagID, r.RunID); return err },
		"TriesInState":  func() error { _, err := h.TriesInState(ctx, scheduler.TaskQueued); return err },
		"AppendLog":     func() error { return h.AppendLog(ctx, tr.DagID, tr.RunID, tr.TaskID, tr.TryNumber, "x") },
		"GetLog":        func() error { _, err := h.GetLog(ctx, tr.DagID, tr.RunID, tr.TaskID, tr.TryNumber); return err },
		"GetUser":       func() error { _, err := h.GetUser(ctx, "admin"); return err },
		"Secret":        func() error { _, err := h.Secret(ctx, "s", []byte("v")); return err },
		"PutUser":       func() error { return h.PutUser(ctx, login.User{Name: "admin"}) },
		"Queue":         func() error { _, err := h.Queue(&river.Config{}); return err },
		"Close":         h.Close,
	}
	for name, call := range calls {
		err := call()
		if err == nil {
			t.Errorf("%s after Close succeeded, want an error", name)
			continue
		}
		if !errors.Is(err, scheduler.ErrStoreClosed) {
			t.Errorf("%s after Close: %v, want an error saying the store is closed", name, err)
		}
	}
}
