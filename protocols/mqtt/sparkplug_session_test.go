package mqtt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
	"github.com/fieldgate/fieldgate/protocols/mqtt/sparkplugb"
)

// The Sparkplug host through real brokers (mochi in process, and Mosquitto when FIELDGATE_TEST_MQTT is set): an
// edge node written here with the generated code publishes births, data and deaths; rebirth requests reach it;
// the STATE handshake is checked packet by packet.

// testEdge is a Sparkplug edge node: a paho client whose will is its NDEATH, subscribed to its NCMD topic.
type testEdge struct {
	t           *testing.T
	c           paho.Client
	group, node string
	bdSeq       uint64
	seq         int
	ncmd        chan []byte

	mu   sync.Mutex
	conn net.Conn
}

func newTestEdge(t *testing.T, broker, group, node string, bdSeq uint64) *testEdge {
	t.Helper()
	e := &testEdge{t: t, group: group, node: node, bdSeq: bdSeq, ncmd: make(chan []byte, 16)}
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(uniq("edge")).SetCleanSession(true).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectTimeout(5*time.Second).
		SetBinaryWill(e.topic("NDEATH", ""), spPayload(t, -1, spBdSeq(bdSeq)), 1, false).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			c, err := net.Dial("tcp", u.Host)
			e.mu.Lock()
			e.conn = c
			e.mu.Unlock()
			return c, err
		})
	e.c = paho.NewClient(o)
	if tok := e.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("edge connect: %v", tok.Error())
	}
	t.Cleanup(func() { e.c.Disconnect(100) })
	tok := e.c.Subscribe(e.topic("NCMD", ""), 1, func(_ paho.Client, m paho.Message) { e.ncmd <- m.Payload() })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("edge subscribe: %v", tok.Error())
	}
	return e
}

func (e *testEdge) topic(typ, device string) string {
	t := "spBv1.0/" + e.group + "/" + typ + "/" + e.node
	if device != "" {
		t += "/" + device
	}
	return t
}

// publish sends a message with the next sequence number (an NBIRTH restarts them at 0) and waits for it to be
// written (QoS 0) or acknowledged (QoS 1).
func (e *testEdge) publish(typ, device string, qos byte, metrics ...*sparkplugb.Payload_Metric) {
	e.t.Helper()
	if typ == "NBIRTH" {
		e.seq = 0
		metrics = append([]*sparkplugb.Payload_Metric{spBdSeq(e.bdSeq), spRebirthMetric()}, metrics...)
	}
	tok := e.c.Publish(e.topic(typ, device), qos, false, spPayload(e.t, e.seq%256, metrics...))
	e.seq++
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		e.t.Fatalf("edge publish %s: %v", typ, tok.Error())
	}
}

// drop cuts the edge node's connection without DISCONNECT: the broker publishes its will.
func (e *testEdge) drop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.conn.Close()
}

// awaitRebirthRequest waits for an NCMD Node Control/Rebirth.
func (e *testEdge) awaitRebirthRequest() {
	e.t.Helper()
	select {
	case p := <-e.ncmd:
		checkRebirthRequest(e.t, 0, false, p)
	case <-time.After(15 * time.Second):
		e.t.Fatal("no rebirth request within 15s")
	}
}

func sparkplugTestConfig(url, group string) Config {
	return Config{Name: group, Broker: url, KeepAlive: 5 * time.Second, ConnectTimeout: 5 * time.Second,
		MaxReconnectInterval: time.Second, Sparkplug: &SparkplugConfig{Groups: []string{group}}}
}

// readingsOf waits until the sink holds n readings and returns them.
func readingsOf(t *testing.T, sk *testutil.Sink, n int) []fieldgate.Reading {
	t.Helper()
	waitFor(t, 15*time.Second, fmt.Sprintf("%d readings", n), func() bool { c, _ := sk.Count(); return c >= n })
	rs, _ := sk.Snapshot()
	return rs
}

