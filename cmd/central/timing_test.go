package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/cratedb"
)

// timingStore measures the time spent in each store method (benchmarks).
type timingStore struct {
	store
	mu sync.Mutex
	d  map[string]time.Duration
	n  map[string]int
}

func newTimingStore(s store) *timingStore {
	return &timingStore{store: s, d: map[string]time.Duration{}, n: map[string]int{}}
}

func (t *timingStore) note(name string, t0 time.Time) {
	t.mu.Lock()
	t.d[name] += time.Since(t0)
	t.n[name]++
	t.mu.Unlock()
}

func (t *timingStore) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	for k, v := range t.d {
		fmt.Fprintf(&b, "%s: %d calls %.2fs; ", k, t.n[k], v.Seconds())
	}
	return b.String()
}

func (t *timingStore) WriteRaw(ctx context.Context, rows []cratedb.Raw) ([]cratedb.Rejected, error) {
	defer t.note("raw", time.Now())
	return t.store.WriteRaw(ctx, rows)
}

func (t *timingStore) WriteAggregates(ctx context.Context, aggs []fieldgate.Aggregate) error {
	defer t.note("aggregates", time.Now())
	return t.store.WriteAggregates(ctx, aggs)
}

func (t *timingStore) SaveCheckpoints(ctx context.Context, group, topic string, cps []cratedb.Checkpoint) error {
	defer t.note("checkpoints", time.Now())
	return t.store.SaveCheckpoints(ctx, group, topic, cps)
}

func (t *timingStore) ReadWindow(ctx context.Context, device, metric string, start, end time.Time) ([]fieldgate.Reading, error) {
	defer t.note("read", time.Now())
	return t.store.ReadWindow(ctx, device, metric, start, end)
}
