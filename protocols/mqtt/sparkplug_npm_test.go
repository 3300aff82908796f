package mqtt

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
)

// Interoperability with a third-party edge node: Eclipse Tahu's JavaScript client (npm sparkplug-client 3.2.4,
// scripts/npm/sparkplug-edge.js), whose payloads are encoded by protobufjs, independently of this package's
// generated code, through a private Mosquitto.

// npmEdge is a running sparkplug-edge.js: commands go to its stdin, its events come from its stdout.
type npmEdge struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan string
}

func startNPMEdge(t *testing.T, script, broker, group, node string) *npmEdge {
	t.Helper()
	cmd := exec.Command("node", script, "--broker", broker, "--group", group, "--node", node)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("FIELDGATE_TEST_SPARKPLUG_NPM is set but node does not start: %v", err)
	}
	e := &npmEdge{t: t, cmd: cmd, stdin: stdin, events: make(chan string, 16)}
	t.Cleanup(e.kill)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev struct{ Event string }
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				e.events <- ev.Event
			}
		}
		close(e.events)
	}()
	return e
}

// await waits for the edge node to report event.
func (e *npmEdge) await(event string) {
	e.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-e.events:
			if !ok {
				e.t.Fatalf("sparkplug-edge.js exited before %q", event)
			}
			if ev == event {
				return
			}
		case <-deadline:
			e.t.Fatalf("sparkplug-edge.js did not report %q within 30s", event)
		}
	}
}

func (e *npmEdge) command(c string) {
	e.t.Helper()
	if _, err := io.WriteString(e.stdin, c+"\n"); err != nil {
		e.t.Fatal(err)
	}
	e.await(c)
}

// kill ends the process with SIGKILL (by PID): its connection drops and the broker publishes its will.
func (e *npmEdge) kill() {
	if e.cmd.ProcessState == nil {
		_ = e.cmd.Process.Kill()
		_ = e.cmd.Wait()
	}
}

// The births, data and deaths of Tahu's JavaScript edge node, every datatype its library encodes: the births'
// values, then DATA by alias only (its library sends no names), a rebirth on the gateway's NCMD, a DDEATH, and
// the NDEATH its will leaves when the process is killed.
func TestSparkplugNPMEdgeNode(t *testing.T) {
	script := os.Getenv("FIELDGATE_TEST_SPARKPLUG_NPM")
	if script == "" {
		t.Skip("FIELDGATE_TEST_SPARKPLUG_NPM (scripts/npm/sparkplug-edge.js) is not set")
	}
	mq := testutil.StartMosquitto(t)
	group := uniq("tahu")
	sk := testutil.NewSink(t)
	r := start(t, sparkplugTestConfig(mq.URL, group), sk)
	edge := startNPMEdge(t, script, mq.URL, group, "edge1")
	edge.await("births")

	n, d := group+"/edge1 ", group+"/edge1/dev1 "
	births := []string{
		n + "int8=-5", n + "int16=-300", n + "int32=-12", n + "int64=-1234567890123", n + "uint8=250", n + "uint16=65000",
		n + "uint32=4000000000", n + `uint64="18446744073709551615"`, n + "float=21.5", n + "double=1234.5678", n + "bool=true",
		n + `string="läuft"`, n + `datetime="2026-11-25T12:00:00.123Z"`, n + `text="line 1\nline 2"`,
		n + `uuid="0b2f5a3c-1e4d-4c8e-9a57-3f9d1c2b7e60"`, n + `bytes="AAH/"`, n + `file="JVBERg=="`,
		n + "recipe.0.step=1", n + "recipe.0.temp=180.5", n + `recipe.0.name="heat"`,
		n + "recipe.1.step=-2", n + "recipe.1.temp=20", n + `recipe.1.name="cool"`,
		n + "motor1.speed=1450.5", n + "motor1.amps=-3", n + "stale=3.5 bad/500", n + "nothing=0 bad/262",
		d + "temp=20.5", d + "count=-1",
	}
	checkLines(t, "births", readingsOf(t, sk, len(births)), births...)

	edge.command("data")
	at := " @2026-11-25T12:00:01Z"
	data := []string{
		n + "int8=-128" + at, n + "int32=-2147483648" + at, n + "int64=-1" + at, n + "uint32=1" + at,
		n + "uint64=9007199254740993" + at, n + "float=-0.25" + at, n + "bool=false" + at, n + `string=""` + at,
		n + "motor1.speed=1500" /* the member's own timestamp */, n + "double=99.5 @2026-11-25T11:00:00Z",
		d + "temp=21" + at, d + "count=4294967" + at,
	}
	rs := readingsOf(t, sk, len(births)+len(data))
	checkLines(t, "data by alias", rs[len(births):], data...)

	// An alias no birth defined: a dead letter, and the gateway's NCMD makes the edge node send its births again.
	edge.command("unknown")
	edge.await("rebirth")
	rs = readingsOf(t, sk, 2*len(births)+len(data))
	checkLines(t, "births after the rebirth request", rs[len(births)+len(data):], births...)
	if _, dead := sk.Count(); dead != 1 {
		t.Errorf("%d dead letters, want 1 (the unknown alias)", dead)
	}

	edge.command("ddeath")
	base := 2*len(births) + len(data)
	checkLines(t, "DDEATH", readingsOf(t, sk, base+2)[base:],
		d+"temp=0 bad/500 @2026-11-25T12:00:03Z", d+"count=0 bad/500 @2026-11-25T12:00:03Z")

	edge.kill()
	const nodeLeaves = 27 // the node's metrics' readings of its births, the transient one not stored
	rs = readingsOf(t, sk, base+2+nodeLeaves)
	for _, rd := range rs[base+2:] {
		if rd.Device != group+"/edge1" || rd.Quality != fieldgate.Bad || rd.Status != SparkplugQualityStale {
			t.Errorf("after the will: %s", line(rd))
		}
	}
	st := r.src.Stats()
	sp := st.Sparkplug
	if sp.RebirthRequests != 1 || sp.AliasMisses != 1 || sp.Deaths != 2 || sp.Births != 4 || sp.Transient != 2 ||
		sp.Historical != 1 || sp.SequenceGaps != 0 || len(sp.Nodes) != 1 || sp.Nodes[0].Online {
		t.Errorf("stats %+v", sp)
	}
	if !strings.HasPrefix(sp.Nodes[0].Device, group) {
		t.Errorf("node %+v", sp.Nodes[0])
	}
}
