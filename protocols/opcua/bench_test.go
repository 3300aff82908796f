package opcua

// Benchmarks against the in-process gopcua server (which hosts 10,000 items, in subscriptions of 1000: its
// publish responses ignore MaxNotificationsPerPublish, see bulkGroups). The server runs in the same process, so
// CPU figures include its share; the gopcua-subscribe baseline carries the same server cost, so compare the two
// side by side:
//
//   go test -run '^$' -bench . -benchtime 5x ./protocols/opcua/

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const benchItems = 10000

// BenchmarkNotifications: 10,000 monitored items at 1s publishing interval; each iteration changes every value
// once and waits until all 10,000 notifications are handled. Reports notifications per second and CPU
// microseconds per notification, for the Source (queue, conversion, Emit) and for gopcua's own Subscribe as a
// baseline (which only hands raw notifications to a channel).
func BenchmarkNotifications(b *testing.B) {
	b.Run("fieldgate", func(b *testing.B) {
		ts := startBenchServer(b)
		var got atomic.Int64
		cfg := Config{Name: "bench", Endpoint: ts.endpoint, Security: Security{Mode: ModeNone},
			Groups: bulkGroups(ts, benchItems, 1000, time.Second)}
		src, stop := runCounting(b, cfg, &got)
		defer stop()
		waitCount(b, &got, benchItems)
		measure(b, &got, func() { ts.tick(true) })
		if st := src.Stats(); st.Dropped != 0 || st.SequenceGaps != 0 {
			b.Errorf("dropped %d, gaps %d", st.Dropped, st.SequenceGaps)
		}
	})
	b.Run("gopcua-subscribe", func(b *testing.B) {
		ts := startBenchServer(b)
		var got atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c, err := opcua.NewClient(ts.endpoint, opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			b.Fatal(err)
		}
		defer c.Close(context.Background())
		ch := make(chan *opcua.PublishNotificationData, 64)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case n := <-ch:
					if dc, ok := n.Value.(*ua.DataChangeNotification); ok {
						got.Add(int64(len(dc.MonitoredItems)))
					}
				}
			}
		}()
		for lo := 0; lo < benchItems; lo += 1000 {
			sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: time.Second}, ch)
			if err != nil {
				b.Fatal(err)
			}
			var reqs []*ua.MonitoredItemCreateRequest
			for i := lo; i < lo+1000; i++ {
				reqs = append(reqs, opcua.NewMonitoredItemCreateRequestWithDefaults(
					ua.NewStringNodeID(ts.ns.ID(), "Bulk."+strconv.Itoa(i)), ua.AttributeIDValue, uint32(i+1)))
			}
			if _, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth, reqs...); err != nil {
				b.Fatal(err)
			}
		}
		waitCount(b, &got, benchItems)
		measure(b, &got, func() { ts.tick(true) })
	})
}

func startBenchServer(b *testing.B) *testServer {
	t := &testing.T{}
	ts := &testServer{t: t, port: testutil.FreePort(b), bulk: benchItems}
	ts.cert, ts.key = testServerIdentity(b)
	ts.endpoint = "opc.tcp://127.0.0.1:" + strconv.Itoa(ts.port)
	ts.start(serverOpts{port: ts.port, bulk: benchItems, insecure: true})
	b.Cleanup(ts.stop)
	return ts
}

func waitCount(b *testing.B, got *atomic.Int64, n int64) {
	deadline := time.Now().Add(60 * time.Second)
	for got.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d notifications within 60s", got.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runCounting runs a Source for cfg whose Emit only counts the readings into got; stop cancels Run and waits for
// it to return.
func runCounting(b *testing.B, cfg Config, got *atomic.Int64) (src *Source, stop func()) {
	src, err := New(cfg, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Run(ctx, testutil.EmitFunc(func(_ context.Context, rs []fieldgate.Reading) error { got.Add(int64(len(rs))); return nil }))
	}()
	return src, func() { cancel(); <-done }
}

// measure times b.N rounds of benchItems notifications each, counted in got; change, if not nil, makes the
// server change every value once per round (otherwise the server changes them by itself).
func measure(b *testing.B, got *atomic.Int64, change func()) {
	base := got.Load()
	cpu0, t0 := cpuTime(), time.Now()
	b.ResetTimer()
	for i := range b.N {
		if change != nil {
			change()
		}
		waitCount(b, got, base+int64(i+1)*benchItems)
	}
	b.StopTimer()
	n := float64(got.Load() - base)
	b.ReportMetric(n/time.Since(t0).Seconds(), "notif/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/n, "cpu-µs/notif")
}

// BenchmarkSetup: from Run to all 10,000 items reporting their first value, with CreateMonitoredItems calls of
// 1000, 100 and 20 items (peers report subscription setup 10× slower with small batches).
func BenchmarkSetup(b *testing.B) {
	for _, batch := range []int{1000, 100, 20} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				b.StopTimer()
				ts := startBenchServer(b) // a fresh server: gopcua's does not clean up deleted subscriptions well
				cfg := Config{Name: "bench", Endpoint: ts.endpoint, Security: Security{Mode: ModeNone},
					Groups: bulkGroups(ts, benchItems, 1000, time.Second),
					Limits: Limits{MaxMonitoredItemsPerCall: batch}}
				b.StartTimer()
				var got atomic.Int64
				start := time.Now()
				_, stop := runCounting(b, cfg, &got)
				waitCount(b, &got, benchItems)
				total += time.Since(start)
				stop()
				ts.stop()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s-to-all-reporting")
		})
	}
}

