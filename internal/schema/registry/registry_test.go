package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/schema/registry"
	"github.com/userstream/userstream/internal/schema/schematest"
	"github.com/userstream/userstream/internal/testwait"
)

// TestRegistryRestartKeepsIDs writes messages, restarts the embedded
// registry on the same data dir, and reads them back with a fresh client.
func TestRegistryRestartKeepsIDs(t *testing.T) {
	dir := t.TempDir()
	reg1, err := registry.Start(t.Context(), "127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	cl1 := schematest.NewClient(t, reg1.URL())
	// Push the user schema's id away from 1, share an id across subjects,
	// and evolve the subject, so a restore that renumbers would show.
	other, err := cl1.CreateSchema(t.Context(), "other-value", sr.Schema{Schema: `{"type":"record","name":"Other","fields":[{"name":"a","type":"string"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	v1 := schematest.NewSerde(t, cl1)
	v2 := schematest.NewSerde(t, cl1, schema.WithSchema(schematest.V2Schema(t)))
	shared, err := cl1.CreateSchema(t.Context(), "mirror-value", sr.Schema{Schema: schematest.V2Schema(t)})
	if err != nil {
		t.Fatal(err)
	}
	if shared.ID != v2.ID() {
		t.Fatalf("same schema under another subject got id %d, want shared id %d", shared.ID, v2.ID())
	}
	m1, err := v1.Encode(schematest.Sample(50))
	if err != nil {
		t.Fatal(err)
	}
	m2, err := v2.Encode(schematest.Sample(51))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "schemas.json")); err != nil {
		t.Fatalf("no state file after registrations: %v", err)
	}

	reg2 := schematest.StartRegistry(t, dir)
	cl2 := schematest.NewClient(t, reg2.URL())
	reader := schematest.NewSerde(t, cl2, schema.WithSchema(schematest.V2Schema(t)), schema.WithoutRegistration())
	for i, m := range [][]byte{m1, m2} {
		got, err := reader.Decode(m)
		if err != nil {
			t.Fatalf("message %d after restart: %v", i, err)
		}
		if want := schematest.WantRecord(schematest.Sample(50 + i)); got != want {
			t.Fatalf("message %d after restart: got %+v, want %+v", i, got, want)
		}
	}
	// Registering again returns the old ids and versions.
	again1 := schematest.NewSerde(t, cl2)
	again2 := schematest.NewSerde(t, cl2, schema.WithSchema(schematest.V2Schema(t)))
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
	reg1, err := registry.Start(t.Context(), "127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	w := schematest.NewSerde(t, schematest.NewClient(t, reg1.URL()), schema.WithSchema(schematest.V2Schema(t)))
	msg, err := w.Encode(schematest.Sample(60))
	if err != nil {
		t.Fatal(err)
	}
	reg1.Close()
	reg2 := schematest.StartRegistry(t, "")
	r := schematest.NewSerde(t, schematest.NewClient(t, reg2.URL()), schema.WithoutRegistration())
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
	_, err = registry.Start(t.Context(), ln.Addr().String(), t.TempDir())
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
		{"duplicate slot", `{"schemas":[{"subject":"a","version":1,"id":1,"schema":{"schema":"\"string\""}},{"subject":"a","version":1,"id":2,"schema":{"schema":"\"long\""}}]}`, "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "schemas.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := registry.Start(t.Context(), "127.0.0.1:0", dir)
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
	reg := schematest.StartRegistry(t, dir)
	s := schematest.NewSerde(t, schematest.NewClient(t, reg.URL()))
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
	reg, err := registry.Start(ctx, "127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(reg.URL(), "http://")
	cancel()
	// Without Close, the listener goes away once the context has ended.
	testwait.For(t, 5*time.Second, "the registry to refuse connections on "+addr+" after its context ended", func() (error, bool) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err, err != nil
	}, testwait.Every(10*time.Millisecond))
	if err := reg.Close(); err != nil {
		t.Fatalf("Close after the context ended: %v", err)
	}
}

// TestRegistryRestartKeepsEverything: versions, soft deletions, permanent
// deletions, compatibility levels and modes all survive a restart, and an
// id given once is never given again.
func TestRegistryRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	reg1, err := registry.Start(ctx, "127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	cl := schematest.NewClient(t, reg1.URL())
	v1 := mustCreate(t, cl, "s", avroSchema(schema.UserSchema()))
	mustCreate(t, cl, "s", avroSchema(schematest.V2Schema(t)))
	mustCreate(t, cl, "gone", small(fieldAString))
	purged := mustCreate(t, cl, "purged", small(fieldBString))
	mustCreate(t, cl, "frozen", small(fieldAStringDefault))
	mustDo(t, cl.DeleteSchema(ctx, "s", 1, sr.SoftDelete))
	if _, err := cl.DeleteSubject(ctx, "gone", sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeleteSubject(ctx, "purged", sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeleteSubject(ctx, "purged", sr.HardDelete); err != nil {
		t.Fatal(err)
	}
	mustLevel(t, cl, "", sr.CompatForwardTransitive)
	mustLevel(t, cl, "s", sr.CompatNone)
	mustDo(t, cl.SetMode(ctx, sr.ModeReadOnly, "frozen")[0].Err)
	if err := reg1.Close(); err != nil {
		t.Fatal(err)
	}

	reg2 := schematest.StartRegistry(t, dir)
	cl = schematest.NewClient(t, reg2.URL())
	deleted := sr.WithParams(ctx, sr.ShowDeleted)
	live, err := cl.Subjects(ctx)
	mustDo(t, err)
	all, err := cl.Subjects(deleted)
	mustDo(t, err)
	versions, err := cl.SubjectVersions(ctx, "s")
	mustDo(t, err)
	allVersions, err := cl.SubjectVersions(deleted, "s")
	mustDo(t, err)
	if fmt.Sprint(live, all, versions, allVersions) != "[frozen s] [frozen gone s] [2] [1 2]" {
		t.Fatalf("after restart: subjects %v, with deleted %v; versions of s %v, with deleted %v", live, all, versions, allVersions)
	}
	if _, err := cl.SchemaByVersion(ctx, "s", 1); !hasCode(err, 40402) {
		t.Fatalf("soft-deleted version after restart: %v, want 40402", err)
	}
	if ss, err := cl.SchemaByVersion(deleted, "s", 1); err != nil || ss.ID != v1.ID {
		t.Fatalf("soft-deleted version with deleted=true after restart: %+v, %v", ss, err)
	}
	if _, err := cl.SchemaByID(ctx, purged.ID); !hasCode(err, 40403) {
		t.Fatalf("permanently deleted id %d after restart: %v, want 40403", purged.ID, err)
	}
	global, subject := cl.Compatibility(ctx)[0], cl.Compatibility(ctx, "s")[0]
	if global.Level != sr.CompatForwardTransitive || subject.Level != sr.CompatNone {
		t.Fatalf("levels after restart: global %v (%v), s %v (%v)", global.Level, global.Err, subject.Level, subject.Err)
	}
	if _, err := cl.CreateSchema(ctx, "frozen", small(fieldAStringDefault, fieldBStringDefault)); !hasCode(err, 42205) {
		t.Fatalf("registering on a READONLY subject after restart: %v, want 42205", err)
	}
	// The permanently deleted schema comes back with a new id: ids are
	// never reused.
	again := mustCreate(t, cl, "purged", small(fieldBString))
	if again.ID <= purged.ID {
		t.Fatalf("re-registered after a permanent delete: id %d, want above %d", again.ID, purged.ID)
	}
}

func hasCode(err error, code int) bool {
	_, c := errorCode(err)
	return c == code
}

// TestRegistryLoadsOldStateFile: a schemas.json written by the
// srfake-based registry (no deletions, no settings, and an invalid schema
// srfake accepted) loads with the same ids; the invalid schema is served
// as stored and does not block the subject.
func TestRegistryLoadsOldStateFile(t *testing.T) {
	dir := t.TempDir()
	old := map[string]any{
		"note": "schemas of the embedded userstream schema registry; ids must never change (messages in the log carry them)",
		"schemas": []map[string]any{
			{"subject": schema.Subject, "version": 1, "id": 3, "schema": map[string]any{"schema": schema.UserSchema()}},
			{"subject": "mirror-value", "version": 1, "id": 3, "schema": map[string]any{"schema": schema.UserSchema()}},
			{"subject": "bad-value", "version": 1, "id": 4, "schema": map[string]any{"schema": invalidSchema}},
		},
	}
	b, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "schemas.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	reg := schematest.StartRegistry(t, dir)
	cl := schematest.NewClient(t, reg.URL())
	s := schematest.NewSerde(t, cl)
	if s.ID() != 3 || s.Version() != 1 {
		t.Fatalf("user schema from the old file: id %d version %d, want 3/1", s.ID(), s.Version())
	}
	subjects, err := cl.SubjectsByID(t.Context(), 3)
	if err != nil || fmt.Sprint(subjects) != "[mirror-value users_created-value]" {
		t.Fatalf("subjects of id 3: %v, %v", subjects, err)
	}
	if bad, err := cl.SchemaByID(t.Context(), 4); err != nil || bad.Schema != invalidSchema {
		t.Fatalf("the invalid schema of the old file: %+v, %v; want it served as stored", bad, err)
	}
	next := mustCreate(t, cl, "bad-value", small(fieldAString))
	if next.Version != 2 || next.ID != 5 {
		t.Fatalf("registering after the invalid version: version %d id %d, want 2/5", next.Version, next.ID)
	}
}

// TestRegistryFailedSaveChangesNothing: when the state file cannot be
// written the client gets 500 (50001) and the registry stays as it was.
func TestRegistryFailedSaveChangesNothing(t *testing.T) {
	dir := t.TempDir()
	reg := schematest.StartRegistry(t, dir)
	cl := schematest.NewClient(t, reg.URL())
	path := filepath.Join(dir, "schemas.json")
	// A non-empty directory where the file should go: the rename fails.
	if err := os.MkdirAll(filepath.Join(path, "blocker"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := cl.CreateSchema(t.Context(), "s", avroSchema(schema.UserSchema()))
	if status, code := errorCode(err); status != 500 || code != 50001 {
		t.Fatalf("register with an unwritable state file: %v (status %d, code %d), want 500/50001", err, status, code)
	}
	if subjects, err := cl.Subjects(t.Context()); err != nil || len(subjects) != 0 {
		t.Fatalf("after the failed save: subjects %v, %v; want none", subjects, err)
	}
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if ss := mustCreate(t, cl, "s", avroSchema(schema.UserSchema())); ss.ID != 1 {
		t.Fatalf("after the file is writable again: id %d, want 1", ss.ID)
	}
	if err := reg.Close(); err != nil {
		t.Fatalf("Close after the writes recovered: %v", err)
	}
}
