package engines_test

import (
	"strings"
	"testing"

	"github.com/userstream/userstream/internal/engines"
)

func TestStartConnectRefusesBadArguments(t *testing.T) {
	for _, o := range []engines.Option{engines.WithNodes(3), engines.WithZooKeeper()} {
		if _, err := engines.StartConnect(t.Context(), t.TempDir(), "127.0.0.1:9092", o); err == nil {
			t.Fatal("StartConnect with a Kafka-only option: no error")
		}
	}
	if _, err := engines.StartConnect(t.Context(), t.TempDir(), ""); err == nil {
		t.Fatal("StartConnect without bootstrap servers: no error")
	}
	// The plugins' pom is the classpath's: an unknown one is named.
	_, err := engines.StartConnect(t.Context(), t.TempDir(), "127.0.0.1:9092", engines.WithConnectPlugins("no-such-pom"))
	if err == nil || !strings.Contains(err.Error(), `no pom for engine "no-such-pom"`) {
		t.Fatalf("StartConnect with an unknown plugins pom: %v, want an error naming it", err)
	}
}
