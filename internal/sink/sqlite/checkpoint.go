package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// ckpt checkpoints the WAL off the writer's path. SQLite's own checkpoint
// runs inside the commit that crosses wal_autocheckpoint pages and stalls
// that batch; here a goroutine with a connection of its own runs a PASSIVE
// checkpoint after each commit (coalesced: at most one waiting), which
// copies the committed pages into the database file while the next batch
// is written. A writer whose WAL the checkpointer cannot keep up with (a
// long reader holding an old snapshot) still checkpoints itself at
// wal_autocheckpoint (16,384 pages, 64 MiB), so the WAL stays bounded.
// docs/decisions.md has the measurements.
type ckpt struct {
	once sync.Once
	wake chan struct{}
	quit chan struct{}
	done chan struct{}
}

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
	for {
		select {
		case <-c.quit:
			return
		case <-c.wake:
		}
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
