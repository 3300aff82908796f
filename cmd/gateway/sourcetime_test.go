package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldgate/fieldgate"
)

// TestSourceTimeBounds: every input's readings pass its source_time bound on their way into the buffer — the MQTT
// default of a day either way, an OPC UA input's own bound from the file — and an implausible time is replaced by
// the gateway time, the reading kept as Uncertain with StatusImplausibleTime and counted. The caller's readings
// are not changed.
func TestSourceTimeBounds(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile("testdata/good/all_inputs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfgText := strings.Replace(string(raw), "    endpoint: opc.tcp://127.0.0.1:4840\n",
		"    endpoint: opc.tcp://127.0.0.1:4840\n    source_time: {max_past: 1h, max_future: 1m}\n", 1)
	path := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	g := testGateway(t, path)
	mqttIn, opcuaIn := g.inputs[0], g.inputs[2]
	if mqttIn.kind != "mqtt" || opcuaIn.kind != "opcua" {
		t.Fatalf("inputs in another order: %s, %s", mqttIn.kind, opcuaIn.kind)
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	at := func(dev string, src time.Time) fieldgate.Reading {
		return fieldgate.Reading{Device: dev, Metric: "m", Value: fieldgate.Float(1), SourceTime: src, GatewayTime: now}
	}
	mqttRs := []fieldgate.Reading{
		at("mqtt-ok", now.Add(-2*time.Hour)),                // inside the default day
		at("mqtt-seconds", time.UnixMilli(now.Unix())),      // seconds sent as milliseconds: January 1970
		at("mqtt-year1", fieldgate.DeviceTime(time.Time{})), // 0001-01-01T00:00:00Z in the payload
	}
	opcuaRs := []fieldgate.Reading{
		at("opcua-ok", now.Add(-30*time.Minute)),
		at("opcua-old", now.Add(-2*time.Hour)), // inside the MQTT default, outside this input's hour
		{Device: "opcua-bad", Metric: "m", Quality: fieldgate.Bad, Status: 0x80310000, SourceTime: now.Add(2 * time.Minute), GatewayTime: now},
	}
	keep := append([]fieldgate.Reading(nil), mqttRs...)
	ctx := context.Background()
	if err := fieldgate.Store(ctx, mqttIn, mqttRs); err != nil {
		t.Fatal(err)
	}
	if err := fieldgate.Store(ctx, opcuaIn, opcuaRs); err != nil {
		t.Fatal(err)
	}
	for i := range keep {
		if keep[i] != mqttRs[i] {
			t.Errorf("Queue changed the input's reading %d: %+v", i, mqttRs[i])
		}
	}

	got := map[string]fieldgate.Reading{}
	if err := g.buf.Scan(100, func(_ uint64, _, value []byte) error {
		r, err := fieldgate.Decode(value)
		got[r.Device] = r
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for dev, src := range map[string]time.Time{"mqtt-ok": now.Add(-2 * time.Hour), "opcua-ok": now.Add(-30 * time.Minute)} {
		if r := got[dev]; r.Quality != fieldgate.Good || !r.SourceTime.Equal(src) {
			t.Errorf("%s: %+v, want Good at its source time", dev, r)
		}
	}
	for _, dev := range []string{"mqtt-seconds", "mqtt-year1", "opcua-old"} {
		if r := got[dev]; r.Quality != fieldgate.Uncertain || r.Status != fieldgate.StatusImplausibleTime || !r.SourceTime.IsZero() || !r.EventTime().Equal(now) {
			t.Errorf("%s: %+v, want Uncertain, status %d, at the gateway time", dev, r, fieldgate.StatusImplausibleTime)
		}
	}
	if r := got["opcua-bad"]; r.Quality != fieldgate.Bad || r.Status != 0x80310000 || !r.SourceTime.IsZero() {
		t.Errorf("opcua-bad: %+v, want Bad with its own status, at the gateway time", r)
	}
	mqttIn.settle() // as /metrics and /api/status do before they read the counters
	opcuaIn.settle()
	if n, m := mqttIn.implausible.Load(), opcuaIn.implausible.Load(); n != 2 || m != 2 {
		t.Errorf("implausible source times counted: mqtt %d, opcua %d; want 2 and 2", n, m)
	}
}

// TestImplausibleSourceTimesEndToEnd: sensors publishing to a unix_ms subscription send seconds (January 1970),
// microseconds (beyond int64 nanoseconds) and a negative time: every reading reaches Kafka, at its gateway time,
// Uncertain with StatusImplausibleTime; a good timestamp is kept; /metrics counts the three.
func TestImplausibleSourceTimesEndToEnd(t *testing.T) {
	mqttURL := startBroker(t)
	k := startKafka(t)
	env := writeGatewayConfig(t, mqttURL, k.addr())
	gw := env.start()
	env.waitReady(gw, 15*time.Second)

	now := time.Now()
	payloads := map[string]string{
		"good":     fmt.Sprintf(`{"ts":%d,"v":1}`, now.UnixMilli()),
		"seconds":  fmt.Sprintf(`{"ts":%d,"v":2}`, now.Unix()),
		"micro":    fmt.Sprintf(`{"ts":%d,"v":3}`, now.UnixMicro()),
		"negative": `{"ts":-62135596800000,"v":4}`, // 0001-01-01T00:00:00Z
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURL).SetClientID(fmt.Sprintf("e2e-times-%d", now.UnixNano())))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	for dev, p := range payloads {
		if tok := c.Publish("e2e/"+dev+"/telemetry", 1, false, p); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	ls := consumeUntil(t, k.addr(), 30*time.Second, func(ls []landed) bool { return len(ls) >= len(payloads) })
	got := map[string]fieldgate.Reading{}
	for _, l := range ls {
		got[l.r.Device] = l.r
	}
	if r := got["good"]; r.Quality != fieldgate.Good || r.SourceTime.UnixMilli() != now.UnixMilli() {
		t.Errorf("good: %+v", r)
	}
	for _, dev := range []string{"seconds", "micro", "negative"} {
		r, ok := got[dev]
		if !ok {
			t.Errorf("%s: no reading reached Kafka", dev)
			continue
		}
		if r.Quality != fieldgate.Uncertain || r.Status != fieldgate.StatusImplausibleTime || !r.SourceTime.IsZero() ||
			r.GatewayTime.Before(now.Add(-time.Second)) || r.GatewayTime.After(time.Now()) {
			t.Errorf("%s: %+v, want Uncertain, status %d, no source time (event time = gateway time)", dev, r, fieldgate.StatusImplausibleTime)
		}
	}
	if m := parseMetrics(httpGet(t, "http://"+env.httpAddr+"/metrics")); m[`fieldgate_input_implausible_source_times_total{input="e2e",type="mqtt"}`] != 3 {
		t.Errorf("implausible source times counted: %v, want 3", m[`fieldgate_input_implausible_source_times_total{input="e2e",type="mqtt"}`])
	}
}
