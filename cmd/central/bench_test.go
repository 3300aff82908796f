package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/cratedb"
	"github.com/fieldgate/fieldgate/internal/pgtest"
)

// BenchmarkEndToEnd measures, on the same PostgreSQL, in three rounds of one COPY run and one end-to-end run each
// (a shared 2-core machine's speed drifts; the rounds pair runs made close in time, and the medians are the
// figures):
//
//   - e2e_readings/s: 500,000 readings waiting in kfake (4 partitions) loaded by the central service with
//     windows of 10s and 1m on: decode, raw writes, windows, aggregate upserts, checkpoints, commits — from the
//     first raw row in to the last (the group join before is not counted);
//   - copy_readings/s: PostgreSQL's COPY (pgx CopyFrom) of the same readings into the same raw table of a fresh
//     database: the limit;
//   - pct_of_copy: the median over the rounds of the first as a percentage of the second (target ≥ 60);
//   - p99_latency_ms: at a nominal load of 2,000 readings/s produced live for 5 s, the 99th percentile over
//     written batches of the largest delay from a reading's event time to its raw row being committed.
//
// Run: FIELDGATE_TEST_POSTGRES=postgres://... go test -run '^$' -bench EndToEnd -benchtime 1x ./cmd/central
func BenchmarkEndToEnd(b *testing.B) {
	// A fixed size (b.N when larger): the figure needs enough readings to reach a steady state, and a single
	// run under `make bench`'s default -benchtime takes longer than its 1s.
	n := max(b.N, 500000)
	const devices = 500
	steps := (n + devices*metricsPerStep - 1) / (devices * metricsPerStep)
	base := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	rs := stream(devices, steps, base, time.Second, "bench")[:n]
	b.ResetTimer()
	var copies, e2es, pcts []float64
	var h *harness
	var lat *latencies
	for round := range 3 {
		c := copyRate(b, rs)
		var e float64
		h, lat, e = loadRate(b, rs, round == 2)
		copies, e2es, pcts = append(copies, c), append(e2es, e), append(pcts, 100*e/c)
		b.Logf("round %d: COPY %.0f rows/s, end to end %.0f rows/s (%.1f %%)", round+1, c, e, 100*e/c)
	}
	b.StopTimer()

	// Latency at nominal load, on the last round's service: 2,000 readings/s with event time = now, for 5 s.
	lat.reset()
	ctx := context.Background()
	const rate, secs = 2000, 5
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(secs * time.Second)
	seq := 0
	for now := range tick.C {
		if now.After(end) {
			break
		}
		for range rate / 100 {
			r := fieldgate.Reading{Device: fmt.Sprintf("live/dev-%03d", seq%200), Metric: "pressure", Value: fieldgate.Float(float64(seq % 64)),
				SourceTime: time.Now(), GatewayTime: time.Now()}
			seq++
			v, _ := fieldgate.Encode(r)
			h.prod.Produce(ctx, &kgo.Record{Key: []byte(r.Device), Value: v}, nil)
		}
	}
	_ = h.prod.Flush(ctx)
	time.Sleep(time.Second)
	b.ReportMetric(median(e2es), "e2e_readings/s")
	b.ReportMetric(median(copies), "copy_readings/s")
	b.ReportMetric(median(pcts), "pct_of_copy")
	b.ReportMetric(lat.p99()*1000, "p99_latency_ms")
	b.ReportMetric(0, "ns/op")
}

// copyRate is PostgreSQL's COPY of rs into the raw table of a fresh database, in rows per second.
func copyRate(b *testing.B, rs []fieldgate.Reading) float64 {
	dbURL := pgtest.NewDB(b, "")
	hc := newHarness(b, 1, dbURL)
	defer pgtest.Drop(b, "", dbURL)
	settle(b)
	t0 := time.Now()
	if _, err := hc.check.CopyFrom(context.Background(), pgx.Identifier{"readings"},
		[]string{"device", "metric", "ts", "kind", "value", "value_text", "quality", "status", "source_time", "gateway_time", "gateway"},
		pgx.CopyFromSlice(len(rs), func(i int) ([]any, error) { return copyRow(rs[i]), nil })); err != nil {
		b.Fatal(err)
	}
	return float64(len(rs)) / time.Since(t0).Seconds()
}

