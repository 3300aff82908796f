package opcua

import (
	"strconv"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
)

// counterValues returns the Counter readings' values in arrival order.
func counterAfter(rs []fieldgate.Reading, t time.Time) int {
	n := 0
	for _, r := range rs {
		if r.Metric == "counter" && r.GatewayTime.After(t) {
			n++
		}
	}
	return n
}

// TestServerRestartResumes: the server goes away (all sessions and subscriptions with it) and comes back on the
// same port; data resumes by itself within the reconnect interval plus a few publishing intervals, the source is
// never restarted, no reading is invented while the server is down, and the gap shows in Stats (LastError
// until the input has reconnected).
func TestServerRestartResumes(t *testing.T) {
	ts := startTestServer(t, serverOpts{})
	ts.ticker(t, 50*time.Millisecond, false)
	cfg := baseConfig(t, ts,
		Group{Name: "subs", PublishingInterval: 100 * time.Millisecond, KeepAliveCount: 3,
			Nodes: []Node{{ID: "nsu=urn:fieldgate:test;s=Counter", Metric: "counter"}}},
		Group{Name: "polls", Mode: GroupPoll, PollInterval: 100 * time.Millisecond,
			Nodes: []Node{{ID: "ns=" + ts.nsID() + ";s=Counter", Metric: "polled"}}})
	cfg.ReconnectInterval, cfg.MaxReconnectInterval = 300*time.Millisecond, 300*time.Millisecond
	cfg.RequestTimeout = time.Second
	src, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	runSource(t, src, col.emit)
	waitFor(t, 5*time.Second, "counter readings", func() bool { return counterAfter(col.snapshot(), time.Time{}) >= 5 })

	for round := range 2 {
		ts.stop()
		waitFor(t, 5*time.Second, "the source to notice", func() bool { return !src.Stats().Connected })
		down := time.Now()
		before := len(col.snapshot())
		time.Sleep(700 * time.Millisecond)
		// Nothing is invented while the server is down (readings queued before the drop may still land).
		for _, r := range col.snapshot()[before:] {
			if r.GatewayTime.After(down) {
				t.Fatalf("round %d: reading %+v while the server was down", round, r)
			}
		}
		st := src.Stats()
		if st.LastError == "" {
			t.Errorf("round %d: no last error while the server is down", round)
		}
		if st.DisconnectedSince.IsZero() || st.DisconnectedSince.After(down) {
			t.Errorf("round %d: DisconnectedSince %v, want the start of the gap", round, st.DisconnectedSince)
		}
		for _, g := range st.Groups {
			if g.LastData.After(down) {
				t.Errorf("group %s: LastData %v after the server went down", g.Name, g.LastData)
			}
		}
		ts.start(serverOpts{port: ts.port})
		back := time.Now()
		// reconnect interval 300ms + a few 100ms publishing intervals
		waitFor(t, 3*time.Second, "data after the restart", func() bool {
			return counterAfter(col.snapshot(), back) >= 3
		})
		t.Logf("round %d: data resumed %v after the server was back", round, time.Since(back).Round(10*time.Millisecond))
		if st := src.Stats(); st.LastError != "" {
			t.Errorf("round %d: last error %q after the reconnect, want it cleared", round, st.LastError)
		}
	}
	st := src.Stats()
	if st.Reconnects != 2 || !st.Connected {
		t.Errorf("reconnects %d connected %v, want 2 and true", st.Reconnects, st.Connected)
	}
	polled := 0
	for _, r := range col.snapshot() {
		if r.Metric == "polled" {
			polled++
		}
	}
	if polled == 0 {
		t.Error("no polled readings")
	}
}

// TestSplitToServerLimits: the gopcua server reports MaxNodesPerRead = 32; 100 polled nodes are read in 4 calls;
// the configured monitored-items limit splits CreateMonitoredItems.
func TestSplitToServerLimits(t *testing.T) {
	ts := sharedTestServer(t)
	var nodes []Node
	for i := range 100 {
		nodes = append(nodes, Node{ID: "ns=" + ts.nsID() + ";s=Bulk." + strconv.Itoa(i), Metric: "b" + strconv.Itoa(i)})
	}
	cfg := baseConfig(t, ts,
		Group{Name: "poll", Mode: GroupPoll, PollInterval: time.Hour, Device: "p", Nodes: nodes},
		Group{Name: "subs", PublishingInterval: 100 * time.Millisecond, Device: "s", Nodes: nodes})
	cfg.Limits.MaxMonitoredItemsPerCall = 30
	src, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	runSource(t, src, col.emit)
	waitFor(t, 10*time.Second, "200 readings", func() bool { return len(col.snapshot()) >= 200 })
	st := src.Stats()
	if st.Limits.MaxNodesPerRead != 32 || st.Reads != 4 || st.ReadNodes != 100 {
		t.Errorf("limits %+v, reads %d of %d nodes: want 4 reads of at most 32", st.Limits, st.Reads, st.ReadNodes)
	}
	if st.MonitoredItemCalls != 4 || st.Groups[1].Items != 100 {
		t.Errorf("%d CreateMonitoredItems calls for %d items, want 4 for 100", st.MonitoredItemCalls, st.Groups[1].Items)
	}
	seen := map[string]bool{}
	for _, r := range col.snapshot() {
		seen[r.Device+"/"+r.Metric] = true
	}
	if len(seen) != 200 {
		t.Errorf("%d distinct device/metric pairs, want 200", len(seen))
	}
}

