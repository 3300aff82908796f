package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/proto"

	"github.com/fieldgate/fieldgate/internal/testutil"
	"github.com/fieldgate/fieldgate/protocols/mqtt/sparkplugb"
)

// The gateway binary with a Sparkplug input: an edge node's births and aliased data land in Kafka under the
// device names of the templates, a historical metric three days old keeps its time (the Sparkplug input's
// source-time bound looks a year back), and /api/status and /metrics show the edge node's state.
func TestSparkplugEndToEnd(t *testing.T) {
	broker := startBroker(t)
	k := startKafka(t)
	dir := t.TempDir()
	env := &gatewayEnv{t: t, dir: dir, cfgPath: filepath.Join(dir, "gateway.yaml"), httpAddr: testutil.FreeAddr(t)}
	cfg := fmt.Sprintf(`gateway_id: spb-gw
state_dir: %s
http: {listen: "%s"}
kafka: {brokers: ["%s"], topic: %s, min_backoff: 50ms, max_backoff: 1s}
mqtt:
  - name: spb
    broker: %s
    clean_session: true
    sparkplug:
      groups: [plant1]
      device: "{edge_node}.{device}"
`, filepath.Join(dir, "state"), env.httpAddr, k.addr(), e2eTopic, broker)
	if err := os.WriteFile(env.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := validateFile(t, env.cfgPath, "-v"); code != exitOK || !strings.Contains(out, "sparkplug groups plant1, device {edge_node}.{device}") {
		t.Fatalf("validate -v: exit %d\n%s%s", code, out, errOut)
	}
	env.waitReady(env.start(), 30*time.Second)

	edge := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("spb-e2e-edge").SetCleanSession(true))
	if tok := edge.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer edge.Disconnect(100)
	now := uint64(time.Now().UnixMilli())
	old := now - 3*24*3600*1000
	metric := func(name string, alias uint64, typ sparkplugb.DataType, ts uint64, set func(*sparkplugb.Payload_Metric_builder)) *sparkplugb.Payload_Metric {
		b := &sparkplugb.Payload_Metric_builder{Alias: proto.Uint64(alias), Timestamp: proto.Uint64(ts)}
		if name != "" {
			b.Name, b.Datatype = proto.String(name), proto.Uint32(uint32(typ))
		}
		set(b)
		return b.Build()
	}
	publish := func(topic string, seq uint64, ms ...*sparkplugb.Payload_Metric) {
		b, err := proto.Marshal(sparkplugb.Payload_builder{Timestamp: proto.Uint64(now), Seq: proto.Uint64(seq), Metrics: ms}.Build())
		if err != nil {
			t.Fatal(err)
		}
		if tok := edge.Publish(topic, 0, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	publish("spBv1.0/plant1/NBIRTH/edge1", 0,
		metric("bdSeq", 0, sparkplugb.DataType_Int64, now, func(b *sparkplugb.Payload_Metric_builder) { b.Alias, b.LongValue = nil, proto.Uint64(0) }),
		metric("temp", 1, sparkplugb.DataType_Double, now, func(b *sparkplugb.Payload_Metric_builder) { b.DoubleValue = proto.Float64(21.5) }))
	publish("spBv1.0/plant1/DBIRTH/edge1/press", 1,
		metric("count", 2, sparkplugb.DataType_Int32, now, func(b *sparkplugb.Payload_Metric_builder) { b.IntValue = proto.Uint32(1) }))
	publish("spBv1.0/plant1/DDATA/edge1/press", 2,
		metric("", 2, 0, now+1, func(b *sparkplugb.Payload_Metric_builder) { b.IntValue = proto.Uint32(4294967284) }))
	publish("spBv1.0/plant1/NDATA/edge1", 3,
		metric("", 1, 0, old, func(b *sparkplugb.Payload_Metric_builder) {
			b.DoubleValue, b.IsHistorical = proto.Float64(19), proto.Bool(true)
		}))

	got := consumeUntil(t, k.addr(), 30*time.Second, func(ls []landed) bool { return len(ls) >= 4 })
	want := map[string]bool{
		fmt.Sprintf("plant1/edge1 temp=21.5 %d", now):    true,
		fmt.Sprintf("edge1.press count=1 %d", now):       true,
		fmt.Sprintf("edge1.press count=-12 %d", now+1):   true,
		fmt.Sprintf("plant1/edge1 temp=19 %d good", old): true,
	}
	for _, l := range got {
		key := fmt.Sprintf("%s %s=%s %d", l.r.Device, l.r.Metric, l.r.Value, l.r.EventMs())
		if l.r.Metric == "temp" && l.r.Value.Float() == 19 {
			key += " " + l.r.Quality.String()
		}
		if !want[key] {
			t.Errorf("unexpected reading in Kafka: %s (%+v)", key, l.r)
		}
		delete(want, key)
	}
	if len(want) != 0 {
		t.Errorf("missing from Kafka: %v", want)
	}

	var st struct {
		Sources []struct {
			Stats struct {
				Sparkplug struct {
					Births uint64 `json:"births"`
					Nodes  []struct {
						Group    string `json:"group"`
						EdgeNode string `json:"edge_node"`
						Online   bool   `json:"online"`
						BdSeq    int64  `json:"bd_seq"`
						Seq      int    `json:"seq"`
						Devices  []struct {
							ID     string `json:"id"`
							Device string `json:"device"`
							Online bool   `json:"online"`
						} `json:"devices"`
					} `json:"nodes"`
				} `json:"sparkplug"`
			} `json:"stats"`
		} `json:"sources"`
	}
	body := httpGet(t, "http://"+env.httpAddr+"/api/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil || len(st.Sources) != 1 {
		t.Fatalf("/api/status: %v\n%s", err, body)
	}
	sp := st.Sources[0].Stats.Sparkplug
	if sp.Births != 2 || len(sp.Nodes) != 1 || sp.Nodes[0].Group != "plant1" || sp.Nodes[0].EdgeNode != "edge1" || !sp.Nodes[0].Online ||
		sp.Nodes[0].BdSeq != 0 || sp.Nodes[0].Seq != 3 || len(sp.Nodes[0].Devices) != 1 || sp.Nodes[0].Devices[0].Device != "edge1.press" ||
		!sp.Nodes[0].Devices[0].Online {
		t.Errorf("/api/status sparkplug: %+v\n%s", sp, body)
	}
	metrics := parseMetrics(httpGet(t, "http://"+env.httpAddr+"/metrics"))
	for name, v := range map[string]float64{
		`fieldgate_sparkplug_births_total{input="spb",type="mqtt"}`:                                 2,
		`fieldgate_sparkplug_historical_total{input="spb",type="mqtt"}`:                             1,
		`fieldgate_sparkplug_node_online{edge_node="edge1",group="plant1",input="spb",type="mqtt"}`: 1,
		`fieldgate_input_implausible_source_times_total{input="spb",type="mqtt"}`:                   0,
	} {
		if metrics[name] != v {
			t.Errorf("/metrics %s = %v, want %v", name, metrics[name], v)
		}
	}
}