// loadRate loads rs, waiting in a fresh kfake, into a fresh database with the central service, in raw rows per
// second from the first row in to the last. keep leaves the service running (for the latency measurement) and
// returns its harness; otherwise it is stopped.
func loadRate(b *testing.B, rs []fieldgate.Reading, keep bool) (*harness, *latencies, float64) {
	dbURL := pgtest.NewDB(b, "")
	h := newHarness(b, 4, dbURL)
	b.StopTimer()
	h.produce(rs)
	settle(b)
	b.StartTimer()
	cfg := h.config("bench")
	cfg.Database.BatchSize = 5000
	cfg.Database.Linger = 50 * time.Millisecond
	cfg.Kafka.CommitInterval = time.Second
	lat := &latencies{}
	var lp *loader
	var ts *timingStore
	testHook = func(l *loader) {
		lp = l
		ts = newTimingStore(l.db)
		l.db = ts
		l.latencyHook = lat.add
	}
	defer func() { testHook = nil }()
	stop := h.start("bench", cfg)
	// The rate counts from the first row in (joining the group takes a few seconds that are no throughput),
	// polled sparingly: a count(*) competes with the load for the 2 cores.
	var c0 int64
	for c0 == 0 {
		time.Sleep(10 * time.Millisecond)
		c0 = h.count("SELECT count(*) FROM readings")
	}
	t0 := time.Now()
	n := int64(len(rs))
	for h.count("SELECT count(*) FROM readings") < n {
		time.Sleep(50 * time.Millisecond)
	}
	rate := float64(n-c0) / time.Since(t0).Seconds()
	// The rows are in; the loader reports the last sub-batches (to the windows, and their latency) just after.
	// Their latencies must not count in the measurement at nominal load that follows.
	for written(b, lp) < float64(n) {
		time.Sleep(10 * time.Millisecond)
	}
	if w, ok := ts.store.(*cratedb.Writer); ok {
		st := w.Stats()
		b.Logf("%.1fs: time in the database by call: %s; %d statements, %.1fs in write statements, %d raw rows (%d INSERT conflicts), %d aggregate rows, windows %+v",
			time.Since(t0).Seconds(), ts, st.Statements, st.WriteSeconds, st.RawRows, st.InsertConflicts, st.AggregateRows, lp.win.Stats())
	}
	if !keep {
		stop()
		pgtest.Drop(b, "", dbURL)
	}
	return h, lat, rate
}

// written is the loader's count of raw readings handed on to the windows (readings_written_total).
func written(b *testing.B, l *loader) float64 {
	mfs, err := l.met.reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "fieldgate_central_readings_written_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	b.Fatal("no fieldgate_central_readings_written_total")
	return 0
}

// settle waits until the database server is quiet: the last run's dirty pages written (CHECKPOINT) and no
// autovacuum worker busy with its tables, so that a run does not pay for the one before.
func settle(b *testing.B) {
	b.StopTimer()
	defer b.StartTimer()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, os.Getenv("FIELDGATE_TEST_POSTGRES"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CHECKPOINT"); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'").Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// latencies collects the per-batch event time → written delays the loader reports.
type latencies struct {
	mu sync.Mutex
	s  []float64
}

func (l *latencies) add(s float64) {
	l.mu.Lock()
	l.s = append(l.s, s)
	l.mu.Unlock()
}

func (l *latencies) reset() {
	l.mu.Lock()
	l.s = l.s[:0]
	l.mu.Unlock()
}

func (l *latencies) p99() float64 {
	l.mu.Lock()
	s := slices.Clone(l.s)
	l.mu.Unlock()
	if len(s) == 0 {
		return 0
	}
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
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
		src = pgtype.Timestamptz{Time: fieldgate.TruncateMs(r.SourceTime), Valid: true}
	}
	return []any{r.Device, r.Metric, fieldgate.TruncateMs(r.EventTime()), r.Value.Kind().String(), value, text, r.Quality.String(),
		int64(r.Status), src, fieldgate.TruncateMs(r.GatewayTime), "gw-test"}
}
