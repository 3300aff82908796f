package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kfake"
)

// The end-to-end harness behind `make bench`: N QoS 1 messages published to a Mosquitto, received either by the
// gateway (durable buffer on, forwarding to an in-process Kafka) or by a do-nothing paho subscriber with a
// persistent session (the floor the MQTT library sets), side by side in the same run. It reports landed
// messages/s, CPU microseconds per message of the receiving process and its peak RSS.

type benchConfig struct {
	Gateway  string // path of the gateway binary
	Broker   string // tcp://127.0.0.1:PORT of a Mosquitto
	Messages int
	Rounds   int
	Payload  string // "json" (3 readings a message) or "value" (1 reading)
	Devices  int
	Profile  string // the gateway writes a CPU profile of each round to Profile.<round>
}

func runBench(ctx context.Context, args []string) error {
	var c benchConfig
	fs := flag.NewFlagSet("devsim bench", flag.ContinueOnError)
	fs.StringVar(&c.Gateway, "gateway", "bin/gateway", "gateway binary")
	fs.StringVar(&c.Broker, "mqtt", os.Getenv("FIELDGATE_TEST_MQTT"), "URL of the Mosquitto to publish to")
	fs.IntVar(&c.Messages, "n", 50000, "messages per round")
	fs.IntVar(&c.Rounds, "rounds", 2, "rounds of each (baseline and gateway alternate)")
	fs.StringVar(&c.Payload, "payload", "json", "json: a sensor object with 3 fields; value: one number")
	fs.IntVar(&c.Devices, "devices", 10, "devices (topics) the messages are spread over")
	fs.StringVar(&c.Profile, "cpuprofile", "", "have the gateway write a CPU profile of each round to `file`.<round>")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.Broker == "" {
		return errors.New("no broker: pass -mqtt tcp://127.0.0.1:PORT (or set FIELDGATE_TEST_MQTT)")
	}
	perMsg := map[string]int{"json": 3, "value": 1}[c.Payload]
	if perMsg == 0 {
		return fmt.Errorf("-payload %q: want json or value", c.Payload)
	}
	fmt.Printf("end-to-end: %d QoS 1 messages a round (%s payload, %d reading(s) each), %d devices, broker %s\n",
		c.Messages, c.Payload, perMsg, c.Devices, c.Broker)
	fmt.Printf("%-10s %5s %12s %14s %12s %10s\n", "receiver", "round", "msgs/s", "CPU µs/msg", "peak RSS MB", "landed")
	var base, gw []benchResult
	for round := 1; round <= c.Rounds; round++ {
		b, err := benchBaseline(ctx, c, round)
		if err != nil {
			return fmt.Errorf("baseline round %d: %w", round, err)
		}
		b.print("paho-sub", round)
		base = append(base, b)
		g, err := benchGateway(ctx, c, round, perMsg)
		if err != nil {
			return fmt.Errorf("gateway round %d: %w", round, err)
		}
		g.print("gateway", round)
		gw = append(gw, g)
	}
	mb, mg := median(base), median(gw)
	fmt.Printf("median: gateway rate %.0f%% of the baseline's (target >= 90%%), CPU per message %.2fx the baseline's (target <= 1.25x), peak RSS %.1f MB (target <= 40)\n",
		100*mg.rate/mb.rate, mg.cpuPerMsg/mb.cpuPerMsg, mg.rssMB)
	return nil
}

type benchResult struct {
	rate      float64 // messages per second, first publish to last landed
	cpuPerMsg float64 // microseconds of the receiving process per message
	rssMB     float64
	landed    int
}

func (r benchResult) print(who string, round int) {
	fmt.Printf("%-10s %5d %12.0f %14.1f %12.1f %10d\n", who, round, r.rate, r.cpuPerMsg, r.rssMB, r.landed)
}

