package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fieldgate/fieldgate"
	"github.com/simonvetter/modbus"
)

// ErrUsage is wrapped by the errors of ReadOnce that come from its arguments (the spec, the connection settings)
// rather than from the device: `gateway modbus read` exits with code 2 for them.
var ErrUsage = errors.New("usage error")

type usageError struct{ error }

func (e usageError) Is(target error) bool { return target == ErrUsage }
func (e usageError) Unwrap() error        { return e.error }

func usage(err error) error { return usageError{err} }

// ReadSpec is one commissioning read: what `gateway modbus read` asks a device.
type ReadSpec struct {
	UnitID   int    // default 1
	Register string // holding (default), input, coil or discrete
	Address  int    // first address, 0-based
	// Type decodes the registers (see Tag.Type). Empty: show the raw registers and every numeric
	// interpretation that fits, to find out what a register holds.
	Type string
	// Count is the number of consecutive values of Type to read (default 1); with no Type, the number of
	// registers or bits (default 1, or 4 when nothing is known).
	Count     int
	Length    int    // registers of a string
	Bit       int    // bit of a register, for type bool
	ByteOrder string // ABCD (default), DCBA, BADC, CDAB
	Scale     *float64
	Offset    *float64
}

// ReadResult is what the device returned, raw and decoded.
type ReadResult struct {
	Register RegisterKind
	Address  int
	Raw      []uint16 // registers as read (holding, input)
	Bits     []bool   // coils or discrete inputs
	Values   []ReadValue
	// Interpretations are filled when ReadSpec.Type is empty and at most 8 registers were read: every type and
	// order at every address that fits.
	Interpretations []ReadValue
}

// ReadValue is one decoded value.
type ReadValue struct {
	Address int
	Type    DataType
	Order   ByteOrder
	Value   fieldgate.Value
	Status  uint32 // 0, or StatusOverflow
}

// ReadOnce connects with conn (its Devices are ignored), reads the registers spec names from one unit, decodes
// them and disconnects. It is the logic of `gateway modbus read`. The read is bounded by conn.Timeout (default
// 1s) plus the dial; ctx is checked before it starts. A Modbus exception comes back as an error naming its code.
func ReadOnce(ctx context.Context, conn Config, spec ReadSpec) (ReadResult, error) {
	unit := spec.UnitID
	if unit == 0 {
		unit = DefaultUnitID
	}
	kind, err := ParseRegisterKind(spec.Register)
	if err != nil {
		return ReadResult{}, usage(fieldgate.FieldErrorf("register", "%v", err))
	}
	count := spec.Count
	tag := Tag{Name: "read", Register: spec.Register, Address: spec.Address, Type: spec.Type, Length: spec.Length,
		ByteOrder: spec.ByteOrder, Scale: spec.Scale, Offset: spec.Offset}
	if spec.Type == "bool" && !kind.IsBit() {
		tag.Bit = &spec.Bit
	}
	probe := conn
	probe.Devices = []Device{{Name: "read", UnitID: &unit, Groups: []Group{{Tags: []Tag{tag}}}}}
	if spec.Type == "" {
		probe.Devices[0].Groups[0].Tags[0].Type = ""
		if kind.IsBit() {
			probe.Devices[0].Groups[0].Tags[0].Type = "bool"
		}
	}
	if err := probe.Validate(); err != nil {
		// Name the command's own terms, not the config paths of the probe.
		msg := strings.NewReplacer("devices[0].groups[0].tags[0].", "", "devices[0].", "").Replace(err.Error())
		return ReadResult{}, usage(errors.New(msg))
	}
	ct, _ := probe.Devices[0].Groups[0].Tags[0].compile(ABCD)
	n := count
	if spec.Type != "" {
		if count == 0 {
			count = 1
		}
		n = count * ct.width
	} else if n == 0 {
		n = 1
		if !kind.IsBit() {
			n = 4
		}
	}
	limit := DefaultMaxRegisters
	if kind.IsBit() {
		limit = DefaultMaxBits
	}
	if n > limit || spec.Address+n > 0x10000 {
		return ReadResult{}, usage(fmt.Errorf("reading %d %s from %d is more than one request may read (%d) or runs past 65535", n, kind, spec.Address, limit))
	}
	if err := ctx.Err(); err != nil {
		return ReadResult{}, err
	}
	cfg := probe.WithDefaults()
	client, err := newClient(cfg)
	if err != nil {
		return ReadResult{}, err
	}
	if err := client.Open(); err != nil {
		return ReadResult{}, fmt.Errorf("open %s %s: %w", cfg.Transport, cfg.Address, err)
	}
	defer client.Close()
	_ = client.SetUnitId(uint8(unit))
	res := ReadResult{Register: kind, Address: spec.Address}
	switch kind {
	case Holding:
		res.Raw, err = client.ReadRegisters(uint16(spec.Address), uint16(n), modbus.HOLDING_REGISTER)
	case Input:
		res.Raw, err = client.ReadRegisters(uint16(spec.Address), uint16(n), modbus.INPUT_REGISTER)
	case Coil:
		res.Bits, err = client.ReadCoils(uint16(spec.Address), uint16(n))
	case Discrete:
		res.Bits, err = client.ReadDiscreteInputs(uint16(spec.Address), uint16(n))
	}
	if err != nil {
		k, code := classify(err)
		if k == errException {
			return res, fmt.Errorf("read unit %d %s %d+%d: exception %d (%w)", unit, kind, spec.Address, n, code, err)
		}
		return res, fmt.Errorf("read unit %d %s %d+%d at %s: %w", unit, kind, spec.Address, n, cfg.Address, err)
	}
	switch {
	case kind.IsBit():
		for i, b := range res.Bits {
			res.Values = append(res.Values, ReadValue{Address: spec.Address + i, Type: TypeBool, Value: fieldgate.Bool(b)})
		}
	case spec.Type != "":
		for i := range count {
			off := i * ct.width
			v, st := ct.dec.DecodeRegisters(res.Raw[off : off+ct.width])
			res.Values = append(res.Values, ReadValue{Address: spec.Address + off, Type: ct.dec.Type, Order: ct.dec.Order, Value: v, Status: st})
		}
	case len(res.Raw) <= 8:
		res.Interpretations = Interpret(spec.Address, res.Raw)
	}
	return res, nil
}

