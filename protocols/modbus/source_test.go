package modbus

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
)

func fixtureConfig(addr string) Config {
	tags, _ := fixtureTags()
	return Config{Name: "fixture", Address: addr, Timeout: 500 * time.Millisecond, Devices: []Device{{
		Name: "plc", Groups: []Group{{Name: "all", Interval: 20 * time.Millisecond, Tags: tags}},
	}}}
}

// checkFixture asserts that one poll's readings hold every value of the fixture, Good, stamped with the poll time.
func checkFixture(t *testing.T, rs []fieldgate.Reading, before time.Time) {
	t.Helper()
	_, want := fixtureTags()
	got := byMetric(rs)
	if len(rs) != len(want) {
		t.Errorf("%d readings, want %d", len(rs), len(want))
	}
	for name, w := range want {
		r, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: no reading", name)
		case r.Quality != fieldgate.Good:
			t.Errorf("%s: quality %v status %#x", name, r.Quality, r.Status)
		case !sameValue(r.Value, w):
			t.Errorf("%s: got %v (%v), device holds %v (%v)", name, r.Value, r.Value.Kind(), w, w.Kind())
		case r.Device != "plc" || !r.SourceTime.IsZero() || r.GatewayTime.Before(before) || time.Since(r.GatewayTime) > 5*time.Second:
			t.Errorf("%s: device %q source time %v gateway time %v", name, r.Device, r.SourceTime, r.GatewayTime)
		}
	}
}

// TestEveryTypeAndOrder reads the fixture from the library's in-process server: every type in every byte order,
// strings, bits of a register, input registers, coils and discrete inputs come back as the device holds them.
func TestEveryTypeAndOrder(t *testing.T) {
	im := &image{}
	im.fill()
	s, err := New(fixtureConfig(startImageServer(t, im)), nil)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	batches := run(t, s, 2, 5*time.Second)
	if len(batches) < 2 {
		t.Fatalf("%d polls", len(batches))
	}
	checkFixture(t, batches[1], before)
	d := s.Stats().Devices[0]
	if d.Polls < 2 || d.Requests < 2*uint64(len(s.Plan())) || d.RequestSeconds <= 0 || !d.Responding {
		t.Errorf("stats %+v", d)
	}
	// holding 100-227 is 128 registers: two requests, cut between values; 300-320 one (gaps of 2 filled);
	// input 0-4 one; coils one; discrete inputs one.
	if len(s.Plan()) != 6 {
		for _, p := range s.Plan() {
			t.Log(p)
		}
		t.Errorf("%d requests, want 6", len(s.Plan()))
	}
}

