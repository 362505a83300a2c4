package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/userstream/userstream/internal/login"
	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/restapi"
	"github.com/userstream/userstream/internal/scheduler/store/stores"
)

// dagsCLI is `userstream dags`: its flags and the steps its subcommands
// share. Every subcommand speaks the REST API, to a running scheduler
// (--api) or to a local one on the metadata store (--metadata), so both
// print the same.
type dagsCLI struct {
	a                                       *app
	metadata, apiURL, user, password, token string
	asJSON                                  bool
	dag                                     string // --dag of the commands on a RUN
}

// newDagsCmd is the CLI of the orchestrator, against the metadata store
// directly (--metadata) or a running scheduler's REST API (--api).
func newDagsCmd(a *app) *cobra.Command {
	d := &dagsCLI{a: a}
	cmd := &cobra.Command{
		Use:   "dags list | runs DAG | tasks RUN | trigger DAG | pause DAG | unpause DAG | backfill DAG | clear RUN | mark RUN STATE | logs RUN",
		Short: "List, trigger, pause, backfill, clear DAG runs and read their logs (Airflow's CLI)",
		Long: `dags works on the metadata store directly (--metadata, the default
sqlite:./data/meta.db) or on a running scheduler through its REST API (--api
http://127.0.0.1:8080, with --user/--password or USERSTREAM_ADMIN_PASSWORD,
or --token). Runs created on the store alone are queued and start at the
scheduler's next tick. --json prints the REST API's objects.`,
		Args: usageArgs(cobra.ArbitraryArgs),
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("dags: unknown subcommand %q; see userstream dags --help", args[0])
			}
			return usagef("dags: name a subcommand: list, runs, tasks, trigger, pause, unpause, backfill, clear, mark or logs")
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&d.metadata, "metadata", defaultMetadata, "metadata store to work on: "+stores.Schemes)
	pf.StringVar(&d.apiURL, "api", "", "work through a running scheduler's REST API instead, e.g. http://127.0.0.1:8080")
	pf.StringVar(&d.user, "user", login.AdminUser, "login for --api")
	pf.StringVar(&d.password, "password", "", "password for --api (default: USERSTREAM_ADMIN_PASSWORD)")
	pf.StringVar(&d.token, "token", "", "bearer token for --api instead of a password")
	pf.BoolVar(&d.asJSON, "json", false, "print JSON: the REST API's objects")

	cmd.AddCommand(d.listCmd(), d.runsCmd(), d.tasksCmd(), d.triggerCmd(), d.pauseCmd("pause", true), d.pauseCmd("unpause", false),
		d.backfillCmd(), d.clearCmd(), d.markCmd(), d.logsCmd())
	return cmd
}

// apiFunc is a subcommand's work, given a client of the REST API.
type apiFunc func(ctx context.Context, c *restapi.Client) error

// with connects (the API, or a local one on the store) and runs f.
func (d *dagsCLI) with(cmd *cobra.Command, f apiFunc) error {
	ctx := cmd.Context()
	if d.apiURL != "" {
		if d.password == "" && d.token == "" {
			d.password = os.Getenv("USERSTREAM_ADMIN_PASSWORD")
		}
		c, err := restapi.NewClient(d.apiURL, d.user, d.password, d.token)
		if err != nil {
			return usagef("--api: %v", err)
		}
		return f(ctx, c)
	}
	if err := metadataExists(d.metadata); err != nil {
		return err
	}
	st, err := openMetadata(ctx, d.metadata)
	if err != nil {
		return err
	}
	defer st.Close()
	svc, err := scheduler.NewService(st, nil)
	if err != nil {
		return err
	}
	return f(ctx, restapi.LocalClient(restapi.New(svc, nil, restapi.Options{Logger: d.a.log})))
}

// command is a subcommand taking the args nargs accepts, which go to f,
// run on a client.
func (d *dagsCLI) command(use, short string, nargs cobra.PositionalArgs, f func(ctx context.Context, c *restapi.Client, args []string) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: usageArgs(nargs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return d.with(cmd, func(ctx context.Context, c *restapi.Client) error { return f(ctx, c, args) })
		}}
}

