package peers

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestProcAccounting: the /proc readers the comparisons measure with find
// a process, its child and its name, and count the CPU it spends. It runs
// without scripts/peers.sh: it measures nothing.
func TestProcAccounting(t *testing.T) {
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Skipf("no sleep command to start a child: %v", err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	self := os.Getpid()
	if got := tree(self); !slices.Contains(got, self) || !slices.Contains(got, child.Process.Pid) {
		t.Errorf("tree(%d) = %v, want itself and its child %d", self, got, child.Process.Pid)
	}
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	if got := pidsNamed(strings.TrimSpace(string(comm))); !slices.Contains(got, self) {
		t.Errorf("pidsNamed(%q) = %v, want %d among them", strings.TrimSpace(string(comm)), got, self)
	}
	// Spin until the count rises by a tenth of a second (clock ticks are
	// 10 ms), for at most 10 s of wall time: a loaded machine gives this
	// process less than a core.
	before := cpuSeconds(self)
	spent := 0.0
	for end := time.Now().Add(10 * time.Second); spent < 0.1 && time.Now().Before(end); {
		spent = cpuSeconds(self) - before
	}
	if spent < 0.1 {
		t.Errorf("cpuSeconds rose by %.2f s over 10 s of spinning, want at least 0.1", spent)
	}
	if m := machineCPUSeconds(); m <= 0 {
		t.Errorf("machineCPUSeconds() = %v, want the CPU time used since boot", m)
	}
	if got := cpuSeconds(1 << 30); got != 0 {
		t.Errorf("cpuSeconds of no process = %v, want 0", got)
	}
}
