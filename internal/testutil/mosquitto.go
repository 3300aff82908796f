package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// WaitListening waits until something accepts TCP connections on addr, and fails the test after within.
func WaitListening(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing accepts connections on %s after %s: %v", addr, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Mosquitto is a private Mosquitto broker for one test: its own port on 127.0.0.1, data directory and log,
// persistence on, and Mosquitto's default limits (max_inflight_messages 20, max_queued_messages 1000).
type Mosquitto struct {
	URL  string // tcp://127.0.0.1:port
	t    *testing.T
	bin  string
	conf string
	addr string
	cmd  *exec.Cmd
}

// StartMosquitto starts the broker that FIELDGATE_TEST_MOSQUITTO names (the mosquitto binary), or skips the test
// when it is unset. The broker is killed when the test ends; its log is printed if the test failed.
func StartMosquitto(t *testing.T) *Mosquitto {
	t.Helper()
	bin := os.Getenv("FIELDGATE_TEST_MOSQUITTO")
	if bin == "" {
		t.Skip("FIELDGATE_TEST_MOSQUITTO (path of the mosquitto binary) is not set")
	}
	dir := t.TempDir()
	port := FreePort(t)
	logPath := filepath.Join(dir, "mosquitto.log")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nlog_dest file %s\n",
		port, dir, logPath)
	if os.Geteuid() == 0 {
		conf += "user root\n" // else it drops to the mosquitto user, which cannot write the test's directory
	}
	m := &Mosquitto{t: t, bin: bin, conf: filepath.Join(dir, "mosquitto.conf"), addr: fmt.Sprintf("127.0.0.1:%d", port)}
	m.URL = "tcp://" + m.addr
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(func() {
		m.Signal(syscall.SIGKILL)
		if t.Failed() {
			// "Outgoing messages are being dropped for client ..." here means the broker's queue overflowed.
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(string(b), "\n")
			t.Logf("mosquitto log (last lines):\n%s", strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
	})
	return m
}

// Start starts the broker again after Signal, on the same port and data directory (so with its persisted
// sessions), and waits until it accepts connections.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	WaitListening(m.t, m.addr, 10*time.Second)
}

// Signal sends sig to the broker (by its PID) and waits for it to exit; after 10 s it kills it.
func (m *Mosquitto) Signal(sig syscall.Signal) {
	if m.cmd == nil || m.cmd.Process == nil {
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

// CloseMochi closes an in-process mochi broker at the end of a test, giving up after 5 s. mochi v2.7.9's
// Server.Close can deadlock: Clients.GetByListener takes the clients' read lock and calls Len, which takes it
// again, so a client's Delete waiting for the write lock in between (a clean session ending as the broker
// closes) blocks both for good. The test's assertions are done by then; a hung close is logged, not waited for.
func CloseMochi(t testing.TB, closeBroker func() error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = closeBroker()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Logf("the in-process broker did not close within 5s (mochi's recursive read lock); left behind")
	}
}
