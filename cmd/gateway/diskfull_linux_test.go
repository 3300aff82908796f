package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate/internal/testutil"
)

// Disk full under the state dir, with Kafka down so that the buffer grows: /readyz turns 503 naming the buffer,
// the gateway keeps running and stops acknowledging; once space is freed it recovers by itself (no restart),
// and every message the broker acknowledged to the publisher lands in Kafka when it is back.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	state := testutil.MountTmpfs(t, "6m")
	ballast := filepath.Join(state, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	mqttURL := startBroker(t)
	k := startKafka(t)
	env := writeGatewayConfig(t, mqttURL, k.addr())
	raw, err := os.ReadFile(env.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), "state_dir: "+filepath.Join(env.dir, "state"), "state_dir: "+state+"\nbuffer: {max_bytes: 64MiB}", 1)
	if err := os.WriteFile(env.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := env.start()
	env.waitReady(gw, 15*time.Second)
	k.stop()

	pub := newPublisher(t, mqttURL, 4, false)
	pub.pad = 2000
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		pub.run(ctx, 20000, 1000)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := readyz(t, env.httpAddr)
		if code == http.StatusServiceUnavailable && strings.Contains(body, "buffer unhealthy") {
			t.Logf("disk full after %d messages: /readyz %d %q", pub.sent.Load(), code, strings.TrimSpace(body))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %q after %d messages", code, body, pub.sent.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel() // the broker queues at most max_queued_messages for a stalled subscriber: stop publishing
	<-done
	time.Sleep(time.Second)
	select {
	case <-gw.done:
		t.Fatalf("the gateway exited (%d) on a full disk", gw.code)
	default:
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	env.waitReady(gw, 30*time.Second)
	t.Logf("recovered after space was freed")
	pub.run(context.Background(), int(pub.sent.Load())+200, 500)
	k.start()
	acked := pub.finish()
	ls := consumeUntil(t, k.addr(), 60*time.Second, allAckedLanded(acked))
	checkAckedLanded(t, acked, seqCounts(ls, len(acked)))
}
