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

	"github.com/fieldgate/fieldgate/internal/testutil"
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
