package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/sinks"
	"github.com/userstream/userstream/internal/sink/sqlite"
	"github.com/userstream/userstream/internal/user"
)

// defaultSinkURL is where `userstream dev` (and so `users`) keeps users.
const defaultSinkURL = "sqlite:./data/users.db"

// newUsersCmd builds `userstream users count | recent [N] | get ID`, which
// read the users a sink holds.
func newUsersCmd(a *app) *cobra.Command {
	var sinkURL string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "users count | recent [N] | get ID",
		Short: "Read the users a sink holds: how many, the most recent, one by id",
		Long: `Read the users a sink holds.

  userstream users count  --sink URL     prints the number of users (one integer)
  userstream users recent [N] --sink URL prints the N most recently ingested (default 10)
  userstream users get ID --sink URL     prints one user as JSON; exit 1 when there is none

--sink is sqlite:PATH, postgres://... or cassandra://...; --json prints JSON lines.`,
		Args: usageArgs(cobra.ArbitraryArgs),
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("users: unknown subcommand %q; use count, recent [N] or get ID", args[0])
			}
			return usagef("users: name a subcommand: count, recent [N] or get ID")
		},
	}
	cmd.PersistentFlags().StringVar(&sinkURL, "sink", defaultSinkURL, "where the users are: "+sinks.Schemes)
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON: one object a line")

	// withSink opens the sink for one subcommand and closes it after.
	withSink := func(cmd *cobra.Command, f func(s sink.Sink) error) error {
		if err := usersSinkExists(sinkURL); err != nil {
			return err
		}
		s, err := openSinkReadOnly(cmd.Context(), sinkURL)
		if err != nil {
			return err
		}
		err = f(s)
		if cerr := s.Close(); cerr != nil && err == nil {
			err = cerr
		}
		return err
	}

	count := &cobra.Command{
		Use:   "count",
		Short: "Print the number of users in the sink (one integer)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withSink(cmd, func(s sink.Sink) error {
				n, err := s.Count(cmd.Context())
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(a.stdout, n)
				return err
			})
		},
	}
	recent := &cobra.Command{
		Use:   "recent [N]",
		Short: "Print the N most recently ingested users (default 10) as a table, or JSON lines with --json",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 10
			if len(args) == 1 {
				v, err := strconv.Atoi(args[0])
				if err != nil || v < 1 || v > 100000 {
					return usagef("users recent: N is %q; want a whole number from 1 to 100000", args[0])
				}
				n = v
			}
			return withSink(cmd, func(s sink.Sink) error {
				rs, err := s.Recent(cmd.Context(), n)
				if err != nil {
					return err
				}
				if asJSON {
					return writeUsersJSON(a.stdout, rs)
				}
				return writeUsersTable(a.stdout, rs)
			})
		},
	}
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Print the user with the id as JSON; exit 1 with \"no user with id ID\" when there is none",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if _, err := sink.CanonicalID(id); err != nil {
				return usagef("users get: %q is not a UUID (ids look like 6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e10)", id)
			}
			return withSink(cmd, func(s sink.Sink) error {
				r, err := s.Get(cmd.Context(), id)
				if errors.Is(err, sink.ErrNotFound) {
					return fmt.Errorf("no user with id %s", id)
				}
				if err != nil {
					return err
				}
				if asJSON {
					return writeUsersJSON(a.stdout, []user.Record{r})
				}
				b, err := json.MarshalIndent(r, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "%s\n", b)
				return err
			})
		},
	}
	cmd.AddCommand(count, recent, get)
	return cmd
}

// usersSinkExists refuses to read a SQLite file that is not there: opening
// would create an empty database, and a typo in --sink would print 0.
func usersSinkExists(rawURL string) error {
	if !strings.HasPrefix(strings.ToLower(rawURL), "sqlite:") {
		return nil
	}
	path, err := sqlite.ParseURL(rawURL)
	if err != nil {
		return usageError{err}
	}
	if path == sqlite.Memory {
		return nil
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no SQLite database at %s: check --sink (the stream or `userstream dev` creates it)", path)
	}
	return nil
}

func writeUsersJSON(w io.Writer, rs []user.Record) error {
	enc := json.NewEncoder(w)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

func writeUsersTable(w io.Writer, rs []user.Record) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tEMAIL\tNAT\tPOST CODE\tINGESTED AT")
	for _, r := range rs {
		at := "-"
		if !r.IngestedAt.IsZero() {
			at = r.IngestedAt.UTC().Format(time.RFC3339Nano)
		}
		nat := r.Nat
		if nat == "" {
			nat = "-"
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\n", r.ID, r.FirstName, r.LastName, r.Email, nat, r.PostCode, at)
	}
	return tw.Flush()
}
