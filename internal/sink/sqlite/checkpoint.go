package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// ckpt checkpoints the WAL off the writer's path. SQLite's own checkpoint
// runs inside the commit that crosses wal_autocheckpoint pages and stalls
// that batch; here a goroutine with a connection of its own runs a PASSIVE
// checkpoint after each commit (coalesced: at most one waiting), which
// copies the committed pages into the database file while the next batch
// is written. A writer whose WAL the checkpointer cannot keep up with (a
// long reader holding an old snapshot) still checkpoints itself at
// wal_autocheckpoint (16,384 pages, 64 MiB), so the WAL stays bounded.
// Under writes without pause the WAL still grows to that bound: SQLite
// restarts it from its start only in a write that begins with every frame
// copied, and the writer begins its next batch while the checkpointer
// copies the last one (TestCheckpointerCopiesTheWAL shows the copy).
// Checkpoints start at least ckptGap apart: each one syncs the WAL and the
// database file, and one a batch (28 a second under the bench) took the
// other core's time from the stream's poller and decoder.
// docs/decisions.md has the measurements.
type ckpt struct {
	once sync.Once
	wake chan struct{}
	quit chan struct{}
	done chan struct{}
}

// ckptGap is the least time between the starts of two checkpoints. The
// last batch of a burst is checkpointed at most this long after its commit.
const ckptGap = 100 * time.Millisecond

// kick asks for a checkpoint, starting the checkpointer at the first call
// (a sink that only reads never starts one).
func (c *ckpt) kick(db *sql.DB) {
	c.once.Do(func() {
		c.wake, c.quit, c.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
		go c.run(db)
	})
	select {
	case c.wake <- struct{}{}:
	default: // one is already asked for
	}
}

func (c *ckpt) run(db *sql.DB) {
	defer close(c.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return // the writer's own checkpoints remain
	}
	defer conn.Close()
	var last time.Time
	for {
		select {
		case <-c.quit:
			return
		case <-c.wake:
		}
		if d := ckptGap - time.Since(last); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-c.quit:
				t.Stop()
				return
			case <-t.C:
			}
		}
		last = time.Now()
		// Best effort: a failed or partial checkpoint is taken up by the
		// next one, or by the writer's own at the bound.
		_, _ = conn.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	}
}

// stop ends the checkpointer, if it started, and waits for it.
func (c *ckpt) stop() {
	c.once.Do(func() {}) // no checkpointer starts after this
	if c.quit != nil {
		close(c.quit)
		<-c.done
	}
}
