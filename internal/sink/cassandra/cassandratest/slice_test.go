package cassandratest

import (
	"slices"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// TestClusteringSlices checks the range restrictions the double accepts on
// clustering columns, through the real driver: the rows a slice selects,
// in clustering order, and the restrictions a server refuses.
func TestClusteringSlices(t *testing.T) {
	d, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c := gocql.NewCluster(d.Addr())
	c.Consistency = gocql.One
	c.Timeout, c.ConnectTimeout = 5*time.Second, 5*time.Second
	sess, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for _, q := range []string{
		"CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
		"CREATE TABLE ks.t (p text, at timestamp, id int, v text, PRIMARY KEY ((p), at, id)) WITH CLUSTERING ORDER BY (at DESC, id ASC)",
	} {
		if err := sess.Query(q).Exec(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	base := time.UnixMilli(1_700_000_000_000).UTC()
	// at = base + 0..4 ms, three ids each; one row in another partition.
	for ms := range 5 {
		for id := range 3 {
			if err := sess.Query("INSERT INTO ks.t (p, at, id, v) VALUES (?, ?, ?, ?)", "a", base.Add(time.Duration(ms)*time.Millisecond), id, "x").Exec(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := sess.Query("INSERT INTO ks.t (p, at, id, v) VALUES (?, ?, ?, ?)", "b", base, 0, "x").Exec(); err != nil {
		t.Fatal(err)
	}
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	type row struct{ ms, id int }
	read := func(q string, args ...any) []row {
		t.Helper()
		iter := sess.Query(q, args...).Iter()
		var out []row
		var ts time.Time
		var id int
		for iter.Scan(&ts, &id) {
			out = append(out, row{int(ts.Sub(base) / time.Millisecond), id})
		}
		if err := iter.Close(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return out
	}
	cases := []struct {
		q    string
		args []any
		want []row
	}{
		{"SELECT at, id FROM ks.t WHERE p = ? AND at = ? AND id > ?", []any{"a", at(2), 0}, []row{{2, 1}, {2, 2}}},
		{"SELECT at, id FROM ks.t WHERE p = ? AND at = ? AND id >= ?", []any{"a", at(2), 1}, []row{{2, 1}, {2, 2}}},
		{"SELECT at, id FROM ks.t WHERE p = ? AND at < ?", []any{"a", at(2)}, []row{{1, 0}, {1, 1}, {1, 2}, {0, 0}, {0, 1}, {0, 2}}},
		{"SELECT at, id FROM ks.t WHERE p = ? AND at < ? LIMIT 2", []any{"a", at(2)}, []row{{1, 0}, {1, 1}}},
		{"SELECT at, id FROM ks.t WHERE p = ? AND at <= ? AND at > ?", []any{"a", at(3), at(1)}, []row{{3, 0}, {3, 1}, {3, 2}, {2, 0}, {2, 1}, {2, 2}}},
		{"SELECT at, id FROM ks.t WHERE p = ? AND at >= ?", []any{"a", at(4)}, []row{{4, 0}, {4, 1}, {4, 2}}},
		{"SELECT at, id FROM ks.t WHERE p = ? AND at = ? AND id < ?", []any{"a", at(0), 0}, nil},
	}
	for _, c := range cases {
		if got := read(c.q, c.args...); !slices.Equal(got, c.want) {
			t.Errorf("%s %v = %v, want %v", c.q, c.args, got, c.want)
		}
	}
	for q, why := range map[string]string{
		"SELECT at, id FROM ks.t WHERE p = 'a' AND id > 1":            "cannot be restricted as preceding column",
		"SELECT at, id FROM ks.t WHERE p = 'a' AND at > ? AND id > 1": "restricted by a non-EQ relation",
		"SELECT at, id FROM ks.t WHERE p > 'a'":                       "partition key",
		"SELECT at, id FROM ks.t WHERE p = 'a' AND v > 'x'":           "ALLOW FILTERING",
		"SELECT at, id FROM ks.t WHERE p = 'a' AND at > ? AND at > ?": "More than one restriction",
		"SELECT at, id FROM ks.t WHERE p = 'a' AND at = ? AND at < ?": "more than one relation",
		"SELECT at, id FROM ks.t WHERE at > ?":                        "ALLOW FILTERING",
		"SELECT at, id FROM ks.t WHERE p = 'a' AND at != ?":           "no viable alternative",
	} {
		err := Check(d, q)
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("Check(%q) = %v, want an error saying %q", q, err, why)
		}
	}
}
