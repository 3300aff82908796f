package mqtt

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
)

// benchPayload is a realistic sensor message: eight values, one of them a string, with a timestamp.
const benchPayload = `{"ts":1764076570123,"temperature":21.53,"humidity":41.2,"pressure":1013.25,` +
	`"battery":{"voltage":3.61,"percent":87},"rssi":-67,"door_open":false,"status":"ok"}`

// BenchmarkMapJSON measures the JSON mapper on benchPayload; BenchmarkMapJSONBaselineUnmarshal decodes the same
// payload with encoding/json into map[string]any (what a naive mapper does before it even walks the map).
// Compare ns/op: go test -run '^$' -bench 'MapJSON' -benchmem ./protocols/mqtt/
func BenchmarkMapJSON(b *testing.B) {
	m, err := NewMapper(Subscription{Topic: "plant/{line}/{device}/telemetry", Device: "{line}/{device}",
		Timestamp: &Timestamp{Path: "ts", Format: TimeUnixMS}})
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(benchPayload)
	now := time.Now()
	dst := make([]fieldgate.Reading, 0, 16)
	var n int
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		dst, err = m.Map(dst[:0], "plant/l1/d7/telemetry", payload, now)
		if err != nil {
			b.Fatal(err)
		}
		n += len(dst)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/reading")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkMapJSONBaselineUnmarshal(b *testing.B) {
	payload := []byte(benchPayload)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		var v map[string]any
		if err := json.Unmarshal(payload, &v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkMapValue(b *testing.B) {
	m, err := NewMapper(Subscription{Topic: "plant/{line}/{device}/+", Format: FormatValue})
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte("21.53")
	now := time.Now()
	dst := make([]fieldgate.Reading, 0, 1)
	b.ReportAllocs()
	for b.Loop() {
		if dst, err = m.Map(dst[:0], "plant/l1/d7/temperature", payload, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapJSON50 is the JSON mapper on a message of 50 values (doubles, integers and booleans, as
// BenchmarkSparkplugDDATA50's) with a timestamp: the baseline of the Sparkplug figures, per reading.
func BenchmarkMapJSON50(b *testing.B) {
	m, err := NewMapper(Subscription{Topic: "plant/{line}/{device}/telemetry", Device: "{line}/{device}",
		Timestamp: &Timestamp{Path: "ts", Format: TimeUnixMS}})
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"ts":1764076570123`)
	for i := range 50 {
		switch i % 3 {
		case 0:
			payload = fmt.Appendf(payload, `,"sensor_%02d":%g`, i, float64(i)*1.25)
		case 1:
			payload = fmt.Appendf(payload, `,"sensor_%02d":%d`, i, -i)
		case 2:
			payload = fmt.Appendf(payload, `,"sensor_%02d":%t`, i, i%2 == 0)
		}
	}
	payload = append(payload, '}')
	now := time.Now()
	dst := make([]fieldgate.Reading, 0, 64)
	var n int
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if dst, err = m.Map(dst[:0], "plant/l1/d7/telemetry", payload, now); err != nil {
			b.Fatal(err)
		}
		n += len(dst)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/reading")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
	b.ReportMetric(float64(len(payload)), "B/msg")
}
