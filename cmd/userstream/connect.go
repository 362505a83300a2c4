package main

import (
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/userstream/userstream/internal/broker"
	kconnect "github.com/userstream/userstream/internal/connect"
	"github.com/userstream/userstream/internal/stack"
	"github.com/userstream/userstream/internal/stream"
)

func newConnectCmd(a *app) *cobra.Command {
	var (
		kc                       = broker.Config{Brokers: []string{broker.DefaultEmbeddedAddr}}
		codec                    codecFlags
		addr, groupID, workerID  string
		configTopic, statusTopic string
		metadata, password       string
		protocol                 string
		failAfter, session       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "connect",
		Short: "A Kafka Connect worker: our sinks as connectors, managed through Connect's REST API",
		Long: `connect runs a Kafka Connect worker. Workers with the same --group-id form one
cluster: connector configs and status live in compacted topics, and each
connector's tasks on every worker are members of the consumer group
connect-<name>. Calls that change state need a login of the metadata store
(HTTP basic auth or a bearer token from the scheduler's POST /auth/token).
See docs/connect.md.`,
		Example: `  userstream connect --brokers broker:29092 --addr 0.0.0.0:8083
  curl -u admin:PASSWORD -X POST -H 'Content-Type: application/json' localhost:8083/connectors -d @pg-sink.json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := codec.validate(); err != nil {
				return err
			}
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return usagef("--addr: %q is not host:port", addr)
			}
			if groupID == "" || configTopic == "" || statusTopic == "" {
				return usagef("--group-id, --config-storage-topic and --status-storage-topic must not be empty")
			}
			if failAfter <= 0 {
				return usagef("--task-failed-after: %s must be positive", failAfter)
			}
			if err := stream.CheckGroupProtocol(protocol); err != nil {
				return usagef("--group-protocol: %q: give classic or consumer", protocol)
			}
			if session < time.Second {
				return usagef("--session-timeout: %s is too short (at least 1s)", session)
			}
			ctx := cmd.Context()
			st, err := openLogins(ctx, a, metadata, password, "")
			if err != nil {
				return err
			}
			defer st.Close()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return usagef("--addr: %v", err)
			}
			w, err := stack.NewConnectWorker(ctx, stack.ConnectWorker{Listener: ln, Logins: st, Kafka: kc, RegistryURL: codec.registry, Logger: a.log,
				Config: kconnect.WorkerConfig{WorkerID: workerID, GroupID: groupID, ConfigTopic: configTopic, StatusTopic: statusTopic,
					FailAfter: failAfter, SessionTimeout: session, GroupProtocol: protocol}})
			if err != nil {
				return kafkaUsage(err)
			}
			return kafkaUsage(w.Run(ctx))
		},
	}
	fs := cmd.Flags()
	addKafkaFlags(fs, &kc)
	codec.addFlags(fs, false)
	fs.StringVar(&addr, "addr", "127.0.0.1:8083", "serve the Connect REST API here")
	fs.StringVar(&groupID, "group-id", kconnect.DefaultGroupID, "the Connect cluster this worker joins")
	fs.StringVar(&workerID, "worker-id", "", "this worker's id in status (default: the REST address)")
	fs.StringVar(&configTopic, "config-storage-topic", kconnect.DefaultConfigTopic, "compacted topic of connector configs")
	fs.StringVar(&statusTopic, "status-storage-topic", kconnect.DefaultStatusTopic, "compacted topic of task status")
	fs.StringVar(&metadata, "metadata", defaultMetadata, "the scheduler's metadata store, for logins")
	fs.StringVar(&password, "admin-password", "", "the admin login's password when it is created (prefer USERSTREAM_ADMIN_PASSWORD)")
	fs.DurationVar(&failAfter, "task-failed-after", stream.DefaultFailAfter, "a task whose sink, commits or registry keep failing this long turns FAILED")
	fs.DurationVar(&session, "session-timeout", stream.DefaultSessionTimeout, "how long a connector's group waits for a silent worker before moving its partitions")
	fs.StringVar(&protocol, "group-protocol", stream.GroupProtocolClassic, "the connectors' consumer group protocol: classic, or consumer (KIP-848; Kafka 4+, else classic)")
	return cmd
}
