package main

// The end-to-end harness: the gateway binary as a child process, a private Mosquitto started from
// FIELDGATE_TEST_MOSQUITTO, an in-process kfake on a fixed port with a DataDir (so it can be stopped and started
// again on the same port), a paho publisher counting PUBACKs, and a kgo consumer reading what landed.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
)

const e2eTopic = "fieldgate.readings"

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// gatewayBinary builds the gateway once per test run (go build -o tmpdir/gateway).
func gatewayBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "fieldgate-gateway-test-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "gateway")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// ---- Mosquitto ----------------------------------------------------------------------------------------------------

// startBroker returns the URL of a private Mosquitto when FIELDGATE_TEST_MOSQUITTO is set, else of an in-process
// mochi-mqtt broker, so that the hermetic tier (go test -short, nothing installed) still runs the gateway binary
// end to end. Tests that restart or depend on Mosquitto's limits use testutil.StartMosquitto.
func startBroker(t *testing.T) string {
	t.Helper()
	if os.Getenv("FIELDGATE_TEST_MOSQUITTO") != "" {
		return testutil.StartMosquitto(t).URL
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { testutil.CloseMochi(t, srv.Close) })
	testutil.WaitListening(t, addr, 5*time.Second)
	t.Log("FIELDGATE_TEST_MOSQUITTO is not set: using an in-process mochi-mqtt broker")
	return "tcp://" + addr
}

// ---- kfake --------------------------------------------------------------------------------------------------------

type kafka struct {
	t    *testing.T
	port int
	dir  string
	mu   sync.Mutex
	c    *kfake.Cluster
}

func startKafka(t *testing.T) *kafka {
	t.Helper()
	k := &kafka{t: t, port: testutil.FreePort(t), dir: t.TempDir()}
	k.start()
	t.Cleanup(k.stop)
	return k
}

func (k *kafka) addr() string { return fmt.Sprintf("127.0.0.1:%d", k.port) }

