package forward

import (
	"context"
	"slices"
	"sync"

	"github.com/fieldgate/fieldgate"
)

// memLog is an in-memory Log for the forwarder's tests, with injectable failures.
type memLog struct {
	mu       sync.Mutex
	next     uint64
	entries  []memEntry
	dead     []fieldgate.DeadLetter
	appended chan struct{}
	acks     int

	scanErr, ackErr, rejectErr error
}

type memEntry struct {
	seq        uint64
	key, value []byte
}

var _ Log = (*memLog)(nil)

func newMemLog() *memLog { return &memLog{next: 1, appended: make(chan struct{}, 1)} }

// add appends one entry and returns its seq.
func (m *memLog) add(key string, value []byte) uint64 {
	m.mu.Lock()
	seq := m.next
	m.next++
	m.entries = append(m.entries, memEntry{seq: seq, key: []byte(key), value: slices.Clone(value)})
	m.mu.Unlock()
	select {
	case m.appended <- struct{}{}:
	default:
	}
	return seq
}

func (m *memLog) Scan(max int, fn func(seq uint64, key, value []byte) error) error {
	m.mu.Lock()
	if m.scanErr != nil {
		defer m.mu.Unlock()
		return m.scanErr
	}
	batch := slices.Clone(m.entries[:min(max, len(m.entries))])
	m.mu.Unlock()
	for _, e := range batch {
		if err := fn(e.seq, slices.Clone(e.key), slices.Clone(e.value)); err != nil {
			return err
		}
	}
	return nil
}

func (m *memLog) Ack(seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ackErr != nil {
		return m.ackErr
	}
	i := 0
	for i < len(m.entries) && m.entries[i].seq <= seq {
		i++
	}
	m.entries = slices.Delete(m.entries, 0, i)
	m.acks++
	return nil
}

func (m *memLog) Reject(_ context.Context, d fieldgate.DeadLetter) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rejectErr != nil {
		return m.rejectErr
	}
	m.dead = append(m.dead, d)
	return nil
}

func (m *memLog) Appended() <-chan struct{} { return m.appended }

func (m *memLog) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

func (m *memLog) deadLetters() []fieldgate.DeadLetter {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.dead)
}

func (m *memLog) setErrs(scan, ack, reject error) {
	m.mu.Lock()
	m.scanErr, m.ackErr, m.rejectErr = scan, ack, reject
	m.mu.Unlock()
}