// A session end to end: births, data by alias (a QoS 1 one acknowledged after its commit), an unknown alias
// dead-lettered and answered with a rebirth request, the edge node's rebirth, and its death by will.
func TestSparkplugSession(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			group := uniq("spb")
			sk := testutil.NewSink(t)
			r := start(t, sparkplugTestConfig(b.url, group), sk)
			e := newTestEdge(t, b.url, group, "edge1", 0)
			node, dev := group+"/edge1 ", group+"/edge1/dev1 "
			e.publish("NBIRTH", "", 0, spDouble("temp", 1, 21.5))
			e.publish("DBIRTH", "dev1", 0, spInt("count", 2, sparkplugb.DataType_Int32, 0xFFFFFFFB))
			e.publish("DDATA", "dev1", 1, spInt("", 2, 0, 4294967284))
			checkLines(t, "births and data", readingsOf(t, sk, 3), node+"temp=21.5", dev+"count=-5", dev+"count=-12")
			waitFor(t, 10*time.Second, "the QoS 1 DDATA's acknowledgement", func() bool { return r.src.Stats().AckedMessages >= 1 })

			e.publish("DDATA", "dev1", 0, spInt("", 77, 0, 1))
			e.awaitRebirthRequest()
			waitFor(t, 10*time.Second, "the dead letter", func() bool { _, d := sk.Count(); return d == 1 })

			// The rebirth: the same bdSeq, seq from 0, no NDEATH (tck-id-operational-behavior-data-commands-rebirth-action-*).
			e.publish("NBIRTH", "", 0, spDouble("temp", 1, 22))
			e.publish("DBIRTH", "dev1", 0, spInt("count", 2, sparkplugb.DataType_Int32, 3))
			e.publish("NDATA", "", 0, spDouble("", 1, 22.5))
			rs := readingsOf(t, sk, 6)
			checkLines(t, "after the rebirth", rs[3:], node+"temp=22", dev+"count=3", node+"temp=22.5")

			e.drop()
			waitFor(t, 15*time.Second, "the NDEATH's stale readings", func() bool { c, _ := sk.Count(); return c >= 8 })
			rs, _ = sk.Snapshot()
			for _, rd := range rs[6:] {
				if rd.Quality != fieldgate.Bad || rd.Status != SparkplugQualityStale {
					t.Errorf("after the will: %s", line(rd))
				}
			}
			st := r.src.Stats()
			sp := st.Sparkplug
			if sp.Births != 4 || sp.Deaths != 1 || sp.RebirthRequests != 1 || sp.AliasMisses != 1 || sp.DeadLetters != 1 ||
				sp.Readings != 8 || len(sp.Nodes) != 1 || sp.Nodes[0].Online || st.DeadLetters != 1 {
				t.Errorf("stats: %+v", sp)
			}
		})
	}
}

// (c) through a broker: the gateway restarts (a new Source, an empty catalogue) while the edge node keeps its
// session; its next data brings a rebirth request, and after the rebirth the data flows again.
func TestSparkplugRebirthAfterGatewayRestart(t *testing.T) {
	for _, b := range brokers(t) {
		t.Run(b.name, func(t *testing.T) {
			group := uniq("spbre")
			cfg := sparkplugTestConfig(b.url, group)
			sk := testutil.NewSink(t)
			r := start(t, cfg, sk)
			e := newTestEdge(t, b.url, group, "edge1", 7)
			e.publish("NBIRTH", "", 0, spDouble("temp", 1, 20))
			e.publish("NDATA", "", 0, spDouble("", 1, 20.5))
			readingsOf(t, sk, 2)
			b.stop(t, r)

			sk2 := testutil.NewSink(t)
			r2 := start(t, cfg, sk2)
			e.publish("NDATA", "", 0, spDouble("", 1, 21))
			e.awaitRebirthRequest()
			e.publish("NBIRTH", "", 0, spDouble("temp", 1, 21))
			e.publish("NDATA", "", 0, spDouble("", 1, 21.5))
			checkLines(t, "after the restart", readingsOf(t, sk2, 2), group+"/edge1 temp=21", group+"/edge1 temp=21.5")
			if _, d := sk2.Count(); d != 1 || r2.src.Stats().Sparkplug.WithoutBirth != 1 {
				t.Errorf("dead letters %d, stats %+v", d, r2.src.Stats().Sparkplug)
			}
		})
	}
}

// packetLog records, per client, what the broker read from it.
type packetLog struct {
	mochi.HookBase
	mu   sync.Mutex
	pkts map[string][]packets.Packet
}

func (h *packetLog) ID() string { return "packet-log" }
func (h *packetLog) Provides(b byte) bool {
	return b == mochi.OnPacketRead
}
func (h *packetLog) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := cl.ID
	if pk.FixedHeader.Type == packets.Connect {
		id = pk.Connect.ClientIdentifier
	}
	h.pkts[id] = append(h.pkts[id], pk.Copy(true))
	return pk, nil
}

