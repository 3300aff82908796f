package modbus

import (
	"context"
	"io"
	"math"
	"testing"

	"github.com/fieldgate/fieldgate"
)

func TestDecodeRegisters(t *testing.T) {
	f32 := math.Float32bits(-12.5)     // 0xC1480000
	f64 := math.Float64bits(1234.5678) // 0x40934A456D5CFAAD
	cases := []struct {
		name   string
		dec    Decoding
		regs   []uint16
		want   fieldgate.Value
		status uint32
	}{
		// 16 bit: only the byte order matters.
		{"uint16 ABCD", Decoding{Type: TypeUint16, Order: ABCD}, []uint16{0x1234}, fieldgate.Int(0x1234), 0},
		{"uint16 CDAB", Decoding{Type: TypeUint16, Order: CDAB}, []uint16{0x1234}, fieldgate.Int(0x1234), 0},
		{"uint16 BADC", Decoding{Type: TypeUint16, Order: BADC}, []uint16{0x1234}, fieldgate.Int(0x3412), 0},
		{"uint16 DCBA", Decoding{Type: TypeUint16, Order: DCBA}, []uint16{0x1234}, fieldgate.Int(0x3412), 0},
		{"int16 negative", Decoding{Type: TypeInt16, Order: ABCD}, []uint16{0xFFFE}, fieldgate.Int(-2), 0},
		{"uint16 max is not negative", Decoding{Type: TypeUint16, Order: ABCD}, []uint16{0xFFFF}, fieldgate.Int(65535), 0},
		// 32 bit, value 0x11223344.
		{"uint32 ABCD", Decoding{Type: TypeUint32, Order: ABCD}, []uint16{0x1122, 0x3344}, fieldgate.Int(0x11223344), 0},
		{"uint32 CDAB", Decoding{Type: TypeUint32, Order: CDAB}, []uint16{0x3344, 0x1122}, fieldgate.Int(0x11223344), 0},
		{"uint32 BADC", Decoding{Type: TypeUint32, Order: BADC}, []uint16{0x2211, 0x4433}, fieldgate.Int(0x11223344), 0},
		{"uint32 DCBA", Decoding{Type: TypeUint32, Order: DCBA}, []uint16{0x4433, 0x2211}, fieldgate.Int(0x11223344), 0},
		// A uint32 above 2^31 must not come out negative (a sign bug peers shipped when converting through int32).
		{"uint32 max", Decoding{Type: TypeUint32, Order: ABCD}, []uint16{0xFFFF, 0xFFFF}, fieldgate.Int(4294967295), 0},
		{"int32 -1", Decoding{Type: TypeInt32, Order: CDAB}, []uint16{0xFFFF, 0xFFFF}, fieldgate.Int(-1), 0},
		{"int32 min CDAB", Decoding{Type: TypeInt32, Order: CDAB}, []uint16{0x0000, 0x8000}, fieldgate.Int(math.MinInt32), 0},
		// 64 bit, value 0x0102030405060708: CDAB reverses all four words (not pairs of words).
		{"int64 ABCD", Decoding{Type: TypeInt64, Order: ABCD}, []uint16{0x0102, 0x0304, 0x0506, 0x0708}, fieldgate.Int(0x0102030405060708), 0},
		{"int64 CDAB", Decoding{Type: TypeInt64, Order: CDAB}, []uint16{0x0708, 0x0506, 0x0304, 0x0102}, fieldgate.Int(0x0102030405060708), 0},
		{"int64 BADC", Decoding{Type: TypeInt64, Order: BADC}, []uint16{0x0201, 0x0403, 0x0605, 0x0807}, fieldgate.Int(0x0102030405060708), 0},
		{"int64 DCBA", Decoding{Type: TypeInt64, Order: DCBA}, []uint16{0x0807, 0x0605, 0x0403, 0x0201}, fieldgate.Int(0x0102030405060708), 0},
		{"int64 min", Decoding{Type: TypeInt64, Order: ABCD}, []uint16{0x8000, 0, 0, 0}, fieldgate.Int(math.MinInt64), 0},
		// uint64 above 2^63-1 does not fit an int reading: Bad, not a wrapped negative number.
		{"uint64 max overflows", Decoding{Type: TypeUint64, Order: ABCD}, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}, fieldgate.Int(0), StatusOverflow},
		{"uint64 2^63-1", Decoding{Type: TypeUint64, Order: ABCD}, []uint16{0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF}, fieldgate.Int(math.MaxInt64), 0},
		{"uint64 max scaled is a float", Decoding{Type: TypeUint64, Order: ABCD, Scaled: true, Scale: 1}, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}, fieldgate.Float(18446744073709551615), 0},
		// Floats.
		{"float32 ABCD", Decoding{Type: TypeFloat32, Order: ABCD}, []uint16{uint16(f32 >> 16), uint16(f32)}, fieldgate.Float(-12.5), 0},
		{"float32 CDAB", Decoding{Type: TypeFloat32, Order: CDAB}, []uint16{uint16(f32), uint16(f32 >> 16)}, fieldgate.Float(-12.5), 0},
		{"float32 NaN passes through", Decoding{Type: TypeFloat32, Order: ABCD}, []uint16{0x7FC0, 0}, fieldgate.Float(math.NaN()), 0},
		{"float32 +Inf", Decoding{Type: TypeFloat32, Order: ABCD}, []uint16{0x7F80, 0}, fieldgate.Float(math.Inf(1)), 0},
		{"float64 ABCD", Decoding{Type: TypeFloat64, Order: ABCD}, []uint16{uint16(f64 >> 48), uint16(f64 >> 32), uint16(f64 >> 16), uint16(f64)}, fieldgate.Float(1234.5678), 0},
		{"float64 CDAB", Decoding{Type: TypeFloat64, Order: CDAB}, []uint16{uint16(f64), uint16(f64 >> 16), uint16(f64 >> 32), uint16(f64 >> 48)}, fieldgate.Float(1234.5678), 0},
		{"float64 DCBA", Decoding{Type: TypeFloat64, Order: DCBA}, []uint16{swap(uint16(f64)), swap(uint16(f64 >> 16)), swap(uint16(f64 >> 32)), swap(uint16(f64 >> 48))}, fieldgate.Float(1234.5678), 0},
		// Scale and offset: applied to the signed value in float64 (a negative int16 times 0.1 is -0.1, not
		// 6553.5; an int32 count times 0.001 keeps float64 precision).
		{"int16 scaled negative", Decoding{Type: TypeInt16, Order: ABCD, Scaled: true, Scale: 0.1}, []uint16{0xFFFF}, fieldgate.Float(-0.1), 0},
		{"uint16 offset", Decoding{Type: TypeUint16, Order: ABCD, Scaled: true, Scale: 1, Offset: -273.15}, []uint16{300}, fieldgate.Float(300 - 273.15), 0},
		{"int32 scaled precision", Decoding{Type: TypeInt32, Order: ABCD, Scaled: true, Scale: 0.001}, []uint16{0x075B, 0xCD15}, fieldgate.Float(123456.789), 0},
		{"float32 scaled", Decoding{Type: TypeFloat32, Order: ABCD, Scaled: true, Scale: 2, Offset: 1}, []uint16{uint16(f32 >> 16), uint16(f32)}, fieldgate.Float(-24), 0},
		// Telegraf overflow_issue_14387: uint32 energy counters scaled by 10 must not wrap.
		{"uint32 energy scaled", Decoding{Type: TypeUint32, Order: ABCD, Scaled: true, Scale: 10}, []uint16{0xFFFF, 0xFFFF}, fieldgate.Float(42949672950), 0},
		// Bits of a register, after byte order.
		{"bit 0", Decoding{Type: TypeBool, Order: ABCD, Bit: 0}, []uint16{0x0001}, fieldgate.Bool(true), 0},
		{"bit 15", Decoding{Type: TypeBool, Order: ABCD, Bit: 15}, []uint16{0x8000}, fieldgate.Bool(true), 0},
		{"bit 1 clear", Decoding{Type: TypeBool, Order: ABCD, Bit: 1}, []uint16{0xFFFD}, fieldgate.Bool(false), 0},
		{"bit 8 byte swapped", Decoding{Type: TypeBool, Order: BADC, Bit: 8}, []uint16{0x0001}, fieldgate.Bool(true), 0},
		// Strings: two bytes a register, cut at NUL, trailing spaces trimmed, invalid UTF-8 replaced.
		{"string ABCD", Decoding{Type: TypeString, Order: ABCD}, []uint16{0x504C, 0x432D, 0x3100, 0x0000}, fieldgate.String("PLC-1"), 0},
		{"string BADC", Decoding{Type: TypeString, Order: BADC}, []uint16{0x4C50, 0x2D43, 0x0031}, fieldgate.String("PLC-1"), 0},
		{"string space padded", Decoding{Type: TypeString, Order: ABCD}, []uint16{0x4F4B, 0x2020}, fieldgate.String("OK"), 0},
		{"string invalid utf8", Decoding{Type: TypeString, Order: ABCD}, []uint16{0x41FF}, fieldgate.String("A\uFFFD"), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, status := c.dec.DecodeRegisters(c.regs)
			if status != c.status {
				t.Fatalf("status = %#x, want %#x", status, c.status)
			}
			if got.Kind() != c.want.Kind() || (!got.Equal(c.want) && !(got.Kind() == fieldgate.KindFloat && math.Abs(got.Float()-c.want.Float()) < 1e-9*math.Max(1, math.Abs(c.want.Float())))) {
				t.Errorf("got %v (%v), want %v (%v)", got, got.Kind(), c.want, c.want.Kind())
			}
			if got.Kind() != c.dec.Kind() {
				t.Errorf("kind %v, Decoding.Kind says %v", got.Kind(), c.dec.Kind())
			}
		})
	}
}

