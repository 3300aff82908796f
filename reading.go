// Package fieldgate holds what every part of fieldgate shares: the Reading model and its identity, the wire
// codec, the contract between inputs (Source) and the durable buffer (Emit), the bound on device timestamps
// (SourceTimeBound), and the window Aggregate the central service computes and stores. It imports the standard library only, so the
// gateway's inputs, its buffer and forwarder, and the central service can all depend on it without depending on
// each other.
package fieldgate

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Reading is one sampled value of one metric of one device. It is the unit stored in the buffer, sent to Kafka
// (one record each) and windowed by the central service.
//
// Its identity is (Device, Metric, EventMs()): two readings with the same identity are the same reading
// delivered twice, and the central service stores it once.
type Reading struct {
	Device string // configured, unique in the fleet, e.g. "plant1/press-07"
	Metric string // e.g. "hydraulic_pressure" or "env.temperature"
	Value  Value
	// Quality says whether Value can be trusted. A Bad reading may carry a zero Value.
	Quality Quality
	// Status is the raw protocol code behind Quality: an OPC UA StatusCode, a Modbus exception code; 0 if none.
	Status uint32
	// SourceTime is the device's or server's timestamp; zero when the device gives none (so a device time of
	// 0001-01-01T00:00:00Z cannot be one: see DeviceTime). An input's SourceTimeBound replaces an implausible one.
	SourceTime time.Time
	// GatewayTime is when the gateway read or received the value. Always set.
	GatewayTime time.Time
}

// EventTime is the time the reading is windowed on: SourceTime, or GatewayTime when the device gave none.
func (r Reading) EventTime() time.Time {
	if !r.SourceTime.IsZero() {
		return r.SourceTime
	}
	return r.GatewayTime
}

// EventMs is the event time in whole milliseconds since the Unix epoch, rounded down: the time part of the
// reading's identity. Readings of one series whose event times fall in the same millisecond are one reading.
// The millisecond is the precision of every time fieldgate stores (CrateDB's); see TruncateMs.
func (r Reading) EventMs() int64 { return r.EventTime().UnixMilli() }

// TruncateMs returns t in UTC rounded down to the millisecond, as fieldgate stores it (the zero time stays
// zero). TruncateMs(r.EventTime()) is the instant of r.EventMs().
func TruncateMs(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Millisecond)
}

// Quality is the trust in a value, in the three classes OPC UA defines.
type Quality uint8

const (
	Good      Quality = iota // the zero value, as OPC UA's StatusCode 0 is Good
	Uncertain                // the value may be used with care (stale, sensor degraded, ...)
	Bad                      // the value is not usable: read failed, device exception, sensor failure
)

func (q Quality) String() string {
	switch q {
	case Good:
		return "good"
	case Uncertain:
		return "uncertain"
	case Bad:
		return "bad"
	}
	return "quality(" + strconv.Itoa(int(q)) + ")"
}

// ParseQuality is the inverse of Quality.String.
func ParseQuality(s string) (Quality, error) {
	switch s {
	case "good":
		return Good, nil
	case "uncertain":
		return Uncertain, nil
	case "bad":
		return Bad, nil
	}
	return 0, fmt.Errorf("unknown quality %q (want good, uncertain or bad)", s)
}

// Kind is the type held by a Value.
type Kind uint8

const (
	KindFloat Kind = iota // the zero Value is the float 0
	KindInt
	KindBool
	KindString
)

func (k Kind) String() string {
	switch k {
	case KindFloat:
		return "float"
	case KindInt:
		return "int"
	case KindBool:
		return "bool"
	case KindString:
		return "string"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	switch s {
	case "float":
		return KindFloat, nil
	case "int":
		return KindInt, nil
	case "bool":
		return KindBool, nil
	case "string":
		return KindString, nil
	}
	return 0, fmt.Errorf("unknown value type %q (want float, int, bool or string)", s)
}

// Value is a tagged union of the four types a reading can hold. It is comparable with ==, except that a float
// NaN is not equal to itself (use Equal).
type Value struct {
	kind Kind
	num  uint64 // float64 bits, int64 or bool (0/1)
	str  string
}

// Float, Int, Bool and String make a Value of their type.
func Float(f float64) Value { return Value{kind: KindFloat, num: math.Float64bits(f)} }
func Int(i int64) Value     { return Value{kind: KindInt, num: uint64(i)} }
func String(s string) Value { return Value{kind: KindString, str: s} }
func Bool(b bool) Value {
	if b {
		return Value{kind: KindBool, num: 1}
	}
	return Value{kind: KindBool}
}

// Zero returns the zero Value of kind k (0, 0.0, false or ""): the value of a Bad reading that has none, of the
// kind its good readings have. An unknown kind gives the float 0.
func Zero(k Kind) Value {
	if k > KindString {
		k = KindFloat
	}
	return Value{kind: k}
}

// Kind returns the type the value holds.
func (v Value) Kind() Kind { return v.kind }

// Float returns the value of a KindFloat Value; of another kind, 0.
func (v Value) Float() float64 {
	if v.kind != KindFloat {
		return 0
	}
	return math.Float64frombits(v.num)
}

// Int returns the value of a KindInt Value; of another kind, 0.
func (v Value) Int() int64 {
	if v.kind != KindInt {
		return 0
	}
	return int64(v.num)
}

// Bool returns the value of a KindBool Value; of another kind, false.
func (v Value) Bool() bool { return v.kind == KindBool && v.num != 0 }

// Str returns the value of a KindString Value; of another kind, "".
func (v Value) Str() string {
	if v.kind != KindString {
		return ""
	}
	return v.str
}

// Number returns the value as a float64 for aggregation: floats and ints (ints beyond 2^53 lose precision).
// ok is false for bool and string values.
func (v Value) Number() (f float64, ok bool) {
	switch v.kind {
	case KindFloat:
		return math.Float64frombits(v.num), true
	case KindInt:
		return float64(int64(v.num)), true
	}
	return 0, false
}

// Equal reports whether two values have the same kind and value; NaN equals NaN.
func (v Value) Equal(w Value) bool {
	if v.kind == KindFloat && w.kind == KindFloat {
		a, b := v.Float(), w.Float()
		return a == b || (a != a && b != b)
	}
	return v == w
}

// String formats the value for logs and commissioning output.
func (v Value) String() string {
	switch v.kind {
	case KindFloat:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case KindInt:
		return strconv.FormatInt(v.Int(), 10)
	case KindBool:
		return strconv.FormatBool(v.Bool())
	case KindString:
		return strconv.Quote(v.str)
	}
	return "invalid"
}
