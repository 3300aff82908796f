package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/html"

	"github.com/fieldgate/fieldgate/internal/testutil"
)

// TestStatusPageInBrowser loads the status page in headless Chromium against a gateway fed by devsim (MQTT
// sensors, a Modbus PLC, an OPC UA server, Kafka) and a second MQTT input on a Mosquitto of its own: the page
// shows every input and device; the values change from one load to the next; a hostile dead letter is shown as
// inert text; and once the Mosquitto stops, its input's row turns red (its class, and red pixels in the
// screenshots at phone and panel size, kept as artefacts; with -update also copied to docs/).
func TestStatusPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser against a gateway and devsim; skipped with -short")
	}
	br := testutil.NewBrowser(t)
	mq := testutil.StartMosquitto(t)
	p := startPlant(t, 2)
	env := writePageConfig(t, p, mq.URL)
	gw := env.start()
	env.waitReady(gw, 30*time.Second)
	url := "http://" + env.httpAddr + "/"
	art := testutil.ArtifactDir(t)

	// A device on the Mosquitto input, then every input connected and delivering.
	pub := mqttClient(t, mq.URL)
	for i := 0; i < 3; i++ {
		publish(t, pub, "lb/belt-01/telemetry", fmt.Sprintf(`{"ts":%d,"speed":%d}`, time.Now().UnixMilli(), 10+i))
	}
	st := waitStatus(t, env.httpAddr, 30*time.Second, "every input connected with readings", func(st statusDoc) bool {
		for _, s := range st.Sources {
			if s.Condition != "connected" || s.Readings == 0 {
				return false
			}
		}
		return len(st.Sources) == 4
	})

	dom1 := br.DOM(url, 3*time.Second)
	rows := inputRows(dom1)
	for _, s := range st.Sources {
		r := rows[s.Name]
		if r == nil {
			t.Fatalf("input %s not on the page", s.Name)
		}
		if testutil.HasClass(r, "bad") || testutil.Attr(r, "data-condition") != "connected" {
			t.Errorf("input %s: row class %q, condition %q; want connected, not bad", s.Name, testutil.Attr(r, "class"), testutil.Attr(r, "data-condition"))
		}
	}
	values1 := deviceValues(dom1)
	for _, d := range st.Devices {
		if _, ok := values1[d.Device]; !ok {
			t.Errorf("device %s not on the page (page has %v)", d.Device, keys(values1))
		}
	}
	if len(st.Devices) < 4 {
		t.Errorf("%d devices in /api/status, want the plant's and belt-01", len(st.Devices))
	}
	before := br.Screenshot(url, 1024, 600, 3*time.Second, filepath.Join(art, "gateway-panel-connected.png"))
	if n := testutil.CountPixels(before, 0xff, 0xe3, 0xe3, 3); n > 0 {
		t.Errorf("%d pixels of a failed input's background while every input is connected", n)
	}

	// Values change: wait for newer readings of every device but belt-01, then load again.
	last := map[string]time.Time{}
	for _, d := range st.Devices {
		last[d.Device] = d.LastReading
	}
	waitStatus(t, env.httpAddr, 30*time.Second, "newer readings of every plant device", func(st statusDoc) bool {
		for _, d := range st.Devices {
			if d.Device != "belt-01" && !d.LastReading.After(last[d.Device].Add(5*time.Second)) {
				return false
			}
		}
		return true
	})
	dom2 := br.DOM(url, 3*time.Second)
	changed := 0
	for d, v := range deviceValues(dom2) {
		if v != values1[d] && d != "belt-01" {
			changed++
		}
	}
	if changed == 0 {
		t.Errorf("no device's values changed between two loads: %v", values1)
	}
	if n := len(testutil.Find(dom2, func(n *html.Node) bool { return n.Data == "polyline" })); n == 0 {
		t.Error("no sparkline drawn")
	}

	t.Run("hostile dead letter", func(t *testing.T) {
		// Markup that would act if parsed as HTML, invalid UTF-8, and a megabyte of one line.
		hostile := `<script>document.body.setAttribute("data-pwned","script")</script>` +
			`<img src=x onerror="document.body.setAttribute('data-pwned','img')">` + "\xff\xfe\xc3(" + strings.Repeat("A", 1<<20)
		plantPub := mqttClient(t, "tcp://"+p.mqtt)
		publish(t, plantPub, "plant/line9/evil-01/telemetry", hostile)
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(httpGet(t, "http://"+env.httpAddr+"/api/deadletters"), "data-pwned") {
			if time.Now().After(deadline) {
				t.Fatal("the hostile payload is not listed by /api/deadletters")
			}
			time.Sleep(100 * time.Millisecond)
		}
		dom := br.DOM(url, 4*time.Second)
		var letter *html.Node
		for _, li := range testutil.Find(dom, func(n *html.Node) bool { return testutil.HasClass(n, "deadletter") }) {
			if strings.Contains(testutil.Text(li), "data-pwned") {
				letter = li
			}
		}
		if letter == nil {
			t.Fatal("the hostile dead letter is not on the page")
		}
		text := testutil.Text(letter)
		if !strings.Contains(text, "<script>document.body.setAttribute(") || !strings.Contains(text, "<img src=x onerror=") {
			t.Errorf("the payload is not shown as text: %.300q", text)
		}
		reason := testutil.Find(letter, func(n *html.Node) bool { return testutil.HasClass(n, "reason") })
		if len(reason) != 1 || strings.TrimSpace(testutil.Text(reason[0])) == "" {
			t.Errorf("no reason shown: %.300q", text)
		}
		if pw := testutil.Attr(testutil.Find(dom, func(n *html.Node) bool { return n.Data == "body" })[0], "data-pwned"); pw != "" {
			t.Errorf("the payload ran (%s)", pw)
		}
		for _, n := range testutil.Find(dom, func(n *html.Node) bool { return n.Data == "img" || n.Data == "script" && testutil.Attr(n, "src") == "" }) {
			t.Errorf("the payload became an element: <%s>", n.Data)
		}
		br.Screenshot(url, 390, 844, 4*time.Second, filepath.Join(art, "gateway-phone-deadletter.png"))
	})

	// The Mosquitto stops: its input turns red.
	mq.Signal(syscall.SIGTERM)
	waitStatus(t, env.httpAddr, 30*time.Second, "line-b disconnected", func(st statusDoc) bool {
		for _, s := range st.Sources {
			if s.Name == "line-b" {
				return s.Condition == "disconnected"
			}
		}
		return false
	})
	r := inputRows(br.DOM(url, 3*time.Second))["line-b"]
	if r == nil || !testutil.HasClass(r, "bad") || testutil.Attr(r, "data-condition") != "disconnected" {
		t.Fatalf("line-b's row is not marked disconnected: %v", r)
	}
	if errs := testutil.Find(r, func(n *html.Node) bool { return testutil.HasClass(n, "err") }); len(errs) != 1 || strings.TrimSpace(testutil.Text(errs[0])) == "" {
		t.Errorf("line-b's row does not say why it is disconnected: %q", testutil.Text(r))
	}
	shots := map[string][2]int{"gateway-panel.png": {1024, 600}, "gateway-phone.png": {390, 844}}
	for name, size := range shots {
		img := br.Screenshot(url, size[0], size[1], 3*time.Second, filepath.Join(art, name))
		if n := testutil.CountPixels(img, 0xff, 0xe3, 0xe3, 3); n < 1000 {
			t.Errorf("%s: %d pixels of a failed input's background, want a red row", name, n)
		}
		if *update {
			copyFile(t, filepath.Join(art, name), filepath.Join("..", "..", "docs", name))
		}
	}
}

