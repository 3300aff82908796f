package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/creack/pty"
	"github.com/fieldgate/fieldgate"
	fgmodbus "github.com/fieldgate/fieldgate/protocols/modbus"
	"github.com/simonvetter/modbus"
	"golang.org/x/sys/unix"
)

// The simulated PLC. It answers every unit id (the demo polls unit 1) with one register image whose process
// values change every 100 ms. configs/demo.yaml and configs/modbus.yaml poll this map:
//
//	holding 0-1    float32 ABCD  temperature, °C        60 ± 8, a 60 s wave plus noise
//	holding 2-3    float32 ABCD  pressure, bar          4.2 ± 0.3, a 17 s wave
//	holding 4-5    uint32  ABCD  parts_total            +2 a second while running
//	holding 6      uint16        status word            bit 0 running, bit 1 alarm (temperature above 66 °C)
//	holding 7      int16         motor speed, rpm × 10  about 14500 while running, 0 when stopped
//	holding 10-13  float64 ABCD  energy, kWh            grows with the motor's power
//	holding 20-27  string        recipe                 "FG-RECIPE-A" or "-B", switching every 5 minutes
//	holding 30-31  float32 CDAB  flow, m³/h             (a word-swapped device)
//	holding 40-41  uint32  CDAB  uptime, s
//	input 0        uint16        tank level, ‰          0-1000, filling and draining
//	input 1        int16         ambient, °C × 10
//	coil 0, 1                    pump running, valve open
//	discrete 0, 1                door closed (open 7 s of every 97), emergency stop (pressed 5 s every 3 min)
//
// The machine runs 50 s, then stops for 10 s.
type plc struct {
	mu       sync.Mutex
	holding  [64]uint16
	input    [8]uint16
	coils    [8]bool
	discrete [8]bool

	start  time.Time
	parts  float64
	energy float64
	last   time.Time
}

func newPLC(now time.Time) *plc {
	p := &plc{start: now, last: now}
	p.update(now)
	return p
}

func (p *plc) put(addr int, typ fgmodbus.DataType, order fgmodbus.ByteOrder, v fieldgate.Value, n int) {
	copy(p.holding[addr:], fgmodbus.Decoding{Type: typ, Order: order}.EncodeRegisters(v, n))
}

// update recomputes the process values for time now.
func (p *plc) update(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := now.Sub(p.start).Seconds()
	dt := now.Sub(p.last).Seconds()
	p.last = now
	running := math.Mod(t, 60) < 50
	wave := func(period float64) float64 { return math.Sin(2 * math.Pi * t / period) }
	temp := 60 + 8*wave(60) + 0.2*math.Sin(t*7.3)
	speed := 0.0
	if running {
		speed = 1450 + 30*wave(11)
		p.parts += 2 * dt
	}
	p.energy += speed / 1450 * 7.5 * dt / 3600 // a 7.5 kW motor
	status := uint16(0)
	if running {
		status |= 1
	}
	if temp > 66 {
		status |= 2
	}
	recipe := "FG-RECIPE-A"
	if int(t/300)%2 == 1 {
		recipe = "FG-RECIPE-B"
	}
	p.put(0, fgmodbus.TypeFloat32, fgmodbus.ABCD, fieldgate.Float(temp), 0)
	p.put(2, fgmodbus.TypeFloat32, fgmodbus.ABCD, fieldgate.Float(4.2+0.3*wave(17)), 0)
	p.put(4, fgmodbus.TypeUint32, fgmodbus.ABCD, fieldgate.Int(int64(p.parts)), 0)
	p.holding[6] = status
	p.holding[7] = uint16(int16(speed * 10))
	p.put(10, fgmodbus.TypeFloat64, fgmodbus.ABCD, fieldgate.Float(p.energy), 0)
	p.put(20, fgmodbus.TypeString, fgmodbus.ABCD, fieldgate.String(recipe), 8)
	p.put(30, fgmodbus.TypeFloat32, fgmodbus.CDAB, fieldgate.Float(12+speed/1450*3+0.5*wave(23)), 0)
	p.put(40, fgmodbus.TypeUint32, fgmodbus.CDAB, fieldgate.Int(int64(t)), 0)
	p.input[0] = uint16(500 + 450*wave(240))
	p.input[1] = uint16(int16(215 + 20*wave(600)))
	p.coils[0], p.coils[1] = running, running && wave(30) > -0.5
	p.discrete[0], p.discrete[1] = math.Mod(t, 97) < 90, math.Mod(t, 180) >= 120 && math.Mod(t, 180) < 125
}