func swap(w uint16) uint16 { return w<<8 | w>>8 }

// TestEncodeDecodeRoundTrip checks the simulator's encoder against the decoder for every type and order.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	values := map[DataType]fieldgate.Value{
		TypeInt16: fieldgate.Int(-1234), TypeUint16: fieldgate.Int(54321), TypeInt32: fieldgate.Int(-123456789),
		TypeUint32: fieldgate.Int(3000000000), TypeInt64: fieldgate.Int(-1234567890123456789), TypeUint64: fieldgate.Int(1234567890123456789),
		TypeFloat32: fieldgate.Float(3.5), TypeFloat64: fieldgate.Float(-2.25e100), TypeString: fieldgate.String("hello"),
		TypeBool: fieldgate.Bool(true),
	}
	for typ, v := range values {
		for o := ABCD; o <= CDAB; o++ {
			d := Decoding{Type: typ, Order: o, Bit: 5}
			regs := d.EncodeRegisters(v, 4)
			got, st := d.DecodeRegisters(regs)
			if st != 0 || !got.Equal(v) {
				t.Errorf("%v %v: encode %v -> %04x -> %v (status %d)", typ, o, v, regs, got, st)
			}
		}
	}
}

func TestParseNames(t *testing.T) {
	for ty := TypeBool; ty <= TypeString; ty++ {
		if got, err := ParseDataType(ty.String()); err != nil || got != ty {
			t.Errorf("ParseDataType(%q) = %v, %v", ty, got, err)
		}
	}
	for o := ABCD; o <= CDAB; o++ {
		if got, err := ParseByteOrder(o.String()); err != nil || got != o {
			t.Errorf("ParseByteOrder(%q) = %v, %v", o, got, err)
		}
	}
	if _, err := ParseDataType("int128"); err == nil {
		t.Error("int128 parsed")
	}
	if _, err := ParseByteOrder("ABDC"); err == nil {
		t.Error("ABDC parsed")
	}
}

