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

	"github.com/userstream/userstream/internal/scheduler"
	"github.com/userstream/userstream/internal/scheduler/restapi"
	"github.com/userstream/userstream/internal/scheduler/store/stores"
)

// newDagsCmd is the CLI of the orchestrator, against the metadata store
// directly (--metadata) or a running scheduler's REST API (--api). Both
// speak the REST API, so they print the same.
func newDagsCmd(a *app) *cobra.Command {
	var (
		metadata, apiURL, user, password, token string
		asJSON                                  bool
	)
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
	pf.StringVar(&metadata, "metadata", defaultMetadata, "metadata store to work on: "+stores.Schemes)
	pf.StringVar(&apiURL, "api", "", "work through a running scheduler's REST API instead, e.g. http://127.0.0.1:8080")
	pf.StringVar(&user, "user", scheduler.AdminUser, "login for --api")
	pf.StringVar(&password, "password", "", "password for --api (default: USERSTREAM_ADMIN_PASSWORD)")
	pf.StringVar(&token, "token", "", "bearer token for --api instead of a password")
	pf.BoolVar(&asJSON, "json", false, "print JSON: the REST API's objects")

	// with connects (store or API) and runs f with a client of the API.
	with := func(cmd *cobra.Command, f func(ctx context.Context, c *restapi.Client) error) error {
		ctx := cmd.Context()
		if apiURL != "" {
			if password == "" && token == "" {
				password = os.Getenv("USERSTREAM_ADMIN_PASSWORD")
			}
			c, err := restapi.NewClient(apiURL, user, password, token)
			if err != nil {
				return usagef("--api: %v", err)
			}
			return f(ctx, c)
		}
		if err := metadataExists(metadata); err != nil {
			return err
		}
		st, err := openMetadata(ctx, metadata)
		if err != nil {
			return err
		}
		defer st.Close()
		svc, err := scheduler.NewService(st, nil)
		if err != nil {
			return err
		}
		return f(ctx, restapi.LocalClient(restapi.New(svc, nil, restapi.Options{Logger: a.log})))
	}
	out := func(raw []byte, table func(w io.Writer)) error {
		if asJSON {
			_, err := a.stdout.Write(raw)
			return err
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	}
	esc := restapi.PathEscape

	list := &cobra.Command{Use: "list", Short: "List the DAGs: schedule, owner, paused, next run", Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return with(cmd, func(ctx context.Context, c *restapi.Client) error {
				var res struct{ DAGs []restapi.DAG }
				raw, err := c.Do(ctx, http.MethodGet, "/api/v1/dags?limit=100", nil, &res)
				if err != nil {
					return err
				}
				return out(raw, func(w io.Writer) {
					fmt.Fprintln(w, "dag_id\tschedule\towner\tpaused\tnext run")
					for _, d := range res.DAGs {
						fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\n", d.DagID, d.Timetable, strings.Join(d.Owners, ","), d.IsPaused, deref(d.NextDagrun))
					}
				})
			})
		}}
	var limit int
	runs := &cobra.Command{Use: "runs DAG", Short: "List a DAG's runs, newest first (DAG ~: every DAG)", Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return with(cmd, func(ctx context.Context, c *restapi.Client) error {
				var res struct {
					Runs []restapi.DAGRun `json:"dag_runs"`
				}
				raw, err := c.Do(ctx, http.MethodGet, "/api/v1/dags/"+esc(args[0])+"/dagRuns?order_by=-logical_date&limit="+strconv.Itoa(limit), nil, &res)
				if err != nil {
					return err
				}
				return out(raw, runsTable(res.Runs))
			})
		}}
	runs.Flags().IntVar(&limit, "limit", 25, "most runs to show")

	// findRun resolves RUN (a dag_run_id) to its DAG, which --dag may give.
	var dagOf string
	findRun := func(ctx context.Context, c *restapi.Client, runID string) (string, error) {
		if dagOf != "" {
			return dagOf, nil
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

	tasks := &cobra.Command{Use: "tasks RUN", Short: "Show a run's task instances: state, try, duration", Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return with(cmd, func(ctx context.Context, c *restapi.Client) error {
				dag, err := findRun(ctx, c, args[0])
				if err != nil {
					return err
				}
				var res struct {
					TIs []restapi.TaskInstance `json:"task_instances"`
				}
				raw, err := c.Do(ctx, http.MethodGet, "/api/v1/dags/"+esc(dag)+"/dagRuns/"+esc(args[0])+"/taskInstances", nil, &res)
				if err != nil {
					return err
				}
				return out(raw, func(w io.Writer) {
					fmt.Fprintln(w, "task_id\tstate\ttry\tduration\thost\terror")
					for _, ti := range res.TIs {
						d := ""
						if ti.Duration != nil {
							d = (time.Duration(*ti.Duration * float64(time.Second))).Round(time.Millisecond).String()
						}
						fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%s\t%s\n", ti.TaskID, deref(ti.State), ti.TryNumber, ti.MaxTries, d, deref(ti.Hostname), deref(ti.Note))
					}
				})
			})
		}}

	var confJSON, runID, logical string
	trigger := &cobra.Command{Use: "trigger DAG", Short: "Trigger a manual run (conf: users, duration, nat, seed)", Args: usageArgs(cobra.ExactArgs(1)),
		Example: `  userstream dags trigger user_automation --conf '{"users": 5000, "nat": ["fr"]}'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if confJSON != "" {
				var conf map[string]any
				if err := json.Unmarshal([]byte(confJSON), &conf); err != nil {
					return usagef("--conf: not a JSON object: %v", err)
				}
				body["conf"] = conf
			}
			if runID != "" {
				body["dag_run_id"] = runID
			}
			if logical != "" {
				t, err := time.Parse(time.RFC3339, logical)
				if err != nil {
					return usagef("--logical-date: %q is not RFC 3339 (2026-12-01T10:00:00Z)", logical)
				}
				body["logical_date"] = t
			}
			return with(cmd, func(ctx context.Context, c *restapi.Client) error {
				var r restapi.DAGRun
				raw, err := c.Do(ctx, http.MethodPost, "/api/v1/dags/"+esc(args[0])+"/dagRuns", body, &r)
				if err != nil {
					return err
				}
				return out(raw, runsTable([]restapi.DAGRun{r}))
			})
		}}
	trigger.Flags().StringVar(&confJSON, "conf", "", "the run's conf, a JSON object")
	trigger.Flags().StringVar(&runID, "run-id", "", "the run's id (default manual__<logical date>)")
	trigger.Flags().StringVar(&logical, "logical-date", "", "the run's logical date (default now)")

	pause := func(use string, paused bool) *cobra.Command {
		return &cobra.Command{Use: use + " DAG", Short: strings.ToUpper(use[:1]) + use[1:] + " a DAG (persisted)", Args: usageArgs(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, args []string) error {
				return with(cmd, func(ctx context.Context, c *restapi.Client) error {
					var d restapi.DAG
					raw, err := c.Do(ctx, http.MethodPatch, "/api/v1/dags/"+esc(args[0])+"?update_mask=is_paused", map[string]bool{"is_paused": paused}, &d)
					if err != nil {
						return err
					}
					return out(raw, func(w io.Writer) { fmt.Fprintf(w, "%s is_paused=%v\n", d.DagID, d.IsPaused) })
				})
			}}
	}

	var from, to string
	backfill := &cobra.Command{Use: "backfill DAG", Short: "Create a run for every interval with a logical date in [--from, --to]", Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err1 := parseDay(from)
			t, err2 := parseDay(to)
			if err1 != nil || err2 != nil {
				return usagef("--from and --to: give dates such as 2026-11-01 or 2026-11-01T00:00:00Z")
			}
			return with(cmd, func(ctx context.Context, c *restapi.Client) error {
				var res struct {
					Runs    []restapi.DAGRun `json:"dag_runs"`
					Skipped []string         `json:"skipped_logical_dates"`
				}
				raw, err := c.Do(ctx, http.MethodPost, "/api/v1/dags/"+esc(args[0])+"/backfill", map[string]any{"from_date": f, "to_date": t}, &res)
				if err != nil {
					return err
				}
				return out(raw, func(w io.Writer) {
					runsTable(res.Runs)(w)
					if len(res.Skipped) > 0 {
						fmt.Fprintf(w, "skipped (a run exists): %s\n", strings.Join(res.Skipped, ", "))
					}
				})
			})
		}}
	backfill.Flags().StringVar(&from, "from", "", "first logical date (YYYY-MM-DD or RFC 3339)")
	backfill.Flags().StringVar(&to, "to", "", "last logical date (YYYY-MM-DD or RFC 3339)")

	clear := &cobra.Command{Use: "clear RUN", Short: "Run a finished run's tasks again (new tries; history kept)", Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return with(cmd, func(ctx context.Context, c *restapi.Client) error {
				dag, err := findRun(ctx, c, args[0])
				if err != nil {
					return err
				}
				var r restapi.DAGRun
				raw, err := c.Do(ctx, http.MethodPost, "/api/v1/dags/"+esc(dag)+"/dagRuns/"+esc(args[0])+"/clear", map[string]bool{"dry_run": false}, &r)
				if err != nil {
					return err
				}
				return out(raw, runsTable([]restapi.DAGRun{r}))
			})
		}}
	mark := &cobra.Command{Use: "mark RUN success|failed", Short: "Mark a run (and its unfinished tries) success or failed", Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return with(cmd, func(ctx context.Context, c *restapi.Client) error {
				dag, err := findRun(ctx, c, args[0])
				if err != nil {
					return err
				}
				var r restapi.DAGRun
				raw, err := c.Do(ctx, http.MethodPatch, "/api/v1/dags/"+esc(dag)+"/dagRuns/"+esc(args[0]), map[string]string{"state": args[1]}, &r)
				if err != nil {
					return err
				}
				return out(raw, runsTable([]restapi.DAGRun{r}))
			})
		}}
	var try int
	var task string
	logs := &cobra.Command{Use: "logs RUN", Short: "Print the log of a try (default: the latest) of a run's task", Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return with(cmd, func(ctx context.Context, c *restapi.Client) error {
				dag, err := findRun(ctx, c, args[0])
				if err != nil {
					return err
				}
				base := "/api/v1/dags/" + esc(dag) + "/dagRuns/" + esc(args[0]) + "/taskInstances"
				var tis struct {
					TIs []restapi.TaskInstance `json:"task_instances"`
				}
				if _, err := c.Do(ctx, http.MethodGet, base, nil, &tis); err != nil {
					return err
				}
				taskID, n := task, try
				for _, ti := range tis.TIs {
					if taskID == "" || ti.TaskID == taskID {
						taskID = ti.TaskID
						if n == 0 {
							n = ti.TryNumber
						}
						break
					}
				}
				if taskID == "" || n == 0 {
					return fmt.Errorf("run %s has no try to show yet", args[0])
				}
				var res struct {
					Content string `json:"content"`
				}
				raw, err := c.Do(ctx, http.MethodGet, base+"/"+esc(taskID)+"/logs/"+strconv.Itoa(n), nil, &res)
				if err != nil {
					return err
				}
				if asJSON {
					_, err = a.stdout.Write(raw)
					return err
				}
				fmt.Fprintf(a.stdout, "*** %s / %s / %s / try %d\n%s", dag, args[0], taskID, n, res.Content)
				return nil
			})
		}}
	logs.Flags().IntVar(&try, "try", 0, "try number (default: the latest)")
	logs.Flags().StringVar(&task, "task", "", "task id (default: the DAG's first task)")
	for _, c := range []*cobra.Command{tasks, clear, mark, logs} {
		c.Flags().StringVar(&dagOf, "dag", "", "the run's DAG, when its id alone is ambiguous")
	}
	cmd.AddCommand(list, runs, tasks, trigger, pause("pause", true), pause("unpause", false), backfill, clear, mark, logs)
	return cmd
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
