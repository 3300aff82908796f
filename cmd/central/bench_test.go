package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/cratedb"
)

// BenchmarkEndToEnd measures, in one run on the same PostgreSQL:
//
//   - e2e_readings/s: b.N readings waiting in kfake (4 partitions) loaded by the central service with windows
//     of 10s and 1m on: decode, raw upsert, windows, aggregate upserts, checkpoints, commits — from the first
//     raw row in to the last (the group join before is not counted);
//   - copy_readings/s: PostgreSQL's COPY (pgx CopyFrom) of the same readings into the same raw table of a fresh
//     database: the limit (the mean of a run before and one after the end-to-end run);
//   - pct_of_copy: the first as a percentage of the second (target ≥ 60);
//   - p99_latency_ms: at a nominal load of 2,000 readings/s produced live for 5 s, the 99th percentile over
//     written batches of the largest delay from a reading's event time to its raw row being committed.
//
// Run: FIELDGATE_TEST_POSTGRES=postgres://... go test -run '^$' -bench EndToEnd -benchtime 1x ./cmd/central
func BenchmarkEndToEnd(b *testing.B) {
	// A fixed size (b.N when larger): the figure needs enough readings to reach a steady state, and a single
	// run under `make bench`'s default -benchtime takes longer than its 1s.
	n := max(b.N, 500000)
	const devices = 500
	steps := (n + devices*4 - 1) / (devices * 4)
	base := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	rs := stream(devices, steps, base, time.Second, "bench")[:n]

	// The baseline: COPY into the raw table of its own database, once before and once after the end-to-end
	// run (the mean is the figure: on a shared machine the load varies).
	ctx := context.Background()
	copyRate := func() float64 {
		hc := newHarness(b, 1, testDB(b, ""))
		t0 := time.Now()
		if _, err := hc.check.CopyFrom(ctx, pgx.Identifier{"readings"},
			[]string{"device", "metric", "ts", "kind", "value", "value_text", "quality", "status", "source_time", "gateway_time", "gateway"},
			pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) { return copyRow(rs[i]), nil })); err != nil {
			b.Fatal(err)
		}
		return float64(n) / time.Since(t0).Seconds()
	}
	b.ResetTimer()
	copy1 := copyRate()
	b.StopTimer()

	// End to end.
	h := newHarness(b, 4, testDB(b, ""))
	h.produce(rs)
	cfg := h.config("bench")
	cfg.Database.BatchSize = 5000
	cfg.Database.Linger = 50 * time.Millisecond
	cfg.Kafka.CommitInterval = time.Second
	var (
		mu  sync.Mutex
		lat []float64
		lp  *loader
	)
	var ts *timingStore
	testHook = func(l *loader) {
		lp = l
		ts = newTimingStore(l.db)
		l.db = ts
		l.latencyHook = func(s float64) {
			mu.Lock()
			lat = append(lat, s)
			mu.Unlock()
		}
	}
	defer func() { testHook = nil }()
	b.StartTimer()
	h.start("bench", cfg)
	// The rate counts from the first row in (joining the group takes a few seconds that are no throughput),
	// polled sparingly: a count(*) competes with the load for the 2 cores.
	var c0 int64
	for c0 == 0 {
		time.Sleep(10 * time.Millisecond)
		c0 = h.count("SELECT count(*) FROM readings")
	}
	t0 := time.Now()
	for h.count("SELECT count(*) FROM readings") < int64(n) {
		time.Sleep(50 * time.Millisecond)
	}
	e2eRate := float64(int64(n)-c0) / time.Since(t0).Seconds()
	b.StopTimer()
	b.Logf("time in the database by call: %s", ts)
	if ws, ok := ts.store.(*cratedb.Writer); ok {
		st := ws.Stats()
		mfs, _ := lp.met.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "fieldgate_central_batch_seconds" {
				h := mf.GetMetric()[0].GetHistogram()
				b.Logf("%d batches, %.1fs in batches", h.GetSampleCount(), h.GetSampleSum())
			}
		}
		b.Logf("e2e %.1fs: %d statements, %.1fs in write statements, %d raw rows (%d INSERT conflicts), %d aggregate rows, windows %+v",
			time.Since(t0).Seconds(), st.Statements, st.WriteSeconds, st.RawRows, st.InsertConflicts, st.AggregateRows, lp.win.Stats())
	}

	// Latency at nominal load: 2,000 readings/s with event time = now, for 5 s.
	mu.Lock()
	lat = lat[:0]
	mu.Unlock()
	const rate, secs = 2000, 5
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(secs * time.Second)
	seq := 0
	for now := range tick.C {
		if now.After(end) {
			break
		}
		batch := make([]*kgo.Record, 0, rate/100)
		for range rate / 100 {
			r := fieldgate.Reading{Device: fmt.Sprintf("live/dev-%03d", seq%200), Metric: "pressure", Value: fieldgate.Float(float64(seq % 64)),
				SourceTime: time.Now(), GatewayTime: time.Now()}
			seq++
			v, _ := fieldgate.Encode(r)
			batch = append(batch, &kgo.Record{Key: []byte(r.Device), Value: v})
		}
		h.prod.Produce(ctx, batch[0], nil)
		for _, rec := range batch[1:] {
			h.prod.Produce(ctx, rec, nil)
		}
	}
	_ = h.prod.Flush(ctx)
	time.Sleep(time.Second)
	mu.Lock()
	l := slices.Clone(lat)
	mu.Unlock()
	slices.Sort(l)
	p99 := 0.0
	if len(l) > 0 {
		p99 = l[min(len(l)-1, len(l)*99/100)]
	}
	b.StartTimer()
	copy2 := copyRate()
	b.StopTimer()
	b.Logf("COPY %.0f rows/s before, %.0f after the end-to-end run", copy1, copy2)
	copyMean := (copy1 + copy2) / 2
	b.ReportMetric(e2eRate, "e2e_readings/s")
	b.ReportMetric(copyMean, "copy_readings/s")
	b.ReportMetric(100*e2eRate/copyMean, "pct_of_copy")
	b.ReportMetric(p99*1000, "p99_latency_ms")
	b.ReportMetric(0, "ns/op")
}

func copyRow(r fieldgate.Reading) []any {
	var value pgtype.Float8
	if f, ok := r.Value.Number(); ok {
		value = pgtype.Float8{Float64: f, Valid: true}
	}
	var text pgtype.Text
	if r.Value.Kind() != fieldgate.KindFloat {
		text = pgtype.Text{String: r.Value.String(), Valid: true}
	}
	var src pgtype.Timestamptz
	if !r.SourceTime.IsZero() {
		src = pgtype.Timestamptz{Time: cratedb.Ms(r.SourceTime), Valid: true}
	}
	return []any{r.Device, r.Metric, cratedb.Ms(r.EventTime()), r.Value.Kind().String(), value, text, r.Quality.String(),
		int64(r.Status), src, cratedb.Ms(r.GatewayTime), "gw-test"}
}
