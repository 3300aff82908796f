package modbus

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
)

// These tests use a third-party server: modbus-serial's ServerTCP (scripts/npm/modbus-server.js), whose register
// image is encoded by Node's Buffer writers, independently of this package's encoder.

// TestNPMEveryTypeAndOrder reads the fixture from the running server named by FIELDGATE_TEST_MODBUS_NPM.
func TestNPMEveryTypeAndOrder(t *testing.T) {
	addr := os.Getenv("FIELDGATE_TEST_MODBUS_NPM")
	if addr == "" {
		t.Skip("FIELDGATE_TEST_MODBUS_NPM is not set")
	}
	s, err := New(fixtureConfig(addr), nil)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	b := run(t, s, 1, 10*time.Second)
	if len(b) == 0 {
		t.Fatalf("no poll from %s; stats %+v", addr, s.Stats())
	}
	checkFixture(t, b[0], before)
}

// startNPM starts node modbus-server.js from FIELDGATE_TEST_NPM_DIR with args on a free port and returns its
// address. The process is killed (by PID) when the test ends.
func startNPM(t *testing.T, args ...string) string {
	t.Helper()
	dir := os.Getenv("FIELDGATE_TEST_NPM_DIR")
	if dir == "" {
		t.Skip("FIELDGATE_TEST_NPM_DIR is not set")
	}
	return startNPMAt(t, dir, testutil.FreeAddr(t), args...)
}

func startNPMAt(t *testing.T, dir, addr string, args ...string) string {
	t.Helper()
	_, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command("node", append([]string{filepath.Join(dir, "modbus-server.js"), "--port", port}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "listening") {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("modbus-server.js exited before listening")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("modbus-server.js did not start in 15s")
	}
	return addr
}

// TestNPMLowerRegisterLimit: the server refuses more than 10 registers (exception 3, or 2); the source reports it
// as Bad with that code, and reads everything once the device's limit is configured.
func TestNPMLowerRegisterLimit(t *testing.T) {
	for _, code := range []string{"3", "2"} {
		addr := startNPM(t, "--max-registers", "10", "--limit-exception", code)
		cfg := fixtureConfig(addr)
		s, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := byMetric(run(t, s, 1, 10*time.Second)[0])
		if r := got["int16_ABCD"]; r.Quality != fieldgate.Bad || r.Status != uint32(code[0]-'0') {
			t.Errorf("exception %s: without the limit int16_ABCD = %+v", code, r)
		}
		cfg.Devices[0].MaxRegisters = 10
		s, err = New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		checkFixture(t, run(t, s, 1, 10*time.Second)[0], before)
	}
}

// TestNPMSlowServer: a server slower than the timeout gives Bad readings with StatusTimeout; with a timeout
// that fits, the same server reads Good.
func TestNPMSlowServer(t *testing.T) {
	addr := startNPM(t, "--slow", "300")
	cfg := fixtureConfig(addr)
	cfg.Timeout = 100 * time.Millisecond
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := byMetric(run(t, s, 1, 10*time.Second)[0])
	if r := got["float64_CDAB"]; r.Quality != fieldgate.Bad || r.Status != StatusTimeout {
		t.Errorf("float64_CDAB = %+v, want a timeout", r)
	}
	cfg.Timeout = 2 * time.Second
	cfg.Devices[0].Groups[0].Interval = 2 * time.Second
	s, err = New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	checkFixture(t, run(t, s, 1, 20*time.Second)[0], before)
}

// TestNPMDeadUnitAmongLive: the server answers unit 1 only; unit 2 on the same connection is backed off and the
// live unit keeps its polls.
func TestNPMDeadUnitAmongLive(t *testing.T) {
	addr := startNPM(t, "--unit", "1")
	interval := 300 * time.Millisecond // and a timeout of 250ms: node may be slow on a loaded machine
	s, err := New(Config{Name: "c", Address: addr, Timeout: 250 * time.Millisecond, BackoffMin: 500 * time.Millisecond, Devices: []Device{
		{Name: "live", UnitID: ptr(1), Groups: []Group{{Interval: interval, Tags: []Tag{{Name: "x", Register: "input", Address: 0}}}}},
		{Name: "dead", UnitID: ptr(2), Groups: []Group{{Interval: interval, Tags: []Tag{{Name: "y", Register: "input", Address: 0}}}}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	batches := run(t, s, 1<<30, 4*time.Second)
	ticks := int(time.Since(start)/interval) + 1
	st := s.Stats()
	dead := st.Devices[1]
	if dead.Responding || dead.Requests > 6 {
		t.Errorf("dead unit %+v", dead)
	}
	// Each dead-unit timeout costs the live unit at most the tick it overlaps (plus slack for a loaded machine).
	if live := st.Devices[0]; int(live.Polls) < ticks-int(dead.Requests)-3 {
		t.Errorf("live unit polled %d of %d ticks with %d dead-unit timeouts", live.Polls, ticks, dead.Requests)
	}
	good, live := 0, 0
	for _, b := range batches {
		for _, r := range b {
			if r.Device != "live" {
				continue
			}
			live++
			if r.Quality == fieldgate.Good && r.Value == fieldgate.Int(777) {
				good++
			}
		}
	}
	if good < live*9/10 || live == 0 { // node may miss a timeout on a loaded machine, rarely
		t.Errorf("%d of %d live readings good", good, live)
	}
}

// TestNPMServerRestart: the server is killed mid-run and started again on the same port; the source reports
// the outage as Bad (StatusConnection) and reads Good again after the restart, by itself.
func TestNPMServerRestart(t *testing.T) {
	dir := os.Getenv("FIELDGATE_TEST_NPM_DIR")
	if dir == "" {
		t.Skip("FIELDGATE_TEST_NPM_DIR is not set")
	}
	addr := testutil.FreeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	first := exec.Command("node", filepath.Join(dir, "modbus-server.js"), "--port", port)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Process.Kill(); _ = first.Wait() }()
	s, err := New(Config{Name: "c", Address: addr, Timeout: 200 * time.Millisecond, BackoffMin: 100 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Devices: []Device{{Name: "d", Groups: []Group{{Interval: 50 * time.Millisecond, Tags: []Tag{{Name: "x", Register: "input", Address: 0}}}}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	phases := make(chan fieldgate.Quality, 1000)
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, testutil.EmitFunc(func(_ context.Context, rs []fieldgate.Reading) error {
			for _, r := range rs {
				select {
				case phases <- r.Quality:
				default:
				}
			}
			return nil
		}))
	}()
	wait := func(q fieldgate.Quality) {
		t.Helper()
		for {
			select {
			case got := <-phases:
				if got == q {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %v reading before the deadline; stats %+v", q, s.Stats())
			}
		}
	}
	wait(fieldgate.Good)
	_ = first.Process.Kill()
	_ = first.Wait()
	wait(fieldgate.Bad)
	startNPMAt(t, dir, addr)
	wait(fieldgate.Good)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Connects < 2 || st.Devices[0].ConnectionErrors == 0 {
		t.Errorf("stats %+v", st)
	}
}
