package testutil

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
)

// Sink is a fieldgate.Sink for the inputs' tests: a group committer in memory, with the buffer's contract.
// Queued work is committed Interval after the first of it, or at once after Flush; a commit takes Delay; invalid
// readings are refused at Queue with fieldgate.ErrInvalidReading; commits can be made to fail. Set Interval and
// Delay before the first Queue.
type Sink struct {
	Interval time.Duration // default 5ms
	Delay    time.Duration // simulated commit time

	mu          sync.Mutex
	cur         *fieldgate.Commit
	curR        []fieldgate.Reading
	curD        []fieldgate.DeadLetter
	first       time.Time
	flush       bool
	readings    []fieldgate.Reading
	dead        []fieldgate.DeadLetter
	commits     int
	flushes     int
	failR       int // fail this many commits that carry readings
	failD       int // fail this many commits that carry dead letters
	committed   chan struct{}
	wake        chan struct{}
	stop        chan struct{}
	stopped     chan struct{}
	startedOnce sync.Once
}

var _ fieldgate.Sink = (*Sink)(nil)

// NewSink returns a sink whose committer stops when the test ends.
func NewSink(t testing.TB) *Sink {
	s := &Sink{Interval: 5 * time.Millisecond, committed: make(chan struct{}, 1), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	t.Cleanup(func() {
		s.startedOnce.Do(func() { close(s.stopped) })
		close(s.stop)
		<-s.stopped
	})
	return s
}

// Queue implements fieldgate.Sink.
func (s *Sink) Queue(rs []fieldgate.Reading, dead []fieldgate.DeadLetter) (*fieldgate.Commit, error) {
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			return nil, err
		}
	}
	s.startedOnce.Do(func() { go s.run() })
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stop:
		return nil, errors.New("test sink stopped")
	default:
	}
	if s.cur == nil {
		s.cur = fieldgate.NewCommit()
	}
	if len(s.curR)+len(s.curD) == 0 && len(rs)+len(dead) > 0 {
		s.first = time.Now()
		s.signal()
	}
	s.curR = append(s.curR, rs...)
	s.curD = append(s.curD, dead...)
	return s.cur, nil
}

// Flush implements fieldgate.Sink.
func (s *Sink) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.curR)+len(s.curD) > 0 && !s.flush {
		s.flush = true
		s.flushes++
		s.signal()
	}
}

func (s *Sink) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Sink) run() {
	defer close(s.stopped)
	t := time.NewTimer(time.Hour)
	for {
		s.mu.Lock()
		wait := time.Duration(0)
		if len(s.curR)+len(s.curD) > 0 && !s.flush {
			wait = time.Until(s.first.Add(s.Interval))
		}
		due := len(s.curR)+len(s.curD) > 0 && wait <= 0
		var c *fieldgate.Commit
		var rs []fieldgate.Reading
		var ds []fieldgate.DeadLetter
		if due {
			c, rs, ds = s.cur, s.curR, s.curD
			s.cur, s.curR, s.curD, s.flush = nil, nil, nil, false
		}
		s.mu.Unlock()
		if due {
			s.commit(c, rs, ds)
			continue
		}
		if wait > 0 {
			t.Reset(wait)
		}
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Sink) commit(c *fieldgate.Commit, rs []fieldgate.Reading, ds []fieldgate.DeadLetter) {
	if s.Delay > 0 {
		time.Sleep(s.Delay)
	}
	s.mu.Lock()
	var err error
	switch {
	case len(rs) > 0 && s.failR > 0:
		s.failR--
		err = errors.New("injected: disk full")
	case len(ds) > 0 && s.failD > 0:
		s.failD--
		err = errors.New("injected: dead letter store failed")
	default:
		s.readings = append(s.readings, rs...)
		s.dead = append(s.dead, ds...)
	}
	s.commits++
	s.mu.Unlock()
	c.Finish(err)
	select {
	case s.committed <- struct{}{}:
	default:
	}
}

// FailReadings makes the next n commits that carry readings fail.
func (s *Sink) FailReadings(n int) { s.mu.Lock(); s.failR = n; s.mu.Unlock() }

// FailDeadLetters makes the next n commits that carry dead letters fail.
func (s *Sink) FailDeadLetters(n int) { s.mu.Lock(); s.failD = n; s.mu.Unlock() }

// Snapshot returns copies of the committed readings and dead letters.
func (s *Sink) Snapshot() ([]fieldgate.Reading, []fieldgate.DeadLetter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.readings), slices.Clone(s.dead)
}

// Count returns how many readings and dead letters were committed.
func (s *Sink) Count() (readings, dead int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.readings), len(s.dead)
}

// Commits returns the number of commits so far (failed ones included) and how many Flush started early.
func (s *Sink) Commits() (commits, flushes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commits, s.flushes
}

// Committed receives (without blocking the committer) after each commit.
func (s *Sink) Committed() <-chan struct{} { return s.committed }

// EmitFunc is a fieldgate.Sink that hands every Queue call to fn at once and returns a commit already done with
// fn's error: for tests that look at what a source queues, not at how commits group it.
type EmitFunc func(ctx context.Context, rs []fieldgate.Reading) error

// Queue implements fieldgate.Sink. Dead letters are dropped.
func (f EmitFunc) Queue(rs []fieldgate.Reading, _ []fieldgate.DeadLetter) (*fieldgate.Commit, error) {
	c := fieldgate.NewCommit()
	c.Finish(f(context.Background(), rs))
	return c, nil
}

// Flush implements fieldgate.Sink; it does nothing.
func (EmitFunc) Flush() {}
