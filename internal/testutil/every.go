package testutil

import (
	"testing"
	"time"
)

// Every calls f every d on a goroutine of its own until the test ends, and waits for the last call.
func Every(t testing.TB, d time.Duration, f func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				f()
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
}
