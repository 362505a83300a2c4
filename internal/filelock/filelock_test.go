//go:build unix

package filelock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/testwait"
)

func TestTryLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	release, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	again, err := TryLock(path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}

// A process killed while holding the lock leaves it free.
func TestKilledHolderFreesLock(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("the flock command (util-linux) is not installed")
	}
	path := filepath.Join(t.TempDir(), "x.lock")
	// sleep inherits fd 9 and its lock: killing it is killing the holder.
	holder := exec.Command("sh", "-c", `exec 9>"$1" && flock -x 9 && exec sleep 60`, "sh", path)
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the shell to take the lock", func() (error, bool) {
		release, err := TryLock(path)
		if err == nil {
			release()
		}
		return err, errors.Is(err, ErrLocked)
	})
	if err := holder.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	_ = holder.Wait()
	release, err := TryLock(path)
	if err != nil {
		t.Fatalf("lock after its holder was killed: %v", err)
	}
	release()
}
