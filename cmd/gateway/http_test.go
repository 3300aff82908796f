package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
)

// `validate -v` prints every input, with the Modbus read plan.
func TestValidateVerbose(t *testing.T) {
	code, out, errOut := validateFile(t, "testdata/good/all_inputs.yaml", "-v")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"inputs      3",
		"mqtt sensors  tcp://127.0.0.1:1883  client_id fieldgate-gw-all-sensors, persistent session",
		"modbus plc1  tcp 127.0.0.1:5020",
		"read plan (2 requests):",
		"read holding 0-4 (5 registers, 2 filled): pressure, temperature",
		"opcua oven  opc.tcp://127.0.0.1:4840  security SignAndEncrypt",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate -v lacks %q:\n%s", want, out)
		}
	}
	_, plain, _ := validateFile(t, "testdata/good/all_inputs.yaml")
	if strings.Contains(plain, "read plan") {
		t.Errorf("validate without -v prints the read plan")
	}
}

// The HTTP endpoints with every kind of input configured (none connected): /metrics gathers without error (no
// duplicate or inconsistent metrics), /readyz is 503 naming the reason, /api/status lists sources and devices.
func TestHTTPEndpoints(t *testing.T) {
	g := testGateway(t, "testdata/good/all_inputs.yaml")
	now := time.Now()
	rs := []fieldgate.Reading{
		{Device: "L1/press", Metric: "p", Value: fieldgate.Float(1.5), GatewayTime: now},
		{Device: "L1/oven", Metric: "t", Value: fieldgate.Int(200), GatewayTime: now, SourceTime: now.Add(-time.Second)},
	}
	if err := fieldgate.Store(context.Background(), g.inputs[0], rs); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		`fieldgate_input_readings_total{input="sensors",type="mqtt"} 2`,
		`fieldgate_input_up{input="plc1",type="modbus"} 1`,
		`fieldgate_input_connected{input="oven",type="opcua"} 0`,
		`fieldgate_modbus_polls_total{device="press-07",input="plc1",type="modbus"} 0`,
		`fieldgate_opcua_group_readings_total{group="temps",input="oven",type="opcua"} 0`,
		`fieldgate_mqtt_subscription_messages_total{input="sensors",subscription="plant/{line}/{device}/telemetry",type="mqtt"} 0`,
		`fieldgate_buffer_entries 2`,
		`fieldgate_buffer_healthy 1`,
		`fieldgate_kafka_connected 0`,
		`fieldgate_devices_tracked 2`,
		`process_resident_memory_bytes`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(body, "fieldgate_"))
	}
	if !strings.Contains(body, "fieldgate_buffer_oldest_age_seconds ") || strings.Contains(body, "fieldgate_buffer_oldest_age_seconds 0\n") {
		t.Errorf("oldest age is 0 with 2 readings buffered")
	}

	if code, body := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "no input is connected") {
		t.Errorf("/readyz: %d %q", code, body)
	}

	code, body = get("/api/status")
	var st statusDoc
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("/api/status: %d\n%s", code, body)
	}
	if st.GatewayID != "gw-all" || st.Ready || len(st.Sources) != 3 || len(st.Devices) != 2 {
		t.Errorf("/api/status:\n%s", body)
	}
	if !strings.Contains(body, `"last_event_time"`) || !strings.Contains(body, `"dropped_oldest": 0`) || !strings.Contains(body, `"exceptions_by_code"`) {
		t.Errorf("/api/status lacks snake_case component stats:\n%s", body)
	}
}

func TestSnakeName(t *testing.T) {
	for in, want := range map[string]string{
		"DroppedOldest": "dropped_oldest", "LastRTTSeconds": "last_rtt_seconds", "UnitID": "unit_id",
		"CorruptFilesMovedAside": "corrupt_files_moved_aside", "Connected": "connected", "MaxNodesPerRead": "max_nodes_per_read",
	} {
		if got := snakeName(in); got != want {
			t.Errorf("snakeName(%s) = %s, want %s", in, got, want)
		}
	}
}

