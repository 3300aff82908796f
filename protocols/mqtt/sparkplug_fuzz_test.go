package mqtt

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/protocols/mqtt/sparkplugb"
)

// fuzzBirths are an NBIRTH and a DBIRTH whose catalogue covers every kind of metric (scalars, an array, a data
// set, a template), so that fuzzed DATA meets all the decoding paths.
func fuzzBirths(t testing.TB) (nb, db []byte) {
	ds := with(spMetricB("ds", 30, sparkplugb.DataType_DataSet), func(b *spB) {
		b.DatasetValue = sparkplugb.Payload_DataSet_builder{NumOfColumns: proto.Uint64(1), Columns: []string{"c"},
			Types: []uint32{uint32(sparkplugb.DataType_Int16)}}.Build()
	})
	tpl := spTemplate("t", 31, "T", false, spDouble("x", 0, 1), spTemplate("in", 0, "", false, spInt("y", 0, sparkplugb.DataType_Int8, 1)))
	def := spTemplate("T", 0, "", true, spDouble("x", 0, 0))
	nb = nbirth(t, 1, spDouble("d", 1, 1), spInt("i", 2, sparkplugb.DataType_Int32, 1), spBytes("a", 3, sparkplugb.DataType_BooleanArray, []byte{1, 0, 0, 0, 0x80}),
		ds, tpl, def, spString("s", 4, sparkplugb.DataType_String, "x"), spLong("u", 5, sparkplugb.DataType_UInt64, 1))
	db = spPayload(t, 1, spDouble("dd", 10, 1), spBytes("f", 11, sparkplugb.DataType_FloatArray, []byte{0, 0, 0x80, 0x3F}))
	return nb, db
}

// deepTemplate is a metric holding templates nested depth deep.
func deepTemplate(depth int) *sparkplugb.Payload_Metric {
	m := spDouble("leaf", 0, 1)
	for range depth {
		m = spTemplate("t", 0, "", false, m)
	}
	return m
}

// tinyMetrics is a payload of n metrics of two bytes each (an empty metric), hand-encoded.
func tinyMetrics(n int) []byte {
	var b []byte
	for range n {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, nil)
	}
	return b
}

// FuzzSparkplug maps arbitrary payloads as each message type of an edge node whose births define every kind of
// metric, on a fresh host each time. It must never panic, never return readings with an error, and every
// reading must validate and round-trip the wire codec. Run: go test -run '^$' -fuzz FuzzSparkplug ./protocols/mqtt/
func FuzzSparkplug(f *testing.F) {
	nb, db := fuzzBirths(f)
	f.Add(uint8(2), spPayload(f, 2, spDouble("", 1, 2), spInt("", 2, 0, 0xFFFFFFF4), spBytes("", 3, 0, []byte{3, 0, 0, 0, 0xE0})))
	f.Add(uint8(6), spPayload(f, 2, spDouble("", 10, 2), spBytes("", 11, 0, []byte{0, 0, 0x20, 0xC0})))
	f.Add(uint8(2), spPayload(f, 2, spTemplate("", 31, "", false, spDouble("x", 0, 3), spTemplate("in", 0, "", false, spInt("y", 0, 0, 0xFF)))))
	f.Add(uint8(0), nb)
	f.Add(uint8(4), db)
	f.Add(uint8(1), spPayload(f, -1, spBdSeq(1)))
	f.Add(uint8(5), spPayload(f, 2))
	f.Add(uint8(2), spPayload(f, 2, spDouble("", 1<<63, 1)))                                                           // an alias out of range
	f.Add(uint8(0), nbirth(f, 1, deepTemplate(40)))                                                                    // deep templates
	f.Add(uint8(0), nbirth(f, 1, spBytes("big", 9, sparkplugb.DataType_BooleanArray, []byte{0xFF, 0xFF, 0xFF, 0x7F}))) // a huge array
	f.Add(uint8(0), tinyMetrics(1000))
	types := []string{"NBIRTH", "NDEATH", "NDATA", "NCMD", "DBIRTH", "DDEATH", "DDATA", "DCMD"}
	now := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, typ uint8, payload []byte) {
		h := newSparkplugHost(SparkplugConfig{}.withDefaults(), testLogger(nil))
		defer h.close()
		for _, m := range []struct {
			topic string
			b     []byte
		}{{"spBv1.0/g/NBIRTH/e", nb}, {"spBv1.0/g/DBIRTH/e/d", db}} {
			if _, err := h.mapMessage(nil, m.topic, m.b, now); err != nil {
				t.Fatal(err)
			}
		}
		name := types[int(typ)%len(types)]
		topic := "spBv1.0/g/" + name + "/e"
		if strings.HasPrefix(name, "D") {
			topic += "/d"
		}
		rs, err := h.mapMessage(nil, topic, payload, now)
		if err != nil {
			if len(rs) != 0 {
				t.Fatalf("error %v with %d readings", err, len(rs))
			}
			return
		}
		for _, r := range rs {
			b, err := fieldgate.Encode(r)
			if err != nil {
				t.Fatalf("invalid reading %+v: %v", r, err)
			}
			if _, err := fieldgate.Decode(b); err != nil {
				t.Fatalf("reading does not round-trip the wire codec: %v", err)
			}
		}
	})
}

