package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// The simulated MQTT sensors of the plant. Each publishes JSON telemetry at QoS 1, rate messages a second:
//
//	plant/<line>/env-NN/telemetry    temperature/humidity sensors: {"ts":<unix ms>,"temperature":21.53,
//	                                 "humidity":41.2,"battery":{"voltage":3.61,"percent":87},"rssi":-67,
//	                                 "door_open":false,"status":"ok"}; after a minute a firmware update adds
//	                                 "co2_ppm" (a new field that must flow with no configuration change)
//	plant/<line>/vib-NN/vibration    vibration sensors: {"ts":..,"rms":..,"samples":[{"t":<unix us>,"x":..,
//	                                 "y":..,"z":..}, ...]}: 10 samples per message, spread over its interval
//	plant/<line>/meter-NN/energy     energy meters: {"time":"<RFC 3339>","power_w":..,"energy_kwh":..,"pf":..,
//	                                 "phase":{"l1":{"v":..,"a":..},"l2":..,"l3":..}}
//	plant/<line>/pump-NN/state       a plain value, "running" or "stopped", at a tenth of the rate
//
// About one message in 500 is malformed (truncated JSON), to show dead letters. The matching gateway input is
// protocols/mqtt/testdata/mqtt-sensors.yaml.

// sensor is one simulated device; next returns its topic and payload for the message at time now.
type sensor struct {
	topic string
	kind  string // env, vib, meter, pump
	n     int    // messages sent
	phase float64
	energ float64 // energy meter reading, kWh
	stepU int64   // vibration: microseconds between samples
}

const (
	malformedEvery = 500         // about one message in this many is malformed
	newFieldAfter  = time.Minute // when the env sensors' firmware update adds co2_ppm
)

func newSensors(rate float64) []*sensor {
	step := max(int64(1e6/rate/10), 1)
	var ss []*sensor
	for _, line := range []string{"line1", "line2"} {
		for i := 1; i <= 2; i++ {
			ss = append(ss, &sensor{topic: fmt.Sprintf("plant/%s/env-%02d/telemetry", line, i), kind: "env", phase: rand.Float64() * 6})
		}
		ss = append(ss,
			&sensor{topic: "plant/" + line + "/vib-01/vibration", kind: "vib", phase: rand.Float64() * 6, stepU: step},
			&sensor{topic: "plant/" + line + "/meter-01/energy", kind: "meter", energ: 1000 + rand.Float64()*500},
			&sensor{topic: "plant/" + line + "/pump-01/state", kind: "pump"},
		)
	}
	return ss
}

func roundTo(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}

// next returns the payload of the sensor's next message; ok is false when this sensor skips this tick.
func (s *sensor) next(now time.Time, started time.Time) (payload []byte, ok bool) {
	s.n++
	t := float64(now.UnixMilli()) / 1000
	ms := now.UnixMilli()
	switch s.kind {
	case "env":
		temp := 21 + 3*math.Sin(t/300+s.phase) + rand.NormFloat64()*0.05
		hum := 45 + 10*math.Sin(t/900+s.phase) + rand.NormFloat64()*0.2
		volt := 3.7 - float64(s.n%100000)/100000*0.5
		b := fmt.Appendf(nil, `{"ts":%d,"temperature":%s,"humidity":%s,"battery":{"voltage":%s,"percent":%d},"rssi":%d,"door_open":%t,"status":"ok"`,
			ms, ftoa(temp, 2), ftoa(hum, 1), ftoa(volt, 2), int(100*(volt-3.2)/0.5), -60-rand.IntN(20), rand.IntN(50) == 0)
		if now.Sub(started) > newFieldAfter {
			b = fmt.Appendf(b, `,"co2_ppm":%d`, 420+rand.IntN(400))
		}
		return append(b, '}'), true
	case "vib":
		b := fmt.Appendf(nil, `{"ts":%d,"rms":%s,"samples":[`, ms, ftoa(0.3+0.05*math.Sin(t+s.phase), 3))
		for i := range 10 {
			if i > 0 {
				b = append(b, ',')
			}
			us := now.UnixMicro() + int64(i)*s.stepU
			x := float64(us) / 1e6
			b = fmt.Appendf(b, `{"t":%d,"x":%s,"y":%s,"z":%s}`, us,
				ftoa(0.4*math.Sin(2*math.Pi*50*x)+rand.NormFloat64()*0.02, 4),
				ftoa(0.3*math.Sin(2*math.Pi*50*x+1)+rand.NormFloat64()*0.02, 4),
				ftoa(0.1*math.Sin(2*math.Pi*100*x)+rand.NormFloat64()*0.01, 4))
		}
		return append(b, "]}"...), true
	case "meter":
		power := 1200 + 300*math.Sin(t/120) + rand.NormFloat64()*10
		s.energ += power / 3600 / 1000 // about one reading a second
		b := fmt.Appendf(nil, `{"time":%q,"power_w":%s,"energy_kwh":%s,"pf":%s,"phase":{`,
			now.UTC().Format(time.RFC3339Nano), ftoa(power, 1), ftoa(s.energ, 4), ftoa(0.92+rand.Float64()*0.05, 3))
		for i, p := range []string{"l1", "l2", "l3"} {
			if i > 0 {
				b = append(b, ',')
			}
			b = fmt.Appendf(b, `%q:{"v":%s,"a":%s}`, p, ftoa(230+rand.NormFloat64(), 1), ftoa(power/3/230, 2))
		}
		return append(b, "}}"...), true
	case "pump":
		if s.n%10 != 1 {
			return nil, false
		}
		if int(t/60)%5 == 4 {
			return []byte("stopped"), true
		}
		return []byte("running"), true
	}
	return nil, false
}

