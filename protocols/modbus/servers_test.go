package modbus

import (
	"context"
	"encoding/binary"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
	"github.com/simonvetter/modbus"
)

// image is a register image served by the library's in-process server (modbus.NewServer).
type image struct {
	mu       sync.Mutex
	holding  [65536]uint16
	input    [65536]uint16
	coils    [65536]bool
	discrete [65536]bool
	// maxQty, when set, makes register reads longer than it fail with exception 3 (illegal data value), like a
	// device with a lower limit than the protocol's.
	maxQty int
	// badFrom, when set, makes holding reads touching addresses >= badFrom fail with exception 2.
	badFrom int
	reads   atomic.Int64
}

func (im *image) HandleCoils(r *modbus.CoilsRequest) ([]bool, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.reads.Add(1)
	return append([]bool(nil), im.coils[r.Addr:int(r.Addr)+int(r.Quantity)]...), nil
}

func (im *image) HandleDiscreteInputs(r *modbus.DiscreteInputsRequest) ([]bool, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.reads.Add(1)
	return append([]bool(nil), im.discrete[r.Addr:int(r.Addr)+int(r.Quantity)]...), nil
}

func (im *image) HandleHoldingRegisters(r *modbus.HoldingRegistersRequest) ([]uint16, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.reads.Add(1)
	if im.maxQty > 0 && int(r.Quantity) > im.maxQty {
		return nil, modbus.ErrIllegalDataValue
	}
	if im.badFrom > 0 && int(r.Addr)+int(r.Quantity) > im.badFrom {
		return nil, modbus.ErrIllegalDataAddress
	}
	if r.IsWrite {
		copy(im.holding[r.Addr:], r.Args)
		return nil, nil
	}
	return append([]uint16(nil), im.holding[r.Addr:int(r.Addr)+int(r.Quantity)]...), nil
}

func (im *image) HandleInputRegisters(r *modbus.InputRegistersRequest) ([]uint16, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.reads.Add(1)
	if im.maxQty > 0 && int(r.Quantity) > im.maxQty {
		return nil, modbus.ErrIllegalDataValue
	}
	return append([]uint16(nil), im.input[r.Addr:int(r.Addr)+int(r.Quantity)]...), nil
}

// startImageServer serves im over Modbus TCP on a free loopback port and returns host:port.
func startImageServer(t testing.TB, im *image) string {
	t.Helper()
	addr := testutil.FreeAddr(t)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + addr, Timeout: time.Minute, MaxClients: 10, Logger: log.New(io.Discard, "", 0)}, im)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return addr
}

// fake is a hand-written Modbus server for faults the library's server cannot make: units that never answer,
// replies that come late, connections that drop. It speaks TCP (MBAP) or, with rtu set, RTU frames over TCP.
// In RTU mode it models a serial gateway: a reply goes to whichever connection is the newest when it is sent,
// as the serial line behind a gateway knows nothing of TCP connections.
type fake struct {
	ln  net.Listener
	rtu bool

	mu     sync.Mutex
	regs   map[uint8][]uint16 // holding = input image per unit; a unit not in the map never answers
	delay  func(unit uint8, addr, n int) time.Duration
	dropAt int // close the connection when it has served this many requests (0: never)
	// silent, when set, makes a unit ignore the requests for which it returns true, like a device that does not
	// answer a range of registers it does not have.
	silent func(unit uint8, addr, n int) bool
	// exception, when set and nonzero, is the exception code the reply carries instead of data.
	exception func(unit uint8, addr int) byte
	// mangle, when set, changes the reply frame before it is sent; nil closes the connection instead of replying.
	mangle  func(frame []byte) []byte
	newest  net.Conn
	conns   atomic.Int64
	served  atomic.Int64
	perUnit sync.Map // unit -> *atomic.Int64 requests received
}

func startFake(t testing.TB, rtu bool) *fake {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{ln: ln, rtu: rtu, regs: map[uint8][]uint16{}}
	var wg sync.WaitGroup
	var open sync.Map
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			f.mu.Lock()
			f.newest = c
			f.mu.Unlock()
			open.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer open.Delete(c)
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		open.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	return f
}

