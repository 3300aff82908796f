package modbus

import (
	"context"
	"strings"
	"testing"

	"github.com/fieldgate/fieldgate"
)

func TestReadOnce(t *testing.T) {
	im := &image{badFrom: 60000}
	im.fill()
	addr := startImageServer(t, im)
	conn := Config{Name: "x", Address: addr}
	ctx := context.Background()

	// float64 in CDAB at holding 100 + 16*7 + 4*3.
	r, err := ReadOnce(ctx, conn, ReadSpec{Address: 100 + 16*7 + 4*3, Type: "float64", ByteOrder: "CDAB"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Values) != 1 || r.Values[0].Value != fieldgate.Float(1234.5678) || len(r.Raw) != 4 {
		t.Errorf("float64: %+v", r)
	}
	// Three int16 values in a row (the first is the fixture's int16 ABCD).
	r, err = ReadOnce(ctx, conn, ReadSpec{Address: 100, Type: "int16", Count: 3})
	if err != nil || len(r.Values) != 3 || r.Values[0].Value != fieldgate.Int(-12345) || r.Values[2].Address != 102 {
		t.Errorf("int16 x3: %+v %v", r, err)
	}
	// A string, a bit and coils.
	if r, err = ReadOnce(ctx, conn, ReadSpec{Address: 310, Type: "string", Length: 8, ByteOrder: "BADC"}); err != nil || r.Values[0].Value != fieldgate.String(fixtureString) {
		t.Errorf("string: %+v %v", r, err)
	}
	if r, err = ReadOnce(ctx, conn, ReadSpec{Address: 320, Type: "bool", Bit: 15}); err != nil || r.Values[0].Value != fieldgate.Bool(true) {
		t.Errorf("bit: %+v %v", r, err)
	}
	if r, err = ReadOnce(ctx, conn, ReadSpec{Register: "coil", Count: 4}); err != nil || len(r.Values) != 4 || r.Values[3].Value != fieldgate.Bool(true) || r.Values[1].Value != fieldgate.Bool(false) {
		t.Errorf("coils: %+v %v", r, err)
	}
	// No type: the interpretations include the right answer for the uint32 CDAB value.
	r, err = ReadOnce(ctx, conn, ReadSpec{Address: 100 + 16*3 + 4*3})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range r.Interpretations {
		if v.Address == 100+16*3+4*3 && v.Type == TypeUint32 && v.Order == CDAB && v.Value == fieldgate.Int(3000000000) {
			found = true
		}
	}
	if !found {
		t.Errorf("interpretations miss uint32 CDAB 3000000000: %+v", r.Interpretations)
	}
	// An exception is an error naming its code; a bad spec names the flag's field.
	if _, err := ReadOnce(ctx, conn, ReadSpec{Address: 60000, Type: "uint16"}); err == nil || !strings.Contains(err.Error(), "exception 2") {
		t.Errorf("exception: %v", err)
	}
	if _, err := ReadOnce(ctx, conn, ReadSpec{Address: 0, Type: "float33"}); err == nil || !strings.HasPrefix(err.Error(), "type: unknown type") {
		t.Errorf("bad type: %v", err)
	}
}
