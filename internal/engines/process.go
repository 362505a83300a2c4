package engines

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Process is one engine process (a Kafka node, ZooKeeper, Cassandra). Its
// description is saved as process.json in its directory, so a later
// command (scripts/engines.sh kill, restart, stop) can find and signal it.
type Process struct {
	Name string   `json:"name"` // "kafka-1", "zookeeper", "cassandra"
	Dir  string   `json:"dir"`  // its data, configuration and logs
	Addr string   `json:"addr"` // host:port clients use
	Args []string `json:"args"` // the command line, to start it again
	Log  string   `json:"log"`  // its main log file
	Pid  int      `json:"pid"`

	detached bool
	cmd      *exec.Cmd
	done     chan struct{}
}

const processFile = "process.json"

// start runs p.Args in p.Dir, output to p.Dir/stdout.log. The process leads
// its own group; unless detached, it is killed when the calling thread's
// process (the test binary) dies.
func (p *Process) start() error {
	out, err := os.OpenFile(filepath.Join(p.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("engines: %s: %w", p.Name, err)
	}
	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if p.detached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("engines: start %s: %w", p.Name, err)
	}
	p.cmd, p.Pid, p.done = cmd, cmd.Process.Pid, make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(p.done) }()
	return p.save()
}

func (p *Process) save() error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.Dir, processFile), b, 0o644)
}

// loadProcess reads the description a start saved in dir.
func loadProcess(dir string) (*Process, error) {
	b, err := os.ReadFile(filepath.Join(dir, processFile))
	if err != nil {
		return nil, err
	}
	var p Process
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("engines: %s: %w", filepath.Join(dir, processFile), err)
	}
	p.detached = true
	return &p, nil
}

// Alive reports whether the process is running.
func (p *Process) Alive() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	if p.Pid <= 0 {
		return false
	}
	// Not our child: signal 0 tells whether it exists. A zombie of another
	// parent counts as alive until reaped, which init does at once.
	return syscall.Kill(p.Pid, 0) == nil
}

// Kill sends SIGKILL to the process's group and waits until it is gone.
func (p *Process) Kill() error { return p.signalAndWait(syscall.SIGKILL, 30*time.Second) }

// Stop asks the process to stop (SIGTERM) and kills it if it has not
// within grace.
func (p *Process) Stop(grace time.Duration) error {
	if err := p.signalAndWait(syscall.SIGTERM, grace); err == nil {
		return nil
	}
	return p.Kill()
}

func (p *Process) signalAndWait(sig syscall.Signal, within time.Duration) error {
	if !p.Alive() {
		return nil
	}
	// The group first (the JVM and anything it forked), then the process
	// itself in case it left its group.
	_ = syscall.Kill(-p.Pid, sig)
	_ = syscall.Kill(p.Pid, sig)
	deadline := time.Now().Add(within)
	for p.Alive() {
		if time.Now().After(deadline) {
			return fmt.Errorf("engines: %s (pid %d) still runs %s after %s", p.Name, p.Pid, within, sig)
		}
		time.Sleep(50 * time.Millisecond) // paces the poll of a process we cannot wait on
	}
	return nil
}

// LogTail returns the last n bytes of the process's log, or of its
// standard output when the log is empty.
func (p *Process) LogTail(n int) string {
	if s := tailFile(p.Log, n); s != "" {
		return s
	}
	return tailFile(filepath.Join(p.Dir, "stdout.log"), n)
}

// errNotStarted says a directory holds no engine started by this package.
var errNotStarted = errors.New("engines: nothing was started there")