// runCommand is a subcommand on the run args[0] names: f gets its DAG
// (see findRun) and the run's path in the API. It takes --dag.
func (d *dagsCLI) runCommand(use, short string, nargs cobra.PositionalArgs, f func(ctx context.Context, c *restapi.Client, dag, runPath string, args []string) error) *cobra.Command {
	cmd := d.command(use, short, nargs, func(ctx context.Context, c *restapi.Client, args []string) error {
		dag, err := d.findRun(ctx, c, args[0])
		if err != nil {
			return err
		}
		return f(ctx, c, dag, "/api/v1/dags/"+restapi.PathEscape(dag)+"/dagRuns/"+restapi.PathEscape(args[0]), args)
	})
	cmd.Flags().StringVar(&d.dag, "dag", "", "the run's DAG, when its id alone is ambiguous")
	return cmd
}

// out prints raw (--json) or the table.
func (d *dagsCLI) out(raw []byte, table func(w io.Writer)) error {
	if d.asJSON {
		_, err := d.a.stdout.Write(raw)
		return err
	}
	tw := tabwriter.NewWriter(d.a.stdout, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// findRun resolves RUN (a dag_run_id) to its DAG, which --dag may give.
func (d *dagsCLI) findRun(ctx context.Context, c *restapi.Client, runID string) (string, error) {
	if d.dag != "" {
		return d.dag, nil
	}
	var res struct {
		Runs []restapi.DAGRun `json:"dag_runs"`
	}
	if _, err := c.Do(ctx, http.MethodGet, "/api/v1/dags/~/dagRuns?limit=100&order_by=-logical_date", nil, &res); err != nil {
		return "", err
	}
	var found []string
	for _, r := range res.Runs {
		if r.DagRunID == runID {
			found = append(found, r.DagID)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("no run %s among the 100 newest runs; name its DAG with --dag", runID)
	}
	return "", usagef("run id %s exists in DAGs %s: name one with --dag", runID, strings.Join(found, ", "))
}

// oneRun calls the API and prints the run it answers.
func (d *dagsCLI) oneRun(ctx context.Context, c *restapi.Client, method, path string, body any) error {
	var r restapi.DAGRun
	raw, err := c.Do(ctx, method, path, body, &r)
	if err != nil {
		return err
	}
	return d.out(raw, runsTable([]restapi.DAGRun{r}))
}

func (d *dagsCLI) listCmd() *cobra.Command {
	return d.command("list", "List the DAGs: schedule, owner, paused, next run", cobra.NoArgs, func(ctx context.Context, c *restapi.Client, _ []string) error {
		var res struct{ DAGs []restapi.DAG }
		raw, err := c.Do(ctx, http.MethodGet, "/api/v1/dags?limit=100", nil, &res)
		if err != nil {
			return err
		}
		return d.out(raw, func(w io.Writer) {
			fmt.Fprintln(w, "dag_id\tschedule\towner\tpaused\tnext run")
			for _, g := range res.DAGs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\n", g.DagID, g.Timetable, strings.Join(g.Owners, ","), g.IsPaused, deref(g.NextDagrun))
			}
		})
	})
}

func (d *dagsCLI) runsCmd() *cobra.Command {
	var limit int
	cmd := d.command("runs DAG", "List a DAG's runs, newest first (DAG ~: every DAG)", cobra.ExactArgs(1), func(ctx context.Context, c *restapi.Client, args []string) error {
		var res struct {
			Runs []restapi.DAGRun `json:"dag_runs"`
		}
		raw, err := c.Do(ctx, http.MethodGet, "/api/v1/dags/"+restapi.PathEscape(args[0])+"/dagRuns?order_by=-logical_date&limit="+strconv.Itoa(limit), nil, &res)
		if err != nil {
			return err
		}
		return d.out(raw, runsTable(res.Runs))
	})
	cmd.Flags().IntVar(&limit, "limit", 25, "most runs to show")
	return cmd
}

func (d *dagsCLI) tasksCmd() *cobra.Command {
	return d.runCommand("tasks RUN", "Show a run's task instances: state, try, duration", cobra.ExactArgs(1), func(ctx context.Context, c *restapi.Client, _, runPath string, _ []string) error {
		var res struct {
			TIs []restapi.TaskInstance `json:"task_instances"`
		}
		raw, err := c.Do(ctx, http.MethodGet, runPath+"/taskInstances", nil, &res)
		if err != nil {
			return err
		}
		return d.out(raw, tasksTable(res.TIs))
	})
}

func tasksTable(tis []restapi.TaskInstance) func(w io.Writer) {
	return func(w io.Writer) {
		fmt.Fprintln(w, "task_id\tstate\ttry\tduration\thost\terror")
		for _, ti := range tis {
			d := ""
			if ti.Duration != nil {
				d = (time.Duration(*ti.Duration * float64(time.Second))).Round(time.Millisecond).String()
			}
			fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%s\t%s\n", ti.TaskID, deref(ti.State), ti.TryNumber, ti.MaxTries, d, deref(ti.Hostname), deref(ti.Note))
		}
	}
}

func (d *dagsCLI) triggerCmd() *cobra.Command {
	var confJSON, runID, logical string
	cmd := &cobra.Command{Use: "trigger DAG", Short: "Trigger a manual run (conf: users, duration, nat, seed)", Args: usageArgs(cobra.ExactArgs(1)),
		Example: `  userstream dags trigger user_automation --conf '{"users": 5000, "nat": ["fr"]}'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := triggerBody(confJSON, runID, logical)
			if err != nil {
				return err
			}
			return d.with(cmd, func(ctx context.Context, c *restapi.Client) error {
				return d.oneRun(ctx, c, http.MethodPost, "/api/v1/dags/"+restapi.PathEscape(args[0])+"/dagRuns", body)
			})
		}}
	cmd.Flags().StringVar(&confJSON, "conf", "", "the run's conf, a JSON object")
	cmd.Flags().StringVar(&runID, "run-id", "", "the run's id (default manual__<logical date>)")
	cmd.Flags().StringVar(&logical, "logical-date", "", "the run's logical date (default now)")
	return cmd
}

// triggerBody is the body of a trigger from its flags, checked before
// anything is opened.
func triggerBody(confJSON, runID, logical string) (map[string]any, error) {
	body := map[string]any{}
	if confJSON != "" {
		var conf map[string]any
		if err := json.Unmarshal([]byte(confJSON), &conf); err != nil {
			return nil, usagef("--conf: not a JSON object: %v", err)
		}
		body["conf"] = conf
	}
	if runID != "" {
		body["dag_run_id"] = runID
	}
	if logical != "" {
		t, err := time.Parse(time.RFC3339, logical)
		if err != nil {
			return nil, usagef("--logical-date: %q is not RFC 3339 (2026-12-01T10:00:00Z)", logical)
		}
		body["logical_date"] = t
	}
	return body, nil
}

func (d *dagsCLI) pauseCmd(use string, paused bool) *cobra.Command {
	return d.command(use+" DAG", strings.ToUpper(use[:1])+use[1:]+" a DAG (persisted)", cobra.ExactArgs(1), func(ctx context.Context, c *restapi.Client, args []string) error {
		var g restapi.DAG
		raw, err := c.Do(ctx, http.MethodPatch, "/api/v1/dags/"+restapi.PathEscape(args[0])+"?update_mask=is_paused", map[string]bool{"is_paused": paused}, &g)
		if err != nil {
			return err
		}
		return d.out(raw, func(w io.Writer) { fmt.Fprintf(w, "%s is_paused=%v\n", g.DagID, g.IsPaused) })
	})
}

func (d *dagsCLI) backfillCmd() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{Use: "backfill DAG", Short: "Create a run for every interval with a logical date in [--from, --to]", Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err1 := parseDay(from)
			t, err2 := parseDay(to)
			if err1 != nil || err2 != nil {
				return usagef("--from and --to: give dates such as 2026-11-01 or 2026-11-01T00:00:00Z")
			}
			return d.with(cmd, func(ctx context.Context, c *restapi.Client) error {
				return d.backfill(ctx, c, args[0], f, t)
			})
		}}
	cmd.Flags().StringVar(&from, "from", "", "first logical date (YYYY-MM-DD or RFC 3339)")
	cmd.Flags().StringVar(&to, "to", "", "last logical date (YYYY-MM-DD or RFC 3339)")
	return cmd
}

func (d *dagsCLI) backfill(ctx context.Context, c *restapi.Client, dag string, from, to time.Time) error {
	var res struct {
		Runs    []restapi.DAGRun `json:"dag_runs"`
		Skipped []string         `json:"skipped_logical_dates"`
	}
	raw, err := c.Do(ctx, http.MethodPost, "/api/v1/dags/"+restapi.PathEscape(dag)+"/backfill", map[string]any{"from_date": from, "to_date": to}, &res)
	if err != nil {
		return err
	}
	return d.out(raw, func(w io.Writer) {
		runsTable(res.Runs)(w)
		if len(res.Skipped) > 0 {
			fmt.Fprintf(w, "skipped (a run exists): %s\n", strings.Join(res.Skipped, ", "))
		}
	})
}

func (d *dagsCLI) clearCmd() *cobra.Command {
	return d.runCommand("clear RUN", "Run a finished run's tasks again (new tries; history kept)", cobra.ExactArgs(1), func(ctx context.Context, c *restapi.Client, _, runPath string, _ []string) error {
		return d.oneRun(ctx, c, http.MethodPost, runPath+"/clear", map[string]bool{"dry_run": false})
	})
}

func (d *dagsCLI) markCmd() *cobra.Command {
	return d.runCommand("mark RUN success|failed", "Mark a run (and its unfinished tries) success or failed", cobra.ExactArgs(2), func(ctx context.Context, c *restapi.Client, _, runPath string, args []string) error {
		return d.oneRun(ctx, c, http.MethodPatch, runPath, map[string]string{"state": args[1]})
	})
}

func (d *dagsCLI) logsCmd() *cobra.Command {
	var try int
	var task string
	cmd := d.runCommand("logs RUN", "Print the log of a try (default: the latest) of a run's task", cobra.ExactArgs(1), func(ctx context.Context, c *restapi.Client, dag, runPath string, args []string) error {
		base := runPath + "/taskInstances"
		taskID, n, err := pickTry(ctx, c, base, task, try)
		if err != nil {
			return err
		}
		if taskID == "" || n == 0 {
			return fmt.Errorf("run %s has no try to show yet", args[0])
		}
		var res struct {
			Content string `json:"content"`
		}
		raw, err := c.Do(ctx, http.MethodGet, base+"/"+restapi.PathEscape(taskID)+"/logs/"+strconv.Itoa(n), nil, &res)
		if err != nil {
			return err
		}
		if d.asJSON {
			_, err = d.a.stdout.Write(raw)
			return err
		}
		fmt.Fprintf(d.a.stdout, "*** %s / %s / %s / try %d\n%s", dag, args[0], taskID, n, res.Content)
		return nil
	})
	cmd.Flags().IntVar(&try, "try", 0, "try number (default: the latest)")
	cmd.Flags().StringVar(&task, "task", "", "task id (default: the DAG's first task)")
	return cmd
}

// pickTry names the try whose log to show: task (default: the run's first
// task instance) and try (default: that instance's latest); "" or 0 when
// the run has none.
func pickTry(ctx context.Context, c *restapi.Client, base, task string, try int) (string, int, error) {
	var tis struct {
		TIs []restapi.TaskInstance `json:"task_instances"`
	}
	if _, err := c.Do(ctx, http.MethodGet, base, nil, &tis); err != nil {
		return "", 0, err
	}
	for _, ti := range tis.TIs {
		if task == "" || ti.TaskID == task {
			if try == 0 {
				try = ti.TryNumber
			}
			return ti.TaskID, try, nil
		}
	}
	return task, try, nil
}

func deref[T any](p *T) string {
	if p == nil {
		return ""
	}
	return fmt.Sprint(*p)
}

func runsTable(runs []restapi.DAGRun) func(w io.Writer) {
	return func(w io.Writer) {
		fmt.Fprintln(w, "dag_id\tdag_run_id\tstate\trun_type\tlogical_date\tstart_date\tend_date")
		for _, r := range runs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.DagID, r.DagRunID, r.State, r.RunType, deref(r.LogicalDate), deref(r.StartDate), deref(r.EndDate))
		}
	}
}

func parseDay(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02", s)
}

// metadataExists refuses a SQLite metadata file that is not there: the CLI
// would otherwise create an empty store and report no DAGs.
func metadataExists(raw string) error {
	path, ok := strings.CutPrefix(raw, "sqlite:")
	if !ok || path == ":memory:" {
		return nil
	}
	path = strings.TrimPrefix(path, "//")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no metadata store at %s: check --metadata (userstream scheduler or dev creates it), or use --api", path)
	}
	return nil
}