func (h *packetLog) of(id string) []packets.Packet {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.pkts[id])
}

type stateDoc struct {
	Online    *bool  `json:"online"`
	Timestamp *int64 `json:"timestamp"`
}

func parseState(t *testing.T, b []byte) stateDoc {
	t.Helper()
	var s stateDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil || s.Online == nil || s.Timestamp == nil {
		t.Fatalf("STATE payload %q: %v (want exactly online and timestamp)", b, err)
	}
	return s
}

// The primary host's STATE, packet by packet as the broker read them.
func TestSparkplugPrimaryHostState(t *testing.T) {
	port := testutil.FreePort(t)
	log := &packetLog{pkts: map[string][]packets.Packet{}}
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddHook(log, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: fmt.Sprintf("127.0.0.1:%d", port)})); err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { testutil.CloseMochi(t, srv.Close) })
	url := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	testutil.WaitListening(t, url[len("tcp://"):], 10*time.Second)

	cfg := sparkplugTestConfig(url, "plant")
	cfg.CleanSession = true
	cfg.Sparkplug.HostID = "fieldgate-test"
	sk := testutil.NewSink(t)
	r := start(t, cfg, sk)
	stateTopic := "spBv1.0/STATE/fieldgate-test"
	waitFor(t, 10*time.Second, "STATE online", func() bool { return r.src.Stats().Sparkplug.StateOnline })

	// CONNECT, SUBSCRIBE, then PUBLISH STATE online with the will's timestamp.
	check := func(pkts []packets.Packet) (willTS int64) {
		t.Helper()
		if len(pkts) < 3 || pkts[0].FixedHeader.Type != packets.Connect {
			t.Fatalf("packets %v", pkts)
		}
		c := pkts[0].Connect
		// tck-id-message-flow-phid-sparkplug-clean-session-311, tck-id-operational-behavior-host-application-connect-will-*,
		// tck-id-host-topic-phid-death-qos, -death-retain, -death-topic, -death-payload
		if !c.Clean || !c.WillFlag || c.WillTopic != stateTopic || c.WillQos != 1 || !c.WillRetain {
			t.Fatalf("CONNECT: clean %t, will %t %q qos %d retain %t", c.Clean, c.WillFlag, c.WillTopic, c.WillQos, c.WillRetain)
		}
		will := parseState(t, c.WillPayload)
		if *will.Online {
			t.Fatalf("the will says online")
		}
		subscribed := -1
		for i, pk := range pkts[1:] {
			switch pk.FixedHeader.Type {
			case packets.Subscribe:
				var filters []string
				for _, f := range pk.Filters {
					filters = append(filters, f.Filter)
				}
				// tck-id-host-topic-phid-birth-sub-required: its own STATE and the namespace.
				if slices.Contains(filters, stateTopic) && slices.Contains(filters, "spBv1.0/plant/#") {
					subscribed = i
				}
			case packets.Publish:
				if pk.TopicName != stateTopic {
					continue
				}
				// tck-id-message-flow-phid-sparkplug-subscription: subscribed before the STATE birth, which is the
				// first PUBLISH (tck-id-host-topic-phid-birth-message).
				if subscribed < 0 || subscribed > i {
					t.Fatalf("STATE published before the subscription: %v", pkts)
				}
				st := parseState(t, pk.Payload)
				// tck-id-host-topic-phid-birth-qos, -birth-retain, -birth-payload, -birth-payload-timestamp
				if pk.FixedHeader.Qos != 1 || !pk.FixedHeader.Retain || !*st.Online || *st.Timestamp != *will.Timestamp {
					t.Fatalf("STATE birth qos %d retain %t %s (will timestamp %d)", pk.FixedHeader.Qos, pk.FixedHeader.Retain, pk.Payload, *will.Timestamp)
				}
				return *will.Timestamp
			}
		}
		t.Fatalf("no STATE birth: %v", pkts)
		return 0
	}
	ts1 := check(log.of(cfg.WithDefaults().ClientID))

	// A late subscriber finds it retained.
	got := make(chan paho.Message, 1)
	watcher := newPublisher(t, url)
	watcher.c.Subscribe(stateTopic, 1, func(_ paho.Client, m paho.Message) {
		select {
		case got <- m:
		default:
		}
	}).Wait()
	select {
	case m := <-got:
		if !m.Retained() || !*parseState(t, m.Payload()).Online {
			t.Fatalf("retained STATE %q retained %t", m.Payload(), m.Retained())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no retained STATE")
	}

	// Someone says the host is offline: it says online again at once
	// (tck-id-message-flow-hid-sparkplug-state-message-delivered).
	watcher.one(stateTopic, fmt.Sprintf(`{"online":false,"timestamp":%d}`, ts1))
	waitFor(t, 10*time.Second, "STATE online again", func() bool {
		pkts := log.of(cfg.WithDefaults().ClientID)
		n := 0
		for _, pk := range pkts {
			if pk.FixedHeader.Type == packets.Publish && pk.TopicName == stateTopic && *parseState(t, pk.Payload).Online {
				n++
			}
		}
		return n == 2
	})

	// The broker drops the connection: the will goes out, and the reconnect has a new timestamp in its will and
	// birth (tck-id-host-topic-phid-death-payload-timestamp-connect).
	cl, _ := srv.Clients.Get(cfg.WithDefaults().ClientID)
	cl.Stop(fmt.Errorf("test"))
	waitFor(t, 30*time.Second, "the reconnect", func() bool {
		return r.src.Stats().Connects >= 2 && r.src.Stats().Sparkplug.StateOnline
	})
	pkts := log.of(cfg.WithDefaults().ClientID)
	var last int
	for i, pk := range pkts {
		if pk.FixedHeader.Type == packets.Connect {
			last = i
		}
	}
	if ts2 := check(pkts[last:]); ts2 <= ts1 {
		t.Fatalf("the reconnect's STATE timestamp %d is not after the first's %d", ts2, ts1)
	}

	// A stop publishes STATE offline, retained, with the connection's timestamp, before DISCONNECT
	// (tck-id-operational-behavior-host-application-termination, -disconnect-intentional).
	r.stop(t)
	waitFor(t, 10*time.Second, "DISCONNECT", func() bool {
		pkts = log.of(cfg.WithDefaults().ClientID)
		return pkts[len(pkts)-1].FixedHeader.Type == packets.Disconnect
	})
	var death *packets.Packet
	for i := last; i < len(pkts); i++ {
		if pkts[i].FixedHeader.Type == packets.Publish && pkts[i].TopicName == stateTopic {
			death = &pkts[i]
		}
	}
	if death == nil || *parseState(t, death.Payload).Online || !death.FixedHeader.Retain || death.FixedHeader.Qos != 1 ||
		*parseState(t, death.Payload).Timestamp != check(pkts[last:]) {
		t.Fatalf("no STATE death with the connection's timestamp before DISCONNECT: %v", death)
	}
}

