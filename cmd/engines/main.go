// Command engines starts, kills, restarts and stops the real engines of
// package internal/engines for people and scripts; scripts/engines.sh runs
// it. The processes it starts outlive it; their data and logs are under
// ENGINES_DIR (default: userstream-engines in the system's temp dir).
//
//	engines start kafka [--nodes 1|3]   # Apache Kafka 4, KRaft; last line BOOTSTRAP=host:port,...
//	engines start kafka-zk              # Kafka 3.9 on ZooKeeper 3.8; last line BOOTSTRAP=...
//	engines start cassandra [--port N]  # Cassandra 5.0, one node; last line CASSANDRA=host:port
//	engines kill kafka N                # SIGKILL node N (1, 2, 3)
//	engines restart kafka N             # start node N again on its data
//	engines kill cassandra | restart cassandra
//	engines stop [NAME]                 # stop what was started; nothing left running
//	engines status                      # what runs, its address, pid, log file
//	engines resolve [NAME...]           # download the pinned jars only (CI does this first)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"github.com/userstream/userstream/internal/engines"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout)
	var u usageError
	switch {
	case errors.As(err, &u):
		fmt.Fprintf(os.Stderr, "engines: %v\n%s", err, usage)
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "engines: %v\n", err)
		os.Exit(1)
	}
}

const usage = `usage:
  engines.sh start kafka [--nodes 1|3]   Apache Kafka 4 (KRaft); last line BOOTSTRAP=host:port,...
  engines.sh start kafka-zk              Apache Kafka 3.9 on ZooKeeper; last line BOOTSTRAP=...
  engines.sh start cassandra [--port N]  Apache Cassandra 5.0, one node (CQL on 9042, 0: a free port); last line CASSANDRA=host:port
  engines.sh kill kafka N                SIGKILL the broker whose node id is N
  engines.sh restart kafka N             start node N again on its data dir
  engines.sh kill cassandra              SIGKILL the Cassandra node
  engines.sh restart cassandra           start it again on its data dir
  engines.sh stop [NAME]                 stop what was started (all, or kafka, kafka-zk, cassandra)
  engines.sh status                      what runs: address, pid, log
  engines.sh resolve [NAME...]           resolve the pinned jars with Maven, start nothing
Data and logs live under ENGINES_DIR (now %s).
`

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// kafkaEngines are the Kafka flavours, each in its own directory under
// ENGINES_DIR.
var kafkaEngines = []string{"kafka", "kafka-zk"}

// cassandraEngine is Cassandra's directory under ENGINES_DIR and its name
// on the command line.
const cassandraEngine = "cassandra"

