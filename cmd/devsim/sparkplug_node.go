package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/proto"

	"github.com/fieldgate/fieldgate/protocols/mqtt/sparkplugb"
)

// The plant's Sparkplug B edge node: group plant1, edge node devsim-edge, three devices (the matching gateway
// input is the plant-sparkplug input of configs/demo.yaml):
//
//	press-01   pressure (Double), temperature (Float), cycles (UInt32), running (Boolean), state (String)
//	oven-01    zones (FloatArray of 4), setpoint (Double), door_open (Boolean), alarm (Int16, negative codes)
//	filler-01  level (Double), bottles (Int64), recipe (String), last_batch (DateTime)
//
// It behaves as the specification asks of an edge node: an NDEATH will with bdSeq (incremented per connection),
// NBIRTH and DBIRTHs with names, aliases and datatypes, then DDATA by alias only, rate messages a second per
// device, each with the metrics that changed; sequence numbers per edge node. Now and then a device dies
// (DDEATH) and is born again a few seconds later, and every few minutes the edge node itself dies (an NDEATH
// before it disconnects) and reconnects with the next bdSeq. An NCMD Node Control/Rebirth makes it publish its
// births again with the same bdSeq.

const (
	spGroup = "plant1"
	spNode  = "devsim-edge"
)

// How often a device and the edge node die (variables for the tests).
var (
	spDeviceDeathEvery = 75 * time.Second
	spDeviceDeadFor    = 5 * time.Second
	spNodeDeathEvery   = 5 * time.Minute
)

// spDevice is one simulated device.
type spSimDevice struct {
	id        string
	alive     bool
	deadUntil time.Time
	phase     float64
	counter   uint64
}

// spEdge is one session of the edge node: its client, bdSeq and sequence numbers.
type spEdge struct {
	c       paho.Client
	bdSeq   uint64
	seq     uint64
	started time.Time
	devices []*spSimDevice
}

func (e *spEdge) topic(typ, device string) string {
	t := "spBv1.0/" + spGroup + "/" + typ + "/" + spNode
	if device != "" {
		t += "/" + device
	}
	return t
}

func spMetric(name string, alias uint64, typ sparkplugb.DataType, ts uint64, set func(*sparkplugb.Payload_Metric_builder)) *sparkplugb.Payload_Metric {
	b := &sparkplugb.Payload_Metric_builder{Timestamp: proto.Uint64(ts)}
	if name != "" { // births: name, alias and datatype; data: the alias alone
		b.Name, b.Datatype = proto.String(name), proto.Uint32(uint32(typ))
	}
	if alias != 0 {
		b.Alias = proto.Uint64(alias)
	}
	set(b)
	return b.Build()
}

// publish sends a payload on the edge node's topic; seq is added but to NDEATH.
func (e *spEdge) publish(typ, device string, ms ...*sparkplugb.Payload_Metric) error {
	p := sparkplugb.Payload_builder{Timestamp: proto.Uint64(uint64(time.Now().UnixMilli())), Metrics: ms}
	if typ != "NDEATH" {
		p.Seq = proto.Uint64(e.seq % 256)
		e.seq++
	}
	b, err := proto.Marshal(p.Build())
	if err != nil {
		return err
	}
	tok := e.c.Publish(e.topic(typ, device), 0, false, b)
	if !tok.WaitTimeout(5 * time.Second) {
		return errors.New("publish timed out")
	}
	return tok.Error()
}

func (e *spEdge) bdSeqMetric() *sparkplugb.Payload_Metric {
	return spMetric("bdSeq", 0, sparkplugb.DataType_Int64, uint64(time.Now().UnixMilli()), func(b *sparkplugb.Payload_Metric_builder) {
		b.LongValue = proto.Uint64(e.bdSeq)
	})
}

