package mqtt

import (
	"syscall"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate/internal/testutil"
)

// TestMosquittoKilledAndRestarted: the broker dies with kill -9 under a connected source and comes back on the
// same port. A kill -9 loses the broker's state since its last save, subscriptions included, so only the
// source's own reconnect and resubscribe bring the later messages in.
func TestMosquittoKilledAndRestarted(t *testing.T) {
	mq := testutil.StartMosquitto(t)
	prefix := uniq("kill")
	sk := testutil.NewSink(t)
	r := start(t, testConfig(mq.URL, prefix), sk)
	pub := newPublisher(t, mq.URL)
	topic := func(int) string { return prefix + "/l1/d1/telemetry" }
	pub.publish(topic, telemetry, 50)
	waitFor(t, 15*time.Second, "the first 50 messages", func() bool { n, _ := sk.Count(); return n >= 150 })

	mq.Signal(syscall.SIGKILL)
	waitFor(t, 15*time.Second, "the source to notice", func() bool { return !r.src.Stats().Connected })
	time.Sleep(500 * time.Millisecond) // down for a while: reconnect attempts fail and back off
	mq.Start()
	waitFor(t, 30*time.Second, "the reconnect", func() bool { st := r.src.Stats(); return st.Subscribed && st.Connects >= 2 })
	pub2 := newPublisher(t, mq.URL)
	pub2.publish(topic, func(i int) []byte { return telemetry(50 + i) }, 50)
	waitFor(t, 30*time.Second, "the 50 messages after the restart", func() bool { n, _ := sk.Count(); return n >= 300 })
	rs, _ := sk.Snapshot()
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
	mq := testutil.StartMosquitto(t)
	prefix := uniq("queued")
	cfg := testConfig(mq.URL, prefix)
	sk := testutil.NewSink(t)
	r := start(t, cfg, sk)
	r.stop(t) // the session and its subscription now exist at the broker
	pub := newPublisher(t, mq.URL)
	pub.publish(func(int) string { return prefix + "/l1/d1/telemetry" }, telemetry, 200)
	pub.c.Disconnect(100)

	mq.Signal(syscall.SIGTERM)
	mq.Start()
	start(t, cfg, sk)
	waitFor(t, 30*time.Second, "the 200 queued messages", func() bool { n, _ := sk.Count(); return n >= 600 })
	rs, _ := sk.Snapshot()
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
