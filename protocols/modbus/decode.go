package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/fieldgate/fieldgate"
)

// DataType is how a tag's registers or bits are interpreted.
type DataType uint8

const (
	TypeBool    DataType = iota + 1 // a coil or discrete input, or one bit (0 = least significant) of a register
	TypeInt16                       // 1 register
	TypeUint16                      // 1 register
	TypeInt32                       // 2 registers
	TypeUint32                      // 2 registers
	TypeInt64                       // 4 registers
	TypeUint64                      // 4 registers; a value above 2^63-1 is Bad with StatusOverflow unless scaled
	TypeFloat32                     // 2 registers, IEEE 754
	TypeFloat64                     // 4 registers, IEEE 754
	TypeString                      // Length registers, 2 bytes each, cut at the first NUL, trailing spaces trimmed
)

var typeNames = [...]string{"", "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"}

func (t DataType) String() string {
	if int(t) < len(typeNames) && t != 0 {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseDataType is the inverse of DataType.String.
func ParseDataType(s string) (DataType, error) {
	for i, n := range typeNames {
		if i > 0 && n == strings.ToLower(s) {
			return DataType(i), nil
		}
	}
	return 0, fmt.Errorf("unknown type %q (want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string)", s)
}

// Registers is the number of registers a value of type t takes: 1 for a bool that is a bit of a register, 0 for a
// string (its length is configured).
func (t DataType) Registers() int {
	switch t {
	case TypeBool, TypeInt16, TypeUint16:
		return 1
	case TypeInt32, TypeUint32, TypeFloat32:
		return 2
	case TypeInt64, TypeUint64, TypeFloat64:
		return 4
	}
	return 0
}

// ByteOrder is the order of a value's bytes across its registers, written as the letters of a 32-bit value
// 0xAABBCCDD in the order they appear on the wire, register by register, in ascending address order:
//
//	ABCD  big endian: high word first, high byte first in each register (the Modbus default)
//	CDAB  low word first, high byte first in each register ("word swap")
//	BADC  high word first, low byte first in each register ("byte swap")
//	DCBA  little endian: low word first, low byte first
//
// 64-bit values extend the pattern over four registers (CDAB reverses all four words, not pairs), as Telegraf
// does. A 16-bit value only sees the byte order: ABCD and CDAB read high byte first, BADC and DCBA low byte first.
// Strings also only see the byte order within each register; their registers are always in address order.
type ByteOrder uint8

const (
	ABCD ByteOrder = iota + 1
	DCBA
	BADC
	CDAB
)

var orderNames = [...]string{"", "ABCD", "DCBA", "BADC", "CDAB"}

func (o ByteOrder) String() string {
	if int(o) < len(orderNames) && o != 0 {
		return orderNames[o]
	}
	return fmt.Sprintf("order(%d)", uint8(o))
}

// ParseByteOrder is the inverse of ByteOrder.String.
func ParseByteOrder(s string) (ByteOrder, error) {
	for i, n := range orderNames {
		if i > 0 && n == strings.ToUpper(s) {
			return ByteOrder(i), nil
		}
	}
	return 0, fmt.Errorf("unknown byte order %q (want ABCD, DCBA, BADC or CDAB)", s)
}

func (o ByteOrder) swapBytes() bool { return o == BADC || o == DCBA }
func (o ByteOrder) swapWords() bool { return o == CDAB || o == DCBA }

// Status codes this package sets on Bad readings besides the Modbus exception codes (1 to 255) the device sent.
// 0x105 (261) is taken: fieldgate.StatusImplausibleTime.
const (
	StatusTimeout    uint32 = 0x100 // the device did not answer within the timeout
	StatusConnection uint32 = 0x101 // the connection or serial port could not be opened, or broke
	StatusProtocol   uint32 = 0x102 // the reply was malformed: bad CRC, wrong length, wrong unit id
	StatusOverflow   uint32 = 0x103 // a uint64 above 2^63-1, which an int reading cannot hold (set scale to get a float)
	StatusNotPolled  uint32 = 0x104 // not asked this tick: the device, the connection or the range is backed off, or the poll stopped early
)

// bigEndian appends the value's bytes, most significant first, from regs in the given order.
func bigEndian(dst []byte, regs []uint16, o ByteOrder) []byte {
	n := len(regs)
	for i := range n {
		w := regs[i]
		if o.swapWords() {
			w = regs[n-1-i]
		}
		if o.swapBytes() {
			w = w<<8 | w>>8
		}
		dst = append(dst, byte(w>>8), byte(w))
	}
	return dst
}

// Decoding describes how to turn a tag's raw registers or bits into a value.
type Decoding struct {
	Type   DataType
	Order  ByteOrder
	Bit    int     // for TypeBool on a register: which bit, 0 = least significant
	Scale  float64 // used when Scaled
	Offset float64 // used when Scaled
	Scaled bool    // value = raw*Scale + Offset, as a float; raw integers are exact up to 2^53
}

// Kind is the kind of Value the decoding produces.
func (d Decoding) Kind() fieldgate.Kind {
	switch {
	case d.Type == TypeBool:
		return fieldgate.KindBool
	case d.Type == TypeString:
		return fieldgate.KindString
	case d.Scaled || d.Type == TypeFloat32 || d.Type == TypeFloat64:
		return fieldgate.KindFloat
	}
	return fieldgate.KindInt
}

// DecodeRegisters turns the registers of one tag, in address order as read, into its value. status is 0 on
// success, or StatusOverflow. regs must hold exactly the tag's registers (len is not checked beyond that).
func (d Decoding) DecodeRegisters(regs []uint16) (v fieldgate.Value, status uint32) {
	var buf [8]byte
	switch d.Type {
	case TypeBool:
		w := regs[0]
		if d.Order.swapBytes() {
			w = w<<8 | w>>8
		}
		return fieldgate.Bool(w>>uint(d.Bit)&1 == 1), 0
	case TypeString:
		return fieldgate.String(decodeString(regs, d.Order)), 0
	}
	b := bigEndian(buf[:0], regs, d.Order)
	var (
		i       int64
		u       uint64
		f       float64
		signed  bool
		isFloat bool
	)
	switch d.Type {
	case TypeInt16:
		i, signed = int64(int16(binary.BigEndian.Uint16(b))), true
	case TypeUint16:
		u = uint64(binary.BigEndian.Uint16(b))
	case TypeInt32:
		i, signed = int64(int32(binary.BigEndian.Uint32(b))), true
	case TypeUint32:
		u = uint64(binary.BigEndian.Uint32(b))
	case TypeInt64:
		i, signed = int64(binary.BigEndian.Uint64(b)), true
	case TypeUint64:
		u = binary.BigEndian.Uint64(b)
	case TypeFloat32:
		f, isFloat = float64(math.Float32frombits(binary.BigEndian.Uint32(b))), true
	case TypeFloat64:
		f, isFloat = math.Float64frombits(binary.BigEndian.Uint64(b)), true
	}
	switch {
	case isFloat && d.Scaled:
		return fieldgate.Float(f*d.Scale + d.Offset), 0
	case isFloat:
		return fieldgate.Float(f), 0
	case d.Scaled && signed:
		return fieldgate.Float(float64(i)*d.Scale + d.Offset), 0
	case d.Scaled:
		return fieldgate.Float(float64(u)*d.Scale + d.Offset), 0
	case signed:
		return fieldgate.Int(i), 0
	case u > math.MaxInt64:
		return fieldgate.Int(0), StatusOverflow
	}
	return fieldgate.Int(int64(u)), 0
}

// DecodeBit turns a coil or discrete input into its value.
func (d Decoding) DecodeBit(b bool) fieldgate.Value { return fieldgate.Bool(b) }

// decodeString reads two bytes per register, cuts at the first NUL, trims trailing spaces and replaces invalid
// UTF-8, so that any register content makes a valid reading.
func decodeString(regs []uint16, o ByteOrder) string {
	b := make([]byte, 0, 2*len(regs))
	for _, w := range regs {
		if o.swapBytes() {
			w = w<<8 | w>>8
		}
		b = append(b, byte(w>>8), byte(w))
	}
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	s := strings.TrimRight(string(b), " ")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// EncodeRegisters is the inverse of DecodeRegisters for an unscaled value: it returns the registers, in address
// order, that a device holding v in this decoding would send. n is the number of registers (for strings). It is
// used by the simulator and the tests.
func (d Decoding) EncodeRegisters(v fieldgate.Value, n int) []uint16 {
	var b []byte
	switch d.Type {
	case TypeString:
		b = make([]byte, 2*n)
		copy(b, v.Str())
		regs := make([]uint16, n)
		for i := range regs {
			w := uint16(b[2*i])<<8 | uint16(b[2*i+1])
			if d.Order.swapBytes() {
				w = w<<8 | w>>8
			}
			regs[i] = w
		}
		return regs
	case TypeBool:
		if v.Bool() {
			w := uint16(1) << uint(d.Bit)
			if d.Order.swapBytes() {
				w = w<<8 | w>>8
			}
			return []uint16{w}
		}
		return []uint16{0}
	case TypeInt16, TypeUint16:
		b = binary.BigEndian.AppendUint16(nil, uint16(v.Int()))
	case TypeInt32, TypeUint32:
		b = binary.BigEndian.AppendUint32(nil, uint32(v.Int()))
	case TypeInt64, TypeUint64:
		b = binary.BigEndian.AppendUint64(nil, uint64(v.Int()))
	case TypeFloat32:
		b = binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(v.Float())))
	case TypeFloat64:
		b = binary.BigEndian.AppendUint64(nil, math.Float64bits(v.Float()))
	}
	// b is big endian (ABCD); lay it out in the device's order. The mapping is its own inverse.
	words := make([]uint16, len(b)/2)
	for i := range words {
		words[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	out := bigEndian(nil, words, d.Order)
	regs := make([]uint16, len(words))
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(out[2*i:])
	}
	return regs
}
