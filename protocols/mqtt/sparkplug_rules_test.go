package mqtt

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/fieldgate/fieldgate/internal/testutil"
	"github.com/fieldgate/fieldgate/protocols/mqtt/sparkplugb"
)

// The host application's rules of the specification, one case per statement (tck-id-*, host sections), on the
// host itself. The STATE handshake, which needs a broker, is in sparkplug_session_test.go.

// bornNode is an edge node plant/edge1 born with bdSeq 3, node metric "a" (alias 1) and device dev1 with "b"
// (alias 2), seq 0 and 1: the next message has seq 2.
func bornNode(t *testing.T, th *testHost) {
	t.Helper()
	th.must("spBv1.0/plant/NBIRTH/edge1", nbirth(t, 3, spDouble("a", 1, 1.5)))
	th.must("spBv1.0/plant/DBIRTH/edge1/dev1", spPayload(t, 1, spInt("b", 2, sparkplugb.DataType_Int32, 7)))
}

func ndata(t *testing.T, seq int) []byte { return spPayload(t, seq, spDouble("", 1, float64(seq))) }

func TestSparkplugHostRules(t *testing.T) {
	cases := []struct {
		ids string
		cfg SparkplugConfig
		run func(t *testing.T, th *testHost)
	}{
		{"tck-id-principles-birth-certificates-order tck-id-payloads-ndata-order", SparkplugConfig{}, func(t *testing.T, th *testHost) {
			// Data before any birth cannot be decoded: a dead letter, and the edge node is asked for its births.
			_, err := th.send("spBv1.0/plant/NDATA/edge1", ndata(t, 5))
			if !errors.Is(err, errNoBirth) {
				t.Fatalf("NDATA before NBIRTH: %v", err)
			}
			if rb := th.rebirths(); len(rb) != 1 || rb[0] != "plant/edge1" {
				t.Fatalf("rebirths %v", rb)
			}
			bornNode(t, th)
			checkLines(t, "NDATA after the births", th.must("spBv1.0/plant/NDATA/edge1", ndata(t, 2)), "plant/edge1 a=2")
		}},
		{"tck-id-payloads-dbirth-order tck-id-message-flow-device-birth-publish-nbirth-wait", SparkplugConfig{}, func(t *testing.T, th *testHost) {
			if _, err := th.send("spBv1.0/plant/DBIRTH/edge1/dev1", spPayload(t, 1, spDouble("b", 2, 1))); !errors.Is(err, errNoBirth) {
				t.Fatalf("DBIRTH before NBIRTH: %v", err)
			}
			th.must("spBv1.0/plant/NBIRTH/edge1", nbirth(t, 0))
			th.now = th.now.Add(time.Second) // past the rebirth throttle
			if _, err := th.send("spBv1.0/plant/DDATA/edge1/dev2", spPayload(t, 1, spDouble("", 2, 1))); !errors.Is(err, errNoBirth) {
				t.Fatalf("DDATA before DBIRTH: %v", err)
			}
			if rb := th.rebirths(); len(rb) != 2 {
				t.Fatalf("rebirths %v, want 2", rb)
			}
		}},
		{"tck-id-payloads-sequence-num-incrementing tck-id-topics-ndata-seq-num tck-id-topics-ddata-seq-num", SparkplugConfig{}, func(t *testing.T, th *testHost) {
			bornNode(t, th)
			for i := 2; i < 600; i++ { // 255 is followed by 0, twice
				topic := "spBv1.0/plant/NDATA/edge1"
				if i%3 == 0 {
					topic = "spBv1.0/plant/DDATA/edge1/dev1"
				}
				payload := spPayload(t, i%256, spDouble("", 1, 1))
				if i%3 == 0 {
					payload = spPayload(t, i%256, spInt("", 2, 0, 1))
				}
				th.must(topic, payload)
			}
			th.h.expireAt(th.now.Add(time.Hour))
			if st := th.h.stats(); st.SequenceGaps != 0 || st.Reordered != 0 || st.OutOfSequence != 0 || len(th.rebirths()) != 0 {
				t.Fatalf("gaps %d reordered %d out of sequence %d", st.SequenceGaps, st.Reordered, st.OutOfSequence)
			}
		}},
		{"tck-id-operational-behavior-host-reordering-start tck-id-operational-behavior-host-reordering-success", SparkplugConfig{}, func(t *testing.T, th *testHost) {
			bornNode(t, th)
			th.must("spBv1.0/plant/NDATA/edge1", ndata(t, 3)) // 2 is late: the timer starts
			if th.h.nodes[spNodeKey{"plant", "edge1"}].deadline.IsZero() {
				t.Fatal("no reorder timer after a gap")
			}
			checkLines(t, "late message", th.must("spBv1.0/plant/NDATA/edge1", ndata(t, 2)), "plant/edge1 a=2")
			if !th.h.nodes[spNodeKey{"plant", "edge1"}].deadline.IsZero() {
				t.Fatal("the reorder timer still runs after the gap was filled")
			}
			th.must("spBv1.0/plant/NDATA/edge1", ndata(t, 4))
			th.h.expireAt(th.now.Add(time.Hour))
			if st := th.h.stats(); st.SequenceGaps != 0 || st.Reordered != 1 || len(th.rebirths()) != 0 {
				t.Fatalf("gaps %d, reordered %d: want 0, 1 and no rebirth", st.SequenceGaps, st.Reordered)
			}
		}},
		{"tck-id-operational-behavior-host-reordering-param tck-id-operational-behavior-host-reordering-rebirth", SparkplugConfig{ReorderTimeout: 5 * time.Second}, func(t *testing.T, th *testHost) {
			bornNode(t, th)
			th.must("spBv1.0/plant/NDATA/edge1", ndata(t, 4)) // 2 and 3 are missing
			th.h.expireAt(th.now.Add(4900 * time.Millisecond))
			if rb := th.rebirths(); len(rb) != 0 {
				t.Fatalf("rebirth before the reorder timeout: %v", rb)
			}
			th.h.expireAt(th.now.Add(5 * time.Second))
			if rb := th.rebirths(); len(rb) != 1 || th.h.stats().SequenceGaps != 1 {
				t.Fatalf("after the reorder timeout: rebirths %v, gaps %d", rb, th.h.stats().SequenceGaps)
			}
		}},
		{"tck-id-operational-behavior-host-reordering-rebirth (the timer)", SparkplugConfig{ReorderTimeout: 20 * time.Millisecond}, func(t *testing.T, th *testHost) {
			th.h.now = time.Now
			th.now = time.Now()
			bornNode(t, th)
			th.must("spBv1.0/plant/NDATA/edge1", ndata(t, 9))
			waitFor(t, 10*time.Second, "the reorder timer's rebirth request", func() bool { return len(th.h.out) > 0 })
			if rb := th.rebirths(); len(rb) != 1 {
				t.Fatalf("rebirths %v", rb)
			}
		}},
		{"tck-id-operational-behavior-edge-node-termination-host-action-ndeath-node-offline -ndeath-node-tags-stale -ndeath-devices-offline -ndeath-devices-tags-stale", SparkplugConfig{}, func(t *testing.T, th *testHost) {
			bornNode(t, th)
			th.now = th.now.Add(time.Minute)
			rs := th.must("spBv1.0/plant/NDEATH/edge1", spPayload(t, -1, spBdSeq(3)))
			at := " @" + th.now.Format(time.RFC3339Nano) // the host's time: an NDEATH's own is the will's, from the CONNECT
			checkLines(t, "NDEATH", rs, "plant/edge1 a=0 bad/500"+at, "plant/edge1/dev1 b=0 bad/500"+at)
			st := th.h.stats()
			if st.Deaths != 1 || st.Nodes[0].Online || len(st.Nodes[0].Devices) != 0 {
				t.Fatalf("after NDEATH: %+v", st)
			}
			if _, err := th.send("spBv1.0/plant/NDATA/edge1", ndata(t, 2)); !errors.Is(err, errNoBirth) {
				t.Fatalf("NDATA after NDEATH: %v", err)
			}
		}},
		{"tck-id-payloads-ndeath-bdseq tck-id-topics-nbirth-bdseq-matching (a late will)", SparkplugConfig{}, func(t *testing.T, th *testHost) {
			bornNode(t, th)
			th.must("spBv1.0/plant/NBIRTH/edge1", nbirth(t, 4, spDouble("a", 1, 1.5))) // reconnected; the old will comes late
			if rs := th.must("spBv1.0/plant/NDEATH/edge1", spPayload(t, -1, spBdSeq(3))); len(rs) != 0 {
				t.Fatalf("the NDEATH of the earlier session marked %d readings", len(rs))
			}
			st := th.h.stats()
			if !st.Nodes[0].Online || st.IgnoredDeaths != 1 || st.Nodes[0].BdSeq != 4 {
				t.Fatalf("after a stale NDEATH: %+v", st.Nodes[0])
			}
			checkLines(t, "NDEATH of the current birth", th.must("spBv1.0/plant/NDEATH/edge1", spPayload(t, -1, spBdSeq(4))),
				"plant/edge1 a=0 bad/500 @"+th.now.Format(time.RFC3339Nano))
		}},
		{"tck-id-operational-behavior-edge-node-termination-host-action-ddeath-devices-offline -ddeath-devices-tags-stale", SparkplugConfig{}, func(t *testing.T, th *testHost) {
			bornNode(t, th)
			th.now = th.now.Add(time.Minute)
			// The DDEATH's own timestamp (spTS) marks the metrics, not the host's time.
			checkLines(t, "DDEATH", th.must("spBv1.0/plant/DDEATH/edge1/dev1", spPayload(t, 2)), "plant/edge1/dev1 b=0 bad/500")
			if st := th.h.stats(); st.Nodes[0].Devices[0].Online || !st.Nodes[0].Online {
				t.Fatalf("after DDEATH: %+v", st.Nodes[0])
			}
			if _, err := th.send("spBv1.0/plant/DDATA/edge1/dev1", spPayload(t, 3, spInt("", 2, 0, 1))); !errors.Is(err, errNoBirth) {
				t.Fatalf("DDATA after DDEATH: %v", err)
			}
			checkLines(t, "NDATA after DDEATH", th.must("spBv1.0/plant/NDATA/edge1", ndata(t, 4)), "plant/edge1 a=4")
		}},
		{"tck-id-payloads-alias-data-cmd-requirement tck-id-payloads-name-requirement (names without aliases)", SparkplugConfig{}, func(t *testing.T, th *testHost) {
			th.must("spBv1.0/plant/NBIRTH/edge1", nbirth(t, 0, spDouble("x", 0, 1)))
			checkLines(t, "NDATA by name", th.must("spBv1.0/plant/NDATA/edge1", spPayload(t, 1, spDouble("x", 0, 2))), "plant/edge1 x=2")
			_, err := th.send("spBv1.0/plant/NDATA/edge1", spPayload(t, 2, spDouble("y", 0, 2)))
			if err == nil || !strings.Contains(err.Error(), `metric "y" is not in the birth`) {
				t.Fatalf("unknown name: %v", err)
			}
		}},
		{"tck-id-payloads-alias-uniqueness tck-id-payloads-name-requirement tck-id-payloads-metric-datatype-req", SparkplugConfig{}, func(t *testing.T, th *testHost) {
			for birth, want := range map[string]string{
				"dup":      "tck-id-payloads-alias-uniqueness",
				"noname":   "tck-id-payloads-name-requirement",
				"notype":   "tck-id-payloads-metric-datatype-req",
				"datatype": "tck-id-payloads-metric-datatype-value",
			} {
				var ms []*sparkplugb.Payload_Metric
				switch birth {
				case "dup":
					ms = append(ms, spDouble("x", 1, 1), spDouble("y", 1, 1))
				case "noname":
					ms = append(ms, spDouble("", 1, 1))
				case "notype":
					ms = append(ms, spDouble("x", 1, 1))
					ms[0].ClearDatatype()
				case "datatype":
					ms = append(ms, spInt("x", 1, sparkplugb.DataType_PropertySet, 1))
				}
				_, err := th.send("spBv1.0/plant/NBIRTH/"+birth, nbirth(t, 0, ms...))
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: %v, want %s", birth, err, want)
				}
				// A refused birth would only come again: data of the node is dead-lettered without rebirths.
				if _, err := th.send("spBv1.0/plant/NDATA/"+birth, ndata(t, 1)); !errors.Is(err, errNoBirth) {
					t.Errorf("%s: NDATA after a refused birth: %v", birth, err)
				}
			}
			if rb := th.rebirths(); len(rb) != 0 || th.h.stats().RefusedBirths != 4 {
				t.Fatalf("rebirths %v, refused births %d", rb, th.h.stats().RefusedBirths)
			}
		}},
		{"tck-id-operational-behavior-data-commands-ncmd-rebirth-verb -name -value (at most one a second per edge node)", SparkplugConfig{}, func(t *testing.T, th *testHost) {
			bornNode(t, th)
			miss := func(seq int) {
				if _, err := th.send("spBv1.0/plant/NDATA/edge1", spPayload(t, seq, spDouble("", 99, 1))); err == nil || !strings.Contains(err.Error(), "alias 99") {
					t.Fatalf("unknown alias: %v", err)
				}
			}
			miss(2)
			th.now = th.now.Add(900 * time.Millisecond)
			miss(3)
			if rb := th.rebirths(); len(rb) != 1 {
				t.Fatalf("two misses within a second: %v rebirths, want 1", rb)
			}
			th.now = th.now.Add(100 * time.Millisecond)
			miss(4)
			if rb := th.rebirths(); len(rb) != 1 {
				t.Fatalf("a second later: %v rebirths, want 1", rb)
			}
			if st := th.h.stats(); st.RebirthRequests != 2 || st.RebirthsNotSent != 1 || st.AliasMisses != 3 || st.Nodes[0].RebirthRequests != 2 {
				t.Fatalf("counters %+v", st)
			}
		}},
		{"passive: never an NCMD", SparkplugConfig{Passive: true}, func(t *testing.T, th *testHost) {
			if _, err := th.send("spBv1.0/plant/NDATA/edge1", ndata(t, 1)); !errors.Is(err, errNoBirth) {
				t.Fatal(err)
			}
			if rb := th.rebirths(); len(rb) != 0 || th.h.stats().RebirthsNotSent != 1 {
				t.Fatalf("a passive host sent %v", rb)
			}
		}},
		{"tck-id-message-flow-hid-sparkplug-state-message-delivered", SparkplugConfig{HostID: "gw1"}, func(t *testing.T, th *testHost) {
			th.h.newStateTimestamp()
			th.h.stateOnline.Store(true)
			ts := th.h.stateTS.Load()
			th.must("spBv1.0/STATE/gw1", []byte(`{"online":true,"timestamp":1}`))
			th.must("spBv1.0/STATE/gw1", []byte(`{"online":false,"timestamp":1}`))
			th.must("spBv1.0/STATE/gw1", []byte(`{"online":false,"timestamp":2}`)) // within a second: once is enough
			out := th.sent()
			if len(out) != 1 || out[0].topic != "spBv1.0/STATE/gw1" || out[0].qos != 1 || !out[0].retain ||
				!bytes.Equal(out[0].payload, stateJSON(true, ts)) {
				t.Fatalf("answer to STATE offline: %+v", out)
			}
		}},
		{"commands and other hosts' STATE are acknowledged, nothing stored", SparkplugConfig{}, func(t *testing.T, th *testHost) {
			for _, topic := range []string{"spBv1.0/plant/NCMD/edge1", "spBv1.0/plant/DCMD/edge1/dev1", "spBv1.0/STATE/scada"} {
				if rs := th.must(topic, []byte("not even protobuf")); len(rs) != 0 {
					t.Fatalf("%s: %d readings", topic, len(rs))
				}
			}
			for _, topic := range []string{"spBv1.0/plant/NFOO/edge1", "spBv1.0/plant/NDATA", "spBv1.0/plant/DDATA/edge1", "spBv1.0/plant/NDATA/edge1/dev1", "spBv1.0//NDATA/e"} {
				if _, err := th.send(topic, ndata(t, 1)); err == nil {
					t.Fatalf("%s: no error", topic)
				}
			}
			if _, err := th.send("spBv1.0/plant/NBIRTH/edge1", []byte{0xFF, 0xFF}); err == nil || !strings.Contains(err.Error(), "not a Sparkplug B payload") {
				t.Fatalf("garbage: %v", err)
			}
		}},
		{"compressed payloads (Tahu's SPBV1.0_COMPRESSED: DEFLATE, GZIP)", SparkplugConfig{}, func(t *testing.T, th *testHost) {
			for i, algo := range []string{"", "GZIP", "DEFLATE"} {
				var buf bytes.Buffer
				var w interface {
					Write([]byte) (int, error)
					Close() error
				} = zlib.NewWriter(&buf)
				if algo == "GZIP" {
					w = gzip.NewWriter(&buf)
				}
				w.Write(nbirth(t, uint64(i), spDouble("z", 1, float64(i))))
				w.Close()
				b := sparkplugb.Payload_builder{Uuid: proto.String("SPBV1.0_COMPRESSED"), Body: buf.Bytes()}
				if algo != "" {
					b.Metrics = []*sparkplugb.Payload_Metric{spString("algorithm", 0, sparkplugb.DataType_String, algo)}
				}
				raw, _ := proto.Marshal(b.Build())
				checkLines(t, algo, th.must("spBv1.0/plant/NBIRTH/edge1", raw), "plant/edge1 z="+string(rune('0'+i)))
			}
		}},
		{"a lost connection marks every online edge node stale; data then waits for new births", SparkplugConfig{}, func(t *testing.T, th *testHost) {
			sk := testutil.NewSink(t)
			th.h.sink = sk
			bornNode(t, th)
			th.h.connectionLost()
			waitFor(t, 10*time.Second, "the stale readings' commit", func() bool { n, _ := sk.Count(); return n == 2 })
			rs, _ := sk.Snapshot()
			at := " @" + th.now.Format(time.RFC3339Nano)
			checkLines(t, "stale", rs, "plant/edge1 a=0 bad/500"+at, "plant/edge1/dev1 b=0 bad/500"+at)
			if _, err := th.send("spBv1.0/plant/NDATA/edge1", ndata(t, 7)); !errors.Is(err, errNoBirth) {
				t.Fatalf("NDATA after a lost connection: %v", err)
			}
			if rb := th.rebirths(); len(rb) != 1 {
				t.Fatalf("rebirths %v", rb)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.ids, func(t *testing.T) { c.run(t, newTestHost(t, c.cfg)) })
	}
}

// Three bugs another Go Sparkplug consumer shipped (the reference's §0.3).

// (a) Sequence numbers are one counter per edge node, shared by its devices: tracking them per device saw a gap
// at every message of another device.
func TestSparkplugSeqIsPerEdgeNodeNotPerDevice(t *testing.T) {
	th := newTestHost(t, SparkplugConfig{})
	th.must("spBv1.0/plant/NBIRTH/edge1", nbirth(t, 0))
	seq := 1
	for _, dev := range []string{"d1", "d2", "d3"} {
		th.must("spBv1.0/plant/DBIRTH/edge1/"+dev, spPayload(t, seq, spDouble("v", uint64(seq), 0)))
		seq++
	}
	for i := range 300 {
		dev := []string{"d1", "d2", "d3"}[i%3]
		th.must("spBv1.0/plant/DDATA/edge1/"+dev, spPayload(t, seq%256, spDouble("", uint64(i%3+1), float64(i))))
		seq++
	}
	th.h.expireAt(th.now.Add(time.Hour))
	if st := th.h.stats(); st.SequenceGaps != 0 || st.OutOfSequence != 0 || st.RebirthRequests != 0 {
		t.Fatalf("interleaved devices of one edge node: gaps %d, out of sequence %d, rebirths %d", st.SequenceGaps, st.OutOfSequence, st.RebirthRequests)
	}
}

// (b) DATA carries the alias and no datatype: the catalogue keeps the birth's datatype, so Int32 -12 (sent as
// 4294967284) stays -12.
func TestSparkplugAliasKeepsTheBirthsDatatype(t *testing.T) {
	th := newTestHost(t, SparkplugConfig{})
	th.must("spBv1.0/plant/NBIRTH/edge1", nbirth(t, 0, spInt("t", 5, sparkplugb.DataType_Int32, 0), spInt("s", 6, sparkplugb.DataType_Int8, 0),
		spLong("l", 7, sparkplugb.DataType_Int64, 0)))
	data := spPayload(t, 1, spInt("", 5, 0, 4294967284), spInt("", 6, 0, 0xFFFFFFFF), spLong("", 7, 0, 0xFFFFFFFFFFFFFF85))
	checkLines(t, "NDATA", th.must("spBv1.0/plant/NDATA/edge1", data), "plant/edge1 t=-12", "plant/edge1 s=-1", "plant/edge1 l=-123")
}

// (c) After the gateway restarts its catalogue is empty: DATA with aliases must bring a rebirth request, not be
// dropped (or mis-decoded) for good. The next births make the data flow again.
func TestSparkplugRebirthAfterRestart(t *testing.T) {
	before := newTestHost(t, SparkplugConfig{})
	bornNode(t, before)
	checkLines(t, "before the restart", before.must("spBv1.0/plant/DDATA/edge1/dev1", spPayload(t, 2, spInt("", 2, 0, 8))), "plant/edge1/dev1 b=8")

	after := newTestHost(t, SparkplugConfig{}) // the restarted gateway
	_, err := after.send("spBv1.0/plant/DDATA/edge1/dev1", spPayload(t, 3, spInt("", 2, 0, 9)))
	if !errors.Is(err, errNoBirth) {
		t.Fatalf("DDATA after the restart: %v", err)
	}
	if rb := after.rebirths(); len(rb) != 1 || rb[0] != "plant/edge1" {
		t.Fatalf("rebirth requests after the restart: %v", rb)
	}
	// The edge node answers with its births (the same bdSeq, seq from 0) and its data decodes again.
	bornNode(t, after)
	checkLines(t, "after the rebirth", after.must("spBv1.0/plant/DDATA/edge1/dev1", spPayload(t, 2, spInt("", 2, 0, 10))), "plant/edge1/dev1 b=10")
	if st := after.h.stats(); st.WithoutBirth != 1 || st.RebirthRequests != 1 {
		t.Fatalf("counters %+v", st)
	}
}