// start serves the cluster on its port, with the data kept in its DataDir by an earlier start.
func (k *kafka) start() {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	var err error
	for i := 0; i < 50; i++ { // the port may linger for a moment after a stop
		k.c, err = kfake.NewCluster(kfake.Ports(k.port), kfake.DataDir(k.dir), kfake.SeedTopics(3, e2eTopic))
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	k.t.Fatalf("start kfake on %d: %v", k.port, err)
}

func (k *kafka) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

// ---- the gateway process ------------------------------------------------------------------------------------------

type gatewayEnv struct {
	t        *testing.T
	dir      string
	cfgPath  string
	httpAddr string
}

// writeGatewayConfig writes a configuration for one MQTT input on mqttURL, forwarding to the kfake at kafkaAddr.
func writeGatewayConfig(t *testing.T, mqttURL, kafkaAddr string) *gatewayEnv {
	t.Helper()
	dir := t.TempDir()
	env := &gatewayEnv{t: t, dir: dir, cfgPath: filepath.Join(dir, "gateway.yaml"),
		httpAddr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}
	cfg := fmt.Sprintf(`gateway_id: e2e-gw
state_dir: %s
log: {level: info, format: text}
http: {listen: "%s"}
kafka:
  brokers: ["%s"]
  topic: %s
  min_backoff: 50ms
  max_backoff: 1s
  produce_timeout: 5s
mqtt:
  - name: e2e
    broker: %s
    client_id: fieldgate-e2e-%d
    subscriptions:
      - topic: e2e/{device}/telemetry
        qos: 1
        timestamp: {path: ts, format: unix_ms}
`, filepath.Join(dir, "state"), env.httpAddr, kafkaAddr, e2eTopic, mqttURL, time.Now().UnixNano())
	if err := os.WriteFile(env.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return env
}

type gatewayProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	done chan struct{}
	code int
}

// start runs `gateway run -config` as a child process; its output is logged when the test fails.
func (e *gatewayEnv) start() *gatewayProc {
	e.t.Helper()
	p := &gatewayProc{t: e.t, out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = testutil.TargetCommand(gatewayBinary(e.t), "run", "-config", e.cfgPath)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if e.t.Failed() {
			e.t.Logf("gateway pid %d output:\n%s", p.cmd.Process.Pid, tail(p.out.String(), 60))
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// readyz returns the status code and body of /readyz.
func readyz(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode, b.String()
}

// waitReady polls /readyz until 200 (the MQTT input is connected and the buffer healthy).
func (e *gatewayEnv) waitReady(p *gatewayProc, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			e.t.Fatalf("gateway exited with %d before it was ready", p.code)
		default:
		}
		resp, err := http.Get("http://" + e.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("gateway not ready after %s", timeout)
}

func (p *gatewayProc) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	<-p.done
}

// stop sends SIGTERM and returns the exit code and how long the gateway took to exit.
func (p *gatewayProc) stop(timeout time.Duration) (int, time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
		return p.code, time.Since(start)
	case <-time.After(timeout):
		p.t.Fatalf("gateway did not exit within %s of SIGTERM", timeout)
		return 0, 0
	}
}

// ---- the publisher ------------------------------------------------------------------------------------------------

// publisher sends QoS 1 messages {"seq":N,"ts":base+N,...} to e2e/dNN/telemetry, N = 0, 1, 2 … over `devices`
// devices (device N % devices), and records which ones the broker acknowledged (PUBACK).
type publisher struct {
	t       *testing.T
	c       paho.Client
	devices int
	base    int64 // ts of seq 0, unix ms
	extra   bool  // add a float and a bool field
	pad     int   // add a string field of this many bytes

	sent    atomic.Int64
	mu      sync.Mutex
	acked   []bool
	nAcked  atomic.Int64
	failed  atomic.Int64
	pending chan pendingPub
	waiterD chan struct{}
}

type pendingPub struct {
	seq int
	tok paho.Token
}

func newPublisher(t *testing.T, url string, devices int, extra bool) *publisher {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("e2e-pub-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectTimeout(5 * time.Second).SetWriteTimeout(10 * time.Second)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	p := &publisher{t: t, c: c, devices: devices, base: time.Now().Add(-time.Hour).UnixMilli(), extra: extra,
		pending: make(chan pendingPub, 1<<16), waiterD: make(chan struct{})}
	go p.waiter()
	t.Cleanup(func() { c.Disconnect(100) })
	return p
}

func (p *publisher) device(seq int) string { return fmt.Sprintf("d%02d", seq%p.devices) }

func (p *publisher) temp(seq int) float64 { return float64(seq%1000)/8 - 20 } // exact in binary

func (p *publisher) payload(seq int) []byte {
	if p.pad > 0 {
		return fmt.Appendf(nil, `{"seq":%d,"ts":%d,"pad":"%s"}`, seq, p.base+int64(seq), strings.Repeat("x", p.pad))
	}
	if p.extra {
		return fmt.Appendf(nil, `{"seq":%d,"ts":%d,"env":{"temp":%g,"ok":%t}}`, seq, p.base+int64(seq), p.temp(seq), seq%2 == 0)
	}
	return fmt.Appendf(nil, `{"seq":%d,"ts":%d}`, seq, p.base+int64(seq))
}

// waiter records PUBACKs in publish order (paho completes QoS 1 tokens when the PUBACK arrives).
func (p *publisher) waiter() {
	defer close(p.waiterD)
	for pp := range p.pending {
		if pp.tok.WaitTimeout(60*time.Second) && pp.tok.Error() == nil {
			p.mu.Lock()
			p.acked[pp.seq] = true
			p.mu.Unlock()
			p.nAcked.Add(1)
		} else {
			p.failed.Add(1)
		}
	}
}

// run publishes the messages up to seq n (continuing after an earlier run) at rate per second, paced every 5 ms;
// it returns when all are handed to paho, or when ctx ends.
func (p *publisher) run(ctx context.Context, n int, rate float64) {
	p.mu.Lock()
	if len(p.acked) < n {
		p.acked = append(p.acked, make([]bool, n-len(p.acked))...)
	}
	p.mu.Unlock()
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	seq := int(p.sent.Load())
	first := seq
	for seq < n {
		target := min(n, first+int(time.Since(start).Seconds()*rate)+1)
		for ; seq < target; seq++ {
			tok := p.c.Publish(fmt.Sprintf("e2e/%s/telemetry", p.device(seq)), 1, false, p.payload(seq))
			p.pending <- pendingPub{seq, tok}
			p.sent.Add(1)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// finish waits for every outstanding PUBACK (or its timeout) and returns the acknowledged sequence numbers.
func (p *publisher) finish() []bool {
	close(p.pending)
	<-p.waiterD
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked[:p.sent.Load()]
}

// ---- the consumer -------------------------------------------------------------------------------------------------

type landed struct {
	partition int32
	offset    int64
	r         fieldgate.Reading
	gateway   string
	config    string // the fieldgate-config header
}

// consumeUntil reads the topic from the start until done(records so far) is true or timeout passes.
func consumeUntil(t *testing.T, kafkaAddr string, timeout time.Duration, done func([]landed) bool) []landed {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.ConsumeTopics(e2eTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []landed
	for !done(out) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Logf("consumer: stopped after %s with %d records", timeout, len(out))
			return out
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(rec *kgo.Record) {
			r, err := fieldgate.Decode(rec.Value)
			if err != nil {
				t.Errorf("record %d/%d does not decode: %v: %s", rec.Partition, rec.Offset, err, rec.Value)
				return
			}
			if string(rec.Key) != r.Device {
				t.Errorf("record %d/%d: key %q, device %q", rec.Partition, rec.Offset, rec.Key, r.Device)
			}
			l := landed{partition: rec.Partition, offset: rec.Offset, r: r}
			for _, h := range rec.Headers {
				switch h.Key {
				case fieldgate.HeaderGateway:
					l.gateway = string(h.Value)
				case fieldgate.HeaderConfig:
					l.config = string(h.Value)
				}
			}
			out = append(out, l)
		})
	}
	return out
}

// seqCounts returns how often each sequence number landed (metric "seq").
func seqCounts(ls []landed, n int) []int {
	counts := make([]int, n)
	for _, l := range ls {
		if l.r.Metric != "seq" {
			continue
		}
		if s := int(l.r.Value.Int()); s >= 0 && s < n {
			counts[s]++
		}
	}
	return counts
}

// checkAckedLanded fails the test for every acknowledged message missing from Kafka and logs the duplicates.
func checkAckedLanded(t *testing.T, acked []bool, counts []int) {
	t.Helper()
	var nAcked, lost, dups, unackedLanded int
	var missing []int
	for s, a := range acked {
		if a {
			nAcked++
			if counts[s] == 0 {
				lost++
				if len(missing) < 20 {
					missing = append(missing, s)
				}
			}
		} else if counts[s] > 0 {
			unackedLanded++
		}
		if counts[s] > 1 {
			dups += counts[s] - 1
		}
	}
	t.Logf("published %d, acknowledged by the broker %d, lost %d, duplicates in Kafka %d, unacknowledged but landed %d",
		len(acked), nAcked, lost, dups, unackedLanded)
	if nAcked == 0 {
		t.Fatal("the broker acknowledged nothing")
	}
	if lost > 0 {
		t.Errorf("%d acknowledged messages are not in Kafka, e.g. seq %v", lost, missing)
	}
}

// allAckedLanded is a done func for consumeUntil: every acknowledged seq has landed.
func allAckedLanded(acked []bool) func([]landed) bool {
	seen := make([]bool, len(acked))
	idx := 0
	missing := 0
	for _, a := range acked {
		if a {
			missing++
		}
	}
	return func(ls []landed) bool {
		for ; idx < len(ls); idx++ {
			l := ls[idx]
			if l.r.Metric != "seq" {
				continue
			}
			s := int(l.r.Value.Int())
			if s >= 0 && s < len(acked) && !seen[s] {
				seen[s] = true
				if acked[s] {
					missing--
				}
			}
		}
		return missing == 0
	}
}