// A primary host's session must be clean (tck-id-message-flow-phid-sparkplug-clean-session-311).
func TestSparkplugHostIDNeedsCleanSession(t *testing.T) {
	cfg := sparkplugTestConfig("tcp://127.0.0.1:1883", "plant")
	cfg.Sparkplug.HostID = "gw"
	if err := cfg.Validate(); err == nil || !hasFieldError(err, "sparkplug.host_id", "clean_session: true") {
		t.Fatalf("host_id without clean_session: %v", err)
	}
	cfg.CleanSession = true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// A Sparkplug input leaves no goroutine behind either: not its sender, not a reorder timer still armed.
func TestSparkplugRunLeavesNoGoroutine(t *testing.T) {
	port := testutil.FreePort(t)
	url := startMochi(t, port)
	cfg := sparkplugTestConfig(url, "plant")
	cfg.CleanSession, cfg.Sparkplug.HostID, cfg.Sparkplug.ReorderTimeout = true, "gw", time.Hour
	sk := testutil.NewSink(t)
	r := start(t, cfg, sk)
	waitFor(t, 10*time.Second, "STATE online", func() bool { return r.src.Stats().Sparkplug.StateOnline })
	e := newTestEdge(t, url, "plant", "edge1", 0)
	e.publish("NBIRTH", "", 0, spDouble("temp", 1, 1))
	e.seq += 5 // a gap: the reorder timer is armed for an hour
	e.publish("NDATA", "", 0, spDouble("", 1, 2))
	readingsOf(t, sk, 2)
	e.c.Disconnect(100)
	r.stop(t)
	waitNoSourceGoroutine(t)
}