// TestExceptionMarksOnlyItsRequest: a request the device refuses makes its own tags Bad with the exception code
// in Status; the other requests of the poll are still read and Good.
func TestExceptionMarksOnlyItsRequest(t *testing.T) {
	im := &image{badFrom: 1000}
	im.holding[0], im.holding[2000] = 42, 43
	addr := startImageServer(t, im)
	s, err := New(Config{Name: "c", Address: addr, Devices: []Device{{Name: "d", Groups: []Group{{Interval: 20 * time.Millisecond, Tags: []Tag{
		{Name: "ok", Address: 0}, {Name: "refused", Address: 2000}, {Name: "ok_input", Register: "input", Address: 5},
	}}}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := run(t, s, 1, 5*time.Second)
	got := byMetric(b[0])
	if r := got["ok"]; r.Quality != fieldgate.Good || r.Value != fieldgate.Int(42) {
		t.Errorf("ok: %+v", r)
	}
	if r := got["ok_input"]; r.Quality != fieldgate.Good {
		t.Errorf("ok_input: %+v", r)
	}
	if r := got["refused"]; r.Quality != fieldgate.Bad || r.Status != 2 {
		t.Errorf("refused: quality %v status %d, want bad with exception 2", r.Quality, r.Status)
	}
	d := s.Stats().Devices[0]
	if d.Exceptions != 1 || d.ExceptionsByCode[2] != 1 || !d.Responding {
		t.Errorf("stats %+v", d)
	}
}

// TestLowerRegisterLimit: a device that refuses more than 10 registers per request (exception 3) fails a
// 100-register map when planned for the protocol's 125, and reads it all once max_registers_per_request is 10.
func TestLowerRegisterLimit(t *testing.T) {
	im := &image{maxQty: 10}
	var tags []Tag
	for i := range 50 {
		im.holding[2*i] = uint16(i)
		tags = append(tags, Tag{Name: fmt.Sprint("t", i), Address: 2 * i})
	}
	addr := startImageServer(t, im)
	cfg := Config{Name: "c", Address: addr, Devices: []Device{{Name: "d", Groups: []Group{{Interval: 20 * time.Millisecond, Tags: tags}}}}}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range run(t, s, 1, 5*time.Second)[0] {
		if r.Quality != fieldgate.Bad || r.Status != 3 {
			t.Fatalf("without the limit %s = %+v, want bad with exception 3", r.Metric, r)
		}
	}
	cfg.Devices[0].MaxRegisters = 10
	s, err = New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Plan() {
		if p.Count > 10 {
			t.Errorf("planned %v", p)
		}
	}
	for _, r := range run(t, s, 1, 5*time.Second)[0] {
		if r.Quality != fieldgate.Good || fmt.Sprint("t", r.Value.Int()) != r.Metric {
			t.Errorf("with the limit %s = %+v", r.Metric, r)
		}
	}
}

// TestTimeoutMarksOnlyItsRequest: one request that gets no reply in time is Bad with StatusTimeout; the rest of the
// poll is read, and the late reply is not mistaken for a later answer (TCP transaction ids).
func TestTimeoutMarksOnlyItsRequest(t *testing.T) {
	f := startFake(t, false)
	regs := make([]uint16, 1000)
	regs[0], regs[500], regs[900] = 10, 50, 90
	f.set(1, regs)
	f.delay = func(_ uint8, addr, _ int) time.Duration {
		if addr == 500 {
			return 300 * time.Millisecond
		}
		return 0
	}
	s, err := New(Config{Name: "c", Address: f.addr(), Timeout: 150 * time.Millisecond, Devices: []Device{{Name: "d", Groups: []Group{{Interval: time.Second, Tags: []Tag{
		{Name: "a", Address: 0}, {Name: "slow", Address: 500}, {Name: "c", Address: 900},
	}}}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := run(t, s, 2, 5*time.Second)
	for i, batch := range b {
		got := byMetric(batch)
		if r := got["slow"]; r.Quality != fieldgate.Bad || r.Status != StatusTimeout {
			t.Errorf("poll %d slow: %+v", i, r)
		}
		if got["a"].Value != fieldgate.Int(10) || got["c"].Value != fieldgate.Int(90) || got["a"].Quality != fieldgate.Good || got["c"].Quality != fieldgate.Good {
			t.Errorf("poll %d: a=%+v c=%+v, want 10 and 90, good", i, got["a"], got["c"])
		}
	}
	if d := s.Stats().Devices[0]; d.Timeouts != 2 || !d.Responding {
		t.Errorf("stats %+v", d)
	}
}

// TestServerDropsConnection: a server that closes the connection after every two requests costs no Bad reading:
// the source reopens at once and asks again.
func TestServerDropsConnection(t *testing.T) {
	f := startFake(t, false)
	f.set(1, []uint16{7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8})
	f.dropAt = 2
	s, err := New(Config{Name: "c", Address: f.addr(), Devices: []Device{{Name: "d", GapFill: ptr(0), Groups: []Group{{Interval: 20 * time.Millisecond, Tags: []Tag{
		{Name: "a", Address: 0}, {Name: "b", Address: 30},
	}}}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := run(t, s, 6, 5*time.Second)
	for i, batch := range b {
		for _, r := range batch {
			if r.Quality != fieldgate.Good {
				t.Errorf("poll %d: %+v", i, r)
			}
		}
	}
	if st := s.Stats(); st.Connects < 3 || f.conns.Load() < 3 {
		t.Errorf("connects %d, server saw %d connections: the drops were not exercised", st.Connects, f.conns.Load())
	}
}

// TestDeadDeviceDoesNotDelayLive: unit 2 behind the same TCP connection never answers. It costs at most two
// timeouts before it is backed off, and then one per backoff period; unit 1 keeps (almost) every poll. Every
// tick of the dead unit reports its tags Bad: timed out when asked, not polled while backed off.
func TestDeadDeviceDoesNotDelayLive(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 3s")
	}
	f := startFake(t, false)
	f.set(1, []uint16{1, 2, 3})
	// unit 2 is not set: it never answers.
	interval, timeout := 100*time.Millisecond, 60*time.Millisecond
	s, err := New(Config{Name: "c", Address: f.addr(), Timeout: timeout, BackoffMin: 400 * time.Millisecond, BackoffMax: 2 * time.Second,
		Devices: []Device{
			{Name: "live", UnitID: ptr(1), Groups: []Group{{Interval: interval, Tags: []Tag{{Name: "x", Address: 0}}}}},
			{Name: "dead", UnitID: ptr(2), GapFill: ptr(-1), Groups: []Group{{Interval: interval, Tags: []Tag{{Name: "y", Address: 0}, {Name: "z", Address: 1}}}}},
		}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const d = 3 * time.Second
	start := time.Now()
	batches := run(t, s, 1<<30, d)
	elapsed := time.Since(start)
	st := s.Stats()
	live, dead := st.Devices[0], st.Devices[1]
	ticks := int(elapsed/interval) + 1
	// Backoff 0.4s, 0.8s, 1.6s: the dead unit is asked at most 2 + 3 times in 3s, each costing one timeout.
	asked := int(f.requestsTo(2))
	if asked > 6 || asked < 2 {
		t.Errorf("dead unit asked %d times in %v", asked, elapsed)
	}
	if dead.Responding || dead.HeldTicks == 0 {
		t.Errorf("dead unit not backed off: %+v", dead)
	}
	// Each dead-unit timeout can cost the live unit at most the one tick it overlaps (plus slack for a loaded
	// machine).
	if int(live.Polls) < ticks-asked-3 {
		t.Errorf("live unit polled %d times of %d ticks (skipped %d) with %d dead-unit timeouts", live.Polls, ticks, live.SkippedTicks, asked)
	}
	byStatus := map[uint32]int{}
	for _, b := range batches {
		for _, r := range b {
			if r.Device == "live" && r.Quality != fieldgate.Good {
				t.Errorf("live reading %+v", r)
			}
			if r.Device == "dead" {
				if r.Quality != fieldgate.Bad || (r.Status != StatusTimeout && r.Status != StatusNotPolled) {
					t.Errorf("dead reading %+v", r)
				}
				byStatus[r.Status]++
			}
		}
	}
	if byStatus[StatusTimeout] == 0 || byStatus[StatusNotPolled] == 0 {
		t.Errorf("the dead unit's readings by status %v: want timed out and not polled", byStatus)
	}
	if n := byStatus[StatusTimeout] + byStatus[StatusNotPolled]; n < 2*(ticks-3) {
		t.Errorf("%d readings of the dead unit's 2 tags in %d ticks: ticks without a reading", n, ticks)
	}
}

// TestSeparateConnectionsAreIndependent: a device that accepts the connection but never answers, on its own
// connection (its own Source), does not slow a live device on another.
func TestSeparateConnectionsAreIndependent(t *testing.T) {
	dead := startFake(t, false) // no unit set: accepts, never answers
	live := startFake(t, false)
	live.set(1, []uint16{5})
	mk := func(addr string) *Source {
		s, err := New(Config{Name: addr, Address: addr, Timeout: 300 * time.Millisecond, Devices: []Device{{Name: "d", Groups: []Group{{Interval: 50 * time.Millisecond, Tags: []Tag{{Name: "x", Address: 0}}}}}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sd, sl := mk(dead.addr()), mk(live.addr())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); run(t, sd, 1<<30, time.Second) }()
	start := time.Now()
	got := run(t, sl, 1<<30, time.Second)
	elapsed := time.Since(start)
	wg.Wait()
	// Were the two coupled, each 300ms timeout would cost the live source six 50ms ticks; independent, it keeps
	// nearly all of them (60%, for slack on a loaded machine).
	if want := int(elapsed/(50*time.Millisecond)) * 6 / 10; len(got) < want {
		t.Errorf("live source polled %d times in %v, want >= %d", len(got), elapsed, want)
	}
	if sd.Stats().Devices[0].Timeouts == 0 {
		t.Error("the dead source never timed out")
	}
}

// TestConnectionRefusedBacksOff: nothing listens; the source reports Bad readings with StatusConnection and
// retries with a growing delay instead of hammering.
func TestConnectionRefusedBacksOff(t *testing.T) {
	s, err := New(Config{Name: "c", Address: testutil.FreeAddr(t), BackoffMin: 50 * time.Millisecond, BackoffMax: 400 * time.Millisecond,
		Devices: []Device{{Name: "d", Groups: []Group{{Interval: 20 * time.Millisecond, Tags: []Tag{{Name: "x", Address: 0}}}}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := run(t, s, 1<<30, time.Second)
	st := s.Stats()
	// 50+100+200+400+400 ms: about 5 attempts in a second, far fewer than the 50 ticks.
	if st.ConnectFailures < 3 || st.ConnectFailures > 10 || st.Connected {
		t.Errorf("connect failures %d in 1s", st.ConnectFailures)
	}
	if len(b) == 0 || b[0][0].Quality != fieldgate.Bad || b[0][0].Status != StatusConnection {
		t.Errorf("readings %+v", b)
	}
	if h := st.Devices[0].HeldTicks; h < 2*st.ConnectFailures {
		t.Errorf("held ticks %d, connect failures %d: the backoff does not hold polls", h, st.ConnectFailures)
	}
}

// TestScheduleSkipsLateTicks: polls that take longer than the interval drop the ticks they overran, counted, and
// never catch up by running a backlog: every poll starts on the schedule's grid, less than half an interval late
// (the tolerance that lets groups due at the same time share one connection), and no tick runs twice.
func TestScheduleSkipsLateTicks(t *testing.T) {
	f := startFake(t, false)
	f.set(1, []uint16{1})
	f.delay = func(uint8, int, int) time.Duration { return 70 * time.Millisecond }
	interval := 50 * time.Millisecond
	s, err := New(Config{Name: "c", Address: f.addr(), Devices: []Device{{Name: "d", Groups: []Group{{Interval: interval, Tags: []Tag{{Name: "x", Address: 0}}}}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sched, started []time.Time
	s.onPoll = func(sc, st time.Time) {
		mu.Lock()
		sched, started = append(sched, sc), append(started, st)
		mu.Unlock()
	}
	run(t, s, 1<<30, time.Second)
	mu.Lock()
	defer mu.Unlock()
	for i, at := range sched {
		if i > 0 && at.UnixNano()%int64(interval) != 0 { // the first poll is at start, off the grid
			t.Errorf("poll %d scheduled off the grid: %v", i, at)
		}
		if late := started[i].Sub(at); late >= interval/2 || late < 0 {
			t.Errorf("poll %d started %v after its tick", i, late)
		}
		if i > 0 && !at.After(sched[i-1]) {
			t.Errorf("tick %v polled twice", at)
		}
	}
	d := s.Stats().Devices[0]
	span := int(sched[len(sched)-1].Sub(sched[0])/interval) + 1
	if d.SkippedTicks < 5 || len(sched)+int(d.SkippedTicks) < span {
		t.Errorf("%d polls, %d skipped ticks, %d ticks in between", len(sched), d.SkippedTicks, span)
	}
}

// TestRTUOverTCPLateReplyFlushed: over RTU a reply carries no transaction id, so a reply that comes after the
// timeout, from the same unit and function, looks like the answer to the next request. The fake is a serial
// gateway that answers the request for address 0 late; the next request is for address 10. With the flush the
// source reads 10's true value; without it (the library's behaviour) it takes 0's late reply as 10's.
func TestRTUOverTCPLateReplyFlushed(t *testing.T) {
	for _, flush := range []bool{true, false} {
		t.Run(fmt.Sprint("flush=", flush), func(t *testing.T) {
			f := startFake(t, true)
			regs := make([]uint16, 20)
			regs[0], regs[10] = 1111, 2222
			f.set(1, regs)
			var once sync.Once
			f.delay = func(_ uint8, addr, _ int) time.Duration {
				d := time.Duration(0)
				if addr == 0 {
					once.Do(func() { d = 400 * time.Millisecond })
				}
				return d
			}
			// The late reply comes 150ms after the 250ms timeout, within the 300ms flush delay.
			s, err := New(Config{Name: "c", Transport: TransportRTUOverTCP, Address: f.addr(), Timeout: 250 * time.Millisecond, RTUFlushDelay: 300 * time.Millisecond,
				Devices: []Device{{Name: "d", GapFill: ptr(-1), Groups: []Group{{Interval: time.Second, Tags: []Tag{{Name: "first", Address: 0}, {Name: "second", Address: 10}}}}}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			s.noFlush = !flush
			got := byMetric(run(t, s, 1, 5*time.Second)[0])
			if r := got["first"]; r.Quality != fieldgate.Bad || r.Status != StatusTimeout {
				t.Errorf("first: %+v, want a timeout", r)
			}
			second := got["second"]
			if flush && (second.Quality != fieldgate.Good || second.Value != fieldgate.Int(2222)) {
				t.Errorf("second = %+v, want 2222: the stale reply was taken as the answer", second)
			}
			if !flush && second.Value != fieldgate.Int(1111) {
				t.Logf("without flush second = %+v (expected the stale 1111; the hazard did not reproduce)", second)
				t.Fail()
			}
		})
	}
}

// TestRunStopsPromptly: Run returns soon after ctx ends and leaves no goroutine behind (go test -race checks
// the rest).
func TestRunStopsPromptly(t *testing.T) {
	im := &image{}
	s, err := New(fixtureConfig(startImageServer(t, im)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, testutil.EmitFunc(func(context.Context, []fieldgate.Reading) error { return nil }))
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestFailedCommitsDoNotStopPolling: when the buffer cannot store (disk full), the readings of those polls are
// lost, but the device keeps being polled and Run returns nil when it is stopped.
func TestFailedCommitsDoNotStopPolling(t *testing.T) {
	im := &image{}
	s, err := New(fixtureConfig(startImageServer(t, im)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, testutil.EmitFunc(func(context.Context, []fieldgate.Reading) error {
			calls.Add(1)
			return os.ErrPermission
		}))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d polls queued in 10 s after failed commits, want 3", calls.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// TestSilentRangeDoesNotSpill: a device that ignores requests for registers it does not have (100 to 199, two
// requests) instead of answering exception 2, and answers every other range. The ranges after the silent ones
// are read in every poll but the first (which may only report them not polled), never reported as a timeout
// they did not have; the silent ranges are backed off on their own (each asked at most once per backoff), and
// the device is never held.
func TestSilentRangeDoesNotSpill(t *testing.T) {
	f := startFake(t, false)
	regs := make([]uint16, 400)
	regs[0], regs[300] = 10, 30
	f.set(1, regs)
	var silentAsked atomic.Int64
	f.silent = func(_ uint8, addr, _ int) bool {
		if addr >= 100 && addr < 200 {
			silentAsked.Add(1)
			return true
		}
		return false
	}
	interval, timeout := 300*time.Millisecond, 80*time.Millisecond
	s, err := New(Config{Name: "c", Address: f.addr(), Timeout: timeout, BackoffMin: 600 * time.Millisecond, BackoffMax: 1200 * time.Millisecond,
		Devices: []Device{{Name: "d", GapFill: ptr(0), Groups: []Group{{Interval: interval, Tags: []Tag{
			{Name: "a", Address: 0}, {Name: "s1", Address: 100}, {Name: "s2", Address: 150}, {Name: "c", Address: 300},
		}}}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Plan()); n != 4 {
		t.Fatalf("%d requests planned, want 4", n)
	}
	batches := run(t, s, 10, 10*time.Second)
	if len(batches) < 10 {
		t.Fatalf("%d polls emitted, want 10: the device was held", len(batches))
	}
	for i, b := range batches {
		got := byMetric(b)
		if len(got) != 4 {
			t.Errorf("poll %d: %d tags, want 4", i, len(got))
		}
		for _, m := range []string{"a", "c"} {
			r := got[m]
			switch {
			case r.Quality == fieldgate.Good:
			case i == 0 && m == "c" && r.Status == StatusNotPolled:
			default:
				t.Errorf("poll %d: %s = %v quality %v status %d, want it read", i, m, r.Value, r.Quality, r.Status)
			}
		}
		for _, m := range []string{"s1", "s2"} {
			if r := got[m]; r.Quality != fieldgate.Bad || (r.Status != StatusTimeout && r.Status != StatusNotPolled) {
				t.Errorf("poll %d: %s quality %v status %d, want Bad, timeout or not polled", i, m, r.Quality, r.Status)
			}
		}
	}
	// Each silent range: asked in the first two polls, then once per backoff (0.6s, 1.2s) over the 10 polls'
	// 2.7s: 4 times, where every poll would be 10 (one more each for slack on a loaded machine).
	if n := silentAsked.Load(); n > 10 {
		t.Errorf("the silent ranges were asked %d times in %d polls", n, len(batches))
	}
	if d := s.Stats().Devices[0]; !d.Responding || d.HeldTicks != 0 {
		t.Errorf("the device was backed off: %+v", d)
	}
}

// TestDeviceBackReadsEveryRange: a device that was dead long enough for its ranges to time out is read in full
// by the first poll that reaches it after it comes back: no range stays backed off from the time it was away.
func TestDeviceBackReadsEveryRange(t *testing.T) {
	f := startFake(t, false) // unit 1 not set yet: dead
	regs := make([]uint16, 300)
	regs[0], regs[100], regs[200] = 1, 2, 3
	s, err := New(Config{Name: "c", Address: f.addr(), Timeout: 50 * time.Millisecond, BackoffMin: 100 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Devices: []Device{{Name: "d", GapFill: ptr(0), Groups: []Group{{Interval: 100 * time.Millisecond, Tags: []Tag{
			{Name: "a", Address: 0}, {Name: "b", Address: 100}, {Name: "c", Address: 200},
		}}}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var back atomic.Int64
	time.AfterFunc(time.Second, func() {
		back.Store(time.Now().UnixNano())
		f.set(1, regs)
	})
	batches := run(t, s, 1<<30, 2500*time.Millisecond)
	first := -1
	for i, b := range batches {
		if b[0].GatewayTime.UnixNano() < back.Load() {
			continue
		}
		good := 0
		for _, r := range b {
			if r.Quality == fieldgate.Good {
				good++
			}
		}
		if first < 0 && good > 0 {
			first = i
		}
		if first >= 0 && good != 3 {
			t.Errorf("poll %d after the device came back: %d of 3 tags read: %+v", i-first, good, b)
		}
	}
	if first < 0 {
		t.Fatal("the device was never read after it came back")
	}
	if d := s.Stats().Devices[0]; !d.Responding || d.SilentRanges != 0 {
		t.Errorf("stats after the device came back: %+v", d)
	}
}