// Hostile payloads are refused with bounded work and memory: what the host allocates for one does not grow
// with what its bytes claim (a payload of hundreds of thousands of tiny metrics, an array of 2^32 elements,
// templates a thousand deep, a data set beyond the limit, a compression bomb a MiB beyond the limit).
func TestSparkplugHostilePayloadsAreBounded(t *testing.T) {
	var bomb bytes.Buffer
	zw := zlib.NewWriter(&bomb)
	zw.Write(make([]byte, MaxSparkplugPayload+1<<20))
	zw.Close()
	bombPayload, _ := proto.Marshal(sparkplugb.Payload_builder{Uuid: proto.String(sparkplugCompressed), Body: bomb.Bytes()}.Build())
	cells := make([]*sparkplugb.Payload_DataSet_DataSetValue, 300)
	for i := range cells {
		cells[i] = sparkplugb.Payload_DataSet_DataSetValue_builder{IntValue: proto.Uint32(1)}.Build()
	}
	rows := make([]*sparkplugb.Payload_DataSet_Row, 400)
	for i := range rows {
		rows[i] = sparkplugb.Payload_DataSet_Row_builder{Elements: cells}.Build()
	}
	bigSet := with(spMetricB("ds", 1, sparkplugb.DataType_DataSet), func(b *spB) {
		b.DatasetValue = sparkplugb.Payload_DataSet_builder{Columns: make([]string, 300), Types: make([]uint32, 300), Rows: rows}.Build()
	})
	cases := []struct {
		name    string
		payload []byte
		want    string
	}{
		{"300,000 tiny metrics", tinyMetrics(300_000), "more than 100000 metrics"},
		{"a BooleanArray of 2^32-1 elements", nbirth(t, 1, spBytes("a", 1, sparkplugb.DataType_BooleanArray, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF})), "BooleanArray of 4294967295 elements"},
		{"an Int8Array of 4 MiB", nbirth(t, 1, spBytes("a", 1, sparkplugb.DataType_Int8Array, make([]byte, 4<<20))), "more than 100000 values"},
		{"templates 1000 deep", nbirth(t, 1, deepTemplate(1000)), "not a Sparkplug B payload"},
		{"a data set of 120,000 cells", nbirth(t, 1, bigSet), "more than 100000"},
		{"a compression bomb", bombPayload, "inflates beyond"},
		{"a payload over the limit", make([]byte, MaxSparkplugPayload+1), "more than"},
	}
	now := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	for _, c := range cases {
		h := newSparkplugHost(SparkplugConfig{}.withDefaults(), testLogger(t))
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := h.mapMessage(nil, "spBv1.0/g/NBIRTH/e", c.payload, now)
		runtime.ReadMemStats(&after)
		h.close()
		alloc := after.TotalAlloc - before.TotalAlloc
		// The bound: the payload copied a few times (bytes fields are copied once by the unmarshaller) and a MiB
		// of slack; never a multiple of what the bytes claim.
		bound := uint64(3*len(c.payload)) + 1<<20
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
		if alloc > bound {
			t.Errorf("%s (%d bytes): allocated %d bytes, more than %d", c.name, len(c.payload), alloc, bound)
		}
		t.Logf("%s: %d bytes, allocated %d", c.name, len(c.payload), alloc)
	}
}

// benchDDATA is a DDATA of 50 aliased metrics with their own timestamps (doubles, Int32s and booleans, as a
// device's data) and the births that define them.
func benchDDATA(b testing.TB) (nb, db []byte, data [][]byte) {
	var defs, vals []*sparkplugb.Payload_Metric
	for i := range 50 {
		alias := uint64(i + 1)
		name := fmt.Sprintf("sensor_%02d", i)
		switch i % 3 {
		case 0:
			defs, vals = append(defs, spDouble(name, alias, 0)), append(vals, spDouble("", alias, float64(i)*1.25))
		case 1:
			defs, vals = append(defs, spInt(name, alias, sparkplugb.DataType_Int32, 0)), append(vals, spInt("", alias, 0, uint32(-i)))
		case 2:
			defs, vals = append(defs, spBool(name, alias, false)), append(vals, spBool("", alias, i%2 == 0))
		}
	}
	nb = nbirth(b, 1)
	db = spPayload(b, 1, defs...)
	for seq := range 256 {
		data = append(data, spPayload(b, (seq+2)%256, vals...))
	}
	return nb, db, data
}

// BenchmarkSparkplugDDATA50 maps DDATA messages of 50 metrics each, beside BenchmarkMapJSON50 (the JSON mapper on
// a message of 50 values): compare ns/reading. go test -run '^$' -bench 'DDATA50|MapJSON50' -benchmem ./protocols/mqtt/
func BenchmarkSparkplugDDATA50(b *testing.B) {
	nb, db, data := benchDDATA(b)
	h := newSparkplugHost(SparkplugConfig{}.withDefaults(), testLogger(nil))
	defer h.close()
	now := time.Now()
	if _, err := h.mapMessage(nil, "spBv1.0/g/NBIRTH/e", nb, now); err != nil {
		b.Fatal(err)
	}
	if _, err := h.mapMessage(nil, "spBv1.0/g/DBIRTH/e/d", db, now); err != nil {
		b.Fatal(err)
	}
	dst := make([]fieldgate.Reading, 0, 64)
	var n, bytes int
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		payload := data[i%len(data)]
		i++
		var err error
		if dst, err = h.mapMessage(dst[:0], "spBv1.0/g/DDATA/e/d", payload, now); err != nil {
			b.Fatal(err)
		}
		n += len(dst)
		bytes += len(payload)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/reading")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
	b.ReportMetric(float64(bytes)/float64(b.N), "B/msg")
}