var errAddr = modbus.ErrIllegalDataAddress

func (p *plc) HandleCoils(r *modbus.CoilsRequest) ([]bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.IsWrite || int(r.Addr)+int(r.Quantity) > len(p.coils) {
		return nil, errAddr
	}
	return append([]bool(nil), p.coils[r.Addr:int(r.Addr)+int(r.Quantity)]...), nil
}

func (p *plc) HandleDiscreteInputs(r *modbus.DiscreteInputsRequest) ([]bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if int(r.Addr)+int(r.Quantity) > len(p.discrete) {
		return nil, errAddr
	}
	return append([]bool(nil), p.discrete[r.Addr:int(r.Addr)+int(r.Quantity)]...), nil
}

func (p *plc) HandleHoldingRegisters(r *modbus.HoldingRegistersRequest) ([]uint16, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.IsWrite || int(r.Addr)+int(r.Quantity) > len(p.holding) {
		return nil, errAddr
	}
	return append([]uint16(nil), p.holding[r.Addr:int(r.Addr)+int(r.Quantity)]...), nil
}

func (p *plc) HandleInputRegisters(r *modbus.InputRegistersRequest) ([]uint16, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if int(r.Addr)+int(r.Quantity) > len(p.input) {
		return nil, errAddr
	}
	return append([]uint16(nil), p.input[r.Addr:int(r.Addr)+int(r.Quantity)]...), nil
}

// simulate updates p every 100 ms until ctx ends.
func (p *plc) simulate(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			p.update(now)
		}
	}
}

// runModbusPLC serves the simulated PLC over Modbus TCP on addr until ctx ends.
func runModbusPLC(ctx context.Context, addr string, log *slog.Logger) error {
	p := newPLC(time.Now())
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + addr, Timeout: 5 * time.Minute, MaxClients: 16, Logger: quietLog()}, p)
	if err != nil {
		return fmt.Errorf("modbus plc: %w", err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("modbus plc on %s: %w", addr, err)
	}
	log.Info("Modbus TCP PLC listening", "addr", addr)
	p.simulate(ctx)
	return srv.Stop()
}

// runModbusPLCRTU serves the simulated PLC over Modbus RTU on a pseudo-terminal until ctx ends: link becomes a
// symbolic link to the terminal (e.g. .cache/devsim/plc-rtu), which the gateway opens as its serial port
// (transport: rtu, address: the link). Line settings do not matter on a pseudo-terminal.
func runModbusPLCRTU(ctx context.Context, link string, log *slog.Logger) error {
	ptm, term, err := pty.Open()
	if err != nil {
		return fmt.Errorf("modbus rtu plc: open pseudo-terminal: %w", err)
	}
	defer term.Close()
	// A pollable copy of the device side, so that closing it ends a blocked read.
	fd, err := unix.Dup(int(ptm.Fd()))
	ptm.Close()
	if err != nil {
		return fmt.Errorf("modbus rtu plc: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("modbus rtu plc: %w", err)
	}
	master := os.NewFile(uintptr(fd), "ptmx")
	defer master.Close()
	if err := makeRaw(term); err != nil {
		master.Close()
		return fmt.Errorf("modbus rtu plc: %w", err)
	}
	if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
		master.Close()
		return fmt.Errorf("modbus rtu plc: %w", err)
	}
	if err := os.Symlink(term.Name(), link); err != nil {
		master.Close()
		return fmt.Errorf("modbus rtu plc: %w", err)
	}
	defer os.Remove(link)
	p := newPLC(time.Now())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.simulate(ctx)
	}()
	go func() {
		<-ctx.Done()
		master.Close() // ends ServeRTU's read
	}()
	log.Info("Modbus RTU PLC on a pseudo-terminal", "link", link, "tty", term.Name())
	err = fgmodbus.ServeRTU(ctx, master, p)
	cancel()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("modbus rtu plc: %w", err)
	}
	return nil
}

// makeRaw puts the terminal side of a pty into raw mode, as a serial port is: no echo, no line editing.
func makeRaw(f *os.File) error {
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		return err
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag = tio.Cflag&^(unix.CSIZE|unix.PARENB) | unix.CS8
	return unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, tio)
}

func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }
