package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
)

const e2eToken = "e2e-token-0123456789abcdef"

// deadLetterConfig is one MQTT input whose timestamp format is ts_format, with the API behind a token and replay
// allowed.
func deadLetterConfig(dir, httpAddr, kafkaAddr, mqttURL, tsFormat string, clientID int64) string {
	return fmt.Sprintf(`gateway_id: dl-gw
state_dir: %s
log: {level: info, format: text}
http:
  listen: "%s"
  auth: {token: "%s"}
  allow_replay: true
kafka:
  brokers: ["%s"]
  topic: %s
  min_backoff: 50ms
  max_backoff: 1s
mqtt:
  - name: e2e
    broker: %s
    client_id: fieldgate-dl-%d
    subscriptions:
      - topic: e2e/{device}/telemetry
        qos: 1
        timestamp: {path: ts, format: %s}
`, filepath.Join(dir, "state"), httpAddr, e2eToken, kafkaAddr, e2eTopic, mqttURL, clientID, tsFormat)
}

// apiGet GETs path with the token (or without, when token is empty) and returns the status and body.
func apiGet(t *testing.T, base, path, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeadLetterReplayE2E: messages a wrong mapping refused are stored as dead letters, listed by the CLI from
// the running gateway; after the mapping is fixed in the file (a live reload), `gateway deadletters replay`
// turns them into readings that reach Kafka exactly once, and a second replay finds nothing to do.
func TestDeadLetterReplayE2E(t *testing.T) {
	mqttURL := startBroker(t)
	k := startKafka(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gateway.yaml")
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	base := "http://" + httpAddr
	clientID := time.Now().UnixNano()
	write := func(format string) {
		if err := os.WriteFile(cfgPath, []byte(deadLetterConfig(dir, httpAddr, k.addr(), mqttURL, format, clientID)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("rfc3339") // wrong: the sensors send unix milliseconds
	env := &gatewayEnv{t: t, dir: dir, cfgPath: cfgPath, httpAddr: httpAddr}
	p := env.start()
	waitUntil(t, 30*time.Second, "the gateway's input to connect", func() bool {
		code, body := apiGet(t, base, "/api/status", e2eToken)
		return code == 200 && strings.Contains(body, `"ready": true`)
	})
	if code, _ := apiGet(t, base, "/api/deadletters", ""); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d, want 401", code)
	}
	if code, _ := apiGet(t, base, "/healthz", ""); code != 200 {
		t.Fatalf("/healthz without the token: %d", code)
	}

	const n = 6
	pub := newPublisher(t, mqttURL, 2, false)
	pub.run(context.Background(), n, 1000)
	if acked := pub.finish(); len(acked) != n {
		t.Fatalf("published %d", len(acked))
	}
	var page deadLetterPage
	waitUntil(t, 30*time.Second, "the dead letters", func() bool {
		code, body := apiGet(t, base, "/api/deadletters?input=e2e&limit=100", e2eToken)
		return code == 200 && json.Unmarshal([]byte(body), &page) == nil && len(page.DeadLetters) == n
	})
	d := page.DeadLetters[0]
	if d.Input != "mqtt:e2e" || !strings.HasPrefix(d.Origin, "e2e/d0") || d.Class != fieldgate.DeadLetterDecode || d.Reason == "" ||
		d.Payload != string(pub.payload(n-1)) || d.PayloadBytes != len(d.Payload) || d.Truncated || page.Stored != n {
		t.Fatalf("newest dead letter: %+v (stored %d)", d, page.Stored)
	}

	cli := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := realMain(append([]string{"deadletters"}, append(args, "-config", cfgPath)...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := cli("list", "-input", "e2e")
	if code != 0 || strings.Count(out, "\tmqtt:e2e\t") != n {
		t.Fatalf("deadletters list: %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = cli("export")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != n {
		t.Fatalf("export: %d\n%s", code, out)
	} else {
		var e deadLetterExport
		if err := json.Unmarshal([]byte(lines[0]), &e); err != nil || string(e.PayloadBase64) != string(pub.payload(n-1)) ||
			!strings.Contains(lines[0], base64.StdEncoding.EncodeToString(pub.payload(n-1))) {
			t.Fatalf("export line: %s (%v)", lines[0], err)
		}
	}

	// Replayed before the fix: every letter still fails, with its reason; nothing is committed.
	code, out, errOut = cli("replay", "-input", "e2e")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("replayed 0 dead letters into 0 readings; %d still failing", n)) {
		t.Fatalf("replay before the fix: %d %q %q", code, out, errOut)
	}

	// Fix the mapping; the gateway reloads the file by itself.
	hash := func() string {
		_, body := apiGet(t, base, "/api/status", e2eToken)
		var st statusDoc
		_ = json.Unmarshal([]byte(body), &st)
		return st.Config.Hash
	}
	before := hash()
	write("unix_ms")
	waitUntil(t, 30*time.Second, "the reload", func() bool { h := hash(); return h != "" && h != before })
	code, out, errOut = cli("replay", "-input", "e2e", "-since", "1h")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("replayed %d dead letters into %d readings; 0 still failing", n, n)) {
		t.Fatalf("replay after the fix: %d %q %q", code, out, errOut)
	}
	code, out, _ = cli("replay")
	if code != 0 || !strings.Contains(out, "replayed 0 dead letters into 0 readings; 0 still failing") {
		t.Fatalf("second replay: %d %q", code, out)
	}
	if _, body := apiGet(t, base, "/api/deadletters", e2eToken); !strings.Contains(body, `"dead_letters":[]`) {
		t.Fatalf("dead letters left: %s", body)
	}

	// Each message's reading reached Kafka once, with the payload's time.
	got := consumeUntil(t, k.addr(), 30*time.Second, func(ls []landed) bool { return len(ls) >= n })
	time.Sleep(500 * time.Millisecond) // a duplicate would come with the same forwarder round
	got = consumeUntil(t, k.addr(), 5*time.Second, func(ls []landed) bool { return len(ls) > n })
	counts := map[int64]int{}
	for _, l := range got {
		if l.r.Metric != "seq" || l.r.SourceTime.UnixMilli() != pub.base+l.r.Value.Int() {
			t.Errorf("landed %+v", l.r)
		}
		counts[l.r.Value.Int()]++
	}
	for seq := range int64(n) {
		if counts[seq] != 1 {
			t.Errorf("seq %d landed %d times, want once", seq, counts[seq])
		}
	}
	if code, _ := p.stop(20 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestReplayNeedsAllowReplay: without http.allow_replay the replay API refuses, saying how to allow it.
func TestReplayNeedsAllowReplay(t *testing.T) {
	g := testGateway(t, "testdata/good/all_inputs.yaml")
	srv := httptest.NewServer(g.handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/deadletters/replay", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "http.allow_replay: true") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

// A hostile payload is listed as inert text: invalid UTF-8 replaced, cut at 1 KiB, flagged, and JSON-escaped.
func TestDeadLetterListIsSafeText(t *testing.T) {
	g := testGateway(t, "testdata/good/all_inputs.yaml")
	hostile := append([]byte(`<script>alert(1)</script>`+"\xff\xfe"), bytes.Repeat([]byte("é"), 3000)...)
	if err := fieldgate.Store(context.Background(), g.inputs[0], nil, fieldgate.DeadLetter{Source: "mqtt:sensors",
		Origin: "plant/<b>x</b>", Reason: "bad", Class: "decode", Payload: hostile}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.handler())
	defer srv.Close()
	code, body := apiGet(t, srv.URL, "/api/deadletters?input=sensors", "")
	var page deadLetterPage
	if code != 200 || json.Unmarshal([]byte(body), &page) != nil || len(page.DeadLetters) != 1 {
		t.Fatalf("%d %s", code, body)
	}
	d := page.DeadLetters[0]
	if !utf8.ValidString(d.Payload) || !strings.HasPrefix(d.Payload, "<script>alert(1)</script>\uFFFDéé") ||
		len(d.Payload) != 25+3+498*2 /* the two bad bytes one U+FFFD, the é cut in two dropped */ || !d.Truncated || d.PayloadBytes != len(hostile) {
		t.Fatalf("payload %q (%d bytes), truncated %v, size %d", d.Payload[:40], len(d.Payload), d.Truncated, d.PayloadBytes)
	}
	if strings.Contains(body, "<script>") {
		t.Fatalf("the JSON carries markup unescaped: %s", body[:200])
	}
}

// A gateway told to listen beyond loopback without a credential refuses to start, naming the field.
func TestRefusesOpenListenerWithoutCredential(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gateway.yaml")
	cfg := fmt.Sprintf(`gateway_id: open-gw
state_dir: %s
http: {listen: "0.0.0.0:%d"}
kafka: {brokers: ["127.0.0.1:1"], topic: t}
mqtt:
  - name: m
    broker: tcp://127.0.0.1:1
    subscriptions: [{topic: "a/{device}"}]
`, filepath.Join(dir, "state"), testutil.FreePort(t))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := testutil.TargetCommand(gatewayBinary(t), "run", "-config", cfgPath)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != exitUsage {
		t.Fatalf("exit %v, want %d\n%s", err, exitUsage, out)
	}
	if !strings.Contains(string(out), "http.auth: required") || !strings.Contains(string(out), "not a loopback address") {
		t.Fatalf("output does not name http.auth:\n%s", out)
	}
}
