//go:build linux

package modbus

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/fieldgate/fieldgate"
	"github.com/simonvetter/modbus"
	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal pair with the terminal side in raw mode (no echo, no line editing), as a
// serial port is. The device side (master) is served by ServeRTU; the gateway opens the terminal by name.
func openPTY(t *testing.T) (device, terminal *os.File) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag = tio.Cflag&^(unix.CSIZE|unix.PARENB) | unix.CS8
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// serveRTU serves h on the device side of a pty until the test ends.
func serveRTU(t *testing.T, h modbus.RequestHandler) string {
	t.Helper()
	m, s := openPTY(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = ServeRTU(ctx, m, h)
	}()
	t.Cleanup(func() {
		cancel()
		m.Close()
		s.Close()
		wg.Wait()
	})
	return s.Name()
}

// TestRTUSerial reads the fixture over RTU on a serial line (a pseudo-terminal, through the library's serial
// port code with baud, parity and stop bits set).
func TestRTUSerial(t *testing.T) {
	im := &image{}
	im.fill()
	path := serveRTU(t, im)
	cfg := fixtureConfig(path)
	cfg.Transport = TransportRTU
	cfg.Serial = Serial{BaudRate: 115200, Parity: "none"}
	cfg.Devices[0].UnitID = ptr(7)
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	b := run(t, s, 2, 10*time.Second)
	if len(b) < 2 {
		t.Fatalf("%d polls; stats %+v", len(b), s.Stats())
	}
	checkFixture(t, b[1], before)
}

// slowFirst delays its first holding read at address 0, like a device that answers after the master gave up.
type slowFirst struct {
	*image
	once  sync.Once
	delay time.Duration
}

func (h *slowFirst) HandleHoldingRegisters(r *modbus.HoldingRegistersRequest) ([]uint16, error) {
	if r.Addr == 0 {
		h.once.Do(func() { time.Sleep(h.delay) })
	}
	return h.image.HandleHoldingRegisters(r)
}

// TestRTUSerialStaleReplyFlushed: on a real tty the late reply sits in the port's input queue. The source
// discards it before the next request; without the flush the next request takes it as its answer.
func TestRTUSerialStaleReplyFlushed(t *testing.T) {
	for _, flush := range []bool{true, false} {
		t.Run(map[bool]string{true: "flush", false: "no-flush"}[flush], func(t *testing.T) {
			im := &image{}
			im.holding[0], im.holding[10] = 1111, 2222
			// The reply to the first request comes 150ms after the 250ms timeout, within the 300ms flush delay
			// (generous margins: the test must hold on a loaded machine).
			path := serveRTU(t, &slowFirst{image: im, delay: 400 * time.Millisecond})
			s, err := New(Config{Name: "c", Transport: TransportRTU, Address: path, Timeout: 250 * time.Millisecond, RTUFlushDelay: 300 * time.Millisecond,
				Devices: []Device{{Name: "d", GapFill: ptr(-1), Groups: []Group{{Interval: time.Second, Tags: []Tag{{Name: "first", Address: 0}, {Name: "second", Address: 10}}}}}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			s.noFlush = !flush
			got := byMetric(run(t, s, 1, 10*time.Second)[0])
			if r := got["first"]; r.Quality != fieldgate.Bad || r.Status != StatusTimeout {
				t.Errorf("first = %+v, want a timeout", r)
			}
			second := got["second"]
			switch {
			case flush && (second.Quality != fieldgate.Good || second.Value != fieldgate.Int(2222)):
				t.Errorf("second = %+v, want 2222", second)
			case !flush && second.Value != fieldgate.Int(1111):
				t.Errorf("without flush second = %+v; expected the stale 1111 (the hazard did not reproduce)", second)
			}
		})
	}
}