func writePageConfig(t *testing.T, p plant, lineB string) *gatewayEnv {
	t.Helper()
	dir := t.TempDir()
	env := &gatewayEnv{t: t, dir: dir, cfgPath: filepath.Join(dir, "gateway.yaml"), httpAddr: testutil.FreeAddr(t)}
	cfg := fmt.Sprintf(`gateway_id: page-gw
state_dir: %[1]s
log: {level: info, format: text}
http: {listen: "%[2]s"}
kafka: {brokers: ["%[3]s"], topic: %[4]s, min_backoff: 50ms, max_backoff: 1s}
mqtt:
  - name: plant-sensors
    broker: tcp://%[5]s
    subscriptions:
      - topic: plant/{line}/{device}/telemetry
        qos: 1
        device: "{line}/{device}"
        timestamp: {path: ts, format: unix_ms}
  - name: line-b
    broker: %[6]s
    max_reconnect_interval: 1s
    subscriptions:
      - topic: lb/{device}/telemetry
        timestamp: {path: ts, format: unix_ms}
modbus:
  - name: plc1
    address: %[7]s
    timeout: 500ms
    devices:
      - name: press-07
        groups: [{name: fast, interval: 500ms, tags: [{name: temperature, address: 0, type: float32}, {name: pressure, address: 2, type: float32}]}]
opcua:
  - name: oven
    endpoint: opc.tcp://%[8]s
    security: {mode: None}
    groups:
      - {name: g, mode: poll, poll_interval: 500ms, device: oven-01, nodes: [{id: "nsu=urn:fieldgate:devsim;s=Line1.Temperature", metric: temperature}]}
`, filepath.Join(dir, "state"), env.httpAddr, p.kafka, e2eTopic, p.mqtt, lineB, p.modbus, p.opcua)
	writeFile(t, env.cfgPath, cfg)
	return env
}

func mqttClient(t *testing.T, url string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("page-pub-%d", time.Now().UnixNano())).
		SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c paho.Client, topic, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// waitStatus polls /api/status until ok holds, and returns it.
func waitStatus(t *testing.T, addr string, timeout time.Duration, what string, ok func(statusDoc) bool) statusDoc {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var st statusDoc
		if err := json.Unmarshal([]byte(httpGet(t, "http://"+addr+"/api/status")), &st); err != nil {
			t.Fatal(err)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(st.Sources)
			t.Fatalf("not within %s: %s; sources: %s", timeout, what, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// inputRows returns the inputs table's rows by input name.
func inputRows(doc *html.Node) map[string]*html.Node {
	out := map[string]*html.Node{}
	for _, r := range testutil.Find(doc, func(n *html.Node) bool { return testutil.HasClass(n, "input-row") }) {
		out[testutil.Attr(r, "data-input")] = r
	}
	return out
}

// deviceValues returns the text of each device's last values by device name.
func deviceValues(doc *html.Node) map[string]string {
	out := map[string]string{}
	for _, r := range testutil.Find(doc, func(n *html.Node) bool { return testutil.HasClass(n, "device-row") }) {
		var vs []string
		for _, v := range testutil.Find(r, func(n *html.Node) bool { return testutil.HasClass(n, "value") }) {
			vs = append(vs, testutil.Text(v))
		}
		out[testutil.Attr(r, "data-device")] = strings.Join(vs, " ")
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", to)
}