// Interpret decodes regs (read from address start) as every numeric type in every byte order, at every
// address where the type fits: the table that answers "what does this register hold?".
func Interpret(start int, regs []uint16) []ReadValue {
	var out []ReadValue
	for off := range regs {
		for _, typ := range []DataType{TypeUint16, TypeInt16, TypeUint32, TypeInt32, TypeFloat32, TypeUint64, TypeInt64, TypeFloat64} {
			w := typ.Registers()
			if off+w > len(regs) {
				continue
			}
			orders := fixtureOrdersAll
			if w == 1 {
				orders = []ByteOrder{ABCD, BADC}
			}
			for _, o := range orders {
				v, st := Decoding{Type: typ, Order: o}.DecodeRegisters(regs[off : off+w])
				out = append(out, ReadValue{Address: start + off, Type: typ, Order: o, Value: v, Status: st})
			}
		}
	}
	return out
}

var fixtureOrdersAll = []ByteOrder{ABCD, CDAB, BADC, DCBA}

// WriteReadResult prints r for a person.
func WriteReadResult(w io.Writer, r ReadResult) error {
	var b strings.Builder
	if r.Bits != nil {
		for i, v := range r.Bits {
			fmt.Fprintf(&b, "%s %d: %v\n", r.Register, r.Address+i, v)
		}
	}
	for i, v := range r.Raw {
		c := func(x byte) byte {
			if x >= 0x20 && x < 0x7f {
				return x
			}
			return '.'
		}
		fmt.Fprintf(&b, "%s %d: 0x%04x %6d %6d %q\n", r.Register, r.Address+i, v, v, int16(v), string([]byte{c(byte(v >> 8)), c(byte(v))}))
	}
	if len(r.Values) > 0 && r.Bits == nil {
		for _, v := range r.Values {
			fmt.Fprintf(&b, "%s %s at %d: %s\n", v.Type, v.Order, v.Address, formatValue(v))
		}
	}
	if len(r.Interpretations) > 0 {
		b.WriteString("interpretations (address type order: value):\n")
		for _, v := range r.Interpretations {
			fmt.Fprintf(&b, "  %5d %-7s %s: %s\n", v.Address, v.Type, v.Order, formatValue(v))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatValue(v ReadValue) string {
	if v.Status == StatusOverflow {
		return "overflow (above 2^63-1; read it with a scale to get a float)"
	}
	switch v.Value.Kind() {
	case fieldgate.KindFloat:
		return fmt.Sprintf("%g", v.Value.Float())
	case fieldgate.KindInt:
		return fmt.Sprint(v.Value.Int())
	case fieldgate.KindBool:
		return fmt.Sprint(v.Value.Bool())
	}
	return fmt.Sprintf("%q", v.Value.Str())
}