// FuzzDecodeRegisters: any register content, type and order decodes without panicking into a reading that the
// wire codec accepts, and integer types agree with each other.
func FuzzDecodeRegisters(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint8(7), uint8(1), uint8(0), 1.0, 0.0, false)
	f.Add([]byte{0x7f, 0xc0, 0, 0}, uint8(8), uint8(4), uint8(3), 0.5, 1.0, true)
	f.Add([]byte{0x41, 0xff, 0, 0x20}, uint8(10), uint8(3), uint8(0), 0.0, 0.0, false)
	f.Add([]byte{0x80, 0x00}, uint8(1), uint8(2), uint8(15), 0.0, 0.0, false)
	f.Fuzz(func(t *testing.T, raw []byte, typ, order, bit uint8, scale, offset float64, scaled bool) {
		d := Decoding{Type: DataType(typ%10 + 1), Order: ByteOrder(order%4 + 1), Bit: int(bit % 16), Scale: scale, Offset: offset, Scaled: scaled}
		if d.Type == TypeBool || d.Type == TypeString {
			d.Scaled = false
		}
		n := d.Type.Registers()
		if n == 0 {
			n = len(raw) / 2
			if n == 0 {
				return
			}
		}
		if len(raw) < 2*n {
			return
		}
		regs := make([]uint16, n)
		for i := range regs {
			regs[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
		}
		v, status := d.DecodeRegisters(regs)
		if v.Kind() != d.Kind() {
			t.Fatalf("kind %v, want %v", v.Kind(), d.Kind())
		}
		r := fieldgate.Reading{Device: "d", Metric: "m", Value: v, Status: status, GatewayTime: fieldgate.Reading{}.GatewayTime.AddDate(2000, 0, 0)}
		if status != 0 {
			r.Quality = fieldgate.Bad
		}
		if _, err := fieldgate.Encode(r); err != nil {
			t.Fatalf("decoded reading does not encode: %v", err)
		}
		// Signed and unsigned views of the same registers agree modulo 2^bits.
		if !d.Scaled && (d.Type == TypeInt32 || d.Type == TypeUint32) {
			other := d
			if d.Type == TypeInt32 {
				other.Type = TypeUint32
			} else {
				other.Type = TypeInt32
			}
			w, _ := other.DecodeRegisters(regs)
			if uint32(w.Int()) != uint32(v.Int()) {
				t.Fatalf("int32/uint32 disagree: %d vs %d", v.Int(), w.Int())
			}
		}
	})
}

