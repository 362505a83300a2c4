package compat

import (
	"encoding/json"
	"net"
	"os"
	"testing"

	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/proctest"
	"github.com/userstream/userstream/internal/sink/cassandra"
	"github.com/userstream/userstream/internal/sink/sinktest"
	"github.com/userstream/userstream/internal/user"
)

// The shared Cassandra node (CassandraAddr) is killed when the tests end.
func TestMain(m *testing.M) { os.Exit(enginestest.RunWithCassandra(m)) }

// TestCassandraOriginalConsumer: the original's consumer side and ours
// share a real Cassandra 5.0 table. The DataStax Python driver
// (cassandra-driver, as the original's spark_stream.py uses it) reads the
// users our sink wrote with the original's column names, and a user it
// inserts in the original's shape (no dob, nat, ingested_at or run_id) is
// read by `userstream users get`.
func TestCassandraOriginalConsumer(t *testing.T) {
	compatPython(t) // skips without the pinned clients
	addr := enginestest.CassandraAddr(t)
	ks := enginestest.Keyspace(t, addr)
	host, port, _ := net.SplitHostPort(addr)
	sinkURL := "cassandra://" + addr + "/" + ks
	s, err := cassandra.Open(t.Context(), sinkURL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := sinktest.Records(0, 50)
	if err := s.Upsert(t.Context(), want); err != nil {
		t.Fatal(err)
	}

	var rows []map[string]string
	runPython(t, &rows, "cassandra_original.py", host, port, ks, "select")
	if len(rows) != len(want) {
		t.Fatalf("the Python driver read %d users, want %d", len(rows), len(want))
	}
	byID := map[string]map[string]string{}
	for _, r := range rows {
		byID[r["id"]] = r
	}
	for _, w := range want {
		got, ok := byID[w.ID]
		if !ok {
			t.Fatalf("user %s missing from the Python driver's rows", w.ID)
		}
		for col, v := range map[string]string{"first_name": w.FirstName, "last_name": w.LastName, "gender": w.Gender,
			"address": w.Address, "post_code": w.PostCode, "email": w.Email, "username": w.Username,
			"registered_date": w.RegisteredDate, "phone": w.Phone, "picture": w.Picture} {
			if got[col] != v {
				t.Fatalf("user %s: %s = %q through the Python driver, want %q", w.ID, col, got[col], v)
			}
		}
	}

	orig := map[string]string{"id": "5b0c2f9e-3a7d-4c61-9f0e-2d8a1b6c4e77", "first_name": "Ada", "last_name": "Lovelace",
		"gender": "female", "address": "12 St James's Square, London, England, UK", "post_code": "SW1Y 4JH",
		"email": "ada.lovelace@example.com", "username": "bluecat123", "registered_date": "2015-06-01T10:00:00.000Z",
		"phone": "020 7946 0000", "picture": "https://randomuser.me/api/portraits/women/1.jpg"}
	b, _ := json.Marshal(orig)
	var ins map[string]string
	runPython(t, &ins, "cassandra_original.py", host, port, ks, "insert", string(b))
	out, errOut, code := proctest.Run(t, "users", "get", orig["id"], "--sink", sinkURL)
	if code != 0 {
		t.Fatalf("users get of the row the Python driver inserted: exit %d: %s", code, errOut)
	}
	var got user.Record
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("users get printed %q: %v", out, err)
	}
	if got.ID != orig["id"] || got.FirstName != orig["first_name"] || got.Email != orig["email"] ||
		got.PostCode != orig["post_code"] || got.RegisteredDate != orig["registered_date"] || got.DOB != "" {
		t.Fatalf("users get = %+v, want the original-shaped row %v", got, orig)
	}
}