// startBulkNPM starts node-opcua with benchItems bulk variables (stopped when the benchmark ends) and returns it,
// its state directory and the nodes of the variables; it skips without FIELDGATE_TEST_NPM_DIR.
func startBulkNPM(b *testing.B, args ...string) (s *npmServer, dir string, nodes []Node) {
	if os.Getenv("FIELDGATE_TEST_NPM_DIR") == "" {
		b.Skip("FIELDGATE_TEST_NPM_DIR unset")
	}
	dir = b.TempDir()
	s, err := startNPM(testutil.FreePort(b), filepath.Join(dir, "pki"), append([]string{"-auto-accept", "-bulk", strconv.Itoa(benchItems)}, args...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.kill)
	for i := range benchItems {
		nodes = append(nodes, Node{ID: npmNS + "Bulk." + strconv.Itoa(i), Metric: "b" + strconv.Itoa(i)})
	}
	return s, dir, nodes
}

// BenchmarkSetupNPM: the same against node-opcua (a separate process, so its CPU is not counted), 10,000 items
// in one subscription at 1s publishing interval. Needs FIELDGATE_TEST_NPM_DIR.
func BenchmarkSetupNPM(b *testing.B) {
	s, dir, nodes := startBulkNPM(b)
	for _, batch := range []int{1000, 100, 20} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			cfg := Config{Name: "bench", Endpoint: s.endpoint, Security: Security{StateDir: dir, ServerFingerprints: []string{s.fingerprint}},
				Groups: []Group{{Name: "bulk", PublishingInterval: time.Second, Nodes: nodes}},
				Limits: Limits{MaxMonitoredItemsPerCall: batch}}
			var total time.Duration
			var cpu time.Duration
			for range b.N {
				var got atomic.Int64
				start, cpu0 := time.Now(), cpuTime()
				_, stop := runCounting(b, cfg, &got)
				waitCount(b, &got, benchItems)
				total += time.Since(start)
				cpu += cpuTime() - cpu0
				stop()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s-to-all-reporting")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "client-cpu-s")
		})
	}
}

// BenchmarkNotificationsNPM: 10,000 monitored items in one subscription at 1s publishing interval against
// node-opcua (a separate process: the CPU figure is the gateway side only), every value changing every second,
// SignAndEncrypt with Aes256_Sha256_RsaPss. Each iteration waits for 10,000 notifications. Needs
// FIELDGATE_TEST_NPM_DIR.
func BenchmarkNotificationsNPM(b *testing.B) {
	s, dir, nodes := startBulkNPM(b, "-bulk-change-ms", "1000")
	for _, mode := range []string{ModeSignAndEncrypt, ModeNone} {
		b.Run(mode, func(b *testing.B) {
			cfg := Config{Name: "bench", Endpoint: s.endpoint, Security: Security{Mode: mode, StateDir: dir, ServerFingerprints: []string{s.fingerprint}},
				Groups: []Group{{Name: "bulk", PublishingInterval: time.Second, Nodes: nodes}}}
			var got atomic.Int64
			src, stop := runCounting(b, cfg, &got)
			defer stop()
			waitCount(b, &got, benchItems)
			measure(b, &got, nil)
			if st := src.Stats(); st.Dropped != 0 || st.SequenceGaps != 0 {
				b.Errorf("dropped %d gaps %d", st.Dropped, st.SequenceGaps)
			}
		})
	}
}
