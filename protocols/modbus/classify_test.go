package modbus

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
)

// TestClassify pins how every kind of failure the library's client reports is classified: the fake server
// produces it on the wire (MBAP over TCP, and RTU frames through an RTU-over-TCP link), the real client reads
// it, classify sorts its error. Every exception code from 1 to 255 is tried, the ones the library names and the
// ones it reports only as text.
func TestClassify(t *testing.T) {
	type want struct {
		kind errKind
		code uint8
	}
	type fault struct {
		name   string
		rtu    bool // else TCP
		setup  func(f *fake)
		expect want
	}
	faults := []fault{
		{"no reply", false, func(f *fake) { f.silent = func(uint8, int, int) bool { return true } }, want{errTimeout, 0}},
		{"no reply", true, func(f *fake) { f.silent = func(uint8, int, int) bool { return true } }, want{errTimeout, 0}},
		{"connection closed", false, func(f *fake) { f.mangle = func([]byte) []byte { return nil } }, want{errConnection, 0}},
		{"connection closed", true, func(f *fake) { f.mangle = func([]byte) []byte { return nil } }, want{errConnection, 0}},
		{"bad CRC", true, func(f *fake) { f.mangle = func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b } }, want{errProtocol, 0}},
		{"short frame", true, func(f *fake) { f.mangle = func(b []byte) []byte { return b[:2] } }, want{errProtocol, 0}},
		{"reply from another unit", false, func(f *fake) { f.mangle = func(b []byte) []byte { b[6]++; return b } }, want{errProtocol, 0}},
		{"MBAP length 0", false, func(f *fake) { f.mangle = func(b []byte) []byte { b[4], b[5] = 0, 0; return b } }, want{errProtocol, 0}},
		{"wrong function code", false, func(f *fake) { f.mangle = func(b []byte) []byte { b[7] = 0x05; return b } }, want{errProtocol, 0}},
		// An exception reply with code 0 is no exception: a malformed reply.
		{"exception code 0", false, func(f *fake) {
			f.mangle = func(b []byte) []byte {
				b = append(b[:7], 0x83, 0)
				binary.BigEndian.PutUint16(b[4:], 3) // unit, function, code
				return b
			}
		}, want{errProtocol, 0}},
	}
	for code := 1; code <= 255; code++ {
		for _, rtu := range []bool{false, true} {
			faults = append(faults, fault{fmt.Sprintf("exception %d", code), rtu,
				func(f *fake) { f.exception = func(uint8, int) byte { return byte(code) } }, want{errException, uint8(code)}})
		}
	}
	// One server and one client per transport and fault: a fault may leave the link unusable.
	for _, fc := range faults {
		transport := TransportTCP
		if fc.rtu {
			transport = TransportRTUOverTCP
		}
		t.Run(string(transport)+"/"+fc.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, fc.rtu)
			f.set(1, []uint16{1, 2, 3})
			f.mu.Lock()
			fc.setup(f)
			f.mu.Unlock()
			c, err := newClient(Config{Transport: transport, Address: f.addr(), Timeout: 200 * time.Millisecond}.WithDefaults())
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Open(); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.ReadRegisters(0, 2, modbus.HOLDING_REGISTER)
			if err == nil {
				t.Fatal("the read succeeded")
			}
			if kind, code := classify(err); kind != fc.expect.kind || code != fc.expect.code {
				t.Errorf("%q classified as (%v, %d), want (%v, %d)", err, kind, code, fc.expect.kind, fc.expect.code)
			}
		})
	}
}

func (k errKind) String() string {
	return [...]string{errConnection: "connection", errTimeout: "timeout", errException: "exception", errProtocol: "protocol"}[k]
}