// bulkGroups spreads n Bulk nodes over groups of size per group. gopcua's server ignores the client's
// MaxNotificationsPerPublish and its message size (it sends a publish response as one chunk larger than the
// 64 KiB receive buffer it announces), so against it no subscription may hold more than about 1500 items.
func bulkGroups(ts *testServer, n, size int, interval time.Duration) []Group {
	var groups []Group
	for lo := 0; lo < n; lo += size {
		g := Group{Name: "bulk" + strconv.Itoa(lo/size), PublishingInterval: interval}
		for i := lo; i < min(lo+size, n); i++ {
			g.Nodes = append(g.Nodes, Node{ID: "ns=" + ts.nsID() + ";s=Bulk." + strconv.Itoa(i), Metric: "b" + strconv.Itoa(i)})
		}
		groups = append(groups, g)
	}
	return groups
}

// TestTenThousandItems: 10,000 monitored items on one connection (10 subscriptions), all reporting, then
// all changing once, with nothing dropped and no sequence gap.
func TestTenThousandItems(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const n = 10000
	ts := startTestServer(t, serverOpts{bulk: n})
	cfg := baseConfig(t, ts, bulkGroups(ts, n, 1000, time.Second)...)
	src, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	start := time.Now()
	runSource(t, src, col.emit)
	// Generous bounds: the in-process server is slow under -race on a loaded 2-core machine; this test is about
	// every item reporting with nothing dropped, not about speed (BenchmarkSetup measures that).
	waitFor(t, 120*time.Second, "10,000 initial values", func() bool { return len(col.snapshot()) >= n })
	t.Logf("all %d items reported %v after start", n, time.Since(start).Round(time.Millisecond))
	ts.tick(true)
	waitFor(t, 120*time.Second, "10,000 changes", func() bool { return len(col.snapshot()) >= 2*n })
	st := src.Stats()
	items := 0
	for _, g := range st.Groups {
		items += g.Items
	}
	if items != n || st.Dropped != 0 || st.SequenceGaps != 0 || st.Reconnects != 0 {
		t.Errorf("stats: items %d dropped %d gaps %d reconnects %d", items, st.Dropped, st.SequenceGaps, st.Reconnects)
	}
}

// TestWatchdogRebuildsSilentSubscription: the subscription goes silent while the connection stays up (no data and
// no keep-alive reaches the source, as with gopcua #879/#895); the watchdog notices within twice the keep-alive
// time, checks that the server still answers, rebuilds the subscription in place (no reconnect), counts it, and
// data flows again.
func TestWatchdogRebuildsSilentSubscription(t *testing.T) {
	ts := sharedTestServer(t)
	ts.ticker(t, 50*time.Millisecond, false)
	cfg := baseConfig(t, ts, Group{Name: "subs", PublishingInterval: 100 * time.Millisecond, KeepAliveCount: 2,
		Nodes: []Node{{ID: "ns=" + ts.nsID() + ";s=Counter", Metric: "counter"}}})
	src, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	runSource(t, src, col.emit)
	waitFor(t, 5*time.Second, "counter readings", func() bool { return counterAfter(col.snapshot(), time.Time{}) >= 3 })
	src.testDropPublish.Store(true)
	silent := time.Now()
	waitFor(t, 5*time.Second, "a watchdog rebuild", func() bool { return src.Stats().WatchdogRebuilds >= 1 })
	if d := time.Since(silent); d < src.Stats().Groups[0].WatchdogDeadline/2 {
		t.Errorf("rebuilt after %v, before the deadline %v", d, src.Stats().Groups[0].WatchdogDeadline)
	}
	src.testDropPublish.Store(false)
	rebuilt := time.Now()
	waitFor(t, 3*time.Second, "data after the rebuild", func() bool { return counterAfter(col.snapshot(), rebuilt) >= 3 })
	if st := src.Stats(); st.Reconnects != 0 || st.Groups[0].WatchdogRebuilds < 1 {
		t.Errorf("stats %+v: want a rebuild without a reconnect", st)
	}
}
