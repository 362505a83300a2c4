package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/userstream/userstream/internal/sink/sinktest"
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
