package closeguard_test

import (
	"errors"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/closeguard"
	"github.com/userstream/userstream/internal/testwait"
)

var errClosed = errors.New("thing is closed")

func TestGate(t *testing.T) {
	g := closeguard.New("test driver", errClosed)
	if err := g.Enter("read"); err != nil {
		t.Fatalf("Enter on an open gate: %v", err)
	}

	// Close must wait for the call in flight.
	released := make(chan struct{})
	closed := make(chan error, 1)
	go func() {
		closed <- g.Close(func() error { close(released); return nil })
	}()
	testwait.Holds(t, 50*time.Millisecond, "Close waiting for the call in flight", func() (string, bool) {
		select {
		case <-released:
			return "the driver released", false
		default:
			return "waiting", true
		}
	})
	g.Leave()
	if err := testwait.For(t, 5*time.Second, "Close to return once the call left", func() (error, bool) {
		select {
		case err := <-closed:
			return err, true
		default:
			return nil, false
		}
	}); err != nil {
		t.Fatalf("Close: %v", err)
	}

	err := g.Enter("read")
	if !errors.Is(err, errClosed) || err.Error() != "test driver: read: thing is closed" {
		t.Fatalf("Enter after Close = %v, want %q wrapping the driver's error", err, "test driver: read: thing is closed")
	}
	err = g.Close(func() error { t.Fatal("release ran twice"); return nil })
	if !errors.Is(err, errClosed) || err.Error() != "test driver: close: thing is closed" {
		t.Fatalf("second Close = %v, want %q", err, "test driver: close: thing is closed")
	}
}

func TestGateReleaseError(t *testing.T) {
	boom := errors.New("boom")
	g := closeguard.New("test driver", errClosed)
	err := g.Close(func() error { return boom })
	if !errors.Is(err, boom) || err.Error() != "test driver: close: boom" {
		t.Fatalf("Close = %v, want %q", err, "test driver: close: boom")
	}
	if err := g.Enter("read"); !errors.Is(err, errClosed) {
		t.Fatalf("Enter after a failed Close = %v, want the gate closed", err)
	}
}
