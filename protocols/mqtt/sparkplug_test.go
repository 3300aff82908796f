package mqtt

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/protocols/mqtt/sparkplugb"
)

// The Sparkplug host's rules, tested on the host itself (no broker): payloads are built with the generated code,
// mapped, and the readings, dead-letter reasons and queued NCMD/STATE messages checked.

// spTS is the payload timestamp of the test messages: 2026-11-25T12:00:00Z.
const spTS = 1795608000000

var spTime0 = time.UnixMilli(spTS).UTC()

type (
	spB = sparkplugb.Payload_Metric_builder
	spT = sparkplugb.DataType
)

// spMetricB starts a metric: a name ("" for none), an alias (0 for none), a datatype (Unknown for none) and the
// payload's timestamp.
func spMetricB(name string, alias uint64, typ spT) *spB {
	b := &spB{Timestamp: proto.Uint64(spTS)}
	if name != "" {
		b.Name = proto.String(name)
	}
	if alias != 0 {
		b.Alias = proto.Uint64(alias)
	}
	if typ != sparkplugb.DataType_Unknown {
		b.Datatype = proto.Uint32(uint32(typ))
	}
	return b
}

// with sets a metric builder's fields by f and builds it.
func with(b *spB, f func(*spB)) *sparkplugb.Payload_Metric {
	f(b)
	return b.Build()
}

func spInt(name string, alias uint64, typ spT, v uint32) *sparkplugb.Payload_Metric {
	return with(spMetricB(name, alias, typ), func(b *spB) { b.IntValue = proto.Uint32(v) })
}

func spLong(name string, alias uint64, typ spT, v uint64) *sparkplugb.Payload_Metric {
	return with(spMetricB(name, alias, typ), func(b *spB) { b.LongValue = proto.Uint64(v) })
}

func spDouble(name string, alias uint64, v float64) *sparkplugb.Payload_Metric {
	return with(spMetricB(name, alias, sparkplugb.DataType_Double), func(b *spB) { b.DoubleValue = proto.Float64(v) })
}

func spBool(name string, alias uint64, v bool) *sparkplugb.Payload_Metric {
	return with(spMetricB(name, alias, sparkplugb.DataType_Boolean), func(b *spB) { b.BooleanValue = proto.Bool(v) })
}

func spString(name string, alias uint64, typ spT, v string) *sparkplugb.Payload_Metric {
	return with(spMetricB(name, alias, typ), func(b *spB) { b.StringValue = proto.String(v) })
}

func spBytes(name string, alias uint64, typ spT, v []byte) *sparkplugb.Payload_Metric {
	return with(spMetricB(name, alias, typ), func(b *spB) { b.BytesValue = v })
}

// spBdSeq is the bdSeq metric of a birth or death (Int64, tck-id-payloads-nbirth-bdseq).
func spBdSeq(v uint64) *sparkplugb.Payload_Metric {
	return spLong("bdSeq", 0, sparkplugb.DataType_Int64, v)
}

// spRebirthMetric is the Node Control/Rebirth metric every NBIRTH carries (Boolean false, no alias).
func spRebirthMetric() *sparkplugb.Payload_Metric {
	return spBool("Node Control/Rebirth", 0, false)
}

// spPayload encodes a payload with the test timestamp; seq < 0 leaves the sequence number out.
func spPayload(t testing.TB, seq int, metrics ...*sparkplugb.Payload_Metric) []byte {
	t.Helper()
	b := sparkplugb.Payload_builder{Timestamp: proto.Uint64(spTS), Metrics: metrics}
	if seq >= 0 {
		b.Seq = proto.Uint64(uint64(seq))
	}
	raw, err := proto.Marshal(b.Build())
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// testHost is a Sparkplug host with a clock of its own.
type testHost struct {
	t   *testing.T
	h   *sparkplugHost
	now time.Time
}

func newTestHost(t *testing.T, cfg SparkplugConfig) *testHost {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	th := &testHost{t: t, now: time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)}
	th.h = newSparkplugHost(cfg.withDefaults(), testLogger(t))
	th.h.now = func() time.Time { return th.now }
	t.Cleanup(th.h.close)
	return th
}

