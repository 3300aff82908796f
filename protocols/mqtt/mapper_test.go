package mqtt

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// gatewayTime is the receive time every golden case is mapped at.
var gatewayTime = time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)

// mapperCase is one testdata/mapper/<name>.json: a subscription (field names as in YAML), a topic and a payload
// (text, or hex for bytes that are not UTF-8). Its expectation is <name>.golden: one reading per line in the
// wire format, or "error: <message>".
type mapperCase struct {
	Subscription Subscription `json:"subscription"`
	Topic        string       `json:"topic"`
	Payload      string       `json:"payload"`
	PayloadHex   string       `json:"payload_hex"`
}

func loadCase(t *testing.T, path string) (mapperCase, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c mapperCase
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	payload := []byte(c.Payload)
	if c.PayloadHex != "" {
		if payload, err = hex.DecodeString(strings.ReplaceAll(c.PayloadHex, " ", "")); err != nil {
			t.Fatalf("%s: payload_hex: %v", path, err)
		}
	}
	return c, payload
}

func renderMap(rs []fieldgate.Reading, err error) ([]byte, error) {
	var out bytes.Buffer
	if err != nil {
		out.WriteString("error: " + err.Error() + "\n")
		return out.Bytes(), nil
	}
	for _, r := range rs {
		b, err := fieldgate.Encode(r)
		if err != nil {
			return nil, err
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

func TestMapperGolden(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "mapper", "*.json"))
	if err != nil || len(paths) < 50 {
		t.Fatalf("found %d cases in testdata/mapper (%v)", len(paths), err)
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			c, payload := loadCase(t, path)
			m, err := NewMapper(c.Subscription)
			if err != nil {
				t.Fatalf("subscription: %v", err)
			}
			// A reading already in dst must survive, and a failed message must add nothing.
			sentinel := fieldgate.Reading{Device: "sentinel", Metric: "m", GatewayTime: gatewayTime}
			rs, mapErr := m.Map([]fieldgate.Reading{sentinel}, c.Topic, payload, gatewayTime)
			if len(rs) == 0 || rs[0] != sentinel {
				t.Fatalf("Map lost what was in dst: %v", rs)
			}
			if mapErr != nil && len(rs) != 1 {
				t.Fatalf("Map failed (%v) but appended %d readings", mapErr, len(rs)-1)
			}
			got, err := renderMap(rs[1:], mapErr)
			if err != nil {
				t.Fatalf("a mapped reading does not encode: %v", err)
			}
			golden := filepath.Join("testdata", "mapper", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("mapping changed\n got: %s\nwant: %s", got, want)
			}
			// The mapper is reused across messages: a second run gives the same result (caches are sound).
			again, err2 := m.Map(nil, c.Topic, payload, gatewayTime)
			got2, _ := renderMap(again, err2)
			if !bytes.Equal(got2, got) {
				t.Errorf("second Map differs\nfirst: %s\nsecond: %s", got, got2)
			}
		})
	}
}

