package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/userstream/userstream/internal/sink/sinktest"
	"github.com/userstream/userstream/internal/testwait"
)

// TestWriterKeepsItsConnection upserts batches while a reader polls Count,
// as the stream's health checks and the web UI do: every batch must run on
// the same writer connection (its statements prepared, its page cache
// warm), none on a connection opened for it. On one shared pool that keeps
// one idle connection, the reader's returned connection made the pool
// close the writer's after nearly every batch.
func TestWriterKeepsItsConnection(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	reads := 0
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Count(ctx); err != nil {
				t.Error(err)
				return
			}
			reads++
		}
	})
	const batches = 40
	for i := range batches {
		if err := s.Upsert(ctx, sinktest.Records(i*100, 100)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if n, err := s.Count(ctx); err != nil || n != batches*100 {
		t.Fatalf("Count = %d, %v; want %d", n, err, batches*100)
	}
	st := s.wdb.Stats()
	if st.OpenConnections != 1 || st.MaxIdleClosed != 0 || st.MaxIdleTimeClosed != 0 || st.MaxLifetimeClosed != 0 {
		t.Errorf("writer pool after %d batches beside %d reads: %+v; want one connection, never closed", batches, reads, st)
	}
	if s.db == s.wdb {
		t.Error("readers share the writer's pool")
	}
}

// TestCheckpointerCopiesTheWAL writes 20,000 new users (random UUID keys,
// about 30 MiB of WAL frames, under the writer's own checkpoint at 64 MiB)
// and then nothing: soon after, the checkpointer must have copied every
// page into the database file, which then holds the whole database.
// Without it, the file would keep the size it had after the migrations
// until a later batch crossed the writer's bound.
func TestCheckpointerCopiesTheWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "users.db")
	s, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 20 {
		batch := sinktest.Records(i*1000, 1000)
		for j := range batch {
			batch[j].ID = uuid.NewString()
		}
		if err := s.Upsert(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	var pages, pageSize int64
	if err := s.db.QueryRowContext(ctx, "SELECT page_count, page_size FROM pragma_page_count, pragma_page_size").Scan(&pages, &pageSize); err != nil {
		t.Fatal(err)
	}
	want := pages * pageSize
	testwait.For(t, 10*time.Second, fmt.Sprintf("the WAL checkpointed: a database file of %d pages of %d bytes (%d)", pages, pageSize, want),
		func() (string, bool) {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%d bytes", st.Size()), st.Size() >= want
		}, testwait.Every(20*time.Millisecond))
}