// send maps one message.
func (th *testHost) send(topic string, payload []byte) ([]fieldgate.Reading, error) {
	th.t.Helper()
	rs, err := th.h.mapMessage(nil, topic, payload, th.now)
	if err != nil && len(rs) != 0 {
		th.t.Fatalf("%s: error %v with %d readings", topic, err, len(rs))
	}
	return rs, err
}

// must maps one message that must succeed.
func (th *testHost) must(topic string, payload []byte) []fieldgate.Reading {
	th.t.Helper()
	rs, err := th.send(topic, payload)
	if err != nil {
		th.t.Fatalf("%s: %v", topic, err)
	}
	return rs
}

// sent returns the messages the host queued for the sender since the last call.
func (th *testHost) sent() []spOutbound {
	var out []spOutbound
	for {
		select {
		case o := <-th.h.out:
			out = append(out, o)
		default:
			return out
		}
	}
}

// rebirths returns the edge nodes (group/node) the host asked for a rebirth since the last call, checking each
// request is the NCMD the specification defines.
func (th *testHost) rebirths() []string {
	th.t.Helper()
	var nodes []string
	for _, o := range th.sent() {
		parts := strings.Split(o.topic, "/")
		if len(parts) != 4 || parts[0] != "spBv1.0" || parts[2] != "NCMD" {
			th.t.Fatalf("not an NCMD topic: %s", o.topic)
		}
		checkRebirthRequest(th.t, o.qos, o.retain, o.payload)
		nodes = append(nodes, parts[1]+"/"+parts[3])
	}
	return nodes
}

// checkRebirthRequest checks an NCMD Node Control/Rebirth (tck-id-operational-behavior-data-commands-ncmd-rebirth-
// verb, -name, -value; tck-id-topics-ncmd-mqtt: QoS 0, not retained; tck-id-topics-ncmd-timestamp).
func checkRebirthRequest(t testing.TB, qos byte, retain bool, payload []byte) {
	t.Helper()
	if qos != 0 || retain {
		t.Errorf("NCMD with QoS %d, retain %t: want 0, false", qos, retain)
	}
	p := new(sparkplugb.Payload)
	if err := proto.Unmarshal(payload, p); err != nil {
		t.Fatal(err)
	}
	ms := p.GetMetrics()
	if !p.HasTimestamp() || p.HasSeq() || len(ms) != 1 || ms[0].GetName() != "Node Control/Rebirth" ||
		ms[0].GetDatatype() != uint32(sparkplugb.DataType_Boolean) || !ms[0].HasBooleanValue() || !ms[0].GetBooleanValue() {
		t.Errorf("not a rebirth request: %v", p)
	}
}

// line renders a reading compactly for comparisons: device metric=value quality/status @source time.
func line(r fieldgate.Reading) string {
	s := fmt.Sprintf("%s %s=%s", r.Device, r.Metric, r.Value)
	if r.Quality != fieldgate.Good || r.Status != 0 {
		s += fmt.Sprintf(" %s/%d", r.Quality, r.Status)
	}
	if !r.SourceTime.Equal(spTime0) {
		if r.SourceTime.IsZero() {
			s += " @none"
		} else {
			s += " @" + r.SourceTime.Format(time.RFC3339Nano)
		}
	}
	return s
}

func lines(rs []fieldgate.Reading) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = line(r)
	}
	return out
}

func checkLines(t *testing.T, what string, rs []fieldgate.Reading, want ...string) {
	t.Helper()
	got := lines(rs)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
}

// nbirth is a minimal NBIRTH of seq 0 with bdSeq and Node Control/Rebirth and the given metrics.
func nbirth(t testing.TB, bdSeq uint64, metrics ...*sparkplugb.Payload_Metric) []byte {
	return spPayload(t, 0, append([]*sparkplugb.Payload_Metric{spBdSeq(bdSeq), spRebirthMetric()}, metrics...)...)
}

