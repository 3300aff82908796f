package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"

	"github.com/fieldgate/fieldgate/internal/opcuatest"
	"github.com/fieldgate/fieldgate/internal/testutil"
)

// hostileServer is gopcua's server with two variables: Marker, the value opcuatest's proxy replaces with a
// malformed one, and Counter, which the test increments.
type hostileServer struct {
	srv  *server.Server
	ns   uint16
	addr string

	mu      sync.Mutex
	counter int64
}

// startHostileServer serves on port; alsoAt (host:port) is announced as an endpoint too, for a proxy there
// (gopcua's server answers GetEndpoints only for the URL the client asks with).
func startHostileServer(t *testing.T, port int, alsoAt string) *hostileServer {
	t.Helper()
	h := &hostileServer{addr: "127.0.0.1:" + strconv.Itoa(port)}
	host, p, _ := strings.Cut(alsoAt, ":")
	proxyPort, _ := strconv.Atoi(p)
	h.srv = server.New(server.EndPoint("127.0.0.1", port), server.EndPoint(host, proxyPort),
		server.EnableSecurity("None", ua.MessageSecurityModeNone), server.EnableAuthMode(ua.UserTokenTypeAnonymous))
	ns := server.NewNodeNameSpace(h.srv, "urn:fieldgate:hostile")
	h.ns = ns.ID()
	for name, v := range map[string]any{
		"Marker": opcuatest.Marker(),
		"Counter": func() *ua.DataValue {
			h.mu.Lock()
			defer h.mu.Unlock()
			return &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp, Value: ua.MustVariant(h.counter), SourceTimestamp: time.Now()}
		},
	} {
		n := server.NewVariableNode(ua.NewStringNodeID(ns.ID(), name), name, v)
		ns.AddNode(n)
		ns.Objects().AddRef(n, server.RefTypeIDHasComponent, true)
	}
	if err := h.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.srv.Close() })
	return h
}

// tick increments Counter every d until the test ends.
func (h *hostileServer) tick(t *testing.T, d time.Duration) {
	testutil.Every(t, d, func() {
		h.mu.Lock()
		h.counter++
		h.mu.Unlock()
		h.srv.ChangeNotification(ua.NewStringNodeID(h.ns, "Counter"))
	})
}

// memoryMax reads MemoryMax from the gateway's systemd unit (deploy/fieldgate-gateway.service), in bytes.
func memoryMax(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("../../deploy/fieldgate-gateway.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^MemoryMax=(\d+)([KMG]?)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no MemoryMax= in the systemd unit")
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n << map[string]int{"": 0, "K": 10, "M": 20, "G": 30}[string(m[2])]
}

// procStatus returns a field of /proc/PID/status in bytes (VmRSS, VmHWM).
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /proc/%d/status", field, pid)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n << 10
}

// opcuaStats is what the test reads of an OPC UA input in /api/status.
type opcuaStats struct {
	Connected     bool   `json:"connected"`
	LastError     string `json:"last_error"`
	Connects      uint64 `json:"connects"`
	Reconnects    uint64 `json:"reconnects"`
	Errors        uint64 `json:"errors"`
	Notifications uint64 `json:"notifications"`
	Dropped       uint64 `json:"dropped"`
	SequenceGaps  uint64 `json:"sequence_gaps"`
}

func opcuaStatus(t *testing.T, addr string) map[string]opcuaStats {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Sources []struct {
			Name  string
			Stats opcuaStats
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]opcuaStats{}
	for _, s := range doc.Sources {
		out[s.Name] = s.Stats
	}
	return out
}