// An input that fails for good is marked failed and the others keep running; when every input has failed, the
// gateway is told to stop (exit code 1, so that a service manager restarts it).
func TestInputFailure(t *testing.T) {
	g := testGateway(t, "testdata/good/all_inputs.yaml")
	release := make(chan struct{})
	for i, in := range g.inputs {
		run := func(ctx context.Context, sink fieldgate.Sink) error {
			select {
			case <-ctx.Done():
				return nil
			case <-release:
				return errors.New("gone too")
			}
		}
		if i == 0 {
			run = func(ctx context.Context, sink fieldgate.Sink) error {
				return errors.New("device refused the configuration")
			}
		}
		it := in.cur.Load()
		in.start(t.Context(), it.cfg, &source{Source: runFunc(run), stats: it.src.stats, connected: it.src.connected})
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.inputs[0].getState() != "failed" {
		if time.Now().After(deadline) {
			t.Fatal("the failing input is not marked failed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := g.inputs[1].getState(); s != "running" {
		t.Errorf("the other input is %s", s)
	}
	if e := g.inputs[0].getLastError(); e != "device refused the configuration" {
		t.Errorf("last error %q", e)
	}
	select {
	case err := <-g.fatal:
		t.Fatalf("the gateway stops (%v) with inputs still running", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-g.fatal:
		if err == nil || !strings.Contains(err.Error(), "every input has failed") {
			t.Errorf("the gateway stops with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway does not stop after every input failed")
	}
}

// runFunc is a fieldgate.Source made of its Run.
type runFunc func(ctx context.Context, sink fieldgate.Sink) error

func (f runFunc) Run(ctx context.Context, sink fieldgate.Sink) error { return f(ctx, sink) }

// BenchmarkDeviceTracker: the per-reading cost the emit wrapper adds to every commit (device table for
// /api/status), for a batch of 64 readings over 10 devices.
func BenchmarkDeviceTracker(b *testing.B) {
	tr := newDeviceTracker(maxTrackedDevices)
	now := time.Now()
	rs := make([]fieldgate.Reading, 64)
	for i := range rs {
		rs[i] = fieldgate.Reading{Device: "line1/dev" + string(rune('0'+i%10)), Metric: "m", Value: fieldgate.Int(int64(i)), GatewayTime: now}
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.seen("bench", rs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rs)), "ns/reading")
}

// TestHistoryRates: the rates of /api/status are taken over the last ten minutes of samples, not since start.
func TestHistoryRates(t *testing.T) {
	var h bufferHistory
	t0 := time.Now()
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	// A burst in the first minutes, then a steady 1 MB and 10 commits (20 fsyncs) a minute.
	h.add(bufSample{at: at(0)})
	h.add(bufSample{at: at(1), written: 500e6, commits: 1000, fsyncs: 2000})
	for m := 2; m <= 20; m++ {
		h.add(bufSample{at: at(m), written: 500e6 + int64(m-1)*1e6, commits: 1000 + uint64(m-1)*10, fsyncs: 2000 + uint64(m-1)*20})
	}
	r := h.rates(bufSample{at: at(21), written: 500e6 + 20e6, commits: 1200, fsyncs: 2400})
	if r.OverSeconds != 600 || r.DiskWrittenBytesPerDay != 1e6*60*24 || r.CommitsPerSecond != 10.0/60 || r.FsyncsPerSecond != 20.0/60 {
		t.Errorf("rates %+v; want 1 MB a minute (1.44 GB a day), 10 commits and 20 fsyncs a minute, over the last 600 s", r)
	}
	if r := (&bufferHistory{}).rates(bufSample{at: t0}); r != (bufferRates{}) {
		t.Errorf("rates without samples = %+v, want zero", r)
	}
}
