package fieldgate

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	src = time.Date(2026, 11, 25, 13, 16, 10, 123000000, time.UTC)
	gw  = time.Date(2026, 11, 25, 13, 16, 10, 125456789, time.UTC)
)

// goldenReadings are pinned by testdata/wire_v1_<name>.json: changing the wire format fails these tests.
var goldenReadings = map[string]Reading{
	"float":          {Device: "plant1/press-07", Metric: "pressure", Value: Float(12.5), SourceTime: src, GatewayTime: gw},
	"int":            {Device: "plant1/plc-1", Metric: "counter", Value: Int(-9007199254740993), GatewayTime: gw},
	"bool":           {Device: "plant1/plc-1", Metric: "running", Value: Bool(true), Quality: Uncertain, Status: 0x40920000, SourceTime: src, GatewayTime: gw},
	"string":         {Device: "line/2 \"east\"", Metric: "state\n", Value: String("héllo\t\x01 wörld \\ ✓"), GatewayTime: gw},
	"bad_quality":    {Device: "plant1/plc-1", Metric: "temp", Quality: Bad, Status: 2, GatewayTime: gw},
	"nan":            {Device: "d", Metric: "m", Value: Float(math.NaN()), GatewayTime: gw},
	"negative_inf":   {Device: "d", Metric: "m", Value: Float(math.Inf(-1)), GatewayTime: gw},
	"tiny_and_large": {Device: "d", Metric: "m", Value: Float(1.5e-300), SourceTime: time.Date(1999, 1, 1, 0, 0, 0, 1, time.UTC), GatewayTime: gw},
}

func equalReading(a, b Reading) bool {
	return a.Device == b.Device && a.Metric == b.Metric && a.Value.Equal(b.Value) && a.Quality == b.Quality &&
		a.Status == b.Status && a.SourceTime.Equal(b.SourceTime) && a.GatewayTime.Equal(b.GatewayTime)
}

func TestGoldenWireFormat(t *testing.T) {
	for name, r := range goldenReadings {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", "wire_v1_"+name+".json")
			got, err := Encode(r)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want = bytes.TrimSuffix(want, []byte("\n"))
			if !bytes.Equal(got, want) {
				t.Errorf("Encode changed the wire format\n got: %s\nwant: %s", got, want)
			}
			back, err := Decode(want)
			if err != nil {
				t.Fatalf("Decode(golden): %v", err)
			}
			if !equalReading(back, r) {
				t.Errorf("Decode(golden) = %+v, want %+v", back, r)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	ok := `"device":"d","metric":"m","type":"float","value":1,"quality":"good","status":0,"gateway_time":"2026-11-25T13:16:10Z"`
	cases := []struct {
		name, in, want string
		is             error
	}{
		{"unknown version", `{"v":2,` + ok + `}`, "unknown wire format version 2", ErrUnknownVersion},
		{"unknown version, other shape", `{"v":3,"device":{"id":7}}`, "unknown wire format version 3", ErrUnknownVersion},
		{"no version", `{` + ok + `}`, `no format version`, nil},
		{"not json", `hello`, "decode reading", nil},
		{"empty", ``, "decode reading", nil},
		{"empty device", `{"v":1,` + strings.Replace(ok, `"device":"d"`, `"device":""`, 1) + `}`, "device is empty", ErrInvalidReading},
		{"bad type", `{"v":1,` + strings.Replace(ok, `"float"`, `"decimal"`, 1) + `}`, `field type: unknown value type "decimal"`, nil},
		{"type mismatch", `{"v":1,` + strings.Replace(ok, `"value":1`, `"value":"x"`, 1) + `}`, `field value: float "x"`, nil},
		{"int overflow", `{"v":1,` + strings.Replace(strings.Replace(ok, `"float"`, `"int"`, 1), `"value":1`, `"value":9223372036854775808`, 1) + `}`, "want a 64-bit integer", nil},
		{"missing value", `{"v":1,` + strings.Replace(ok, `"value":1,`, ``, 1) + `}`, "field value: missing", nil},
		{"bad quality", `{"v":1,` + strings.Replace(ok, `"good"`, `"great"`, 1) + `}`, `field quality: unknown quality "great"`, nil},
		{"no gateway time", `{"v":1,` + strings.Replace(ok, `,"gateway_time":"2026-11-25T13:16:10Z"`, ``, 1) + `}`, "field gateway_time", nil},
		{"bad source time", `{"v":1,"source_time":"yesterday",` + ok + `}`, "field source_time", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.in))
			if err == nil {
				t.Fatalf("Decode(%s) succeeded, want error %q", c.in, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %q is not %v", err, c.is)
			}
		})
	}
}