// Every datatype Sparkplug defines, in a DBIRTH and then by alias alone in a DDATA, decoded by the birth's
// datatype: the signed integers travel as two's complement in unsigned fields; UInt32 in either integer field.
func TestSparkplugEveryDatatype(t *testing.T) {
	th := newTestHost(t, SparkplugConfig{})
	th.must("spBv1.0/plant/NBIRTH/edge1", nbirth(t, 3))
	type tc struct {
		birth, data *sparkplugb.Payload_Metric
		want        []string // readings of the birth, then of the data
	}
	d := "plant/edge1/dev1 "
	cases := []tc{
		{spInt("i8", 1, sparkplugb.DataType_Int8, 0xFFFFFFFF), spInt("", 1, 0, 0xF4), []string{d + "i8=-1", d + "i8=-12"}},
		{spInt("i16", 2, sparkplugb.DataType_Int16, 0xFFFF8AD0), spInt("", 2, 0, 32767), []string{d + "i16=-30000", d + "i16=32767"}},
		{spInt("i32", 3, sparkplugb.DataType_Int32, 4294967284), spInt("", 3, 0, 0x80000000), []string{d + "i32=-12", d + "i32=-2147483648"}},
		{spLong("i64", 4, sparkplugb.DataType_Int64, 0xFFFFFFFFFFFFFFFE), spLong("", 4, 0, 1<<62), []string{d + "i64=-2", d + "i64=4611686018427387904"}},
		{spInt("u8", 5, sparkplugb.DataType_UInt8, 255), spInt("", 5, 0, 0), []string{d + "u8=255", d + "u8=0"}},
		{spInt("u16", 6, sparkplugb.DataType_UInt16, 65535), spInt("", 6, 0, 1), []string{d + "u16=65535", d + "u16=1"}},
		{spInt("u32", 7, sparkplugb.DataType_UInt32, 4294967295), spLong("", 7, 0, 4000000000), []string{d + "u32=4294967295", d + "u32=4000000000"}},
		{spLong("u64", 8, sparkplugb.DataType_UInt64, math.MaxUint64), spLong("", 8, 0, 42), []string{d + `u64="18446744073709551615"`, d + "u64=42"}},
		{with(spMetricB("f", 9, sparkplugb.DataType_Float), func(b *spB) { b.FloatValue = proto.Float32(21.5) }),
			with(spMetricB("", 9, 0), func(b *spB) { b.FloatValue = proto.Float32(-0.25) }), []string{d + "f=21.5", d + "f=-0.25"}},
		{spDouble("d", 10, 1234.5678), spDouble("", 10, -1e-9), []string{d + "d=1234.5678", d + "d=-1e-09"}},
		{spBool("b", 11, true), spBool("", 11, false), []string{d + "b=true", d + "b=false"}},
		{spString("s", 12, sparkplugb.DataType_String, "läuft"), spString("", 12, 0, ""), []string{d + `s="läuft"`, d + `s=""`}},
		{spLong("dt", 13, sparkplugb.DataType_DateTime, spTS+123), spLong("", 13, 0, 0), []string{d + `dt="2026-11-25T12:00:00.123Z"`, d + `dt="1970-01-01T00:00:00Z"`}},
		{spString("txt", 14, sparkplugb.DataType_Text, "line 1\nline 2"), spString("", 14, 0, "x"), []string{d + `txt="line 1\nline 2"`, d + `txt="x"`}},
		{spString("id", 15, sparkplugb.DataType_UUID, "0b2f5a3c-1e4d-4c8e-9a57-3f9d1c2b7e60"), spString("", 15, 0, "u"), []string{d + `id="0b2f5a3c-1e4d-4c8e-9a57-3f9d1c2b7e60"`, d + `id="u"`}},
		{spBytes("raw", 17, sparkplugb.DataType_Bytes, []byte{0, 1, 0xFF}), spBytes("", 17, 0, []byte{}), []string{d + `raw="AAH/"`, d + `raw=""`}},
		{spBytes("file", 18, sparkplugb.DataType_File, []byte("%PDF")), spBytes("", 18, 0, []byte("x")), []string{d + `file="JVBERg=="`, d + `file="eA=="`}},
	}
	var births, datas []*sparkplugb.Payload_Metric
	var want []string
	for _, c := range cases {
		births = append(births, c.birth)
		datas = append(datas, c.data)
		want = append(want, c.want[0])
	}
	for _, c := range cases {
		want = append(want, c.want[1])
	}
	rs := th.must("spBv1.0/plant/DBIRTH/edge1/dev1", spPayload(t, 1, births...))
	rs = append(rs, th.must("spBv1.0/plant/DDATA/edge1/dev1", spPayload(t, 2, datas...))...)
	checkLines(t, "DBIRTH then DDATA", rs, want...)
	if rb := th.rebirths(); len(rb) != 0 {
		t.Errorf("rebirth requested: %v", rb)
	}
}