// allEngines are what stop, status and resolve cover by default.
var allEngines = append(slices.Clone(kafkaEngines), cassandraEngine)

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usagef("give a command")
	}
	root := engines.DefaultDir()
	switch args[0] {
	case "start":
		return start(ctx, root, args[1:], out)
	case "kill", "restart":
		if len(args) >= 2 && args[1] == cassandraEngine {
			return cassandraKillRestart(ctx, root, args, out)
		}
		if len(args) != 3 {
			return usagef("%s takes an engine and a node id: %s kafka 1", args[0], args[0])
		}
		id, err := strconv.Atoi(args[2])
		if err != nil {
			return usagef("%s: node id %q is not a number", args[0], args[2])
		}
		k, err := openKafka(root, args[1])
		if err != nil {
			return err
		}
		if args[0] == "kill" {
			if err := k.Kill(id); err != nil {
				return err
			}
			fmt.Fprintf(out, "killed %s node %d\n", args[1], id)
			return nil
		}
		if err := k.Restart(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(out, "restarted %s node %d\nBOOTSTRAP=%s\n", args[1], id, k.Bootstrap())
		return nil
	case "stop":
		names := allEngines
		if len(args) > 1 {
			names = args[1:]
		}
		var errs []error
		for _, name := range names {
			if name == cassandraEngine {
				c, err := engines.OpenCassandra(filepath.Join(root, name))
				if err != nil {
					continue // never started there
				}
				if err := c.Stop(); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(out, "stopped %s\n", name)
				continue
			}
			k, err := engines.OpenKafka(filepath.Join(root, name))
			if err != nil {
				continue // never started there
			}
			if err := k.Stop(); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(out, "stopped %s\n", name)
		}
		return errors.Join(errs...)
	case "status":
		any := false
		for _, name := range kafkaEngines {
			k, err := engines.OpenKafka(filepath.Join(root, name))
			if err != nil {
				continue
			}
			running := false
			for _, p := range k.Processes() {
				running = running || p.Alive()
			}
			if !running {
				continue
			}
			for _, p := range k.Processes() {
				if !p.Alive() {
					fmt.Fprintf(out, "%-9s %-10s stopped  addr=%s log=%s\n", name, p.Name, p.Addr, p.Log)
					continue
				}
				any = true
				fmt.Fprintf(out, "%-9s %-10s running  addr=%s pid=%d log=%s\n", name, p.Name, p.Addr, p.Pid, p.Log)
			}
		}
		if c, err := engines.OpenCassandra(filepath.Join(root, cassandraEngine)); err == nil {
			if p := c.Process(); p.Alive() {
				any = true
				fmt.Fprintf(out, "%-9s %-10s running  addr=%s pid=%d log=%s\n", cassandraEngine, p.Name, p.Addr, p.Pid, p.Log)
			}
		}
		if !any {
			fmt.Fprintf(out, "nothing runs (ENGINES_DIR=%s)\n", root)
		}
		return nil
	case "resolve":
		names := args[1:]
		if len(names) == 0 {
			names = allEngines
		}
		for _, name := range names {
			if _, err := engines.Classpath(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(out, "resolved %s\n", name)
		}
		return nil
	case "help", "-h", "--help":
		fmt.Fprintf(out, usage, root)
		return nil
	}
	return usagef("unknown command %q", args[0])
}

func start(ctx context.Context, root string, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usagef("start what? kafka, kafka-zk or cassandra")
	}
	name := args[0]
	if name == cassandraEngine {
		return startCassandra(ctx, root, args[1:], out)
	}
	fs := flag.NewFlagSet("start "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	nodes := fs.Int("nodes", 1, "number of nodes (1 or 3)")
	if err := fs.Parse(args[1:]); err != nil {
		return usagef("start %s: %v", name, err)
	}
	opts := []engines.KafkaOption{engines.Detached(), engines.WithNodes(*nodes),
		engines.WithPort(engines.DefaultKafkaPort)}
	switch name {
	case "kafka":
	case "kafka-zk":
		opts = append(opts, engines.WithZooKeeper(), engines.WithZooKeeperPort(engines.DefaultZooKeeperPort))
	default:
		return usagef("unknown engine %q: kafka, kafka-zk or cassandra", name)
	}
	if *nodes != 1 && *nodes != 3 {
		return usagef("--nodes %d: give 1 or 3", *nodes)
	}
	dir := filepath.Join(root, name)
	if k, err := engines.OpenKafka(dir); err == nil {
		for _, p := range k.Processes() {
			if p.Alive() {
				return fmt.Errorf("%s already runs (%s, pid %d); stop it first: engines.sh stop %s", name, p.Name, p.Pid, name)
			}
		}
	}
	// Every start begins with empty data; restart N keeps a node's.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	fmt.Fprintf(out, "starting %s (%d node(s)) in %s; the first start resolves its jars with Maven\n", name, *nodes, dir)
	k, err := engines.StartKafka(ctx, dir, opts...)
	if err != nil {
		return err
	}
	for _, p := range k.Processes() {
		fmt.Fprintf(out, "%s addr=%s pid=%d log=%s\n", p.Name, p.Addr, p.Pid, p.Log)
	}
	fmt.Fprintf(out, "BOOTSTRAP=%s\n", k.Bootstrap())
	return nil
}

func openKafka(root, name string) (*engines.Kafka, error) {
	switch name {
	case "kafka", "kafka-zk":
	default:
		return nil, usagef("unknown engine %q: kafka or kafka-zk", name)
	}
	if k, err := engines.OpenKafka(filepath.Join(root, name)); err == nil {
		return k, nil
	} else if name == "kafka" {
		// "kafka N" also means the broker of a ZooKeeper-mode cluster when
		// that is what runs.
		if zk, zerr := engines.OpenKafka(filepath.Join(root, "kafka-zk")); zerr == nil {
			return zk, nil
		}
		return nil, fmt.Errorf("no kafka was started under %s: engines.sh start kafka", root)
	}
	return nil, fmt.Errorf("no %s was started under %s: engines.sh start %s", name, root, name)
}

func startCassandra(ctx context.Context, root string, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("start cassandra", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	port := fs.Int("port", engines.DefaultCassandraPort, "CQL port (0: a free one); the storage port is the next")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return usagef("start cassandra [--port N]: %v %v", err, fs.Args())
	}
	opts := []engines.Option{engines.Detached()}
	if *port != 0 {
		opts = append(opts, engines.WithPort(*port))
	}
	dir := filepath.Join(root, cassandraEngine)
	if c, err := engines.OpenCassandra(dir); err == nil && c.Process().Alive() {
		return fmt.Errorf("cassandra already runs (pid %d); stop it first: engines.sh stop cassandra", c.Process().Pid)
	}
	// Every start begins with empty data; restart keeps the node's.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	fmt.Fprintf(out, "starting cassandra in %s; the first start resolves its jars with Maven, a start takes 20-90 s\n", dir)
	c, err := engines.StartCassandra(ctx, dir, opts...)
	if err != nil {
		return err
	}
	p := c.Process()
	fmt.Fprintf(out, "%s addr=%s pid=%d log=%s\nCASSANDRA=%s\n", p.Name, p.Addr, p.Pid, p.Log, c.Addr)
	return nil
}

// cassandraKillRestart is "kill cassandra" and "restart cassandra" (a node
// id, if given, must be 1: there is one node).
func cassandraKillRestart(ctx context.Context, root string, args []string, out io.Writer) error {
	if len(args) > 3 || (len(args) == 3 && args[2] != "1") {
		return usagef("%s cassandra: there is one node (1)", args[0])
	}
	c, err := engines.OpenCassandra(filepath.Join(root, cassandraEngine))
	if err != nil {
		return fmt.Errorf("no cassandra was started under %s: engines.sh start cassandra", root)
	}
	if args[0] == "kill" {
		if err := c.Kill(); err != nil {
			return err
		}
		fmt.Fprintln(out, "killed cassandra")
		return nil
	}
	if err := c.Restart(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "restarted cassandra\nCASSANDRA=%s\n", c.Addr)
	return nil
}
