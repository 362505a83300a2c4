package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/sink/sinktest"
)

// BenchmarkKeyShape measures why migration 00003 stores ids as 16-byte
// blobs instead of 36-character text. It copies the sink's own table and
// page index (as migrated) into a fresh file, with id as the sink has it
// (blob) or as it was before (text), and inserts 50,000 new users in the
// sink's statements (128-row chunks, 1,024-row transactions). The blob key
// halves the primary key's and the page index's entries
// (docs/decisions.md, docs/benchmarks.md).
//
//	go test -run '^$' -bench KeyShape -benchtime 3x ./internal/sink/sqlite/
func BenchmarkKeyShape(b *testing.B) {
	recs := sinktest.Records(0, 50_000)
	schema := func(b *testing.B) []string {
		s, err := Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "users.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		rows, err := s.db.QueryContext(b.Context(), `SELECT sql FROM sqlite_master
			WHERE name IN ('created_users', 'created_users_page') ORDER BY type DESC`)
		if err != nil {
			b.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var q string
			if err := rows.Scan(&q); err != nil {
				b.Fatal(err)
			}
			out = append(out, q)
		}
		if len(out) != 2 {
			b.Fatalf("schema: %d statements, want the table and its page index", len(out))
		}
		return out
	}
	for _, shape := range []string{"text", "blob"} {
		b.Run("id="+shape, func(b *testing.B) {
			ddl := schema(b)
			if shape == "text" { // the table before migration 00003
				const blob = "BLOB PRIMARY KEY NOT NULL CHECK (typeof(id) = 'blob' AND length(id) = 16)"
				if !strings.Contains(ddl[0], blob) {
					b.Fatalf("no blob id column to change in %s", ddl[0])
				}
				ddl[0] = strings.Replace(ddl[0], blob, "TEXT PRIMARY KEY NOT NULL", 1)
			}
			var rate float64
			for b.Loop() {
				db, err := openDB(filepath.Join(b.TempDir(), "shape.db"), writerCache)
				if err != nil {
					b.Fatal(err)
				}
				db.SetMaxOpenConns(1)
				for _, q := range ddl {
					if _, err := db.ExecContext(b.Context(), q); err != nil {
						b.Fatal(err)
					}
				}
				stmt, err := db.PrepareContext(b.Context(), upsertSQL(maxChunk))
				if err != nil {
					b.Fatal(err)
				}
				now := time.Now().UTC().Format(timeLayout)
				args := make([]any, 0, upsertArgs*maxChunk)
				start := time.Now()
				for i := 0; i+1024 <= len(recs); i += 1024 {
					tx, err := db.BeginTx(b.Context(), nil)
					if err != nil {
						b.Fatal(err)
					}
					for j := i; j < i+1024; j += maxChunk {
						args = args[:0]
						for _, r := range recs[j : j+maxChunk] {
							var id any = r.ID // text, as before 00003
							if shape == "blob" {
								if id, err = appendID(nil, r.ID); err != nil {
									b.Fatal(err)
								}
							}
							args = appendUpsertArgs(args, id, r, now)
						}
						if _, err := tx.Stmt(stmt).ExecContext(b.Context(), args...); err != nil {
							b.Fatal(err)
						}
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				rate = float64(len(recs)/1024*1024) / time.Since(start).Seconds()
				stmt.Close()
				db.Close()
			}
			b.ReportMetric(rate, "rows/s")
		})
	}
}
