package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fieldgate/fieldgate/forward"
)

// forwarderRun is one forwarder running over the buffer, until a reload replaces it (new Kafka settings, or a new
// configuration hash for the record header) or the gateway stops.
type forwarderRun struct {
	f      *forward.Forwarder
	gate   *roundGate
	cancel context.CancelFunc
	done   chan error // receives Run's result, then is closed
}

// startForwarder runs f over log until ctx ends or stop is called. A Run that fails (the client cannot be built)
// is reported to the gateway, which stops: nothing can leave the buffer.
func (g *gateway) startForwarder(ctx context.Context, f *forward.Forwarder) *forwarderRun {
	ctx, cancel := context.WithCancel(ctx)
	r := &forwarderRun{f: f, gate: &roundGate{Log: g.buf}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := f.Run(ctx, r.gate)
		if err != nil && ctx.Err() == nil {
			g.fail(errors.New("kafka forwarder: " + err.Error()))
		}
		r.done <- err
		close(r.done)
	}()
	return r
}

// stop stops the forwarder between two rounds: it lets the round in flight finish (Kafka answers, the buffer is
// acknowledged) and starts no other, then ends Run. It waits for the round at most patience, and not at all
// while Kafka cannot be reached (such a round only ends at produce_timeout); a round cut short loses nothing:
// what Kafka did not acknowledge stays in the buffer for the next forwarder, possibly as duplicates.
func (r *forwarderRun) stop(patience time.Duration) {
	r.gate.hold()
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		st := r.f.Stats()
		if !st.Connected || r.gate.betweenRounds(st.Batches) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.cancel()
	<-r.done
}

// roundGate is the buffer as a forwarder sees it, with a way to stop the forwarder between rounds: once held, a
// scan (the start of every round) finds nothing, and the gate knows whether a round is in flight by counting
// the scans that started one against the forwarder's finished rounds.
type roundGate struct {
	forward.Log

	mu       sync.Mutex
	held     bool
	scanning bool
	rounds   uint64 // scans that returned entries: each starts one produce round
}

func (g *roundGate) hold() {
	g.mu.Lock()
	g.held = true
	g.mu.Unlock()
}

// betweenRounds reports whether the forwarder, having finished done rounds, has none in flight.
func (g *roundGate) betweenRounds(done uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.scanning && g.rounds == done
}

// Scan is the buffer's Scan, or nothing once the gate is held.
func (g *roundGate) Scan(max int, fn func(seq uint64, key, value []byte) error) error {
	g.mu.Lock()
	if g.held {
		g.mu.Unlock()
		return nil
	}
	g.scanning = true
	g.mu.Unlock()
	n := 0
	var fnErr error
	err := g.Log.Scan(max, func(seq uint64, key, value []byte) error {
		if fnErr = fn(seq, key, value); fnErr == nil {
			n++
		}
		return fnErr
	})
	g.mu.Lock()
	g.scanning = false
	if n > 0 && (err == nil || errors.Is(err, fnErr)) {
		g.rounds++ // the forwarder produces what it scanned
	}
	g.mu.Unlock()
	return err
}

// addStats adds the counters of a forwarder that was replaced to those of the ones before it, so that
// kafka_forwarded_total and its kind go on across reloads.
func addStats(a, b forward.Stats) forward.Stats {
	a.Forwarded += b.Forwarded
	a.DeadLettered += b.DeadLettered
	a.Batches += b.Batches
	a.ProduceSeconds += b.ProduceSeconds
	a.ProduceErrors.Retriable += b.ProduceErrors.Retriable
	a.ProduceErrors.Fatal += b.ProduceErrors.Fatal
	a.LogErrors += b.LogErrors
	a.ClientRestarts += b.ClientRestarts
	if b.LastSuccess.After(a.LastSuccess) {
		a.LastSuccess = b.LastSuccess
	}
	return a
}
