package mqtt

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate/internal/testutil"
)

// ownMosquitto is a private Mosquitto started by the test (FIELDGATE_TEST_MOSQUITTO names the binary), with
// persistence on and default limits, that the test can kill and restart on the same port and data directory.
type ownMosquitto struct {
	t    *testing.T
	bin  string
	conf string
	port int
	cmd  *exec.Cmd
	url  string
}

func startOwnMosquitto(t *testing.T) *ownMosquitto {
	t.Helper()
	bin := os.Getenv("FIELDGATE_TEST_MOSQUITTO")
	if bin == "" {
		t.Skip("FIELDGATE_TEST_MOSQUITTO (path of the mosquitto binary) is not set")
	}
	dir := t.TempDir()
	port := testutil.FreePort(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nuser root\nlog_dest file %s\n",
		port, dir, filepath.Join(dir, "mosquitto.log"))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &ownMosquitto{t: t, bin: bin, conf: conf, port: port, url: fmt.Sprintf("tcp://127.0.0.1:%d", port)}
	m.start()
	t.Cleanup(func() {
		m.signal(syscall.SIGKILL)
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "mosquitto.log")); err == nil {
				t.Logf("mosquitto log:\n%s", b)
			}
		}
	})
	return m
}

func (m *ownMosquitto) start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	waitDial(m.t, m.port)
}

// signal sends sig to the broker (by its PID) and waits for it to exit.
func (m *ownMosquitto) signal(sig syscall.Signal) {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-done
	}
	m.cmd = nil
}

// TestMosquittoKilledAndRestarted: the broker dies with kill -9 under a connected source and comes back on the
// same port. A kill -9 loses the broker's state since its last save, subscriptions included, so only the
// source's own reconnect and resubscribe bring the later messages in.
func TestMosquittoKilledAndRestarted(t *testing.T) {
	mq := startOwnMosquitto(t)
	prefix := uniq("kill")
	sk := &sink{}
	r := start(t, testConfig(mq.url, prefix), sk)
	pub := newPublisher(t, mq.url)
	topic := func(int) string { return prefix + "/l1/d1/telemetry" }
	pub.publish(topic, telemetry, 50)
	waitFor(t, 15*time.Second, "the first 50 messages", func() bool { n, _ := sk.count(); return n >= 150 })

	mq.signal(syscall.SIGKILL)
	waitFor(t, 15*time.Second, "the source to notice", func() bool { return !r.src.Stats().Connected })
	time.Sleep(500 * time.Millisecond) // down for a while: reconnect attempts fail and back off
	mq.start()
	waitFor(t, 30*time.Second, "the reconnect", func() bool { st := r.src.Stats(); return st.Subscribed && st.Connects >= 2 })
	pub2 := newPublisher(t, mq.url)
	pub2.publish(topic, func(i int) []byte { return telemetry(50 + i) }, 50)
	waitFor(t, 30*time.Second, "the 50 messages after the restart", func() bool { n, _ := sk.count(); return n >= 300 })
	rs, _ := sk.snapshot()
	seqs := seqByDevice(rs)["l1/d1"]
	for i, s := range seqs {
		if s != int64(i) {
			t.Fatalf("seq %d at %d: %v", s, i, seqs)
		}
	}
	if st := r.src.Stats(); st.ConnectionLosses < 1 || st.SubscribeErrors != 0 {
		t.Errorf("stats: %+v", st)
	}
}

// TestMosquittoRestartKeepsQueuedMessages: messages queued for the stopped gateway survive a clean broker
// restart (Mosquitto saves its persistence file on SIGTERM) and arrive when the gateway starts with its fixed
// client id.
func TestMosquittoRestartKeepsQueuedMessages(t *testing.T) {
	mq := startOwnMosquitto(t)
	prefix := uniq("queued")
	cfg := testConfig(mq.url, prefix)
	sk := &sink{}
	r := start(t, cfg, sk)
	r.stop(t) // the session and its subscription now exist at the broker
	pub := newPublisher(t, mq.url)
	pub.publish(func(int) string { return prefix + "/l1/d1/telemetry" }, telemetry, 200)
	pub.c.Disconnect(100)

	mq.signal(syscall.SIGTERM)
	mq.start()
	start(t, cfg, sk)
	waitFor(t, 30*time.Second, "the 200 queued messages", func() bool { n, _ := sk.count(); return n >= 600 })
	rs, _ := sk.snapshot()
	seqs := seqByDevice(rs)["l1/d1"]
	if len(seqs) != 200 {
		t.Fatalf("got %d messages, want 200", len(seqs))
	}
	for i, s := range seqs {
		if s != int64(i) {
			t.Fatalf("seq %d at %d", s, i)
		}
	}
}