func ftoa(f float64, digits int) string { return strconv.FormatFloat(roundTo(f, digits), 'f', -1, 64) }

// runSensors publishes the simulated sensors' telemetry to the broker at brokerURL, rate messages a second per
// sensor, at QoS 1, until ctx ends; then it returns nil. It reconnects by itself while the broker is away.
func runSensors(ctx context.Context, brokerURL string, rate float64, log *slog.Logger) error {
	if rate <= 0 {
		return errors.New("sensor rate must be positive")
	}
	o := paho.NewClientOptions().AddBroker(brokerURL).SetClientID("devsim-sensors").SetCleanSession(true).
		SetProtocolVersion(4).SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(5 * time.Second).SetOrderMatters(false).
		SetConnectionLostHandler(func(_ paho.Client, err error) { log.Warn("sensors lost the broker", "err", err) })
	c := paho.NewClient(o)
	c.Connect() // with ConnectRetry, publishing before the connection is up queues in memory
	defer c.Disconnect(250)

	sensors := newSensors(rate)
	started := time.Now()
	// Tick at most 100 times a second; each tick sends what the rate owes each sensor.
	tick := time.Duration(float64(time.Second) / min(rate, 100))
	perTick := rate * tick.Seconds()
	owed := 0.0
	t := time.NewTicker(tick)
	defer t.Stop()

	// Wait for PUBACKs off the ticking goroutine, with at most 1000 unacknowledged.
	toks := make(chan paho.Token, 1000)
	waiterDone := make(chan struct{})
	go func() {
		defer close(waiterDone)
		var failed int
		lastLog := time.Time{}
		for tok := range toks {
			select {
			case <-tok.Done():
			case <-ctx.Done():
				continue // drain without waiting
			}
			if tok.Error() != nil {
				failed++
				if time.Since(lastLog) > 10*time.Second {
					log.Warn("sensor publish failed", "err", tok.Error(), "failed_so_far", failed)
					lastLog = time.Now()
				}
			}
		}
	}()
	defer func() { close(toks); <-waiterDone }()

	var sent, malformed int
	lastReport := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			owed += perTick
			for ; owed >= 1; owed-- {
				for _, s := range sensors {
					payload, ok := s.next(now, started)
					if !ok {
						continue
					}
					if s.kind != "pump" && rand.IntN(malformedEvery) == 0 {
						payload = payload[:len(payload)/2] // truncated JSON: a dead letter at the gateway
						malformed++
					}
					select {
					case toks <- c.Publish(s.topic, 1, false, payload):
					case <-ctx.Done():
						return nil
					}
					sent++
				}
			}
			if now.Sub(lastReport) >= 30*time.Second {
				log.Info("sensors publishing", "messages", sent, "malformed", malformed, "connected", c.IsConnectionOpen())
				lastReport = now
			}
		}
	}
}
