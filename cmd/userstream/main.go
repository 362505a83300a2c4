// Command userstream plays every role of the realtime user-data pipeline,
// and all of them at once in `userstream dev`; this package only wires.
//
// The roles: Random User API, Kafka broker, producer, stream processor,
// sinks, scheduler and web UI. The work is done in internal/...
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/userstream/userstream/internal/redact"
)

// usageError marks errors that exit with status 2 (wrong usage).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns an error that makes userstream exit with status 2.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// usageArgs makes a cobra positional-argument check a usage error (exit 2),
// for every command alike.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			// main prefixes "userstream:" already.
			return usagef("%s: %v", strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "), err)
		}
		return nil
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit status: 0 done,
// 1 failed, 2 wrong usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	// cobra's and pflag's errors quote the arguments they choke on: hide
	// what these carry, as every message does.
	err = redact.Error(err, argSecrets(args)...)
	var ue usageError
	// cobra's own usage errors are plain errors: unknown commands and
	// subcommands, missing arguments.
	if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown shorthand") {
		fmt.Fprintf(stderr, "userstream: %v\nRun 'userstream --help' for the commands.\n", err)
		return 2
	}
	fmt.Fprintln(stderr, "userstream:", err)
	if errors.As(err, &ue) {
		if !strings.Contains(err.Error(), "--help") {
			fmt.Fprintln(stderr, "Run 'userstream --help' or 'userstream COMMAND --help' for usage.")
		}
		return 2
	}
	return 1
}

// argSecrets returns the command line as redact.Error reads it: each
// argument (an address), and each flag with its value as name='value', so
// that the value of a secret flag (--sasl-password x) is found as well.
func argSecrets(args []string) []string {
	quote := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	out := slices.Clone(args)
	for i, a := range args {
		name, ok := strings.CutPrefix(a, "-")
		if !ok {
			continue
		}
		name = strings.TrimLeft(name, "-")
		name, v, hasValue := strings.Cut(name, "=")
		if !hasValue {
			if i+1 >= len(args) {
				continue
			}
			v = args[i+1]
		}
		out = append(out, name+"='"+quote.Replace(v)+"'")
	}
	return out
}

// app holds what every command shares: output streams and the logger.
type app struct {
	stdout, stderr io.Writer
	logLevel       string
	logFormat      string
	log            *slog.Logger
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "userstream",
		Short:         "A realtime user-data pipeline: Random User API -> Kafka -> stream -> Cassandra/PostgreSQL/SQLite",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd); err != nil {
				return err
			}
			return a.setupLog()
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&a.logFormat, "log-format", "text", "log format: text or json")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newAPICmd(a), newBrokerCmd(a), newTopicsCmd(a), newProduceCmd(a), newStreamCmd(a),
		newUsersCmd(a), newDevCmd(a), newRegistryCmd(a), newBenchCmd(a), newSchedulerCmd(a), newDagsCmd(a), newWebCmd(a), newConnectCmd(a),
	)
	return root
}

func (a *app) setupLog() error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(a.logLevel)); err != nil {
		return usagef("--log-level: %q is not one of debug, info, warn, error", a.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch a.logFormat {
	case "text":
		a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
	case "json":
		a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
	default:
		return usagef("--log-format: %q is not text or json", a.logFormat)
	}
	return nil
}

// applyEnv sets every flag the user did not give from USERSTREAM_<FLAG>
// (upper snake case), so each flag has an environment variable.
func applyEnv(cmd *cobra.Command) error {
	var err error
	visit := func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := "USERSTREAM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if e := f.Value.Set(v); e != nil {
			err = usagef("%s=%q: %v", name, redact.Value(name, v), redact.Error(e, v))
			return
		}
		f.Changed = true
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	return err
}