func TestDecodeIgnoresUnknownFields(t *testing.T) {
	r, err := Decode([]byte(`{"v":1,"device":"d","metric":"m","type":"int","value":7,"quality":"good","status":0,"gateway_time":"2026-11-25T13:16:10Z","unit":"bar"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Value != Int(7) {
		t.Errorf("value = %v, want 7", r.Value)
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	cases := map[string]Reading{
		"no device":       {Metric: "m", GatewayTime: gw},
		"no metric":       {Device: "d", GatewayTime: gw},
		"no gateway time": {Device: "d", Metric: "m"},
		"bad utf8":        {Device: "d\xff", Metric: "m", GatewayTime: gw},
		"long name":       {Device: strings.Repeat("d", MaxNameBytes+1), Metric: "m", GatewayTime: gw},
		"year 10000":      {Device: "d", Metric: "m", GatewayTime: gw, SourceTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"bad quality":     {Device: "d", Metric: "m", GatewayTime: gw, Quality: 9},
		"huge string":     {Device: "d", Metric: "m", GatewayTime: gw, Value: String(strings.Repeat("x", MaxStringBytes+1))},
	}
	for name, r := range cases {
		if b, err := Encode(r); !errors.Is(err, ErrInvalidReading) {
			t.Errorf("%s: Encode = %q, %v; want ErrInvalidReading", name, b, err)
		}
	}
}

func TestEventTime(t *testing.T) {
	r := Reading{GatewayTime: gw}
	if !r.EventTime().Equal(gw) {
		t.Errorf("without source time: EventTime = %v, want gateway time", r.EventTime())
	}
	r.SourceTime = src
	if !r.EventTime().Equal(src) {
		t.Errorf("with source time: EventTime = %v, want source time", r.EventTime())
	}
}

// A source_time of 0001-01-01T00:00:00Z (Go's zero time) reads as no source time, as the wire format says; both
// decoders agree.
func TestDecodeZeroSourceTime(t *testing.T) {
	b := []byte(`{"v":1,"device":"d","metric":"m","type":"int","value":1,"quality":"good","status":0,` +
		`"source_time":"0001-01-01T00:00:00Z","gateway_time":"2026-11-25T13:00:00Z"}`)
	for name, decode := range map[string]func([]byte) (Reading, error){"Decode": Decode, "decodeJSON": decodeJSON} {
		r, err := decode(b)
		if err != nil || !r.SourceTime.IsZero() || !r.EventTime().Equal(r.GatewayTime) {
			t.Errorf("%s: %+v, %v; want no source time", name, r, err)
		}
	}
}

func TestValueAccessors(t *testing.T) {
	if f, ok := Int(-3).Number(); !ok || f != -3 {
		t.Errorf("Int(-3).Number() = %v, %v", f, ok)
	}
	if _, ok := Bool(true).Number(); ok {
		t.Error("Bool has a Number")
	}
	if String("x").Float() != 0 || Float(2).Int() != 0 || !Bool(true).Bool() || Int(5).Str() != "" {
		t.Error("accessors of the wrong kind must return the zero value")
	}
	if !Float(math.NaN()).Equal(Float(math.NaN())) || Float(0).Equal(Int(0)) {
		t.Error("Equal: NaN must equal NaN, and kinds must match")
	}
}

// FuzzDecode feeds hostile bytes to the decoder the central service runs on every Kafka record: it must never
// panic, and whatever it accepts must survive an encode/decode round trip unchanged.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "wire_v1_*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"v":1,"device":"d","metric":"m","type":"string","value":"\ud800","quality":"bad","gateway_time":"0001-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil {
			return
		}
		enc, err := Encode(r)
		if err != nil {
			t.Fatalf("decoded %q into %+v, which does not encode: %v", b, r, err)
		}
		back, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decode of %q: %v", enc, err)
		}
		if !equalReading(r, back) {
			t.Fatalf("round trip changed the reading: %+v -> %s -> %+v", r, enc, back)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	r := goldenReadings["float"]
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendEncode(buf[:0], r)
	}
}

func BenchmarkDecode(b *testing.B) {
	enc, _ := Encode(goldenReadings["float"])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDecodeFastMatchesJSON holds the single-pass decoder to its contract: whatever it accepts, the
// encoding/json reference decodes to the same reading without error.
func FuzzDecodeFastMatchesJSON(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "wire_v1_*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.TrimSuffix(b, []byte("\n")))
	}
	f.Add([]byte(`{"v":1,"device":"d","metric":"m","type":"int","value":-0,"quality":"good","status":0,"gateway_time":"2024-02-29T23:59:59.999999999Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeFast(b)
		if !ok {
			return
		}
		ref, err := decodeJSON(b)
		if err != nil {
			t.Fatalf("decodeFast accepted %q, which the reference refuses: %v", b, err)
		}
		if !equalReading(fast, ref) || fast.SourceTime.Location() != ref.SourceTime.Location() {
			t.Fatalf("decodeFast(%q) = %+v, reference %+v", b, fast, ref)
		}
	})
}
