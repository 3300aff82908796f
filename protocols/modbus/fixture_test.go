package modbus

import (
	"fmt"
	"math"

	"github.com/fieldgate/fieldgate"
)

// The test register image. scripts/npm/modbus-server.js serves the same image, built by the same rule with
// Node's own Buffer encoders, so the npm test checks our decoder against an independent encoder.
//
//	holding 100 + 16*type + 4*order: the fixture value of type in byte order (types and orders in the order below)
//	holding 300..307: "fieldgate-plc" as a string, ABCD (high byte first), NUL padded
//	holding 310..317: "fieldgate-plc" as a string, BADC (low byte first)
//	holding 320: 0xA5A5 (bits 0, 2, 5, 7, 8, 10, 13, 15 set)
//	input 0: uint16 777; input 1..2: float32 21.5 ABCD; input 3: uint16 777 (read with scale 0.1, offset -7)
//	coil i (0..15): i%3 == 0; discrete input i (0..15): i%2 == 1
var (
	fixtureTypes  = []DataType{TypeInt16, TypeUint16, TypeInt32, TypeUint32, TypeInt64, TypeUint64, TypeFloat32, TypeFloat64}
	fixtureOrders = []ByteOrder{ABCD, DCBA, BADC, CDAB}
	fixtureValues = map[DataType]fieldgate.Value{
		TypeInt16:   fieldgate.Int(-12345),
		TypeUint16:  fieldgate.Int(54321),
		TypeInt32:   fieldgate.Int(-123456789),
		TypeUint32:  fieldgate.Int(3000000000),
		TypeInt64:   fieldgate.Int(-1234567890123456789),
		TypeUint64:  fieldgate.Int(9007199254740993), // 2^53+1: lost by any detour through float64
		TypeFloat32: fieldgate.Float(float64(float32(3.14159))),
		TypeFloat64: fieldgate.Float(1234.5678),
	}
)

const fixtureString = "fieldgate-plc"

// fixtureTags returns a tag for every value of the image and the value the device holds.
func fixtureTags() ([]Tag, map[string]fieldgate.Value) {
	var tags []Tag
	want := map[string]fieldgate.Value{}
	for i, typ := range fixtureTypes {
		for j, o := range fixtureOrders {
			name := fmt.Sprintf("%s_%s", typ, o)
			tags = append(tags, Tag{Name: name, Address: 100 + 16*i + 4*j, Type: typ.String(), ByteOrder: o.String()})
			want[name] = fixtureValues[typ]
		}
	}
	tags = append(tags,
		Tag{Name: "name_abcd", Address: 300, Type: "string", Length: 8},
		Tag{Name: "name_badc", Address: 310, Type: "string", Length: 8, ByteOrder: "BADC"},
		Tag{Name: "bit0", Address: 320, Type: "bool", Bit: ptr(0)},
		Tag{Name: "bit1", Address: 320, Type: "bool", Bit: ptr(1)},
		Tag{Name: "bit15", Address: 320, Type: "bool", Bit: ptr(15)},
		Tag{Name: "input_u16", Register: "input", Address: 0},
		Tag{Name: "input_f32", Register: "input", Address: 1, Type: "float32"},
		Tag{Name: "scaled", Register: "input", Address: 3, Type: "uint16", Scale: ptr(0.1), Offset: ptr(-7.0)},
	)
	want["name_abcd"], want["name_badc"] = fieldgate.String(fixtureString), fieldgate.String(fixtureString)
	want["bit0"], want["bit1"], want["bit15"] = fieldgate.Bool(true), fieldgate.Bool(false), fieldgate.Bool(true)
	want["input_u16"], want["input_f32"], want["scaled"] = fieldgate.Int(777), fieldgate.Float(21.5), fieldgate.Float(777*0.1-7)
	for i := range 16 {
		c, d := fmt.Sprintf("coil%d", i), fmt.Sprintf("di%d", i)
		tags = append(tags, Tag{Name: c, Register: "coil", Address: i}, Tag{Name: d, Register: "discrete", Address: i})
		want[c], want[d] = fieldgate.Bool(i%3 == 0), fieldgate.Bool(i%2 == 1)
	}
	return tags, want
}

// fill writes the fixture into im.
func (im *image) fill() {
	for i, typ := range fixtureTypes {
		for j, o := range fixtureOrders {
			copy(im.holding[100+16*i+4*j:], Decoding{Type: typ, Order: o}.EncodeRegisters(fixtureValues[typ], 0))
		}
	}
	copy(im.holding[300:], Decoding{Type: TypeString, Order: ABCD}.EncodeRegisters(fieldgate.String(fixtureString), 8))
	copy(im.holding[310:], Decoding{Type: TypeString, Order: BADC}.EncodeRegisters(fieldgate.String(fixtureString), 8))
	im.holding[320] = 0xA5A5
	im.input[0], im.input[3] = 777, 777
	copy(im.input[1:], Decoding{Type: TypeFloat32, Order: ABCD}.EncodeRegisters(fieldgate.Float(21.5), 0))
	for i := range 16 {
		im.coils[i] = i%3 == 0
		im.discrete[i] = i%2 == 1
	}
}

func sameValue(a, b fieldgate.Value) bool {
	if a.Kind() == fieldgate.KindFloat && b.Kind() == fieldgate.KindFloat {
		return a.Float() == b.Float() || math.Abs(a.Float()-b.Float()) < 1e-9*math.Max(1, math.Abs(b.Float()))
	}
	return a.Equal(b)
}
