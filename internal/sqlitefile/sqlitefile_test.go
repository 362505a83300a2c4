package sqlitefile_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/sqlitefile"
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
	select {
	case err := <-got:
		t.Fatalf("Lock returned (%v) while the first was held", err)
	case <-time.After(100 * time.Millisecond): // a window to see it wait
	}
	release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Lock after release: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Lock did not return within 10s of the first's release")
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
