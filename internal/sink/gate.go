package sink

import (
	"fmt"
	"sync"
)

// Gate guards a driver against use after Close: calls enter it concurrently,
// and Close waits for the calls in flight, then fails every later call with
// ErrClosed. The zero value is open.
type Gate struct {
	mu     sync.RWMutex
	closed bool
}

// Enter admits one call named op of the driver named driver, or returns an
// error wrapping ErrClosed. After a nil error the caller must call Leave.
func (g *Gate) Enter(driver, op string) error {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return fmt.Errorf("%s: %s: %w", driver, op, ErrClosed)
	}
	return nil
}

// Leave ends a call admitted by Enter.
func (g *Gate) Leave() { g.mu.RUnlock() }

// Close waits for the calls in flight, closes the gate and runs release
// once; a second Close returns an error wrapping ErrClosed. release's error
// is returned wrapped with the driver's name.
func (g *Gate) Close(driver string, release func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return fmt.Errorf("%s: close: %w", driver, ErrClosed)
	}
	g.closed = true
	if err := release(); err != nil {
		return fmt.Errorf("%s: close: %w", driver, err)
	}
	return nil
}