func median(rs []benchResult) benchResult {
	pick := func(get func(benchResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		for i := range v {
			for j := i + 1; j < len(v); j++ {
				if v[j] < v[i] {
					v[i], v[j] = v[j], v[i]
				}
			}
		}
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return benchResult{
		rate:      pick(func(r benchResult) float64 { return r.rate }),
		cpuPerMsg: pick(func(r benchResult) float64 { return r.cpuPerMsg }),
		rssMB:     pick(func(r benchResult) float64 { return r.rssMB }),
	}
}

// benchBaseline runs `devsim baseline-subscriber` as a child and publishes to it.
func benchBaseline(ctx context.Context, c benchConfig, round int) (benchResult, error) {
	self, err := os.Executable()
	if err != nil {
		return benchResult{}, err
	}
	clientID := fmt.Sprintf("fieldgate-bench-baseline-%d-%d", os.Getpid(), round)
	cmd := exec.CommandContext(ctx, self, "baseline-subscriber", "-mqtt", c.Broker, "-client-id", clientID, "-n", strconv.Itoa(c.Messages))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return benchResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return benchResult{}, err
	}
	defer cmd.Process.Kill() //nolint:errcheck // reaped by Wait below or gone already
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "subscribed" {
		return benchResult{}, fmt.Errorf("baseline subscriber did not subscribe: %q %v", lines.Text(), lines.Err())
	}
	cpu0, err := processCPU(cmd.Process.Pid)
	if err != nil {
		return benchResult{}, err
	}
	start := time.Now()
	if err := publish(ctx, c, "base"); err != nil {
		return benchResult{}, err
	}
	var received int
	for lines.Scan() {
		if n, err := strconv.Atoi(strings.TrimPrefix(lines.Text(), "received ")); err == nil {
			received = n
			break
		}
	}
	elapsed := time.Since(start)
	cpu1, err := processCPU(cmd.Process.Pid)
	if err != nil {
		return benchResult{}, err
	}
	rss, _ := peakRSS(cmd.Process.Pid)
	lines.Scan() // the subscriber exits after its report
	_ = cmd.Wait()
	return benchResult{
		rate:      float64(received) / elapsed.Seconds(),
		cpuPerMsg: float64((cpu1 - cpu0).Microseconds()) / float64(received),
		rssMB:     rss,
		landed:    received,
	}, nil
}

// runBaselineSubscriber is the do-nothing QoS 1 subscriber with a persistent session: the floor the MQTT
// library itself sets. It prints "subscribed", then "received N" once N messages arrived, then waits for the
// harness to read its CPU figures and exits on stdin close or after a few seconds.
func runBaselineSubscriber(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devsim baseline-subscriber", flag.ContinueOnError)
	broker := fs.String("mqtt", "", "broker URL")
	clientID := fs.String("client-id", "fieldgate-bench-baseline", "client id")
	n := fs.Int("n", 0, "messages to wait for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var got atomic.Int64
	done := make(chan struct{})
	opts := paho.NewClientOptions().AddBroker(*broker).SetClientID(*clientID).SetCleanSession(false).
		SetOrderMatters(true)
	opts.SetDefaultPublishHandler(func(paho.Client, paho.Message) {
		if got.Add(1) == int64(*n) {
			close(done)
		}
	})
	cl := paho.NewClient(opts)
	if t := cl.Connect(); t.Wait() && t.Error() != nil {
		return t.Error()
	}
	if t := cl.Subscribe("bench/+/telemetry", 1, nil); t.Wait() && t.Error() != nil {
		return t.Error()
	}
	fmt.Println("subscribed")
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Println("received", got.Load())
	time.Sleep(500 * time.Millisecond) // the harness reads /proc now
	cl.Disconnect(100)
	fmt.Println("bye")
	return nil
}

// benchGateway runs the gateway binary against an in-process Kafka and publishes to it.
func benchGateway(ctx context.Context, c benchConfig, round, perMsg int) (benchResult, error) {
	dir, err := os.MkdirTemp("", "fieldgate-bench-")
	if err != nil {
		return benchResult{}, err
	}
	defer os.RemoveAll(dir)
	kafkaPort, httpPort := freePort(), freePort()
	cluster, err := kfake.NewCluster(kfake.Ports(kafkaPort), kfake.SeedTopics(6, "fieldgate.readings"))
	if err != nil {
		return benchResult{}, err
	}
	defer cluster.Close()
	landed := func() int {
		var n int64
		for _, p := range cluster.PartitionInfos("fieldgate.readings") {
			n += p.HighWatermark
		}
		return int(n)
	}
	cfg := fmt.Sprintf(`gateway_id: bench
state_dir: %s
log: {level: warn}
http: {listen: 127.0.0.1:%d}
kafka:
  brokers: [127.0.0.1:%d]
  topic: fieldgate.readings
mqtt:
  - name: bench
    broker: %s
    client_id: fieldgate-bench-gw-%d-%d
    subscriptions:
      - topic: bench/{device}/telemetry
        qos: 1
        format: %s
        metric: value
%s`, dir, httpPort, kafkaPort, c.Broker, os.Getpid(), round, c.Payload, timestampLine(c.Payload))
	cfgPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return benchResult{}, err
	}
	args := []string{"run", "-config", cfgPath}
	if c.Profile != "" {
		args = append(args, "-cpuprofile", fmt.Sprintf("%s.%d", c.Profile, round))
	}
	cmd := exec.CommandContext(ctx, c.Gateway, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return benchResult{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	// Warm up: one message per device must land, so the subscription and the Kafka connection are up.
	warm := benchConfig{Broker: c.Broker, Messages: c.Devices, Devices: c.Devices, Payload: c.Payload}
	deadline := time.Now().Add(30 * time.Second)
	for landed() < c.Devices*perMsg {
		if time.Now().After(deadline) {
			return benchResult{}, fmt.Errorf("warm-up readings did not land in Kafka within 30 s (see the gateway log above)")
		}
		if err := publish(ctx, warm, "warm"); err != nil {
			return benchResult{}, err
		}
		time.Sleep(500 * time.Millisecond)
	}
	waitQuiet(landed)
	before := landed()
	cpu0, err := processCPU(cmd.Process.Pid)
	if err != nil {
		return benchResult{}, err
	}
	start := time.Now()
	if err := publish(ctx, c, "gw"); err != nil {
		return benchResult{}, err
	}
	want := before + c.Messages*perMsg
	deadline = time.Now().Add(5 * time.Minute)
	for landed() < want && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu1, err := processCPU(cmd.Process.Pid)
	if err != nil {
		return benchResult{}, err
	}
	rss, _ := peakRSS(cmd.Process.Pid)
	got := (landed() - before) / perMsg
	if got < c.Messages {
		return benchResult{}, fmt.Errorf("only %d of %d messages landed in Kafka within 5 minutes", got, c.Messages)
	}
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort)); err != nil {
		return benchResult{}, fmt.Errorf("gateway health endpoint: %w", err)
	}
	return benchResult{
		rate:      float64(got) / elapsed.Seconds(),
		cpuPerMsg: float64((cpu1 - cpu0).Microseconds()) / float64(got),
		rssMB:     rss,
		landed:    got,
	}, nil
}

// timestampLine maps the json payload's "ts" field to the source time (so it is not a metric of its own).
func timestampLine(payload string) string {
	if payload == "json" {
		return "        timestamp: {path: ts, format: unix_ms}\n"
	}
	return ""
}

// waitQuiet returns once count stops changing for 300 ms.
func waitQuiet(count func() int) {
	last, since := count(), time.Now()
	for time.Since(since) < 300*time.Millisecond {
		time.Sleep(20 * time.Millisecond)
		if n := count(); n != last {
			last, since = n, time.Now()
		}
	}
}

// publish sends c.Messages QoS 1 messages round-robin over c.Devices topics, keeping up to 256 unacknowledged,
// and returns when the broker acknowledged all of them.
func publish(ctx context.Context, c benchConfig, tag string) error {
	opts := paho.NewClientOptions().AddBroker(c.Broker).
		SetClientID(fmt.Sprintf("fieldgate-bench-pub-%s-%d", tag, os.Getpid())).SetCleanSession(true)
	cl := paho.NewClient(opts)
	if t := cl.Connect(); t.Wait() && t.Error() != nil {
		return t.Error()
	}
	defer cl.Disconnect(100)
	window := make(chan paho.Token, 256)
	errc := make(chan error, 1)
	go func() {
		var first error
		for t := range window {
			if t.Wait() && t.Error() != nil && first == nil {
				first = t.Error()
			}
		}
		errc <- first
	}()
	ts := time.Now().UnixMilli()
	for i := 0; i < c.Messages && ctx.Err() == nil; i++ {
		dev := i % c.Devices
		var payload string
		if c.Payload == "value" {
			payload = strconv.FormatFloat(20+float64(i%1000)/100, 'f', 2, 64)
		} else {
			payload = fmt.Sprintf(`{"ts":%d,"temperature":%.2f,"humidity":%.1f,"battery":%d}`,
				ts+int64(i/c.Devices), 20+float64(i%1000)/100, 40+float64(i%300)/10, 100-i%100)
		}
		window <- cl.Publish(fmt.Sprintf("bench/dev%03d/telemetry", dev), 1, false, payload)
	}
	close(window)
	if err := <-errc; err != nil {
		return err
	}
	return ctx.Err()
}

// processCPU returns the user plus system CPU time the process used so far.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clkTck, nil
}

// peakRSS returns the process's peak resident set size in MB (VmHWM).
func peakRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, err := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmHWM")
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
