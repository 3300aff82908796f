package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"io"

	"github.com/simonvetter/modbus"
)

// ServeRTU answers Modbus RTU requests arriving on link (a serial port, one side of a pseudo-terminal, a TCP
// connection of an RTU-over-TCP gateway) from h, the handler interface of the library's TCP server, which has no
// RTU server of its own. It is for simulators (cmd/devsim) and tests, not for the gateway. It serves function
// codes 1 to 6 and 16 for any unit id but 0 (broadcast, which gets no reply), skips bytes that do not start a
// frame with a valid CRC, and returns when reading link fails: nil if ctx has ended (close link to stop it).
func ServeRTU(ctx context.Context, link io.ReadWriter, h modbus.RequestHandler) error {
	buf := make([]byte, 0, 1024)
	tmp := make([]byte, 512)
	for {
		n, err := link.Read(tmp)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		buf = append(buf, tmp[:n]...)
		for {
			l := rtuFrameLen(buf)
			if l < 0 {
				break
			}
			if l == 0 || binary.LittleEndian.Uint16(buf[l-2:]) != crc(buf[:l-2]) {
				buf = buf[1:] // resynchronise one byte at a time
				continue
			}
			if reply := rtuAnswer(buf[:l-2], h); reply != nil {
				reply = binary.LittleEndian.AppendUint16(reply, crc(reply))
				if _, err := link.Write(reply); err != nil {
					return err
				}
			}
			buf = buf[l:]
		}
		if len(buf) > 512 {
			buf = buf[len(buf)-256:]
		}
	}
}

// rtuFrameLen is the length of the request frame at the start of b including its CRC, -1 when more bytes are
// needed, 0 when b does not start a request this server knows.
func rtuFrameLen(b []byte) int {
	if len(b) < 2 {
		return -1
	}
	switch b[1] {
	case 1, 2, 3, 4, 5, 6:
		if len(b) < 8 {
			return -1
		}
		return 8
	case 15, 16:
		if len(b) < 7 {
			return -1
		}
		l := 9 + int(b[6])
		if len(b) < l {
			return -1
		}
		return l
	}
	return 0
}

// rtuAnswer builds the reply (without CRC) to one request frame (without CRC); nil for a broadcast.
func rtuAnswer(f []byte, h modbus.RequestHandler) []byte {
	unit, fc := f[0], f[1]
	if unit == 0 {
		return nil
	}
	addr, qty := binary.BigEndian.Uint16(f[2:]), binary.BigEndian.Uint16(f[4:])
	exception := func(err error) []byte { return []byte{unit, fc | 0x80, exceptionCode(err)} }
	switch fc {
	case 1, 2:
		if qty == 0 || qty > 2000 || int(addr)+int(qty) > 0x10000 {
			return exception(modbus.ErrIllegalDataValue)
		}
		var bits []bool
		var err error
		if fc == 1 {
			bits, err = h.HandleCoils(&modbus.CoilsRequest{UnitId: unit, Addr: addr, Quantity: qty})
		} else {
			bits, err = h.HandleDiscreteInputs(&modbus.DiscreteInputsRequest{UnitId: unit, Addr: addr, Quantity: qty})
		}
		if err == nil && len(bits) != int(qty) {
			err = modbus.ErrServerDeviceFailure
		}
		if err != nil {
			return exception(err)
		}
		out := []byte{unit, fc, byte((qty + 7) / 8)}
		out = append(out, make([]byte, (qty+7)/8)...)
		for i, b := range bits {
			if b {
				out[3+i/8] |= 1 << (i % 8)
			}
		}
		return out
	case 3, 4:
		if qty == 0 || qty > 125 || int(addr)+int(qty) > 0x10000 {
			return exception(modbus.ErrIllegalDataValue)
		}
		var regs []uint16
		var err error
		if fc == 3 {
			regs, err = h.HandleHoldingRegisters(&modbus.HoldingRegistersRequest{UnitId: unit, Addr: addr, Quantity: qty})
		} else {
			regs, err = h.HandleInputRegisters(&modbus.InputRegistersRequest{UnitId: unit, Addr: addr, Quantity: qty})
		}
		if err == nil && len(regs) != int(qty) {
			err = modbus.ErrServerDeviceFailure
		}
		if err != nil {
			return exception(err)
		}
		out := []byte{unit, fc, byte(2 * qty)}
		for _, r := range regs {
			out = binary.BigEndian.AppendUint16(out, r)
		}
		return out
	case 5:
		_, err := h.HandleCoils(&modbus.CoilsRequest{UnitId: unit, Addr: addr, Quantity: 1, IsWrite: true, Args: []bool{qty == 0xFF00}})
		if err != nil {
			return exception(err)
		}
		return append([]byte(nil), f...)
	case 6:
		_, err := h.HandleHoldingRegisters(&modbus.HoldingRegistersRequest{UnitId: unit, Addr: addr, Quantity: 1, IsWrite: true, Args: []uint16{qty}})
		if err != nil {
			return exception(err)
		}
		return append([]byte(nil), f...)
	case 16:
		if qty == 0 || qty > 123 || int(f[6]) != 2*int(qty) {
			return exception(modbus.ErrIllegalDataValue)
		}
		args := make([]uint16, qty)
		for i := range args {
			args[i] = binary.BigEndian.Uint16(f[7+2*i:])
		}
		if _, err := h.HandleHoldingRegisters(&modbus.HoldingRegistersRequest{UnitId: unit, Addr: addr, Quantity: qty, IsWrite: true, Args: args}); err != nil {
			return exception(err)
		}
		return append([]byte(nil), f[:6]...)
	}
	return exception(modbus.ErrIllegalFunction)
}

func exceptionCode(err error) byte {
	var me modbus.Error
	if errors.As(err, &me) {
		switch me {
		case modbus.ErrIllegalFunction:
			return 1
		case modbus.ErrIllegalDataAddress:
			return 2
		case modbus.ErrIllegalDataValue:
			return 3
		case modbus.ErrAcknowledge:
			return 5
		case modbus.ErrServerDeviceBusy:
			return 6
		case modbus.ErrMemoryParityError:
			return 8
		case modbus.ErrGWPathUnavailable:
			return 0x0A
		case modbus.ErrGWTargetFailedToRespond:
			return 0x0B
		}
	}
	return 4 // server device failure
}

// crc is the Modbus RTU CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF), sent low byte first.
func crc(b []byte) uint16 {
	c := uint16(0xFFFF)
	for _, x := range b {
		c ^= uint16(x)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
	}
	return c
}
