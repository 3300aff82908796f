package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate/internal/testutil"
	"github.com/fieldgate/fieldgate/protocols/modbus"
	"github.com/fieldgate/fieldgate/protocols/mqtt"
	"github.com/fieldgate/fieldgate/protocols/opcua"
)

// The shipped example validates offline (references and certificate files checked for syntax only), with no
// secret or certificate on this machine; online it stops at the first reference it cannot read.
func TestValidateOffline(t *testing.T) {
	t.Setenv("KAFKA_PASSWORD", "") // set but empty online would pass that one: unset it
	os.Unsetenv("KAFKA_PASSWORD")
	code, out, errOut := validateFile(t, "../../configs/gateway.yaml", "-offline")
	if code != exitOK || !strings.Contains(out, "hash        (not computed offline") {
		t.Fatalf("offline: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = validateFile(t, "../../configs/gateway.yaml")
	if code != exitUsage || !strings.Contains(errOut, "kafka.sasl.password: environment variable KAFKA_PASSWORD is not set") {
		t.Errorf("online: exit %d\n%s", code, errOut)
	}
	// Offline still refuses what is wrong whatever the references hold.
	bad := filepath.Join(t.TempDir(), "gw.yaml")
	for text, want := range map[string]string{
		"gateway_id: gw\nkafka: {brokers: [\"${BROKER}\"], sasl: {mechanism: SCRAM, username: u, password: \"${file:pw}\"}}\nmqtt:\n  - {name: a, broker: \"${URL}\", subscriptions: [{topic: a}]}\n": `kafka.sasl.mechanism: "SCRAM" is not one of`,
		"gateway_id: gw\nkafka: {brokers: [a:1]}\nmqtt:\n  - {name: a, broker: \"tcp://x:1\", subscriptions: [{topic: a}], username: u, password: \"${PW\"}\n":                                        "mqtt[0].password: unclosed ${",
	} {
		writeFile(t, bad, text)
		code, _, errOut = validateFile(t, bad, "-offline")
		if code != exitUsage || !strings.Contains(errOut, want) || strings.Contains(errOut, "brokers") || strings.Contains(errOut, "broker:") {
			t.Errorf("offline, bad: exit %d\n%s\nwant %q", code, errOut, want)
		}
	}
}

// The hash is of the effective configuration: comments, key order, references and defaults written out do not
// change it; a changed password does, without the password being in what is hashed.
func TestConfigHash(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FG_TEST_BROKER", "127.0.0.1:9092")
	hash := func(text string) string {
		t.Helper()
		p := filepath.Join(dir, "gw.yaml")
		writeFile(t, p, text)
		l, err := loadPath(p, "", false)
		if err != nil {
			t.Fatal(err)
		}
		return l.hash
	}
	a := hash("gateway_id: gw\nkafka: {brokers: [127.0.0.1:9092], sasl: {mechanism: SCRAM-SHA-256, username: u, password: s3cr3t}}\nmqtt:\n  - {name: a, broker: \"tcp://x:1\", subscriptions: [{topic: a/b}]}\n")
	b := hash("# the same, written otherwise\nmqtt:\n  - name: a\n    broker: tcp://x:1\n    subscriptions:\n      - {topic: a/b, qos: 1, format: json}\n    keep_alive: 30s\nkafka:\n  sasl: {username: u, password: s3cr3t, mechanism: SCRAM-SHA-256}\n  brokers: [\"${FG_TEST_BROKER}\"]\n  compression: snappy\ngateway_id: gw\nbuffer: {max_bytes: 256MiB}\n")
	if a != b {
		t.Errorf("equivalent files hash %s and %s", a, b)
	}
	if c := hash(strings.Replace("gateway_id: gw\nkafka: {brokers: [127.0.0.1:9092], sasl: {mechanism: SCRAM-SHA-256, username: u, password: s3cr3t}}\nmqtt:\n  - {name: a, broker: \"tcp://x:1\", subscriptions: [{topic: a/b}]}\n", "s3cr3t", "other", 1)); c == a {
		t.Error("a changed password does not change the hash")
	}
	l, _ := loadPath(filepath.Join(dir, "gw.yaml"), "", false)
	var canon bytes.Buffer
	canonical(&canon, reflect.ValueOf(*l.cfg))
	if strings.Contains(canon.String(), "other") || !strings.Contains(canon.String(), `"password":"sha256:`) {
		t.Errorf("the hashed text shows the secret, or no digest of it:\n%s", canon.String())
	}
}

// A gateway whose file is invalid at start runs on the last good configuration, loudly (an ERROR line, /readyz,
// fieldgate_config_fallback), and takes the fixed file when it comes; -strict refuses to start instead; with no
// last good configuration it exits 2.
func TestLastGoodStart(t *testing.T) {
	closedMQTT := "tcp://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	k := startKafka(t)
	env := writeGatewayConfig(t, closedMQTT, k.addr())
	good, err := os.ReadFile(env.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// Never applied: nothing to fall back on.
	writeFile(t, env.cfgPath, string(good)+"kafka: [\n")
	out, err := testutil.TargetCommand(gatewayBinary(t), "run", "-config", env.cfgPath).CombinedOutput()
	if code := exitCode(err); code != exitUsage || !strings.Contains(string(out), "no last good configuration") {
		t.Fatalf("no history: exit %d\n%s", code, out)
	}
	writeFile(t, env.cfgPath, string(good))
	gw := env.start()
	waitHTTP(t, env.httpAddr)
	gw.stop(10 * time.Second)

	writeFile(t, env.cfgPath, string(good)+"kafka: [\n")
	out, err = testutil.TargetCommand(gatewayBinary(t), "run", "-strict", "-config", env.cfgPath).CombinedOutput()
	if code := exitCode(err); code != exitUsage || !strings.Contains(string(out), "gateway: invalid configuration") {
		t.Errorf("-strict: exit %d\n%s", code, out)
	}
	gw = env.start()
	waitHTTP(t, env.httpAddr)
	code, body := readyz(t, env.httpAddr)
	m := parseMetrics(httpGet(t, "http://"+env.httpAddr+"/metrics"))
	if code != 503 || !strings.Contains(body, "running on the last good configuration") || m["fieldgate_config_fallback"] != 1 {
		t.Errorf("fallback: /readyz %d %q, fieldgate_config_fallback %v", code, body, m["fieldgate_config_fallback"])
	}
	if !strings.Contains(gw.out.String(), "level=ERROR msg=\"CONFIGURATION INVALID: running on the last good configuration") {
		t.Errorf("no ERROR line:\n%s", gw.out.String())
	}
	writeAtomically(t, env.cfgPath, string(good))
	deadline := time.Now().Add(10 * time.Second)
	for parseMetrics(httpGet(t, "http://"+env.httpAddr+"/metrics"))["fieldgate_config_fallback"] != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the fixed file did not end the fallback")
		}
		time.Sleep(100 * time.Millisecond)
	}
	gw.stop(10 * time.Second)
}

// SIGHUP is handled from the start: a reload asked for while the gateway is still starting (here: reading its
// configuration, which is a FIFO the test writes when it is ready) neither kills it nor ends it with a clean
// exit, and is carried out once the gateway runs.
func TestSIGHUPDuringStart(t *testing.T) {
	closedMQTT := "tcp://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	env := writeGatewayConfig(t, closedMQTT, "127.0.0.1:"+strconv.Itoa(testutil.FreePort(t)))
	text, err := os.ReadFile(env.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text = append(text, "reload: {watch: false}\n"...)
	os.Remove(env.cfgPath)
	if err := syscall.Mkfifo(env.cfgPath, 0o600); err != nil {
		t.Fatal(err)
	}
	feed := func() { // blocks until the gateway opens the file to read it
		t.Helper()
		f, err := os.OpenFile(env.cfgPath, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(text)
		f.Close()
	}
	gw := env.start()
	opened := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(env.cfgPath, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
		}
		opened <- f
	}()
	f := <-opened // the gateway is in main, reading its configuration
	for i := 0; i < 5; i++ {
		if err := gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP %d: the gateway is gone: %v", i, err)
		}
	}
	f.Write(text)
	f.Close()
	waitHTTP(t, env.httpAddr)
	feed() // the reload SIGHUP asked for reads the file again
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(httpGet(t, "http://"+env.httpAddr+"/api/status"), `"trigger": "SIGHUP"`) {
		if time.Now().After(deadline) {
			t.Fatal("the SIGHUP sent during the start was not carried out")
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-gw.done:
		t.Fatalf("the gateway exited with %d after SIGHUPs", gw.code)
	default:
	}
	if code, _ := gw.stop(10 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func waitHTTP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code, _ := readyz(t, addr); code != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no HTTP listener")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Every input of every example is built the one way, and its defaults are a fixed point: the effective config
// validates, and applying the defaults again changes nothing (so comparing effective configs is comparing what
// runs).
func TestInputsBuildOneWay(t *testing.T) {
	for _, f := range []string{"testdata/good/all_inputs.yaml", "../../configs/modbus.yaml", "../../configs/demo.yaml"} {
		l, err := loadPath(f, "", true)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range l.cfg.inputs() {
			if err := in.validate(); err != nil && !strings.Contains(err.Error(), "${") {
				t.Errorf("%s %s: the effective config does not validate: %v", f, in.field, err)
			}
			var again any
			switch c := in.cfg.(type) {
			case mqtt.Config:
				again = c.WithDefaults()
			case modbus.Config:
				again = c.WithDefaults()
			case opcua.Config:
				again = c.WithDefaults()
			}
			if !reflect.DeepEqual(again, in.cfg) {
				t.Errorf("%s %s: WithDefaults is not a fixed point", f, in.field)
			}
		}
	}
}

// `gateway modbus read` parses its flags in the command and reads through modbus.ReadOnce.
func TestModbusReadCommand(t *testing.T) {
	addr := startPLC(t)
	var out, errOut bytes.Buffer
	if code := realMain([]string{"modbus", "read", "-address", addr, "-start", "0", "-count", "2"}, &out, &errOut); code != exitOK ||
		!strings.Contains(out.String(), "holding 1: 0x0000") || !strings.Contains(out.String(), "interpretations") {
		t.Errorf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := realMain([]string{"modbus", "read", "-address", addr, "-type", "uint16", "-scale", "0.5"}, &out, &errOut); code != exitOK ||
		!strings.Contains(out.String(), "uint16 ABCD at 0: ") {
		t.Errorf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, args := range [][]string{{"-address", addr, "-type", "float33"}, {"-address", addr, "extra"}, {"-start", "1"}} {
		errOut.Reset()
		if code := realMain(append([]string{"modbus", "read"}, args...), &out, &errOut); code != exitUsage {
			t.Errorf("%q: exit %d, want %d: %s", args, code, exitUsage, errOut.String())
		}
	}
}

// In process: a reload that needs a restart, or whose HTTP address is busy, changes nothing and says why; a
// valid one replaces only the input that changed.
func TestReloadInProcess(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	listen := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	text := "gateway_id: gw\nstate_dir: " + filepath.Join(dir, "state") + "\nhttp: {listen: \"" + listen + "\"}\nkafka: {brokers: [\"127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)) + "\"]}\n" +
		"mqtt:\n  - name: a\n    broker: tcp://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)) + "\n    subscriptions: [{topic: a/b}]\n" +
		"  - name: b\n    broker: tcp://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)) + "\n    subscriptions: [{topic: c/d}]\n"
	writeFile(t, path, text)
	l, err := loadPath(path, "", false)
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(slog.New(slog.DiscardHandler), configPaths{file: path})
	ctx, cancel := context.WithCancel(t.Context())
	hup := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- g.run(ctx, l, "", hup, func() {}) }()
	defer func() {
		cancel()
		<-done
	}()
	waitHTTP(t, listen)
	first := map[string]*instance{}
	for _, in := range g.inputsSnapshot() {
		first[in.name] = in.cur.Load()
	}
	reloadWith := func(text string) *reloadResult {
		t.Helper()
		prev := g.lastLoad.Load()
		writeAtomically(t, path, text)
		hup <- syscall.SIGHUP
		deadline := time.Now().Add(10 * time.Second)
		for g.lastLoad.Load() == prev || g.lastLoad.Load().Trigger != "SIGHUP" {
			if time.Now().After(deadline) {
				t.Fatal("no reload")
			}
			time.Sleep(10 * time.Millisecond)
		}
		return g.lastLoad.Load()
	}
	hash := g.running.Load().loaded.hash
	r := reloadWith(text + "buffer: {max_bytes: 64MiB}\n")
	if r.Result != resultRefused || !strings.Contains(r.Error, "buffer: max_bytes: the buffer stays open while the gateway runs, so this needs a restart") || g.running.Load().loaded.hash != hash {
		t.Errorf("buffer change: %+v", r)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	r = reloadWith(strings.Replace(text, listen, busy.Addr().String(), 1))
	if r.Result != resultFailed || !strings.Contains(r.Error, "http.listen") || g.running.Load().loaded.hash != hash || g.httpAddr() != listen {
		t.Errorf("busy port: %+v", r)
	}
	r = reloadWith(strings.Replace(text, "c/d", "e/f", 1))
	if r.Result != resultApplied || len(r.Changes) != 1 || r.Changes[0] != "input mqtt:b restarted (subscriptions)" {
		t.Errorf("edit: %+v", r)
	}
	for _, in := range g.inputsSnapshot() {
		if kept := in.cur.Load() == first[in.name]; kept != (in.name == "a") {
			t.Errorf("input %s: kept %v", in.name, kept)
		}
	}
	if names, _ := snapshotNames(historyDir(filepath.Join(dir, "state"))); len(names) != 2 {
		t.Errorf("kept configurations %v, want the first and the edit", names)
	}
}
