package modbus

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
)

// benchMap is the benchmark map: 200 tags spread over 1,000 holding registers, one every 5 registers,
// a mix of uint16, int16, int32 and float32.
func benchMap() []Tag {
	types := []string{"uint16", "int16", "int32", "float32"}
	rng := rand.New(rand.NewPCG(7, 7))
	var tags []Tag
	for i := range 200 {
		tags = append(tags, Tag{Name: fmt.Sprint("t", i), Address: 5 * i, Type: types[rng.IntN(len(types))]})
	}
	return tags
}

func benchItems() []planItem {
	var ct []compiledTag
	for _, t := range benchMap() {
		c, err := t.compile(ABCD)
		if err != nil {
			panic(err)
		}
		ct = append(ct, c)
	}
	return itemsOf(ct)
}

// BenchmarkPlan compares the requests per poll of the planner with Telegraf's max_insert on the benchmark map,
// at Telegraf's default fill (50) and at ours (10).
//
//	go test -run '^$' -bench 'BenchmarkPlan$' ./protocols/modbus/
func BenchmarkPlan(b *testing.B) {
	items := benchItems()
	for _, fill := range []int{50, DefaultGapFill} {
		b.Run(fmt.Sprint("fill=", fill), func(b *testing.B) {
			var runs [][]planItem
			for b.Loop() {
				runs = planKind(items, planLimits{maxLen: 125, gap: fill})
			}
			q, r := costOf(runs)
			bq, br := costOf(maxInsert(items, 125, fill))
			if q > bq {
				b.Fatalf("planner %d requests, max_insert %d", q, bq)
			}
			b.ReportMetric(float64(q), "requests/poll")
			b.ReportMetric(float64(r), "registers/poll")
			b.ReportMetric(float64(bq), "max_insert_requests/poll")
			b.ReportMetric(float64(br), "max_insert_registers/poll")
		})
	}
}

func benchSource(b *testing.B, tags []Tag, interval time.Duration) (*Source, *image) {
	im := &image{}
	for i := range 1000 {
		im.holding[i] = uint16(i)
	}
	addr := startImageServer(b, im)
	s, err := New(Config{Name: "bench", Address: addr, Devices: []Device{{Name: "plc", Groups: []Group{{Name: "all", Interval: interval, Tags: tags}}}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s, im
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPoll polls the 200-tag map against the library's in-process server as fast as it answers: poll
// cycles per second, tags per second and CPU per tag (the whole process, the in-process server included, so
// the gateway's own share is lower). One core:
//
//	go test -run '^$' -bench 'BenchmarkPoll$' -cpu 1 ./protocols/modbus/
func BenchmarkPoll(b *testing.B) {
	s, _ := benchSource(b, benchMap(), time.Second)
	g := s.groups[0]
	ctx := context.Background()
	buf := make([]fieldgate.Reading, 0, 256)
	defer s.closeClient()
	buf = s.poll(ctx, g, buf[:0]) // connect
	cpu0 := cpuTime()
	start := time.Now()
	for b.Loop() {
		buf = s.poll(ctx, g, buf[:0])
		if len(buf) != 200 || buf[0].Quality != fieldgate.Good {
			b.Fatalf("poll gave %d readings", len(buf))
		}
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.ReportMetric(float64(b.N)/el.Seconds(), "polls/s")
	b.ReportMetric(float64(200*b.N)/el.Seconds(), "tags/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(200*b.N), "cpu-ns/tag")
	b.ReportMetric(float64(len(g.requests)), "requests/poll")
}

// BenchmarkPollJitter measures how late polls start against their schedule at 100 ms under load: the 200-tag
// map and four groups of 20 float32 on one connection, all due at the same ticks (so four of the five start
// after the polls before them), with and without a goroutine keeping one core busy. One iteration is one
// 100 ms tick of the big group, so give a count:
//
//	go test -run '^$' -bench 'BenchmarkPollJitter' -benchtime 100x ./protocols/modbus/
//
// The baseline is a bare loop sleeping to the same 100 ms grid, measured in the same run: what the host's
// scheduler alone costs.
func BenchmarkPollJitter(b *testing.B) {
	b.Run("baseline=sleep", func(b *testing.B) { benchSleepJitter(b, false) })
	b.Run("load=poll", func(b *testing.B) { benchJitter(b, false) })
	b.Run("baseline=sleep+busy-core", func(b *testing.B) { benchSleepJitter(b, true) })
	b.Run("load=poll+busy-core", func(b *testing.B) { benchJitter(b, true) })
}

// burnCore keeps one goroutine busy until the returned stop is called.
func burnCore() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		x := 0
		for ctx.Err() == nil {
			for i := range 100000 {
				x += i * i
			}
		}
		_ = x
	}()
	return func() { cancel(); wg.Wait() }
}

func benchSleepJitter(b *testing.B, burn bool) {
	if burn {
		defer burnCore()()
	}
	interval := 100 * time.Millisecond
	next := time.Now().Truncate(interval).Add(interval)
	var late []time.Duration
	for b.Loop() {
		time.Sleep(time.Until(next))
		late = append(late, time.Since(next))
		next = next.Add(interval)
	}
	reportLate(b, late)
}

func reportLate(b *testing.B, late []time.Duration) {
	if len(late) == 0 {
		return
	}
	slices.Sort(late)
	q := func(p float64) float64 { return float64(late[int(p*float64(len(late)-1))]) / 1e6 }
	b.ReportMetric(q(0.5), "p50-late-ms")
	b.ReportMetric(q(0.99), "p99-late-ms")
	b.ReportMetric(q(1), "max-late-ms")
}

func benchJitter(b *testing.B, burn bool) {
	interval := 100 * time.Millisecond
	im := &image{}
	addr := startImageServer(b, im)
	groups := []Group{{Name: "big", Interval: interval, Tags: benchMap()}}
	for i := range 4 {
		var tags []Tag
		for j := range 20 {
			tags = append(tags, Tag{Name: fmt.Sprintf("g%d_%d", i, j), Register: "input", Address: 100*i + 3*j, Type: "float32"})
		}
		groups = append(groups, Group{Name: fmt.Sprint("small", i), Interval: interval, Tags: tags})
	}
	s, err := New(Config{Name: "bench", Address: addr, Devices: []Device{{Name: "plc", Groups: groups}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var late []time.Duration
	bigPolls := 0
	ctx, cancel := context.WithCancel(context.Background())
	s.onPoll = func(scheduled, started time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if scheduled.UnixNano()%int64(interval) == 0 { // not the first poll, at start, off the grid
			late = append(late, started.Sub(scheduled))
		}
	}
	if burn {
		defer burnCore()()
	}
	b.ResetTimer()
	err = s.Run(ctx, testutil.EmitFunc(func(_ context.Context, rs []fieldgate.Reading) error {
		if len(rs) == 200 {
			bigPolls++
			if bigPolls > b.N { // the first is at start
				cancel()
			}
		}
		return nil
	}))
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	reportLate(b, late)
	b.ReportMetric(float64(s.Stats().Devices[0].SkippedTicks), "skipped-ticks")
}