// births publishes the NBIRTH and the DBIRTH of every living device, sequence numbers from 0.
func (e *spEdge) births(now time.Time) error {
	e.seq = 0
	ts := uint64(now.UnixMilli())
	err := e.publish("NBIRTH", "", e.bdSeqMetric(),
		spMetric("Node Control/Rebirth", 0, sparkplugb.DataType_Boolean, ts, func(b *sparkplugb.Payload_Metric_builder) { b.BooleanValue = proto.Bool(false) }),
		spMetric("Properties/Firmware", 1, sparkplugb.DataType_String, ts, func(b *sparkplugb.Payload_Metric_builder) { b.StringValue = proto.String("devsim 1.0") }),
		spMetric("uptime_s", 2, sparkplugb.DataType_Int64, ts, func(b *sparkplugb.Payload_Metric_builder) {
			b.LongValue = proto.Uint64(uint64(now.Sub(e.started).Seconds()))
		}))
	if err != nil {
		return err
	}
	for _, d := range e.devices {
		if d.alive {
			if err := e.publish("DBIRTH", d.id, d.metrics(now, true)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// metrics returns the device's metrics now: all of them with names (a birth), or by alias the ones that change
// every time plus some of the others.
func (d *spSimDevice) metrics(now time.Time, birth bool) []*sparkplugb.Payload_Metric {
	ts := uint64(now.UnixMilli())
	t := float64(now.UnixMilli()) / 1000
	name := func(n string) string {
		if birth {
			return n
		}
		return ""
	}
	some := func() bool { return birth || rand.IntN(4) == 0 }
	var ms []*sparkplugb.Payload_Metric
	add := func(n string, alias uint64, typ sparkplugb.DataType, set func(*sparkplugb.Payload_Metric_builder)) {
		ms = append(ms, spMetric(name(n), alias, typ, ts, set))
	}
	switch d.id {
	case "press-01":
		d.counter++
		add("pressure", 10, sparkplugb.DataType_Double, func(b *sparkplugb.Payload_Metric_builder) {
			b.DoubleValue = proto.Float64(roundTo(180+15*math.Sin(t/20+d.phase)+rand.NormFloat64(), 2))
		})
		add("cycles", 12, sparkplugb.DataType_UInt32, func(b *sparkplugb.Payload_Metric_builder) { b.IntValue = proto.Uint32(uint32(d.counter)) })
		if some() {
			add("temperature", 11, sparkplugb.DataType_Float, func(b *sparkplugb.Payload_Metric_builder) {
				b.FloatValue = proto.Float32(float32(roundTo(45+5*math.Sin(t/300+d.phase), 1)))
			})
			running := int(t/90)%4 != 3
			add("running", 13, sparkplugb.DataType_Boolean, func(b *sparkplugb.Payload_Metric_builder) { b.BooleanValue = proto.Bool(running) })
			state := "running"
			if !running {
				state = "idle"
			}
			add("state", 14, sparkplugb.DataType_String, func(b *sparkplugb.Payload_Metric_builder) { b.StringValue = proto.String(state) })
		}
	case "oven-01":
		zones := make([]byte, 16)
		for z := range 4 {
			v := float32(roundTo(220+float64(z)*5+3*math.Sin(t/60+float64(z)+d.phase)+rand.NormFloat64()*0.2, 1))
			binary.LittleEndian.PutUint32(zones[4*z:], math.Float32bits(v))
		}
		add("zones", 20, sparkplugb.DataType_FloatArray, func(b *sparkplugb.Payload_Metric_builder) { b.BytesValue = zones })
		if some() {
			add("setpoint", 21, sparkplugb.DataType_Double, func(b *sparkplugb.Payload_Metric_builder) { b.DoubleValue = proto.Float64(225) })
			add("door_open", 22, sparkplugb.DataType_Boolean, func(b *sparkplugb.Payload_Metric_builder) { b.BooleanValue = proto.Bool(rand.IntN(20) == 0) })
			alarm := int16(0)
			if rand.IntN(10) == 0 {
				alarm = -int16(1 + rand.IntN(5)) // negative codes: two's complement on the wire
			}
			add("alarm", 23, sparkplugb.DataType_Int16, func(b *sparkplugb.Payload_Metric_builder) { b.IntValue = proto.Uint32(uint32(int32(alarm))) })
		}
	case "filler-01":
		d.counter += uint64(1 + rand.IntN(3))
		add("level", 30, sparkplugb.DataType_Double, func(b *sparkplugb.Payload_Metric_builder) {
			b.DoubleValue = proto.Float64(roundTo(50+40*math.Sin(t/45+d.phase), 1))
		})
		add("bottles", 31, sparkplugb.DataType_Int64, func(b *sparkplugb.Payload_Metric_builder) { b.LongValue = proto.Uint64(d.counter) })
		if some() {
			add("recipe", 32, sparkplugb.DataType_String, func(b *sparkplugb.Payload_Metric_builder) { b.StringValue = proto.String("cola-330ml") })
			add("last_batch", 33, sparkplugb.DataType_DateTime, func(b *sparkplugb.Payload_Metric_builder) {
				b.LongValue = proto.Uint64(uint64(now.Truncate(10 * time.Minute).UnixMilli()))
			})
		}
	}
	return ms
}

// runSparkplugNode runs the edge node against the broker at brokerURL, rate DDATA messages a second per device,
// until ctx ends; then it returns nil. It reconnects by itself, with the next bdSeq.
func runSparkplugNode(ctx context.Context, brokerURL string, rate float64, log *slog.Logger) error {
	if rate <= 0 {
		return errors.New("sparkplug rate must be positive")
	}
	devices := []*spSimDevice{{id: "press-01", alive: true}, {id: "oven-01", alive: true}, {id: "filler-01", alive: true}}
	for _, d := range devices {
		d.phase = rand.Float64() * 6
	}
	started := time.Now()
	for bdSeq := uint64(0); ; bdSeq = (bdSeq + 1) % 256 {
		e := &spEdge{bdSeq: bdSeq, started: started, devices: devices}
		err := e.session(ctx, brokerURL, rate, log)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Warn("sparkplug edge node session ended", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// session is one connection of the edge node, until ctx ends, the connection drops or it is time to die.
func (e *spEdge) session(ctx context.Context, brokerURL string, rate float64, log *slog.Logger) error {
	will, err := proto.Marshal(sparkplugb.Payload_builder{Timestamp: proto.Uint64(uint64(time.Now().UnixMilli())),
		Metrics: []*sparkplugb.Payload_Metric{e.bdSeqMetric()}}.Build())
	if err != nil {
		return err
	}
	lost := make(chan struct{})
	o := paho.NewClientOptions().AddBroker(brokerURL).SetClientID("devsim-sparkplug").SetCleanSession(true).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5*time.Second).
		SetBinaryWill(e.topic("NDEATH", ""), will, 1, false).
		SetConnectionLostHandler(func(paho.Client, error) { close(lost) })
	e.c = paho.NewClient(o)
	if tok := e.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("connect: %v", tok.Error())
	}
	defer e.c.Disconnect(250)
	rebirth := make(chan struct{}, 1)
	tok := e.c.Subscribe(e.topic("NCMD", ""), 1, func(_ paho.Client, m paho.Message) {
		p := new(sparkplugb.Payload)
		if proto.Unmarshal(m.Payload(), p) != nil {
			return
		}
		for _, mt := range p.GetMetrics() {
			if mt.GetName() == "Node Control/Rebirth" && mt.GetBooleanValue() {
				select {
				case rebirth <- struct{}{}:
				default:
				}
			}
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscribe: %v", tok.Error())
	}
	if err := e.births(time.Now()); err != nil {
		return err
	}
	log.Info("sparkplug edge node born", "group", spGroup, "edge_node", spNode, "bd_seq", e.bdSeq)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	die := time.After(spNodeDeathEvery + time.Duration(rand.Float64()*float64(spNodeDeathEvery)/5))
	nextDeviceDeath := time.Now().Add(spDeviceDeathEvery)
	for {
		select {
		case <-ctx.Done():
			return e.publish("NDEATH", "", e.bdSeqMetric()) // an intentional disconnect: NDEATH first
		case <-lost:
			return errors.New("connection lost")
		case <-die:
			if err := e.publish("NDEATH", "", e.bdSeqMetric()); err != nil {
				return err
			}
			log.Info("sparkplug edge node died on purpose; reconnecting with the next bdSeq", "bd_seq", e.bdSeq)
			return nil
		case <-rebirth:
			log.Info("sparkplug edge node rebirth requested")
			if err := e.births(time.Now()); err != nil {
				return err
			}
		case now := <-tick.C:
			if now.After(nextDeviceDeath) {
				d := e.devices[rand.IntN(len(e.devices))]
				if d.alive {
					d.alive, d.deadUntil = false, now.Add(spDeviceDeadFor)
					if err := e.publish("DDEATH", d.id); err != nil {
						return err
					}
				}
				nextDeviceDeath = now.Add(spDeviceDeathEvery)
			}
			for _, d := range e.devices {
				switch {
				case d.alive:
					if err := e.publish("DDATA", d.id, d.metrics(now, false)...); err != nil {
						return err
					}
				case now.After(d.deadUntil):
					d.alive = true
					if err := e.publish("DBIRTH", d.id, d.metrics(now, true)...); err != nil {
						return err
					}
				}
			}
		}
	}
}
