// Package closeguard keeps a driver from being used after Close. The sink
// drivers and the scheduler's SQL metadata stores share it: calls enter the
// gate concurrently, Close waits for the calls in flight, and every later
// call, Close included, fails with the driver's own "closed" error.
package closeguard

import (
	"fmt"
	"sync"
)

// Gate guards one driver. Make it with New; it starts open. A call must not
// enter twice (a waiting Close would block the second entry for ever).
type Gate struct {
	name      string
	errClosed error

	mu     sync.RWMutex
	closed bool
}

// New returns an open gate for the driver named name ("sqlite sink"), whose
// calls after Close fail with an error wrapping errClosed.
func New(name string, errClosed error) *Gate {
	return &Gate{name: name, errClosed: errClosed}
}

// Enter admits one call named op, or returns an error wrapping the driver's
// errClosed once the gate is closed. After a nil error the caller must call
// Leave; Close waits for it.
func (g *Gate) Enter(op string) error {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return fmt.Errorf("%s: %s: %w", g.name, op, g.errClosed)
	}
	return nil
}

// Leave ends a call admitted by Enter.
func (g *Gate) Leave() { g.mu.RUnlock() }

// Close waits for the calls in flight, closes the gate and runs release
// once; a second Close returns an error wrapping errClosed. release's error
// is returned wrapped with the driver's name, and the gate stays closed.
func (g *Gate) Close(release func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return fmt.Errorf("%s: close: %w", g.name, g.errClosed)
	}
	g.closed = true
	if err := release(); err != nil {
		return fmt.Errorf("%s: close: %w", g.name, err)
	}
	return nil
}
