package schema_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/userstream/userstream/internal/schema"
)

// TestRegistryRestartKeepsIDs writes messages, restarts the embedded
// registry on the same data dir, and reads them back with a fresh client.
func TestRegistryRestartKeepsIDs(t *testing.T) {
	dir := t.TempDir()
	reg1, err := schema.StartRegistry(t.Context(), "127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	cl1 := newClient(t, reg1.URL())
	// Push the user schema's id away from 1, share an id across subjects,
	// and evolve the subject, so a restore that renumbers would show.
	other, err := cl1.CreateSchema(t.Context(), "other-value", sr.Schema{Schema: `{"type":"record","name":"Other","fields":[{"name":"a","type":"string"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	v1 := newSerde(t, cl1)
	v2 := newSerde(t, cl1, schema.WithSchema(v2Schema(t)))
	shared, err := cl1.CreateSchema(t.Context(), "mirror-value", sr.Schema{Schema: v2Schema(t)})
	if err != nil {
		t.Fatal(err)
	}
	if shared.ID != v2.ID() {
		t.Fatalf("same schema under another subject got id %d, want shared id %d", shared.ID, v2.ID())
	}
	m1, err := v1.Encode(sample(50))
	if err != nil {
		t.Fatal(err)
	}
	m2, err := v2.Encode(sample(51))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "schemas.json")); err != nil {
		t.Fatalf("no state file after registrations: %v", err)
	}

	reg2 := startRegistry(t, dir)
	cl2 := newClient(t, reg2.URL())
	reader := newSerde(t, cl2, schema.WithSchema(v2Schema(t)), schema.WithoutRegistration())
	for i, m := range [][]byte{m1, m2} {
		got, err := reader.Decode(m)
		if err != nil {
			t.Fatalf("message %d after restart: %v", i, err)
		}
		if want := wantRecord(sample(50 + i)); got != want {
			t.Fatalf("message %d after restart: got %+v, want %+v", i, got, want)
		}
	}
	// Registering again returns the old ids and versions.
	again1 := newSerde(t, cl2)
	again2 := newSerde(t, cl2, schema.WithSchema(v2Schema(t)))
	if again1.ID() != v1.ID() || again1.Version() != 1 || again2.ID() != v2.ID() || again2.Version() != 2 {
		t.Fatalf("after restart: v1 id %d version %d, v2 id %d version %d; want %d/1 and %d/2",
			again1.ID(), again1.Version(), again2.ID(), again2.Version(), v1.ID(), v2.ID())
	}
	for _, c := range []struct {
		subject string
		id      int
	}{{"other-value", other.ID}, {"mirror-value", shared.ID}} {
		ss, err := cl2.SchemaByVersion(t.Context(), c.subject, 1)
		if err != nil || ss.ID != c.id {
			t.Fatalf("%s v1 after restart: %+v, %v; want id %d", c.subject, ss, err, c.id)
		}
	}
	// A brand-new schema does not reuse an old id.
	fresh, err := cl2.CreateSchema(t.Context(), "fresh-value", sr.Schema{Schema: `{"type":"record","name":"Fresh","fields":[{"name":"b","type":"long"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	for _, old := range []int{other.ID, v1.ID(), v2.ID()} {
		if fresh.ID == old {
			t.Fatalf("new schema got id %d, already used before the restart", fresh.ID)
		}
	}
}

// TestRegistryWithoutDataDirForgets is the failure the persistence
// prevents: without a data dir, old messages no longer decode.
func TestRegistryWithoutDataDirForgets(t *testing.T) {
	reg1, err := schema.StartRegistry(t.Context(), "127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	w := newSerde(t, newClient(t, reg1.URL()), schema.WithSchema(v2Schema(t)))
	msg, err := w.Encode(sample(60))
	if err != nil {
		t.Fatal(err)
	}
	reg1.Close()
	reg2 := startRegistry(t, "")
	r := newSerde(t, newClient(t, reg2.URL()), schema.WithoutRegistration())
	if _, err := r.Decode(msg); !errors.Is(err, schema.ErrUnknownSchema) {
		t.Fatalf("Decode after a restart without data dir = %v, want ErrUnknownSchema", err)
	}
}

func TestRegistryBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = schema.StartRegistry(t.Context(), ln.Addr().String(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()+" is already in use") {
		t.Fatalf("StartRegistry on a busy port = %v, want an 'already in use' error naming the address", err)
	}
}

func TestRegistryCorruptState(t *testing.T) {
	tests := []struct {
		name, content, says string
	}{
		{"not JSON", "{not json", "is corrupt"},
		{"bad entry", `{"schemas":[{"subject":"","version":1,"id":1,"schema":{"schema":"\"string\""}}]}`, "bad entry"},
		{"duplicate slot", `{"schemas":[{"subject":"a","version":1,"id":1,"schema":{"schema":"\"string\""}},{"subject":"a","version":1,"id":2,"schema":{"schema":"\"long\""}}]}`, "already seeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "schemas.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := schema.StartRegistry(t.Context(), "127.0.0.1:0", dir)
			if err == nil || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), path) {
				t.Fatalf("StartRegistry with %s = %v, want an error naming %s and saying %q", tt.name, err, path, tt.says)
			}
			// The file is left as it was for the operator to inspect.
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Fatal("StartRegistry changed the corrupt state file")
			}
		})
	}
}

// TestRegistryStateFile checks that the file names every registration
// with its subject, version and id, written before the client's answer.
func TestRegistryStateFile(t *testing.T) {
	dir := t.TempDir()
	reg := startRegistry(t, dir)
	s := newSerde(t, newClient(t, reg.URL()))
	b, err := os.ReadFile(filepath.Join(dir, "schemas.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Schemas []struct {
			Subject string
			Version int
			ID      int
			Schema  sr.Schema
		}
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Schemas) != 1 || st.Schemas[0].Subject != schema.Subject || st.Schemas[0].Version != 1 ||
		st.Schemas[0].ID != s.ID() || st.Schemas[0].Schema.Schema != schema.UserSchema() {
		t.Fatalf("state file = %s", b)
	}
}

func TestRegistryStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	reg, err := schema.StartRegistry(ctx, "127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(reg.URL(), "http://")
	cancel()
	// Without Close, the listener goes away once the context has ended.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("registry still accepts connections on %s 5s after its context ended", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := reg.Close(); err != nil {
		t.Fatalf("Close after the context ended: %v", err)
	}
}
