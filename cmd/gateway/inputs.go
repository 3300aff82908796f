package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldgate/fieldgate"
)

// input is one configured input as the gateway sees it, whatever its protocol: the Sink its source queues into,
// which counts what it queued and checks the source times, and the source it runs now. It outlives a reload that
// replaces its source (an edited configuration), so its counters go on; the protocol's own counters start again
// with the new source.
type input struct {
	g    *gateway
	name string // unique across all inputs
	kind string // "mqtt", "modbus", "opcua"

	cur atomic.Pointer[instance] // the source running (or last run); nil until the first start

	// pending is what the input queued whose commit has not been counted yet; it is settled at every Queue and
	// before the counters are read.
	pending     *fieldgate.Pending[queued]
	settleMu    sync.Mutex        // one settle at a time, so lastCommit is counted once
	lastCommit  *fieldgate.Commit // the last commit counted in batches
	readings    atomic.Uint64     // committed to the buffer
	implausible atomic.Uint64     // committed with their source time replaced (outside the bound)
	timeWarned  atomic.Int64      // unix nanoseconds of the last log line about implausible source times
	batches     atomic.Uint64     // commits that carried readings of the input
	emitErrors  atomic.Uint64     // Queue calls refused, or whose commit failed (the input did not acknowledge upstream)
	deadLetters atomic.Uint64     // dead letters committed
	deadClasses deadLetterCounts  // the same, by class
	lastReading atomic.Int64      // unix nanoseconds of the last reading queued
	state       atomic.Value      // string: "starting", "running", "failed", "stopped"
	lastError   atomic.Value      // string
}

// instance is one run of one built source.
type instance struct {
	cfg    inputConfig
	src    *source
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned
}

// queued is one Queue call of an input, waiting for its commit to be counted.
type queued struct {
	c                           *fieldgate.Commit
	readings, dead, implausible int
	classes                     []string // the dead letters' classes
}

var _ fieldgate.Sink = (*input)(nil)

func newInput(g *gateway, name, kind string) *input {
	in := &input{g: g, name: name, kind: kind, pending: fieldgate.NewPending[queued]()}
	in.state.Store("starting")
	return in
}

// start runs src as the input's source until ctx ends or the input is stopped. A Run that returns while the
// input should run is a failure for good (its contract: a lost connection is retried inside Run): the input is
// marked failed, and the gateway told, since one bad device must not stop the others.
func (in *input) start(ctx context.Context, cfg inputConfig, src *source) {
	ctx, cancel := context.WithCancel(ctx)
	it := &instance{cfg: cfg, src: src, cancel: cancel, done: make(chan struct{})}
	in.cur.Store(it)
	in.state.Store("running")
	in.lastError.Store("")
	go func() {
		defer close(it.done)
		err := src.Run(ctx, in)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("returned before shutdown")
		}
		in.state.Store("failed")
		in.lastError.Store(err.Error())
		in.g.inputFailed(in, err)
	}()
}

// stop cancels the running source and waits up to timeout for its Run to return; it reports whether it did.
func (in *input) stop(timeout time.Duration) bool {
	it := in.cur.Load()
	if it == nil {
		return true
	}
	it.cancel()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-it.done:
		if in.getState() == "running" {
			in.state.Store("stopped")
		}
		return true
	case <-t.C:
		return false
	}
}

// connected reports whether the running source is connected to its broker, device or server.
func (in *input) connected() bool {
	it := in.cur.Load()
	return it != nil && in.getState() == "running" && it.src.connected()
}

// stats is the running source's own Stats(), or nil.
func (in *input) stats() any {
	if it := in.cur.Load(); it != nil {
		return it.src.stats()
	}
	return nil
}

// Queue is the buffer's Queue, counted. Source times outside the input's bound are replaced first
// (fieldgate.SourceTimeBound.Check), here, so that every input is checked the same way.
func (in *input) Queue(rs []fieldgate.Reading, dead []fieldgate.DeadLetter) (*fieldgate.Commit, error) {
	rs, implausible := in.checkSourceTimes(rs)
	c, err := in.g.buf.Queue(rs, dead)
	if err != nil {
		in.emitErrors.Add(1)
		return nil, err
	}
	if len(rs) > 0 {
		in.lastReading.Store(time.Now().UnixNano())
		in.g.devices.seen(in.name, rs)
	}
	q := queued{c: c, readings: len(rs), dead: len(dead), implausible: implausible}
	for _, d := range dead {
		q.classes = append(q.classes, d.Class)
	}
	in.pending.Add(c, q)
	in.settle()
	return c, nil
}

// Flush is the buffer's Flush.
func (in *input) Flush() { in.g.buf.Flush() }

// settle counts the input's queued work whose commit has finished.
func (in *input) settle() {
	in.settleMu.Lock()
	defer in.settleMu.Unlock()
	in.pending.Settle(func(q queued, err error) {
		if err != nil {
			in.emitErrors.Add(1)
			return
		}
		in.readings.Add(uint64(q.readings))
		in.implausible.Add(uint64(q.implausible))
		in.deadLetters.Add(uint64(q.dead))
		for _, c := range q.classes {
			in.deadClasses.add(c)
		}
		if q.readings > 0 && q.c != in.lastCommit {
			in.lastCommit = q.c
			in.batches.Add(1)
		}
	})
}

// checkSourceTimes returns rs with every implausible source time replaced, and how many were. rs itself is not
// changed (it is the input's): the first replacement works on a copy. At most one line a minute is logged.
func (in *input) checkSourceTimes(rs []fieldgate.Reading) ([]fieldgate.Reading, int) {
	var times fieldgate.SourceTimeBound
	if it := in.cur.Load(); it != nil {
		times = it.cfg.times
	}
	n := 0
	for i := range rs {
		r := rs[i]
		if times.Check(&r) {
			continue
		}
		if n == 0 {
			rs = slices.Clone(rs)
		}
		n++
		if now := time.Now().UnixNano(); now-in.timeWarned.Load() >= int64(time.Minute) {
			in.timeWarned.Store(now)
			in.g.log.Warn("source time outside the plausible range; the reading is kept at its gateway time, marked uncertain (logged at most once a minute)",
				"input", in.kind+":"+in.name, "device", r.Device, "metric", r.Metric, "source_time", rs[i].SourceTime,
				"gateway_time", r.GatewayTime, "max_past", times.MaxPast, "max_future", times.MaxFuture)
		}
		rs[i] = r
	}
	return rs, n
}

func (in *input) getState() string {
	s, _ := in.state.Load().(string)
	return s
}

func (in *input) getLastError() string {
	s, _ := in.lastError.Load().(string)
	return s
}
