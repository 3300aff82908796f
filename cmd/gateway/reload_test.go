package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/fieldgate/fieldgate/internal/testutil"
)

// TestReloadNothingLost pushes 30 configurations while a QoS 1 stream runs at 1,000 msg/s and a Modbus device and
// an OPC UA server are polled every 100 ms: inputs of each protocol added, edited and removed, Kafka settings
// changed, the HTTP listener moved, the log level changed, and invalid pushes (a syntax error, an unknown key, a
// duplicate device, a port out of range, a buffer path change, which needs a restart). The pushes are atomic
// renames of the main file, drop-in files written and deleted, and a SIGHUP. Every acknowledged message lands in
// Kafka; the inputs never edited show no reconnect and no missed poll; an invalid push changes nothing; every
// record carries the hash of a configuration that was applied. A missed poll is what the gateway counts as one:
// a Modbus tick skipped or held, an OPC UA poll not read, against one per 100 ms of the pushes' duration.
func TestReloadNothingLost(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of pushes under load; skipped with -short")
	}
	mqttURL := startBroker(t)
	// Kafka, the Modbus PLC and the OPC UA server run in a devsim process: built without the race detector, so
	// that the devices answer in time on a loaded machine and a missed tick is the gateway's.
	p := startPlant(t, 0)
	kafkaAddr, plc, opc := p.kafka, p.modbus, "opc.tcp://"+p.opcua
	env := writeGatewayConfig(t, mqttURL, kafkaAddr)
	confdir := filepath.Join(env.dir, "conf.d")
	if err := os.Mkdir(confdir, 0o700); err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(env.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The inputs that are never edited: the MQTT stream (in the main file), a Modbus device and an OPC UA poll
	// group (each in a drop-in that no push touches).
	writeFile(t, filepath.Join(confdir, "10-plc.yaml"), fmt.Sprintf(`modbus:
  - name: plc
    address: %s
    devices:
      - name: press-01
        groups: [{name: fast, interval: 100ms, tags: [{name: temp, address: 0, type: float32}]}]
`, plc))
	writeFile(t, filepath.Join(confdir, "20-oven.yaml"), fmt.Sprintf(`opcua:
  - name: oven
    endpoint: %s
    security: {mode: None}
    groups:
      - {name: temps, mode: poll, poll_interval: 100ms, device: oven-01, nodes: [{id: "nsu=urn:fieldgate:devsim;s=Line1.Temperature", metric: temp}]}
`, opc))
	gw := env.start()
	env.waitReady(gw, 15*time.Second)
	httpAddr := env.httpAddr
	status := func() statusDoc {
		t.Helper()
		var st statusDoc
		if err := json.Unmarshal([]byte(httpGet(t, "http://"+httpAddr+"/api/status")), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	// Wait until the OPC UA input polls and the Modbus input is connected.
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := parseMetrics(httpGet(t, "http://"+httpAddr+"/metrics"))
		if m[`fieldgate_input_connected{input="oven",type="opcua"}`] == 1 && m[`fieldgate_input_connected{input="plc",type="modbus"}`] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Modbus and OPC UA inputs did not connect")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := scrape(t, httpAddr)

	const n = 45000 // 45 s at 1,000 msg/s
	pub := newPublisher(t, mqttURL, 5, false)
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); pub.run(context.Background(), n, 1000) }()

	main := string(base)
	kafkaBlock := "  produce_timeout: 5s\n"
	extraMQTT := fmt.Sprintf("  - name: extra\n    broker: %s\n    subscriptions:\n      - topic: extra/{device}\n", mqttURL)
	plc2 := fmt.Sprintf("modbus:\n  - name: plc2\n    address: %s\n    devices:\n      - name: press-02\n        groups: [{interval: 250ms, tags: [{name: temp, address: 0, type: float32}]}]\n", plc)
	oven2 := fmt.Sprintf("opcua:\n  - name: oven2\n    endpoint: %s\n    security: {mode: None}\n    groups:\n      - {name: g, mode: poll, poll_interval: 300ms, device: oven-02, nodes: [{id: \"nsu=urn:fieldgate:devsim;s=Line1.Pressure\"}]}\n", opc)
	newListen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	type push struct {
		what  string
		do    func()
		valid bool
	}
	rename := func(text string) func() { return func() { main = text; writeAtomically(t, env.cfgPath, text) } }
	dropIn := func(name, text string) func() {
		return func() { writeAtomically(t, filepath.Join(confdir, name), text) }
	}
	remove := func(name string) func() {
		return func() {
			if err := os.Remove(filepath.Join(confdir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	withKafka := func(extra string) string { return strings.Replace(main, kafkaBlock, kafkaBlock+extra, 1) }
	pushes := []push{
		{"add an MQTT input", func() { rename(main + extraMQTT)() }, true},
		{"add a Modbus input", dropIn("30-plc2.yaml", plc2), true},
		{"add an OPC UA input", dropIn("40-oven2.yaml", oven2), true},
		{"a syntax error", dropIn("50-bad.yaml", "mqtt:\n  - name: x\n    broker: [tcp://a:1\n"), false},
		{"fix it by removing it", remove("50-bad.yaml"), true},
		{"edit the MQTT input", func() { rename(strings.Replace(main, "extra/{device}", "extra2/{device}", 1))() }, true},
		{"edit the Modbus input", dropIn("30-plc2.yaml", strings.Replace(plc2, "250ms", "200ms", 1)), true},
		{"edit the OPC UA input", dropIn("40-oven2.yaml", strings.Replace(oven2, "300ms", "400ms", 1)), true},
		{"Kafka batch size", func() { rename(withKafka("  batch_size: 500\n"))() }, true},
		{"an unknown key", func() { writeAtomically(t, env.cfgPath, strings.Replace(main, "  topic:", "  topik:", 1)) }, false},
		{"Kafka compression", func() { rename(withKafka("  compression: lz4\n"))() }, true},
		{"a duplicate device", dropIn("50-bad.yaml", "modbus:\n  - name: copy\n    address: 127.0.0.1:1502\n    devices:\n      - name: press-01\n        groups: [{tags: [{name: x, address: 0}]}]\n"), false},
		{"remove it again", remove("50-bad.yaml"), true},
		{"log level debug", func() { rename(strings.Replace(main, "level: info", "level: debug", 1))() }, true},
		{"a port out of range", dropIn("50-bad.yaml", "mqtt:\n  - name: far\n    broker: tcp://127.0.0.1:70000\n    subscriptions: [{topic: a/b}]\n"), false},
		{"remove it again", remove("50-bad.yaml"), true},
		{"the buffer path (needs a restart)", func() {
			writeAtomically(t, env.cfgPath, main+"buffer: {path: "+filepath.Join(env.dir, "other.db")+"}\n")
		}, false},
		{"back to the running file", func() { writeAtomically(t, env.cfgPath, main) }, true},
		{"Kafka client id", func() { rename(withKafka("  client_id: gw-reloaded\n"))() }, true},
		{"remove the MQTT input", func() {
			rename(strings.Replace(main, strings.Replace(extraMQTT, "extra/{device}", "extra2/{device}", 1), "", 1))()
		}, true},
		{"remove the Modbus input", remove("30-plc2.yaml"), true},
		{"remove the OPC UA input", remove("40-oven2.yaml"), true},
		{"move the HTTP listener", func() { rename(strings.Replace(main, env.httpAddr, newListen, 1))() }, true},
		{"an empty drop-in", dropIn("60-empty.yaml", "# nothing yet\n"), true},
		{"re-add the Modbus input", dropIn("30-plc2.yaml", plc2), true},
		{"SIGHUP with nothing changed", func() {
			if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"an MQTT input with a wrong type", dropIn("50-bad.yaml", "mqtt:\n  - name: y\n    broker: tcp://127.0.0.1:1883\n    max_inflight: many\n    subscriptions: [{topic: a/b}]\n"), false},
		{"remove it again", remove("50-bad.yaml"), true},
		{"Kafka batch size back", func() { rename(strings.Replace(main, "  batch_size: 500\n", "", 1))() }, true},
		{"remove the Modbus input again", remove("30-plc2.yaml"), true},
	}
	if len(pushes) != 30 {
		t.Fatalf("%d pushes, want 30", len(pushes))
	}
	applied := map[string]bool{status().Config.Hash: true}
	var nApplied, nRefused uint64
	for i, p := range pushes {
		prev := status()
		p.do()
		if p.what == "move the HTTP listener" {
			httpAddr = newListen
		}
		// Wait for the reload's outcome: a new last_reload (a file change, or the SIGHUP).
		deadline := time.Now().Add(30 * time.Second)
		var st statusDoc
		for {
			time.Sleep(100 * time.Millisecond)
			st = statusDoc{}
			resp, err := http.Get("http://" + httpAddr + "/api/status")
			if err == nil {
				err = json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
			}
			if err == nil && st.Config.LastReload != nil && (prev.Config.LastReload == nil || st.Config.LastReload.Time.After(prev.Config.LastReload.Time)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("push %d (%s): no reload after 30s", i+1, p.what)
			}
		}
		r := st.Config.LastReload
		switch {
		case p.valid && r.Result != resultApplied && r.Result != resultUnchanged:
			t.Errorf("push %d (%s): %s: %s", i+1, p.what, r.Result, r.Error)
		case !p.valid && r.Result != resultRefused:
			t.Errorf("push %d (%s): %s, want refused", i+1, p.what, r.Result)
		case !p.valid:
			nRefused++
			if st.Config.Hash != prev.Config.Hash || len(st.Sources) != len(prev.Sources) {
				t.Errorf("push %d (%s) was refused but changed the configuration", i+1, p.what)
			}
		case r.Result == resultApplied:
			nApplied++
		}
		applied[st.Config.Hash] = true
		t.Logf("push %2d %-36s %-9s %s %s", i+1, p.what, r.Result, short(st.Config.Hash), firstLine(strings.Join(r.Changes, "; ")+r.Error))
	}
	<-pubDone
	acked := pub.finish()
	after := scrape(t, httpAddr)
	if got := after[`fieldgate_config_reloads_total{result="refused"}`]; got != float64(nRefused) || nRefused != 6 {
		t.Errorf("refused reloads: metric %v, seen %d, want 6", got, nRefused)
	}
	if got := after[`fieldgate_config_reloads_total{result="applied"}`]; got != float64(nApplied) {
		t.Errorf("applied reloads: metric %v, seen %d", got, nApplied)
	}
	// The inputs never edited: no reconnect, no poll missed.
	for _, m := range []string{
		`fieldgate_mqtt_connects_total{input="e2e",type="mqtt"}`,
		`fieldgate_modbus_connects_total{input="plc",type="modbus"}`,
		`fieldgate_opcua_connects_total{input="oven",type="opcua"}`,
	} {
		if before[m] != 1 || after[m] != 1 {
			t.Errorf("%s: %v before the pushes, %v after; want 1 (no reconnect)", m, before[m], after[m])
		}
	}
	// No missed poll: the Modbus input skipped or held no tick and polled once per 100 ms; the OPC UA poll group
	// read once per 100 ms (its ticker drops a tick only when a read runs late) and had no error.
	elapsed := after["fieldgate_scrape_seconds"] - before["fieldgate_scrape_seconds"]
	for _, m := range []string{
		`fieldgate_modbus_skipped_ticks_total{device="press-01",input="plc",type="modbus"}`,
		`fieldgate_modbus_held_ticks_total{device="press-01",input="plc",type="modbus"}`,
		`fieldgate_opcua_errors_total{input="oven",type="opcua"}`,
	} {
		if after[m] != 0 {
			t.Errorf("%s = %v, want 0", m, after[m])
		}
	}
	for m, per := range map[string]float64{
		`fieldgate_modbus_polls_total{device="press-01",input="plc",type="modbus"}`: 10,
		`fieldgate_opcua_reads_total{input="oven",type="opcua"}`:                    10,
	} {
		got, want := after[m]-before[m], elapsed*per
		t.Logf("%s: %.0f in %.1fs (%.0f ticks)", m, got, elapsed, want)
		if got < want-2 {
			t.Errorf("%s: %.0f polls in %.1fs, want %.0f (one per tick)", m, got, elapsed, want)
		}
	}
	// Everything acknowledged landed; the polled devices have a reading for every 100 ms tick.
	ls := consumeUntil(t, kafkaAddr, 90*time.Second, allAckedLanded(acked))
	checkAckedLanded(t, acked, seqCounts(ls, n))
	for _, l := range ls {
		if l.config == "" || !applied[l.config] {
			t.Fatalf("record %d/%d carries config hash %q, not one that was applied", l.partition, l.offset, l.config)
		}
	}
	if code, _ := gw.stop(20 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeAtomically writes text to a temporary file beside path and renames it over path, as config tools do.
func writeAtomically(t *testing.T, path, text string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	writeFile(t, tmp, text)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// ---- devices ------------------------------------------------------------------------------------------------------

// counter is a Modbus device whose holding register 0 counts the reads.
type counter struct{ n uint16 }

func (c *counter) HandleCoils(*modbus.CoilsRequest) ([]bool, error) {
	return nil, modbus.ErrIllegalFunction
}
func (c *counter) HandleDiscreteInputs(*modbus.DiscreteInputsRequest) ([]bool, error) {
	return nil, modbus.ErrIllegalFunction
}
func (c *counter) HandleInputRegisters(*modbus.InputRegistersRequest) ([]uint16, error) {
	return nil, modbus.ErrIllegalFunction
}
func (c *counter) HandleHoldingRegisters(r *modbus.HoldingRegistersRequest) ([]uint16, error) {
	c.n++
	out := make([]uint16, r.Quantity)
	out[0] = c.n
	return out, nil
}

// startPLC serves a counter over Modbus TCP on a free loopback port and returns host:port.
func startPLC(t *testing.T) string {
	t.Helper()
	addr := testutil.FreeAddr(t)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + addr, Timeout: time.Minute, MaxClients: 10,
		Logger: log.New(io.Discard, "", 0)}, &counter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return addr
}

// scrape returns /metrics with the time of the scrape as fieldgate_scrape_seconds.
func scrape(t *testing.T, addr string) map[string]float64 {
	m := parseMetrics(httpGet(t, "http://"+addr+"/metrics"))
	m["fieldgate_scrape_seconds"] = float64(time.Now().UnixNano()) / 1e9
	return m
}

// plant is a devsim process's servers, each host:port on loopback: an in-memory Kafka, the simulated Modbus PLC,
// the OPC UA server (security None) and, with sensors, an MQTT broker.
type plant struct{ mqtt, kafka, modbus, opcua string }

// startPlant runs `devsim run` until the test ends. sensorRate > 0 also starts its MQTT broker, its sensors
// publishing that many messages a second each (no Sparkplug edge node).
func startPlant(t *testing.T, sensorRate int) plant {
	t.Helper()
	bin := filepath.Join(filepath.Dir(gatewayBinary(t)), "devsim")
	if _, err := os.Stat(bin); err != nil {
		if out, err := exec.Command("go", "build", "-o", bin, "../devsim").CombinedOutput(); err != nil {
			t.Fatalf("go build devsim: %v\n%s", err, out)
		}
	}
	p := plant{kafka: testutil.FreeAddr(t), modbus: testutil.FreeAddr(t), opcua: testutil.FreeAddr(t)}
	listening := []string{p.kafka, p.modbus, p.opcua}
	if sensorRate > 0 {
		p.mqtt = testutil.FreeAddr(t)
		listening = append(listening, p.mqtt)
	}
	out := &testutil.SyncBuffer{}
	cmd := testutil.TargetCommand(bin, "run", "-mqtt", p.mqtt, "-sensor-rate", strconv.Itoa(sensorRate), "-sparkplug-rate", "0",
		"-kafka", p.kafka, "-partitions", "3", "-modbus", p.modbus, "-opcua", p.opcua, "-state", t.TempDir())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("devsim output:\n%s", tail(out.String(), 20))
		}
	})
	for _, a := range listening {
		testutil.WaitListening(t, a, 30*time.Second)
	}
	return p
}