// FuzzRTUServer feeds arbitrary bytes to the RTU server the simulator uses: it must never panic, and every reply
// it sends must carry a valid CRC.
func FuzzRTUServer(f *testing.F) {
	im := &image{}
	im.fill()
	req := func(b ...byte) []byte {
		return append(b, byte(crc(b)), byte(crc(b)>>8))
	}
	f.Add(req(1, 3, 0, 100, 0, 10))
	f.Add(req(1, 1, 0, 0, 0, 16))
	f.Add(req(1, 16, 0, 0, 0, 1, 2, 0xAB, 0xCD))
	f.Add(append([]byte{0xff, 0x00}, req(7, 4, 0xff, 0xff, 0, 1)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out rtuSink
		_ = ServeRTU(context.Background(), &rtuSource{in: in, out: &out}, im)
		for _, r := range out.replies {
			if len(r) < 4 || crc(r[:len(r)-2]) != uint16(r[len(r)-2])|uint16(r[len(r)-1])<<8 {
				t.Fatalf("reply % x has a bad CRC", r)
			}
		}
	})
}

type rtuSink struct{ replies [][]byte }

type rtuSource struct {
	in  []byte
	out *rtuSink
}

func (s *rtuSource) Read(p []byte) (int, error) {
	if len(s.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.in[:min(len(s.in), 3)]) // arrive in small pieces, as on a serial line
	s.in = s.in[n:]
	return n, nil
}

func (s *rtuSource) Write(p []byte) (int, error) {
	s.out.replies = append(s.out.replies, append([]byte(nil), p...))
	return len(p), nil
}
