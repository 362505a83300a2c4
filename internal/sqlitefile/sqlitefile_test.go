package sqlitefile_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/sqlitefile"
	"github.com/userstream/userstream/internal/testwait"
)

// TestLockExcludes: a second Lock on the same path waits for the first's
// release, and gives up when its context ends.
func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.db") // the directory is created
	release, err := sqlitefile.Lock(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if r2, err := sqlitefile.Lock(ctx, path); err == nil {
		r2()
		t.Fatal("a second Lock succeeded while the first was held")
	}

	got := make(chan error, 1)
	go func() {
		r3, err := sqlitefile.Lock(t.Context(), path)
		if err == nil {
			r3()
		}
		got <- err
	}()
	poll := func() (error, bool) {
		select {
		case err := <-got:
			return err, true
		default:
			return nil, false
		}
	}
	testwait.Holds(t, 100*time.Millisecond, "a second Lock waiting while the first is held", func() (string, bool) {
		if err, done := poll(); done {
			return fmt.Sprintf("Lock returned (%v)", err), false
		}
		return "waiting", true
	})
	release()
	if err := testwait.For(t, 10*time.Second, "the second Lock once the first is released", poll); err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
}

func TestLockMemory(t *testing.T) {
	r1, err := sqlitefile.Lock(t.Context(), sqlitefile.Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer r1()
	r2, err := sqlitefile.Lock(t.Context(), sqlitefile.Memory)
	if err != nil {
		t.Fatalf("a second Lock of %s: %v (private databases need no lock)", sqlitefile.Memory, err)
	}
	r2()
}

func TestLockUnwritableDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := sqlitefile.Lock(t.Context(), filepath.Join(f, "x.db"))
	if err == nil || !strings.Contains(err.Error(), "create directory for "+filepath.Join(f, "x.db")) {
		t.Fatalf("Lock under a regular file = %v, want an error saying the directory could not be created", err)
	}
}
