package ua

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/gopcua/opcua/id"
)

// le concatenates bytes and little-endian int32s.
func le(parts ...any) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		switch v := p.(type) {
		case byte:
			b.WriteByte(v)
		case int:
			binary.Write(&b, binary.LittleEndian, int32(v))
		case []byte:
			b.Write(v)
		default:
			panic(v)
		}
	}
	return b.Bytes()
}

// heapGrowth runs f and returns how many bytes it allocated.
func heapGrowth(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Each message is a few bytes from a misbehaving peer. Before the limits, the first panicked in
// reflect.MakeSlice, the next allocated gigabytes, the overflow looped over billions of empty
// slices and the nesting overflowed the stack (fatal, no recover).
func TestDecodeRefusesImpossibleLengths(t *testing.T) {
	const int32Array = byte(TypeIDInt32) | VariantArrayValues
	const int32Matrix = int32Array | VariantArrayDimensions
	nested := func(prefix []byte, levels int, leaf []byte) []byte {
		return append(bytes.Repeat(prefix, levels), leaf...)
	}
	cases := []struct {
		name string
		b    []byte
		v    any
	}{
		{"negative array length", le(int32Array, -2), new(Variant)},
		{"DataValue with a negative array length", le(byte(DataValueValue), int32Array, -2), new(DataValue)},
		{"array longer than the message", le(int32Array, MaxVariantArrayLength), new(Variant)},
		{"dimension count of 2^31-1", le(int32Matrix, 1, 7, 0x7fffffff), new(Variant)},
		{"dimension count above MaxNestingDepth", le(int32Matrix, 1, 7, MaxNestingDepth+1, bytes.Repeat(le(1), MaxNestingDepth+1)), new(Variant)},
		// 256^4 = 2^32 overflows int32 to 0, the array length
		{"dimensions whose product overflows", le(int32Matrix, 0, 4, 256, 256, 256, 256), new(Variant)},
		{"generic slice of 2^31-1 DataValues", le(0x7fffffff, byte(0)), new([]*DataValue)},
		{"read response with 100M results", append(make([]byte, 8+4+4+1+4+3), le(100_000_000, byte(0))...), new(ReadResponse)},
		{"variants nested 10,000 deep", nested([]byte{byte(TypeIDVariant)}, 10000, []byte{0}), new(Variant)},
		{"data values nested 10,000 deep", nested([]byte{byte(TypeIDDataValue), byte(DataValueValue)}, 10000, []byte{0}), new(Variant)},
		{"diagnostic infos nested 10,000 deep", nested([]byte{DiagnosticInfoInnerDiagnosticInfo}, 10000, []byte{0}), new(DiagnosticInfo)},
		{"ByteString longer than the message", le(byte(TypeIDByteString), -3), new(Variant)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			alloc := heapGrowth(func() { _, err = Decode(c.b, c.v) })
			if err == nil {
				t.Fatalf("decoded %x without an error", c.b)
			}
			if alloc > 1<<20 {
				t.Errorf("allocated %d bytes for a message of %d", alloc, len(c.b))
			}
			t.Logf("%v (allocated %d bytes)", err, alloc)
		})
	}
}

// An ExtensionObject body can hold a structure with a Variant field, which can hold an ExtensionObject
// again: the depth carries through the generic decoder too.
func TestDecodeExtensionObjectNesting(t *testing.T) {
	// LiteralOperand{Value *Variant}: a Variant of ExtensionObject of LiteralOperand of Variant...
	literal := NewFourByteExpandedNodeID(0, id.LiteralOperand_Encoding_DefaultBinary)
	tid, err := literal.Encode()
	if err != nil {
		t.Fatal(err)
	}
	inner := []byte{0} // null Variant
	for range 200 {
		eo := le(tid, byte(ExtensionObjectBinary), len(inner), inner)
		inner = append([]byte{byte(TypeIDExtensionObject)}, eo...)
	}
	_, err = Decode(inner, new(Variant))
	if !errors.Is(err, StatusBadEncodingLimitsExceeded) {
		t.Fatalf("200 levels of ExtensionObject in Variant: err %v, want StatusBadEncodingLimitsExceeded", err)
	}
}

// What the limits must not refuse: the deepest nesting allowed, a multi-dimensional array, a null array and
// an empty one.
func TestDecodeWithinLimits(t *testing.T) {
	deep := append(bytes.Repeat([]byte{byte(TypeIDVariant)}, MaxNestingDepth-1), byte(TypeIDInt32), 1, 0, 0, 0)
	v := new(Variant)
	if _, err := Decode(deep, v); err != nil {
		t.Fatalf("%d levels: %v", MaxNestingDepth, err)
	}
	matrix := MustVariant([][]int32{{1, 2, 3}, {4, 5, 6}})
	b, err := matrix.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got := new(Variant)
	if _, err := got.Decode(b); err != nil {
		t.Fatal(err)
	}
	if m, ok := got.Value().([][]int32); !ok || len(m) != 2 || m[1][2] != 6 {
		t.Errorf("matrix decoded as %#v", got.Value())
	}
	for _, b := range [][]byte{le(byte(TypeIDInt32)|VariantArrayValues, -1), le(byte(TypeIDInt32)|VariantArrayValues, 0)} {
		if _, err := new(Variant).Decode(b); err != nil {
			t.Errorf("%x: %v", b, err)
		}
	}
}

// On a 32-bit platform a length above 2^31-1 turns negative as an int; ReadN must refuse it, not slice
// with it (GOARCH=386 go test ./ua runs this where it matters).
func TestReadNNegative(t *testing.T) {
	buf := NewBuffer([]byte{1, 2, 3})
	if b := buf.ReadN(-1); b != nil || buf.Error() == nil {
		t.Fatalf("ReadN(-1) = %v, %v", b, buf.Error())
	}
	eo := le(byte(0), byte(0), byte(ExtensionObjectBinary), -16)
	if _, err := new(ExtensionObject).Decode(eo); err == nil {
		t.Fatal("ExtensionObject with a body length of 2^32-16 decoded")
	}
}
