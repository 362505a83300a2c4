package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/schema/registry"
)

// newRegistryCmd serves the embedded Schema Registry alone, for a pipeline
// on an outside Kafka cluster that has no registry of its own.
func newRegistryCmd(a *app) *cobra.Command {
	var addr, dataDir string
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run the embedded Schema Registry alone (Confluent's REST API; schemas kept in --data-dir)",
		Long: `Run the embedded Schema Registry without a broker: the same server
'userstream broker' and 'userstream dev' serve, for a pipeline whose Kafka is
an outside cluster (Apache Kafka, say) with no registry of its own. Schemas,
their ids and versions are kept in --data-dir and come back at the next
start, so the ids in old messages keep resolving. Stops on Ctrl-C or SIGTERM.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if dataDir == "" {
				a.log.Warn("no --data-dir: the registry keeps its schemas in memory and loses them at exit")
			}
			reg, err := registry.Start(ctx, addr, dataDir, registry.WithLogger(a.log))
			if err != nil {
				return fmt.Errorf("%w (is another registry on --addr?)", err)
			}
			defer reg.Close()
			a.log.Info("schema registry listening", "url", reg.URL(), "data_dir", dataDir)
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", schema.DefaultRegistryAddr, "host:port to listen on")
	f.StringVar(&dataDir, "data-dir", "./data/schemas", "directory for the schemas (empty: in memory)")
	return cmd
}