// TestMapperSpotChecks states the rules the golden files pin, so that a wrong golden file cannot hide them.
func TestMapperSpotChecks(t *testing.T) {
	mustMap := func(sub Subscription, topic, payload string) []fieldgate.Reading {
		t.Helper()
		rs, err := sub.Map(topic, []byte(payload), gatewayTime)
		if err != nil {
			t.Fatalf("Map(%s): %v", payload, err)
		}
		return rs
	}
	byMetric := func(rs []fieldgate.Reading) map[string]fieldgate.Reading {
		m := map[string]fieldgate.Reading{}
		for _, r := range rs {
			m[r.Metric] = r
		}
		return m
	}
	sub := Subscription{Topic: "plant/{line}/{device}/telemetry"}
	rs := byMetric(mustMap(sub, "plant/l1/d7/telemetry", `{"env":{"t":21.5,"n":3},"ok":true,"s":"x","a":[1,{"b":2}],"big":9223372036854775808,"u64":18446744073709551615}`))
	want := map[string]fieldgate.Value{
		"env.t": fieldgate.Float(21.5), "env.n": fieldgate.Int(3), "ok": fieldgate.Bool(true), "s": fieldgate.String("x"),
		"a.0": fieldgate.Int(1), "a.1.b": fieldgate.Int(2),
		// Beyond int64: a float, rounded to 53 bits (documented; a string keeps every digit).
		"big": fieldgate.Float(9223372036854775808), "u64": fieldgate.Float(1.8446744073709552e19),
	}
	if len(rs) != len(want) {
		t.Errorf("got %d readings, want %d: %v", len(rs), len(want), rs)
	}
	for metric, v := range want {
		r, ok := rs[metric]
		if !ok || !r.Value.Equal(v) || r.Device != "d7" || !r.GatewayTime.Equal(gatewayTime) || !r.SourceTime.IsZero() {
			t.Errorf("%s: got %+v, want value %v on device d7", metric, r, v)
		}
	}

	ts := func(format, raw string) time.Time {
		t.Helper()
		s := Subscription{Topic: "x/{device}", Timestamp: &Timestamp{Path: "ts", Format: format}}
		rs := mustMap(s, "x/d", `{"v":1,"ts":`+raw+`}`)
		return rs[0].SourceTime
	}
	want0 := time.Date(2025, 11, 25, 13, 16, 10, 123456789, time.UTC)
	for _, c := range []struct {
		format, raw string
		want        time.Time
	}{
		{TimeUnixS, "1764076570.123456789", want0},
		{TimeUnixS, "1764076570", want0.Truncate(time.Second)},
		{TimeUnixMS, "1764076570123", want0.Truncate(time.Millisecond)},
		{TimeUnixMS, `"1764076570123.456789"`, want0},
		{TimeUnixUS, "1764076570123456", want0.Truncate(time.Microsecond)},
		{TimeUnixNS, "1764076570123456789", want0},
		{TimeRFC3339, `"2025-11-25T14:16:10.123456789+01:00"`, want0},
		// Times a reading cannot hold as a source time are kept as the nearest it can (fieldgate.DeviceTime), for
		// the gateway's source-time bound to find implausible: never dropped silently, never a dead letter.
		{TimeRFC3339, `"0001-01-01T00:00:00Z"`, time.Time{}.Add(time.Nanosecond)},
		{TimeUnixMS, "-62135596800000", time.Time{}.Add(time.Nanosecond)},
		{TimeUnixMS, "1764076570123000", time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
	} {
		if got := ts(c.format, c.raw); !got.Equal(c.want) {
			t.Errorf("%s %s: got %v, want %v", c.format, c.raw, got, c.want)
		}
	}

	vsub := Subscription{Topic: "p/{device}/+", Format: FormatValue}
	for payload, want := range map[string]fieldgate.Value{
		"21.5": fieldgate.Float(21.5), "-3": fieldgate.Int(-3), "true": fieldgate.Bool(true), "open": fieldgate.String("open"),
		`"a\"b"`: fieldgate.String(`a"b`),
	} {
		rs := mustMap(vsub, "p/d/level", payload)
		if len(rs) != 1 || !rs[0].Value.Equal(want) || rs[0].Metric != "level" || rs[0].Device != "d" {
			t.Errorf("value %q: got %+v, want %v as p/d level", payload, rs, want)
		}
	}

	samp := Subscription{Topic: "v/{device}", Samples: "s", Timestamp: &Timestamp{Path: "t", Format: TimeUnixMS}}
	rs2 := mustMap(samp, "v/d", `{"t":1,"ignored":5,"s":[{"t":1000,"x":1},{"x":2,"t":2000}]}`)
	if len(rs2) != 2 || rs2[0].Metric != "x" || rs2[0].SourceTime.UnixMilli() != 1000 || rs2[1].SourceTime.UnixMilli() != 2000 {
		t.Errorf("samples: got %+v", rs2)
	}
}

func TestMatchFilter(t *testing.T) {
	for _, c := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true}, {"a/b", "a/c", false}, {"a/+", "a/b", true}, {"a/+", "a/b/c", false},
		{"a/#", "a", true}, {"a/#", "a/b/c", true}, {"#", "a/b", true}, {"+/b", "a/b", true},
		{"+", "$SYS", false}, {"#", "$SYS/x", false}, {"$SYS/#", "$SYS/x", true}, {"a/+/c", "a//c", true},
		{"a/b", "a/b/", false}, {"a/+", "a/", true}, {"+/+", "/x", true},
	} {
		if got := matchFilter(c.filter, c.topic); got != c.want {
			t.Errorf("matchFilter(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
		// The pattern matcher agrees with the filter matcher when no level is named.
		p, err := parsePattern(c.filter)
		if err != nil {
			t.Fatal(err)
		}
		var lv [maxLevels]string
		if _, got := p.match(c.topic, &lv); got != c.want {
			t.Errorf("pattern(%q).match(%q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}

func TestMapNoAllocsOnNamesAfterWarmup(t *testing.T) {
	m, err := NewMapper(Subscription{Topic: "plant/{line}/{device}/telemetry", Device: "{line}/{device}"})
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(benchPayload)
	dst := make([]fieldgate.Reading, 0, 64)
	if _, err := m.Map(dst, "plant/l1/d7/telemetry", payload, gatewayTime); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		dst, _ = m.Map(dst[:0], "plant/l1/d7/telemetry", payload, gatewayTime)
	})
	// Only string values allocate (one here: "status").
	if allocs > 1 {
		t.Errorf("Map allocates %.0f times per message after warm-up, want at most 1 (the string value)", allocs)
	}
}