func (f *fake) addr() string { return f.ln.Addr().String() }

func (f *fake) set(unit uint8, regs []uint16) {
	f.mu.Lock()
	f.regs[unit] = regs
	f.mu.Unlock()
}

func (f *fake) requestsTo(unit uint8) int64 {
	v, _ := f.perUnit.LoadOrStore(unit, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func (f *fake) serve(c net.Conn) {
	defer c.Close()
	var writeMu sync.Mutex
	served := 0
	for {
		var unit, fc uint8
		var addr, qty int
		var txn []byte
		if f.rtu {
			b := make([]byte, 8)
			if _, err := io.ReadFull(c, b); err != nil {
				return
			}
			unit, fc = b[0], b[1]
			addr, qty = int(binary.BigEndian.Uint16(b[2:])), int(binary.BigEndian.Uint16(b[4:]))
		} else {
			b := make([]byte, 12)
			if _, err := io.ReadFull(c, b); err != nil {
				return
			}
			txn = b[0:2]
			unit, fc = b[6], b[7]
			addr, qty = int(binary.BigEndian.Uint16(b[8:])), int(binary.BigEndian.Uint16(b[10:]))
		}
		v, _ := f.perUnit.LoadOrStore(unit, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		f.mu.Lock()
		regs, alive := f.regs[unit]
		delay, silent, exception, mangle := f.delay, f.silent, f.exception, f.mangle
		f.mu.Unlock()
		if !alive || (silent != nil && silent(unit, addr, qty)) {
			continue // a dead unit, or a range it ignores: no reply at all
		}
		pdu := []byte{fc, byte(2 * qty)}
		for i := range qty {
			var w uint16
			if addr+i < len(regs) {
				w = regs[addr+i]
			}
			pdu = binary.BigEndian.AppendUint16(pdu, w)
		}
		if exception != nil {
			if code := exception(unit, addr); code != 0 {
				pdu = []byte{fc | 0x80, code}
			}
		}
		var frame []byte
		if f.rtu {
			frame = append([]byte{unit}, pdu...)
			frame = binary.LittleEndian.AppendUint16(frame, crc(frame))
		} else {
			frame = append(append([]byte{}, txn...), 0, 0)
			frame = binary.BigEndian.AppendUint16(frame, uint16(1+len(pdu)))
			frame = append(append(frame, unit), pdu...)
		}
		if mangle != nil {
			if frame = mangle(frame); frame == nil {
				return
			}
		}
		var wait time.Duration
		if delay != nil {
			wait = delay(unit, addr, qty)
		}
		if f.rtu {
			// A serial line: nothing else happens while the device takes its time, and the reply goes to the
			// gateway's newest connection.
			time.Sleep(wait)
			f.mu.Lock()
			out := f.newest
			f.mu.Unlock()
			_, _ = out.Write(frame)
		} else if wait > 0 {
			// TCP: the late reply comes while later requests are answered.
			time.AfterFunc(wait, func() {
				writeMu.Lock()
				defer writeMu.Unlock()
				_, _ = c.Write(frame)
			})
		} else {
			writeMu.Lock()
			_, _ = c.Write(frame)
			writeMu.Unlock()
		}
		f.served.Add(1)
		served++
		if f.dropAt > 0 && served >= f.dropAt {
			return
		}
	}
}

// run runs s until it has emitted n batches or d passed, and returns the batches.
func run(t testing.TB, s *Source, n int, d time.Duration) [][]fieldgate.Reading {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var got [][]fieldgate.Reading
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, testutil.EmitFunc(func(_ context.Context, rs []fieldgate.Reading) error {
			for _, r := range rs {
				if err := r.Validate(); err != nil {
					t.Errorf("emitted an invalid reading: %v", err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			got = append(got, append([]fieldgate.Reading(nil), rs...))
			if len(got) >= n {
				cancel()
			}
			return nil
		}))
	}()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

func byMetric(rs []fieldgate.Reading) map[string]fieldgate.Reading {
	m := map[string]fieldgate.Reading{}
	for _, r := range rs {
		m[r.Metric] = r
	}
	return m
}
