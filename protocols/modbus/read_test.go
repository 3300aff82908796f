package modbus

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
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

func TestRunReadCommand(t *testing.T) {
	im := &image{}
	im.fill()
	addr := startImageServer(t, im)
	var out bytes.Buffer
	if err := RunReadCommand(context.Background(), []string{"-address", addr, "-start", "196", "-type", "float32", "-order", "DCBA"}, &out); err != nil {
		t.Fatal(err)
	}
	// holding 100 + 16*6 + 4*1 = 200 is float32 DCBA; 196 is float32 ABCD: decoding it as DCBA gives garbage,
	// so check the right one.
	out.Reset()
	if err := RunReadCommand(context.Background(), []string{"-address", addr, "-start", "200", "-type", "float32", "-order", "DCBA"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "float32 DCBA at 200: 3.14159") {
		t.Errorf("output:\n%s", out.String())
	}
	out.Reset()
	if err := RunReadCommand(context.Background(), []string{"-address", addr, "-start", "300", "-count", "2"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `holding 300: 0x6669`) || !strings.Contains(out.String(), `"fi"`) || !strings.Contains(out.String(), "interpretations") {
		t.Errorf("raw output:\n%s", out.String())
	}
	for _, args := range [][]string{{"-start", "1"}, {"-address", addr, "-type", "float33"}, {"-address", addr, "-nope"}, {"-address", addr, "extra"}, {"-address", addr, "-count", "200"}} {
		if err := RunReadCommand(context.Background(), args, &out); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	if err := RunReadCommand(context.Background(), []string{"-address", testutil.FreeAddr(t)}, &out); err == nil || errors.Is(err, ErrUsage) {
		t.Errorf("connection refused: %v, want a read failure", err)
	}
}
