package mqtt

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
)

// A payload over max_payload_bytes becomes a dead letter before it is parsed: stored cut, with its size, and
// acknowledged (the good message after it is delivered).
func TestOversizePayloadIsDeadLettered(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			prefix := uniq("big")
			cfg := testConfig(b.url, prefix)
			cfg.MaxPayloadBytes = 1000
			sk := testutil.NewSink(t)
			r := start(t, cfg, sk)
			pub := newPublisher(t, b.url)
			topic := prefix + "/l1/d1/telemetry"
			big := `{"ts":1,"seq":1,"pad":"` + strings.Repeat("x", 10000) + `"}`
			pub.one(topic, big)
			pub.one(topic, string(telemetry(2)))
			waitFor(t, 15*time.Second, "the dead letter and the good message", func() bool {
				n, d := sk.Count()
				return n >= 1 && d >= 1
			})
			_, dead := sk.Snapshot()
			d := dead[0]
			if d.Size != len(big) || len(d.Payload) != oversizeKept || !strings.HasPrefix(big, string(d.Payload)) ||
				d.Class != fieldgate.DeadLetterTooLarge || !strings.Contains(d.Reason, fmt.Sprintf("%d bytes", len(big))) || !strings.Contains(d.Reason, "max_payload_bytes") {
				t.Fatalf("dead letter: class %q, reason %q, size %d, %d bytes stored", d.Class, d.Reason, d.Size, len(d.Payload))
			}
			waitFor(t, 5*time.Second, "acknowledged", func() bool { return r.src.Stats().DeadLetters == 1 })
		})
	}
}

func TestMaxPayloadBytesValidated(t *testing.T) {
	cfg := testConfig("tcp://127.0.0.1:1883", "x")
	cfg.MaxPayloadBytes = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "max_payload_bytes") {
		t.Fatalf("Validate: %v", err)
	}
	cfg.MaxPayloadBytes = 0
	if got := cfg.WithDefaults().MaxPayloadBytes; got != 1<<20 {
		t.Fatalf("default %d", got)
	}
}

// Replay maps a stored payload through the input's current mapping: one the old mapping refused decodes after
// the mapping is fixed; what still fails says why; a letter that cannot be replayed says so.
func TestReplay(t *testing.T) {
	cfg := testConfig("tcp://127.0.0.1:1883", "plant")
	cfg.Subscriptions[0].Timestamp = &Timestamp{Path: "time", Format: TimeUnixMS}
	old, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	d := fieldgate.DeadLetter{Time: at, Source: "mqtt:plant", Origin: "plant/l1/d1/telemetry", Payload: []byte(`{"ts":1764576000000,"temp":21.5}`)}
	if _, err := old.Replay(d); err == nil {
		t.Fatal("the old mapping decodes it")
	}
	fixed, err := New(testConfig("tcp://127.0.0.1:1883", "plant"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := fixed.Replay(d)
	if err != nil || len(rs) != 1 || rs[0].Device != "l1/d1" || rs[0].Metric != "temp" || rs[0].Value.Float() != 21.5 ||
		!rs[0].GatewayTime.Equal(at) || rs[0].SourceTime.UnixMilli() != 1764576000000 {
		t.Fatalf("replay after the fix: %+v, %v", rs, err)
	}

	bad := d
	bad.Payload = []byte(`{"ts":`)
	if _, err := fixed.Replay(bad); err == nil || errors.Is(err, fieldgate.ErrNotReplayable) {
		t.Fatalf("malformed payload: %v", err)
	}
	for name, nr := range map[string]fieldgate.DeadLetter{
		"cut":          {Source: "mqtt:plant", Origin: d.Origin, Payload: d.Payload[:5], Size: 5000},
		"other input":  {Source: "mqtt:other", Origin: d.Origin, Payload: d.Payload},
		"kafka refuse": {Source: "forward", Origin: "kafka topic x", Payload: d.Payload},
	} {
		if _, err := fixed.Replay(nr); !errors.Is(err, fieldgate.ErrNotReplayable) {
			t.Errorf("%s: %v, want ErrNotReplayable", name, err)
		}
	}
	unrouted := d
	unrouted.Origin = "elsewhere/x"
	if _, err := fixed.Replay(unrouted); err == nil || !strings.Contains(err.Error(), "matches no subscription") {
		t.Fatalf("unrouted: %v", err)
	}
}

// The dead-letter log says what it held back at the end of the interval, with no further dead letter needed.
func TestRateLogSummaryAtIntervalEnd(t *testing.T) {
	var out testutil.SyncBuffer
	r := newRateLog(slog.New(slog.NewTextHandler(&out, nil)), 50*time.Millisecond, "dead-letter")
	lines := 0
	for i := range 46 {
		class := fieldgate.DeadLetterDecode
		if i%10 == 0 {
			class = fieldgate.DeadLetterTooLarge
		}
		r.log(class, func() { lines++ })
	}
	if lines != 1 {
		t.Fatalf("%d lines logged in the burst, want 1", lines)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "suppressed") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s := out.String(); !strings.Contains(s, "suppressed 45 dead-letter logs in the last") || !strings.Contains(s, "decode=41 too_large=4") {
		t.Fatalf("summary: %q", s)
	}
	// After the interval the next line is logged in full.
	r.log(fieldgate.DeadLetterDecode, func() { lines++ })
	if lines != 2 {
		t.Fatalf("the line after the summary was held back")
	}
	r.close()
}