// Arrays are flattened to <metric>.<index>, decoded little-endian. The byte vectors are worked out from the
// rules (two's complement, IEEE 754, little-endian), not taken from the 3.0.0 PDF, whose array examples are
// wrong (it gives Int8Array [-23, 123] as EF 7B; -23 is E9).
func TestSparkplugArrays(t *testing.T) {
	th := newTestHost(t, SparkplugConfig{})
	n := "plant/edge1 "
	cases := []struct {
		typ  spT
		raw  []byte
		want []string
	}{
		{sparkplugb.DataType_Int8Array, []byte{0xE9, 0x7B}, []string{"a.0=-23", "a.1=123"}},
		{sparkplugb.DataType_Int16Array, []byte{0xD0, 0x8A, 0x30, 0x75}, []string{"a.0=-30000", "a.1=30000"}},
		{sparkplugb.DataType_Int32Array, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0x78, 0x56, 0x34, 0x12}, []string{"a.0=-1", "a.1=305419896"}},
		{sparkplugb.DataType_Int64Array, []byte{0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, []string{"a.0=-2"}},
		{sparkplugb.DataType_UInt8Array, []byte{0x00, 0xFF}, []string{"a.0=0", "a.1=255"}},
		{sparkplugb.DataType_UInt16Array, []byte{0xFF, 0xFF, 0x01, 0x00}, []string{"a.0=65535", "a.1=1"}},
		{sparkplugb.DataType_UInt32Array, []byte{0xFF, 0xFF, 0xFF, 0xFF}, []string{"a.0=4294967295"}},
		{sparkplugb.DataType_UInt64Array, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 7, 0, 0, 0, 0, 0, 0, 0}, []string{`a.0="18446744073709551615"`, "a.1=7"}},
		{sparkplugb.DataType_FloatArray, []byte{0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0}, []string{"a.0=1", "a.1=-2.5"}},
		{sparkplugb.DataType_DoubleArray, []byte{0, 0, 0, 0, 0, 0, 0xF8, 0x3F}, []string{"a.0=1.5"}},
		// 5 elements, true false true true false: the first element in the most significant bit (1011 0000).
		{sparkplugb.DataType_BooleanArray, []byte{5, 0, 0, 0, 0xB0}, []string{"a.0=true", "a.1=false", "a.2=true", "a.3=true", "a.4=false"}},
		{sparkplugb.DataType_StringArray, []byte{'a', 'b', 0, 0, 0xC3, 0xA7, 0}, []string{`a.0="ab"`, `a.1=""`, `a.2="ç"`}},
		// 1700000000000 ms = 0x18BCFE56800.
		{sparkplugb.DataType_DateTimeArray, []byte{0x00, 0x68, 0xE5, 0xCF, 0x8B, 0x01, 0, 0}, []string{`a.0="2023-11-14T22:13:20Z"`}},
		{sparkplugb.DataType_Int32Array, []byte{}, nil},
	}
	for i, c := range cases {
		rs := th.must("spBv1.0/plant/NBIRTH/edge1", nbirth(t, uint64(i), spBytes("a", 1, c.typ, c.raw)))
		want := make([]string, len(c.want))
		for j, w := range c.want {
			want[j] = n + w
		}
		checkLines(t, c.typ.String(), rs, want...)
	}
	for _, c := range []struct {
		typ  spT
		raw  []byte
		want string
	}{
		{sparkplugb.DataType_Int16Array, []byte{1, 2, 3}, "not a whole number of 2-byte elements"},
		{sparkplugb.DataType_BooleanArray, []byte{9, 0, 0, 0, 0xFF}, "BooleanArray of 9 elements in 1 bytes"},
		{sparkplugb.DataType_BooleanArray, []byte{1, 0}, "no 4-byte count"},
		{sparkplugb.DataType_StringArray, []byte{'a', 0, 'b'}, "not NUL-terminated"},
		{sparkplugb.DataType_BooleanArray, []byte{0xFF, 0xFF, 0xFF, 0xFF}, "BooleanArray of 4294967295 elements in 0 bytes"},
	} {
		_, err := th.send("spBv1.0/plant/NBIRTH/edge2", nbirth(t, 0, spBytes("a", 1, c.typ, c.raw)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s % x: error %v, want %q", c.typ, c.raw, err, c.want)
		}
	}
}

