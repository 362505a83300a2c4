//go:build unix

package member

import (
	"fmt"
	"os"
	"testing"
)

func TestAcquire(t *testing.T) {
	dir := t.TempDir()
	id := func(n int) string { return fmt.Sprintf("h-u%d-%d", os.Getuid(), n) }
	a, err := Acquire("g", Dir(dir), Host("h"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Acquire("g", Dir(dir), Host("h"))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != id(0) || b.ID != id(1) {
		t.Fatalf("two live members got %q and %q, want %q and %q", a.ID, b.ID, id(0), id(1))
	}
	other, err := Acquire("other/group", Dir(dir), Host("h"))
	if err != nil {
		t.Fatal(err)
	}
	if other.ID != id(0) {
		t.Fatalf("another group's first member got %q, want %q", other.ID, id(0))
	}
	// The first member goes (as a crash would free its lock): the one
	// started next takes its id, and the second keeps its own.
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	again, err := Acquire("g", Dir(dir), Host("h"))
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != id(0) {
		t.Fatalf("the restarted member got %q, want its predecessor's %q", again.ID, id(0))
	}
	for _, l := range []*Lease{b, other, again} {
		l.Release()
	}
}

func TestAcquireDefaultDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	l, err := Acquire("g")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	host, _ := os.Hostname()
	if want := fmt.Sprintf("%s-u%d-0", host, os.Getuid()); l.ID != want {
		t.Fatalf("id %q, want %q", l.ID, want)
	}
}
