package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/userstream/userstream/internal/user"
)

// ceilingTable has created_users' columns without its key, index and checks:
// what SQLite can take when it only appends. The id is stored as the sink
// stores it, 16 bytes (migration 00003).
const ceilingTable = `CREATE TABLE raw_users (
	id BLOB, first_name TEXT, last_name TEXT, gender TEXT, address TEXT, post_code TEXT, email TEXT,
	username TEXT, dob TEXT, registered_date TEXT, phone TEXT, picture TEXT, nat TEXT,
	ingested_at TEXT, run_id TEXT, stored_at TEXT)`

const ceilingInsert = `INSERT INTO raw_users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// InsertCeiling measures the raw batched insert rate of SQLite on this
// machine, the ceiling the sink's upsert rate is compared with: it writes the
// records, batch rows a transaction, with one prepared plain INSERT into a
// table with the same columns but no key, index or checks, in a fresh
// database file under dir (with the sink's pragmas), and returns rows per
// second. The file is removed afterwards. records must not be empty and
// batch must be positive; the records are written as given, unvalidated.
func InsertCeiling(ctx context.Context, dir string, records []user.Record, batch int) (float64, error) {
	if len(records) == 0 || batch <= 0 {
		return 0, errors.New("sqlite insert ceiling: need at least one record and a positive batch size")
	}
	f, err := os.CreateTemp(dir, "userstream-ceiling-*.db")
	if err != nil {
		return 0, fmt.Errorf("sqlite insert ceiling: %w", err)
	}
	path := f.Name()
	f.Close()
	defer func() {
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			os.Remove(p)
		}
	}()
	db, err := openDB(filepath.Clean(path), writerCache)
	if err != nil {
		return 0, fmt.Errorf("sqlite insert ceiling: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, ceilingTable); err != nil {
		return 0, fmt.Errorf("sqlite insert ceiling: %w", err)
	}
	start := time.Now()
	for i := 0; i < len(records); i += batch {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, fmt.Errorf("sqlite insert ceiling: %w", err)
		}
		stmt, err := tx.PrepareContext(ctx, ceilingInsert)
		if err != nil {
			tx.Rollback()
			return 0, fmt.Errorf("sqlite insert ceiling: %w", err)
		}
		now := time.Now().UTC().Format(timeLayout)
		for _, r := range records[i:min(i+batch, len(records))] {
			// The text of an id that is not a UUID is written as it is:
			// the ceiling stores the records unvalidated.
			var id any = r.ID
			if u, err := uuid.Parse(r.ID); err == nil {
				id = u[:]
			}
			if _, err := stmt.ExecContext(ctx, id, r.FirstName, r.LastName, r.Gender, r.Address, r.PostCode,
				r.Email, r.Username, r.DOB, r.RegisteredDate, r.Phone, r.Picture, r.Nat,
				formatTime(r.IngestedAt), r.RunID, now); err != nil {
				tx.Rollback()
				return 0, fmt.Errorf("sqlite insert ceiling: %w", err)
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			return 0, fmt.Errorf("sqlite insert ceiling: %w", err)
		}
	}
	return float64(len(records)) / time.Since(start).Seconds(), nil
}