func spTemplate(name string, alias uint64, ref string, def bool, members ...*sparkplugb.Payload_Metric) *sparkplugb.Payload_Metric {
	tb := sparkplugb.Payload_Template_builder{IsDefinition: proto.Bool(def), Metrics: members}
	if ref != "" {
		tb.TemplateRef = proto.String(ref)
	}
	return with(spMetricB(name, alias, sparkplugb.DataType_Template), func(b *spB) { b.TemplateValue = tb.Build() })
}

func spQualityProp(q int32) *sparkplugb.Payload_PropertySet {
	return sparkplugb.Payload_PropertySet_builder{Keys: []string{"engUnit", "Quality"}, Values: []*sparkplugb.Payload_PropertyValue{
		sparkplugb.Payload_PropertyValue_builder{Type: proto.Uint32(uint32(sparkplugb.DataType_String)), StringValue: proto.String("rpm")}.Build(),
		sparkplugb.Payload_PropertyValue_builder{Type: proto.Uint32(uint32(sparkplugb.DataType_Int32)), IntValue: proto.Uint32(uint32(q))}.Build(),
	}}.Build()
}

// Templates (definitions in the NBIRTH, instances flattened to <metric>.<member>, nested ones too, members of a
// DATA instance decoded by the birth's datatypes), data sets (<metric>.<row>.<column>, by column type, a cell
// without a value a null), the Quality property, is_null, per-metric timestamps, historical and transient
// metrics.
func TestSparkplugTemplatesDataSetsAndProperties(t *testing.T) {
	th := newTestHost(t, SparkplugConfig{})
	f32 := func(name string, v float32) *sparkplugb.Payload_Metric {
		return with(spMetricB(name, 0, sparkplugb.DataType_Float), func(b *spB) { b.FloatValue = proto.Float32(v) })
	}
	bearingDef := spTemplate("Bearing", 0, "", true, spDouble("Temp", 0, 0))
	motorDef := spTemplate("Motor", 0, "", true, f32("Speed", 0), spInt("Amps", 0, sparkplugb.DataType_Int16, 0),
		spTemplate("Bearing", 0, "Bearing", false, spDouble("Temp", 0, 0)))
	motor1 := spTemplate("Motor1", 20, "Motor", false, f32("Speed", 1450.5), spInt("Amps", 0, sparkplugb.DataType_Int16, 0xFFFFFFFD),
		spTemplate("Bearing", 0, "Bearing", false, spDouble("Temp", 0, 61.5)))
	cell := func(set func(*sparkplugb.Payload_DataSet_DataSetValue_builder)) *sparkplugb.Payload_DataSet_DataSetValue {
		b := &sparkplugb.Payload_DataSet_DataSetValue_builder{}
		set(b)
		return b.Build()
	}
	row := func(cells ...*sparkplugb.Payload_DataSet_DataSetValue) *sparkplugb.Payload_DataSet_Row {
		return sparkplugb.Payload_DataSet_Row_builder{Elements: cells}.Build()
	}
	recipe := with(spMetricB("Recipe", 21, sparkplugb.DataType_DataSet), func(b *spB) {
		b.DatasetValue = sparkplugb.Payload_DataSet_builder{
			NumOfColumns: proto.Uint64(3), Columns: []string{"Step", "Temp", "Name"},
			Types: []uint32{uint32(sparkplugb.DataType_Int32), uint32(sparkplugb.DataType_Double), uint32(sparkplugb.DataType_String)},
			Rows: []*sparkplugb.Payload_DataSet_Row{
				row(cell(func(c *sparkplugb.Payload_DataSet_DataSetValue_builder) { c.IntValue = proto.Uint32(1) }),
					cell(func(c *sparkplugb.Payload_DataSet_DataSetValue_builder) { c.DoubleValue = proto.Float64(180.5) }),
					cell(func(c *sparkplugb.Payload_DataSet_DataSetValue_builder) { c.StringValue = proto.String("heat") })),
				row(cell(func(c *sparkplugb.Payload_DataSet_DataSetValue_builder) { c.IntValue = proto.Uint32(0xFFFFFFFE) }),
					cell(func(c *sparkplugb.Payload_DataSet_DataSetValue_builder) { c.DoubleValue = proto.Float64(20) }),
					cell(func(*sparkplugb.Payload_DataSet_DataSetValue_builder) {})),
			},
		}.Build()
	})
	stale := with(spMetricB("Speed", 22, sparkplugb.DataType_Double), func(b *spB) {
		b.DoubleValue, b.Properties = proto.Float64(3), spQualityProp(500)
	})
	good := with(spMetricB("Good", 23, sparkplugb.DataType_Double), func(b *spB) {
		b.DoubleValue, b.Properties = proto.Float64(4), spQualityProp(192)
	})
	uncertain := with(spMetricB("Opc", 24, sparkplugb.DataType_Double), func(b *spB) {
		b.DoubleValue, b.Properties = proto.Float64(5), spQualityProp(0x40)
	})
	null := with(spMetricB("Null", 25, sparkplugb.DataType_Int32), func(b *spB) { b.IsNull = proto.Bool(true) })
	own := with(spMetricB("Own", 26, sparkplugb.DataType_Double), func(b *spB) {
		b.DoubleValue, b.Timestamp = proto.Float64(6), proto.Uint64(spTS-1500)
	})
	hist := with(spMetricB("Own", 26, sparkplugb.DataType_Double), func(b *spB) {
		b.DoubleValue, b.Timestamp, b.IsHistorical = proto.Float64(5.5), proto.Uint64(spTS-86400000*3), proto.Bool(true)
	})
	transient := with(spMetricB("Scratch", 27, sparkplugb.DataType_Double), func(b *spB) {
		b.DoubleValue, b.IsTransient = proto.Float64(7), proto.Bool(true)
	})
	noTS := with(spMetricB("NoTS", 28, sparkplugb.DataType_Boolean), func(b *spB) { b.BooleanValue, b.Timestamp = proto.Bool(true), nil })

	n := "plant/edge1 "
	rs := th.must("spBv1.0/plant/NBIRTH/edge1", nbirth(t, 0, motor1, bearingDef, motorDef, recipe, stale, good, uncertain, null, own, transient, noTS))
	checkLines(t, "NBIRTH", rs,
		n+"Motor1.Speed=1450.5", n+"Motor1.Amps=-3", n+"Motor1.Bearing.Temp=61.5",
		n+"Recipe.0.Step=1", n+"Recipe.0.Temp=180.5", n+`Recipe.0.Name="heat"`,
		n+"Recipe.1.Step=-2", n+"Recipe.1.Temp=20", n+`Recipe.1.Name="" bad/262`,
		n+"Speed=3 bad/500", n+"Good=4 good/192", n+"Opc=5 uncertain/64", n+"Null=0 bad/262",
		n+"Own=6 @2026-11-25T11:59:58.5Z", n+"NoTS=true")

	// A DATA instance carries some members, without datatypes: the birth's decode them.
	partial := spTemplate("", 20, "", false,
		with(&spB{Name: proto.String("Speed")}, func(b *spB) { b.FloatValue = proto.Float32(1500) }),
		spTemplate("Bearing", 0, "", false, with(&spB{Name: proto.String("Temp")}, func(b *spB) { b.DoubleValue = proto.Float64(62) })))
	partial.ClearDatatype()
	rs = th.must("spBv1.0/plant/NDATA/edge1", spPayload(t, 1, partial, hist, transient))
	checkLines(t, "NDATA", rs, n+"Motor1.Speed=1500", n+"Motor1.Bearing.Temp=62", n+"Own=5.5 @2026-11-22T12:00:00Z")
	st := th.h.stats()
	if st.Transient != 2 || st.Historical != 1 {
		t.Errorf("transient %d, historical %d: want 2, 1", st.Transient, st.Historical)
	}

	// Data sets must agree with themselves.
	bad := with(spMetricB("Bad", 0, sparkplugb.DataType_DataSet), func(b *spB) {
		b.DatasetValue = sparkplugb.Payload_DataSet_builder{NumOfColumns: proto.Uint64(2), Columns: []string{"a"}, Types: []uint32{3}}.Build()
	})
	if _, err := th.send("spBv1.0/plant/NBIRTH/edge2", nbirth(t, 0, bad)); err == nil || !strings.Contains(err.Error(), "tck-id-payloads-dataset-column-size") {
		t.Errorf("data set with 2 columns named 1: %v", err)
	}
}
