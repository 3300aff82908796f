package window

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
)

// The benchmark stream: 1,000 devices × 10 metrics, one reading per series per second of event time, in device
// order with up to ±200 ms of jitter (so readings arrive slightly out of order), float values. Fire is called
// after every second of event time (10,000 readings), as the loader would after a poll, with now = event time.
const (
	benchDevices = 1000
	benchMetrics = 10
	benchSeries  = benchDevices * benchMetrics
)

type benchStream struct {
	tmpl   []fieldgate.Reading
	jitter []int64
	t0     int64
}

func newBenchStream() *benchStream {
	rng := rand.New(rand.NewPCG(1, 2))
	s := &benchStream{t0: base.UnixMilli()}
	for d := range benchDevices {
		for m := range benchMetrics {
			s.tmpl = append(s.tmpl, fieldgate.Reading{Device: fmt.Sprintf("plant%d/dev%04d", d%4, d),
				Metric: fmt.Sprintf("metric%02d", m), Value: fieldgate.Float(float64(rng.IntN(10000)) / 8)})
		}
	}
	s.jitter = make([]int64, 7919) // prime, so jitter and series do not line up
	for i := range s.jitter {
		s.jitter[i] = rng.Int64N(401) - 200
	}
	return s
}

// reading returns the i-th reading of the stream and its second of event time.
func (s *benchStream) reading(i int) (fieldgate.Reading, int64) {
	sec := int64(i / benchSeries)
	r := s.tmpl[i%benchSeries]
	r.SourceTime = time.UnixMilli(s.t0 + sec*1000 + 500 + s.jitter[i%len(s.jitter)])
	return r, sec
}

// BenchmarkAdd is the window's throughput: readings aggregated per second on one core, sizes 1m and 1h,
// out-of-orderness 1s, lateness 1m, with dedup, watermarks, firing and release included.
//
//	go test -run '^$' -bench 'Add|Baseline' -benchtime 20000000x -cpu 1 ./window/
func BenchmarkAdd(b *testing.B) {
	s := newBenchStream()
	w, err := New(Config{Sizes: []time.Duration{time.Minute, time.Hour}, OutOfOrderness: time.Second,
		AllowedLateness: time.Minute, IdleTimeout: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	var fired int
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r, sec := s.reading(i)
		if w.Add(r, Position{Partition: int32(i % benchSeries / benchMetrics % 4), Offset: int64(i)}, r.SourceTime) != Added {
			b.Fatal("not added")
		}
		if (i+1)%benchSeries == 0 {
			fired += len(w.Fire(time.UnixMilli(s.t0 + sec*1000 + 1000)))
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
	if st := w.Stats(); b.N >= 100*benchSeries && (fired == 0 || st.Recomputes != 0 || st.Moves != 0) {
		b.Fatalf("fired %d, %+v", fired, st)
	}
}

// BenchmarkBaselineMap is the floor: the same stream folded into a plain map[(device, metric, start)]sum per
// size (count, sum, min, max), no watermark, no dedup, no firing, nothing ever released.
func BenchmarkBaselineMap(b *testing.B) {
	s := newBenchStream()
	type key struct {
		device, metric string
		start          int64
	}
	type agg struct {
		count         int64
		sum, min, max float64
	}
	sizes := []int64{60_000, 3_600_000}
	maps := []map[key]*agg{{}, {}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r, _ := s.reading(i)
		t := r.SourceTime.UnixMilli()
		f, _ := r.Value.Number()
		for j, size := range sizes {
			k := key{r.Device, r.Metric, t - t%size}
			a := maps[j][k]
			if a == nil {
				a = &agg{min: f, max: f}
				maps[j][k] = a
			}
			a.count++
			a.sum += f
			a.min = min(a.min, f)
			a.max = max(a.max, f)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
}

// BenchmarkMemory reports the heap held per series in steady state (sizes 1m and 1h, 1 Hz, 5s out-of-orderness,
// 1m lateness) after 10 minutes of event time.
//
//	go test -run '^$' -bench Memory -benchtime 1x ./window/
func BenchmarkMemory(b *testing.B) {
	for range b.N {
		s := newBenchStream()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		w, err := New(Config{Sizes: []time.Duration{time.Minute, time.Hour}, OutOfOrderness: 5 * time.Second,
			AllowedLateness: time.Minute, IdleTimeout: 5 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		n := 10 * 60 * benchSeries
		for i := range n {
			r, sec := s.reading(i)
			w.Add(r, Position{Offset: int64(i)}, r.SourceTime)
			if (i+1)%benchSeries == 0 {
				w.Fire(time.UnixMilli(s.t0 + sec*1000 + 1000))
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/benchSeries, "B/series")
		b.ReportMetric(float64(w.Stats().OpenWindows)/benchSeries, "windows/series")
		runtime.KeepAlive(w)
	}
}
