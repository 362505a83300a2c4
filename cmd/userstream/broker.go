package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/schema/registry"
)

// newBrokerCmd runs the embedded Kafka-protocol broker alone until SIGINT
// or SIGTERM.
func newBrokerCmd(a *app) *cobra.Command {
	var (
		addr, dataDir, advertise string
		registryAddr             string
		partitions               int32
		noTopics, syncWrites     bool
		ret                      retentionFlags
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Kafka-protocol broker (one node, data kept in --data-dir)",
		Long: `Run the embedded Kafka-protocol broker: a single-node Kafka for development
with no Java, built on franz-go's kfake. Topics, records and committed group
offsets are kept in --data-dir and come back at the next start. It creates
users_created (--partitions) and users_created.dlq unless --no-topics.
It also serves the embedded Schema Registry on --registry-addr, so produce and
stream find Avro schemas at their default --schema-registry.
It stops cleanly on Ctrl-C or SIGTERM. See docs/broker.md for its limits.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if partitions < 1 {
				return usagef("--partitions: %d: give at least 1", partitions)
			}
			if err := ret.validate(); err != nil {
				return err
			}
			opts := []broker.EmbeddedOption{broker.WithLogger(a.log), broker.WithPartitions(partitions), ret.option()}
			if advertise != "" {
				opts = append(opts, broker.WithAdvertisedAddr(advertise))
			}
			if noTopics {
				opts = append(opts, broker.WithoutTopics())
			}
			if syncWrites {
				opts = append(opts, broker.WithSyncWrites())
			}
			if dataDir == "" {
				a.log.Warn("no --data-dir: the broker keeps everything in memory and loses it at exit")
			}
			ctx := cmd.Context()
			b, err := broker.StartEmbedded(ctx, addr, dataDir, opts...)
			if err != nil {
				return brokerStartErr(err, "--addr")
			}
			// The registry starts before the broker says it listens: a
			// registry that cannot start stops the broker, and a script
			// that waits for that line must not meet a closed port.
			if registryAddr != "" {
				// The registry's schemas live beside the broker's log, so
				// the ids in old messages resolve after a restart.
				regDir := ""
				if dataDir != "" {
					regDir = filepath.Join(dataDir, "schemas")
				}
				reg, err := registry.Start(ctx, registryAddr, regDir, registry.WithLogger(a.log))
				if err != nil {
					_ = b.Close()
					return fmt.Errorf("%w (pass --registry-addr '' to run without the embedded Schema Registry)", err)
				}
				defer reg.Close()
			}
			a.log.Info("kafka broker listening", "addr", b.Addr(), "data_dir", dataDir,
				"hint", "userstream topics list --brokers "+b.Addr())
			<-ctx.Done()
			a.log.Info("kafka broker stopping: writing state to the data dir")
			if err := b.Close(); err != nil {
				return fmt.Errorf("broker: close: %w", err)
			}
			a.log.Info("kafka broker stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", broker.DefaultEmbeddedAddr, "host:port to listen on (an empty host means 127.0.0.1)")
	f.StringVar(&dataDir, "data-dir", "./data/kafka", "directory for topics, records and offsets (empty: in memory)")
	f.StringVar(&advertise, "advertise-addr", "", "host:port clients are told to connect to (default: --addr); e.g. broker:9092 in Docker Compose")
	f.Int32Var(&partitions, "partitions", broker.DefaultPartitions, "partitions of users_created and users_created.dlq when they are created")
	f.StringVar(&registryAddr, "registry-addr", schema.DefaultRegistryAddr, "also serve the embedded Schema Registry here, schemas kept in --data-dir/schemas (empty: no registry)")
	f.BoolVar(&noTopics, "no-topics", false, "do not create users_created and users_created.dlq")
	f.BoolVar(&syncWrites, "sync-writes", false, "fsync every produced batch (survives a machine crash; much slower)")
	ret.addFlags(f)
	return cmd
}

// retentionFlags set the retention of the topics an embedded broker
// creates.
type retentionFlags struct {
	retention time.Duration
	bytes     int64
}

func (r *retentionFlags) addFlags(f *pflag.FlagSet) {
	f.DurationVar(&r.retention, "retention", broker.DefaultRetention, "retention.ms of the topics the embedded broker creates (0: unlimited)")
	f.Int64Var(&r.bytes, "retention-bytes", broker.DefaultRetentionBytes, "retention.bytes a partition of those topics (-1: unlimited)")
}

func (r *retentionFlags) validate() error {
	if r.retention < 0 {
		return usagef("--retention: %s is negative (0 means unlimited)", r.retention)
	}
	if r.bytes == 0 || r.bytes < -1 {
		return usagef("--retention-bytes: %d; give a size in bytes, or -1 for unlimited", r.bytes)
	}
	return nil
}

func (r *retentionFlags) option() broker.EmbeddedOption {
	return broker.WithRetention(r.retention, r.bytes)
}

// newTopicsCmd lists, describes and creates topics on any Kafka cluster.
func newTopicsCmd(a *app) *cobra.Command {
	kc := broker.Config{Brokers: []string{broker.DefaultEmbeddedAddr}, ClientID: "userstream-topics"}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "topics list | describe TOPIC | create",
		Short: "List, describe or create Kafka topics (partitions, offsets, consumer group lag)",
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("topics: give a subcommand: list, describe TOPIC or create")
			}
			return usagef("topics: unknown subcommand %q: use list, describe TOPIC or create", args[0])
		},
	}
	addKafkaFlags(cmd.PersistentFlags(), &kc)
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")

	// withAdmin connects, runs fn with an admin client, and closes.
	withAdmin := func(ctx context.Context, fn func(*kadm.Client) error) error {
		cl, err := connect(ctx, kc, kgo.RequestRetries(3))
		if err != nil {
			return err
		}
		defer cl.Close()
		return fn(kadm.NewClient(cl))
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List topics with partitions and record counts",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd.Context(), func(adm *kadm.Client) error {
				ts, err := broker.ListTopics(cmd.Context(), adm)
				if err != nil {
					return err
				}
				if asJSON {
					return topicsJSON(a.stdout, ts)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tRECORDS\tEND OFFSETS")
				for _, t := range ts {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", t.Topic, t.Partitions, t.Records, t.EndOffsets)
				}
				return tw.Flush()
			})
		},
	}

	describe := &cobra.Command{
		Use:   "describe TOPIC",
		Short: "Show a topic's partitions (leader, offsets) and each consumer group's lag",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("topics describe: give exactly one topic name, e.g. %s", broker.Topic)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd.Context(), func(adm *kadm.Client) error {
				d, err := broker.DescribeTopic(cmd.Context(), adm, args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return topicsJSON(a.stdout, d)
				}
				return writeDescription(a.stdout, d)
			})
		},
	}

	var (
		partitions  int32
		replication int16
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Create users_created and users_created.dlq if missing (existing topics are left as they are)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if partitions < 1 {
				return usagef("--partitions: %d: give at least 1", partitions)
			}
			if replication == 0 || replication < -1 {
				return usagef("--replication: %d: give at least 1, or -1 for the broker default", replication)
			}
			return withAdmin(cmd.Context(), func(adm *kadm.Client) error {
				rep, err := broker.EnsureTopics(cmd.Context(), adm, partitions, replication, broker.Topic, broker.DLQTopic)
				if err != nil {
					return err
				}
				for _, r := range rep {
					if r.Note != "" {
						a.log.Warn("topic left as it is", "topic", r.Topic, "note", r.Note)
					}
				}
				if asJSON {
					return topicsJSON(a.stdout, rep)
				}
				for _, r := range rep {
					what := "exists"
					if r.Created {
						what = "created"
					}
					fmt.Fprintf(a.stdout, "%s %s (%d partitions)\n", what, r.Topic, r.Partitions)
				}
				return nil
			})
		},
	}
	create.Flags().Int32Var(&partitions, "partitions", broker.DefaultPartitions, "partitions of each topic created")
	create.Flags().Int16Var(&replication, "replication", -1, "replication factor of each topic created (-1: the broker default)")

	cmd.AddCommand(list, describe, create)
	return cmd
}

func topicsJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeDescription(w io.Writer, d broker.TopicDescription) error {
	fmt.Fprintf(w, "topic %s  id %s  partitions %d", d.Topic, d.ID, len(d.Partitions))
	if d.MinInsyncReplicas > 0 {
		fmt.Fprintf(w, "  min.insync.replicas %d", d.MinInsyncReplicas)
	}
	fmt.Fprint(w, "\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tREPLICAS\tISR\tSTART\tEND\tRECORDS")
	for _, p := range d.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%v\t%v\t%d\t%d\t%d\n", p.Partition, p.Leader, p.Replicas, p.ISR, p.Start, p.End, p.End-p.Start)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(d.Groups) == 0 {
		fmt.Fprintln(w, "no consumer group has committed offsets on this topic")
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tLAG\tCOMMITTED (partition:offset)")
	for _, g := range d.Groups {
		var parts []string
		for _, p := range d.Partitions {
			c := "-"
			if o := g.Committed[p.Partition]; o >= 0 {
				c = fmt.Sprint(o)
			}
			parts = append(parts, fmt.Sprintf("%d:%s", p.Partition, c))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", g.Group, g.Lag, strings.Join(parts, " "))
	}
	return tw.Flush()
}

// brokerStartErr adds to an embedded broker's start error which flag
// changes what it complains about.
func brokerStartErr(err error, addrFlag string) error {
	switch {
	case errors.Is(err, broker.ErrAddrInUse):
		return fmt.Errorf("%w: stop it, or pass another %s", err, addrFlag)
	case errors.Is(err, broker.ErrDataDirInUse):
		return fmt.Errorf("%w: stop it, or pass another --data-dir", err)
	}
	return err
}
