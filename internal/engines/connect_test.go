package engines_test

import (
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
}
