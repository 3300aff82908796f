package mqtt

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
)

// FuzzMap maps arbitrary payloads and topics with a JSON subscription (all leaves, timestamp optional), a
// samples subscription and a value subscription. Map must never panic, must never return readings with an
// error, and every reading it returns must Validate, carry the gateway time and a device from the topic.
// Run: go test -run '^$' -fuzz FuzzMap -fuzztime 30s ./protocols/mqtt/
func FuzzMap(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "mapper", "*.json"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && len(b) < 4096 {
			f.Add("plant/l1/d7/telemetry", b)
		}
	}
	f.Add("plant/l1/d7/telemetry", []byte(benchPayload))
	f.Add("plant/l1/d7/telemetry", []byte(`{"ts":1764076570123,"s":[{"ts":1,"x":1.5},{"ts":"2","y":[true,null]}]}`))
	f.Add("plant/l1/d7/x", []byte(`21.5`))
	f.Add("plant//d7/telemetry", []byte(`{"a":"\ud83d\ude00"}`))
	subs := []Subscription{
		{Topic: "plant/{line}/{device}/+"},
		{Topic: "plant/{line}/{device}/+", Device: "{line}/{device}", Timestamp: &Timestamp{Path: "ts", Format: TimeUnixMS}},
		{Topic: "plant/{line}/{device}/+", Samples: "s", Timestamp: &Timestamp{Path: "ts", Format: TimeUnixS}},
		{Topic: "plant/{line}/{device}/+", Fields: []Field{{Path: "a", Metric: "alpha"}, {Path: "s.0"}}, Metric: "{line}"},
		{Topic: "plant/{line}/{device}/{metric}", Format: FormatValue, Metric: "{metric}"},
		{Topic: "#", Format: FormatValue},
	}
	mappers := make([]*Mapper, len(subs))
	for i, s := range subs {
		m, err := NewMapper(s)
		if err != nil {
			f.Fatal(err)
		}
		mappers[i] = m
	}
	now := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		for i, m := range mappers {
			rs, err := m.Map(nil, topic, payload, now)
			if err != nil {
				if len(rs) != 0 {
					t.Fatalf("sub %d: error %v with %d readings", i, err, len(rs))
				}
				continue
			}
			if len(rs) == 0 {
				t.Fatalf("sub %d: no error and no readings", i)
			}
			for _, r := range rs {
				if err := r.Validate(); err != nil {
					t.Fatalf("sub %d: invalid reading: %v", i, err)
				}
				if !r.GatewayTime.Equal(now) || r.Quality != fieldgate.Good {
					t.Fatalf("sub %d: reading %+v lost the gateway time or quality", i, r)
				}
				if _, err := fieldgate.Decode(mustEncode(t, r)); err != nil {
					t.Fatalf("sub %d: reading does not round-trip the wire codec: %v", i, err)
				}
			}
		}
	})
}

func mustEncode(t *testing.T, r fieldgate.Reading) []byte {
	b, err := fieldgate.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
