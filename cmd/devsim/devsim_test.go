package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/fieldgate/fieldgate/internal/testutil"
	"github.com/fieldgate/fieldgate/protocols/mqtt"
	"github.com/fieldgate/fieldgate/protocols/mqtt/sparkplugb"
)

// The simulated plant comes up on its addresses: the broker carries sensor telemetry, Kafka has the readings
// topic with its partitions, and the Modbus PLC and OPC UA server accept connections.
func TestPlantStarts(t *testing.T) {
	c := plantConfig{
		MQTTAddr: testutil.FreeAddr(t), SensorRate: 20, KafkaAddr: testutil.FreeAddr(t), Topic: "fieldgate.readings", Partitions: 3,
		ModbusAddr: testutil.FreeAddr(t), OPCUAAddr: testutil.FreeAddr(t), StateDir: t.TempDir(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runParts(ctx, c, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("runParts: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the plant did not stop within 10 s of cancel")
		}
	}()
	for _, a := range []string{c.MQTTAddr, c.KafkaAddr, c.ModbusAddr, c.OPCUAAddr} {
		testutil.WaitListening(t, a, 30*time.Second)
	}

	var got atomic.Int64
	opts := paho.NewClientOptions().AddBroker("tcp://" + c.MQTTAddr).SetClientID("devsim-test")
	opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		if strings.HasPrefix(m.Topic(), "plant/") {
			got.Add(1)
		}
	})
	cl := paho.NewClient(opts)
	if tok := cl.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	if tok := cl.Subscribe("plant/#", 1, nil); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < 10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got.Load() < 10 {
		t.Errorf("%d sensor messages in 10 s, want at least 10", got.Load())
	}

	kc, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	tctx, tcancel := context.WithTimeout(ctx, 5*time.Second)
	defer tcancel()
	topics, err := kadm.NewClient(kc).ListTopics(tctx, c.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topics[c.Topic].Partitions); n != c.Partitions {
		t.Errorf("topic %s has %d partitions, want %d", c.Topic, n, c.Partitions)
	}
}

func TestScrapeSumsOverLabels(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `# HELP fieldgate_input_readings_total Readings.
# TYPE fieldgate_input_readings_total counter
fieldgate_input_readings_total{input="a",type="mqtt"} 10
fieldgate_input_readings_total{input="b",type="modbus"} 5.5
fieldgate_buffer_entries 3
`)
	}))
	defer srv.Close()
	m := scrape(context.Background(), srv.URL)
	if m["fieldgate_input_readings_total"] != 15.5 || m["fieldgate_buffer_entries"] != 3 {
		t.Errorf("scrape = %v", m)
	}
	if len(scrape(context.Background(), "http://127.0.0.1:1/metrics")) != 0 {
		t.Error("an unreachable endpoint must give an empty map")
	}
}

// The simulated Sparkplug edge node, read by the gateway's MQTT input as a Sparkplug host: every device's data
// decodes (no dead letter, no sequence gap), devices and the edge node die and are born again (a new bdSeq each
// time), and a rebirth request is answered.
func TestSparkplugEdgeNode(t *testing.T) {
	every, deadFor, nodeEvery := spDeviceDeathEvery, spDeviceDeadFor, spNodeDeathEvery
	t.Cleanup(func() { spDeviceDeathEvery, spDeviceDeadFor, spNodeDeathEvery = every, deadFor, nodeEvery })
	spDeviceDeathEvery, spDeviceDeadFor, spNodeDeathEvery = 400*time.Millisecond, 200*time.Millisecond, 2*time.Second
	addr := testutil.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ready := make(chan struct{})
	done := make(chan error, 2)
	go func() { done <- runBroker(ctx, addr, ready, log) }()
	<-ready

	src, err := mqtt.New(mqtt.Config{Name: "plant-sparkplug", Broker: "tcp://" + addr, CleanSession: true,
		Sparkplug: &mqtt.SparkplugConfig{Groups: []string{spGroup}}}, log)
	if err != nil {
		t.Fatal(err)
	}
	sk := testutil.NewSink(t)
	srcDone := make(chan error, 1)
	go func() { srcDone <- src.Run(ctx, sk) }()
	// The edge node starts once the host listens: a host that misses the first births sees data it cannot
	// decode (rightly a dead letter and a rebirth request), which is not what this test is about.
	for deadline := time.Now().Add(30 * time.Second); !src.Stats().Subscribed; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the input did not subscribe within 30 s")
		}
	}
	go func() { done <- runSparkplugNode(ctx, "tcp://"+addr, 20, log) }()
	waitUntil := func(what string, cond func(*mqtt.SparkplugStats) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond(src.Stats().Sparkplug) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %+v", what, src.Stats().Sparkplug)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitUntil("a node death and a new birth", func(s *mqtt.SparkplugStats) bool {
		return len(s.Nodes) == 1 && s.Nodes[0].Deaths >= 1 && s.Nodes[0].Online && s.Nodes[0].BdSeq >= 1
	})
	p := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("devsim-test-host"))
	if tok := p.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer p.Disconnect(100)
	births := src.Stats().Sparkplug.Births
	ncmd, _ := proto.Marshal(sparkplugb.Payload_builder{Timestamp: proto.Uint64(uint64(time.Now().UnixMilli())),
		Metrics: []*sparkplugb.Payload_Metric{sparkplugb.Payload_Metric_builder{Name: proto.String("Node Control/Rebirth"),
			Datatype: proto.Uint32(uint32(sparkplugb.DataType_Boolean)), BooleanValue: proto.Bool(true)}.Build()}}.Build())
	p.Publish("spBv1.0/"+spGroup+"/NCMD/"+spNode, 0, false, ncmd).Wait()
	waitUntil("the births answering the rebirth request", func(s *mqtt.SparkplugStats) bool { return s.Births >= births+4 })
	cancel()
	<-srcDone

	sp := src.Stats().Sparkplug
	rs, dead := sk.Snapshot()
	if len(dead) != 0 || sp.SequenceGaps != 0 || sp.RefusedBirths != 0 || sp.AliasMisses != 0 || sp.Deaths < 2 {
		t.Errorf("dead letters %d (%v), stats %+v", len(dead), dead, sp)
	}
	seen := map[string]bool{}
	for _, r := range rs {
		seen[r.Device] = true
	}
	for _, d := range []string{"plant1/devsim-edge", "plant1/devsim-edge/press-01", "plant1/devsim-edge/oven-01", "plant1/devsim-edge/filler-01"} {
		if !seen[d] {
			t.Errorf("no readings of %s (devices: %v)", d, seen)
		}
	}
}