// TestHostileOPCUAServer: one OPC UA server (through opcuatest's proxy) answers a poll and a subscription with
// each malformed value in turn, each of which crashed or bloated the gateway with gopcua v0.8.0. Meanwhile an
// MQTT input takes QoS 1 messages and a second OPC UA input subscribes to a well-behaved server. The gateway
// stays up, its peak RSS stays under the systemd unit's MemoryMax, the hostile input reports each decoding error
// and reconnects (and clears its last error once served well again), and the other inputs lose nothing: every acknowledged MQTT message lands in Kafka, and the good
// OPC UA input never reconnects.
func TestHostileOPCUAServer(t *testing.T) {
	mqttURL := startBroker(t)
	k := startKafka(t)
	port := testutil.FreePort(t)
	proxy := opcuatest.StartProxy(t, "127.0.0.1:"+strconv.Itoa(port))
	srv := startHostileServer(t, port, proxy.Addr)
	srv.tick(t, 50*time.Millisecond)
	env := writeGatewayConfig(t, mqttURL, k.addr())
	ns := "ns=" + strconv.Itoa(int(srv.ns)) + ";s="
	f, err := os.OpenFile(env.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, `opcua:
  - name: hostile
    endpoint: opc.tcp://%s
    security: {mode: None}
    reconnect_interval: 100ms
    max_reconnect_interval: 400ms
    request_timeout: 5s
    groups:
      - {name: polled, mode: poll, poll_interval: 100ms, nodes: [{id: "%sMarker", metric: polled}]}
      - {name: monitored, publishing_interval: 100ms, nodes: [{id: "%sMarker", metric: monitored}]}
  - name: good
    endpoint: opc.tcp://%s
    security: {mode: None}
    groups:
      - {name: counter, publishing_interval: 100ms, nodes: [{id: "%sCounter", metric: counter}]}
`, proxy.Addr, ns, ns, srv.addr, ns)
	f.Close()

	gw := env.start()
	env.waitReady(gw, 15*time.Second)
	limit := memoryMax(t)
	t.Logf("gateway ready: RSS %d MB; the unit's MemoryMax is %d MB", procStatus(t, gw.cmd.Process.Pid, "VmRSS")>>20, limit>>20)

	const n = 4000
	pub := newPublisher(t, mqttURL, 5, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	published := make(chan struct{})
	go func() {
		defer close(published)
		pub.run(ctx, n, 200)
	}()

	for _, h := range opcuatest.HostileValues() {
		before := opcuaStatus(t, env.httpAddr)["hostile"]
		logged := strings.Count(gw.out.String(), h.Err)
		proxy.SetHostile(h.Variant)
		deadline := time.Now().Add(20 * time.Second)
		for {
			select {
			case <-gw.done:
				t.Fatalf("%s: the gateway exited (%d)", h.Name, gw.code)
			default:
			}
			st := opcuaStatus(t, env.httpAddr)["hostile"]
			if st.Connects >= before.Connects+2 && st.Errors > before.Errors && strings.Count(gw.out.String(), h.Err) > logged {
				t.Logf("%s: reported (%q) and reconnected; RSS %d MB", h.Name, h.Err, procStatus(t, gw.cmd.Process.Pid, "VmRSS")>>20)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no error %q reported and reconnect within 20s (connects %d -> %d, errors %d -> %d)",
					h.Name, h.Err, before.Connects, st.Connects, before.Errors, st.Errors)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Served well again, the input reconnects and /api/status no longer shows the last error.
	proxy.SetHostile(nil)
	deadline := time.Now().Add(20 * time.Second)
	for st := opcuaStatus(t, env.httpAddr)["hostile"]; !st.Connected || st.LastError != ""; st = opcuaStatus(t, env.httpAddr)["hostile"] {
		if time.Now().After(deadline) {
			t.Fatalf("the hostile input served well again: %+v, want connected without a last error", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	<-published
	acked := pub.finish()
	ls := consumeUntil(t, k.addr(), 60*time.Second, allAckedLanded(acked))
	checkAckedLanded(t, acked, seqCounts(ls, n))

	peak := procStatus(t, gw.cmd.Process.Pid, "VmHWM")
	t.Logf("gateway peak RSS %d MB (MemoryMax %d MB)", peak>>20, limit>>20)
	if peak >= limit {
		t.Errorf("peak RSS %d bytes, at or over the unit's MemoryMax %d", peak, limit)
	}
	good := opcuaStatus(t, env.httpAddr)["good"]
	counters := 0
	for _, l := range ls {
		if l.r.Metric == "counter" {
			counters++
		}
	}
	t.Logf("good OPC UA input: %d notifications, %d counter readings in Kafka, reconnects %d", good.Notifications, counters, good.Reconnects)
	if good.Reconnects != 0 || good.Dropped != 0 || good.SequenceGaps != 0 || good.Notifications == 0 {
		t.Errorf("good OPC UA input: %+v, want notifications and no reconnect, drop or gap", good)
	}
	marker := base64.StdEncoding.EncodeToString(opcuatest.Marker()) // a ByteString reads as base64
	for _, l := range ls {
		if (l.r.Metric == "polled" || l.r.Metric == "monitored") && l.r.Value.Str() != marker {
			t.Errorf("a reading of the hostile input that is not the marker landed: %s at %v", l.r.Metric, l.r.GatewayTime)
		}
	}
	if code, took := gw.stop(15 * time.Second); code != 0 {
		t.Errorf("gateway exited with %d after %s", code, took)
	}
}
