package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldgate/fieldgate"
)

// The end-to-end harness behind `make bench`. QoS 1 messages are published to a Mosquitto and received either by
// the gateway (durable buffer on, forwarding to an in-process Kafka) or by a do-nothing paho subscriber with a
// persistent session (the floor the MQTT library sets), one after the other in the same run.
//
// Two modes:
//   - full speed (default): N messages as fast as one publisher can; it reports landed messages/s, CPU per message
//     of the receiving process and its peak RSS, beside a subscriber with paho's automatic acknowledgements.
//   - steady (-rate R -duration D): R messages a second for D, as a plant sends them. Beside the gateway run two
//     do-nothing subscribers with manual acknowledgements: "batched" releases them when 20 wait (Mosquitto's
//     default in-flight limit) or every 40 ms, as a group-committing receiver would; "each" acknowledges every
//     message at once; "durable" acknowledges in batches as "batched" does, but only after committing the batch's
//     payloads to a bbolt file (one transaction, fsynced) and deleting the previous batch's: the floor any durable
//     receiver pays, forwarding aside. It reports CPU per message, and for the gateway also the bytes it wrote to
//     disk per reading (/proc/PID/io write_bytes), buffer commits and fsyncs per second, and the latency from
//     publish to Kafka.
//
// The steady mode also reports the gateway's largest Go heap in use its /metrics showed during the run. With
// -exec (steady mode only) the gateway runs under an emulator (`-exec qemu-aarch64-static -gateway bin/linux-arm64/gateway`) and the
// baselines are left out: emulated CPU figures compare with nothing, and the resident size includes the emulator,
// so the Go heap is the figure to compare with the native gateway's.

type benchConfig struct {
	Gateway  string // path of the gateway binary
	Exec     string // an emulator command the gateway runs under (e.g. "qemu-aarch64-static"); empty: natively
	Broker   string // tcp://127.0.0.1:PORT of a Mosquitto
	Messages int
	Rounds   int
	Payload  string // "json" (3 readings a message) or "value" (1 reading)
	Devices  int
	Profile  string        // the gateway writes a CPU profile of each round to Profile.<round>
	Rate     float64       // steady mode: messages per second; 0 is full speed
	Duration time.Duration // steady mode: how long to publish
	Buffer   string        // extra YAML lines for the gateway's buffer section (e.g. "commit_interval: 100ms")
	Input    string        // extra YAML lines for the gateway's MQTT input (e.g. "max_inflight: 1000")
	Verbose  bool          // print the gateway's counters that changed during the run
}

func runBench(ctx context.Context, args []string) error {
	var c benchConfig
	fs := flag.NewFlagSet("devsim bench", flag.ContinueOnError)
	fs.StringVar(&c.Gateway, "gateway", "bin/gateway", "gateway binary")
	fs.StringVar(&c.Exec, "exec", "", "run the gateway under this emulator `command` (e.g. qemu-aarch64-static) and skip the baselines")
	fs.StringVar(&c.Broker, "mqtt", os.Getenv("FIELDGATE_TEST_MQTT"), "URL of the Mosquitto to publish to")
	fs.IntVar(&c.Messages, "n", 50000, "full speed: messages per round")
	fs.IntVar(&c.Rounds, "rounds", 2, "rounds of each receiver (they alternate)")
	fs.StringVar(&c.Payload, "payload", "json", "json: a sensor object with a timestamp and 3 fields; value: one number")
	fs.IntVar(&c.Devices, "devices", 10, "devices (topics) the messages are spread over")
	fs.StringVar(&c.Profile, "cpuprofile", "", "have the gateway write a CPU profile of each round to `file`.<round>")
	fs.Float64Var(&c.Rate, "rate", 0, "steady mode: publish this many messages per second (0: full speed)")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "steady mode: how long to publish")
	fs.StringVar(&c.Buffer, "buffer", "", "extra settings of the gateway's buffer, as YAML `key: value` pairs separated by ';'")
	fs.StringVar(&c.Input, "input", "", "extra settings of the gateway's MQTT input, as YAML `key: value` pairs separated by ';'")
	fs.BoolVar(&c.Verbose, "v", false, "print the gateway's counters that changed during each run")
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
	if c.Rate > 0 {
		return runSteady(ctx, c, perMsg)
	}
	if c.Exec != "" {
		return errors.New("-exec needs steady mode (-rate)")
	}
	fmt.Printf("end-to-end at full speed: %d QoS 1 messages a round (%s payload, %d reading(s) each), %d devices, broker %s\n",
		c.Messages, c.Payload, perMsg, c.Devices, c.Broker)
	fmt.Printf("%-12s %5s %12s %14s %12s %10s\n", "receiver", "round", "msgs/s", "CPU µs/msg", "peak RSS MB", "landed")
	var base, gw []benchResult
	for round := 1; round <= c.Rounds; round++ {
		b, err := benchBaseline(ctx, c, round, "auto")
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
	mb, mg := medianOf(base), medianOf(gw)
	fmt.Printf("median: gateway rate %.0f%% of the baseline's (target >= 90%%), CPU per message %.2fx the baseline's (target <= 1.25x), peak RSS %.1f MB (target <= 40)\n",
		100*mg.rate/mb.rate, mg.cpuPerMsg/mb.cpuPerMsg, mg.rssMB)
	return nil
}

// runSteady runs the steady mode: per round, the batched and the each-at-once subscriber, then the gateway.
func runSteady(ctx context.Context, c benchConfig, perMsg int) error {
	n := int(c.Rate * c.Duration.Seconds())
	c.Messages = n
	fmt.Printf("end-to-end at a steady %.0f msg/s for %s: %d QoS 1 messages a round (%s payload, %d reading(s) each), %d devices, broker %s\n",
		c.Rate, c.Duration, n, c.Payload, perMsg, c.Devices, c.Broker)
	fmt.Printf("%-12s %5s %11s %10s %10s %9s %9s %8s %8s %8s %8s %8s\n", "receiver", "round", "CPU µs/msg", "core %",
		"disk B/rdg", "commits/s", "fsyncs/s", "p50 ms", "p99 ms", "max ms", "RSS MB", "heap MiB")
	modes := []string{"batched", "each", "durable"}
	if c.Exec != "" {
		modes = nil
	}
	var batched, each, durable, gw []benchResult
	for round := 1; round <= c.Rounds; round++ {
		for _, mode := range modes {
			b, err := benchBaseline(ctx, c, round, mode)
			if err != nil {
				return fmt.Errorf("baseline (%s acks) round %d: %w", mode, round, err)
			}
			b.printSteady("paho-"+mode, round)
			switch mode {
			case "batched":
				batched = append(batched, b)
			case "each":
				each = append(each, b)
			default:
				durable = append(durable, b)
			}
		}
		g, err := benchGateway(ctx, c, round, perMsg)
		if err != nil {
			return fmt.Errorf("gateway round %d: %w", round, err)
		}
		g.printSteady("gateway", round)
		gw = append(gw, g)
	}
	mg := medianOf(gw)
	if c.Exec != "" {
		fmt.Printf("median at %.0f msg/s, gateway under %s: peak RSS %.1f MB (emulator included), Go heap %.1f MiB; p99 publish -> Kafka %.1f ms\n",
			c.Rate, c.Exec, mg.rssMB, mg.heapMB, mg.p99)
		return nil
	}
	mb, me, md := medianOf(batched), medianOf(each), medianOf(durable)
	wire := float64(wireSize(c.Payload))
	fmt.Printf("median at %.0f msg/s: gateway CPU per message %.2fx the batched-ack subscriber's (target <= 1.5x; %.2fx the each-ack one's;"+
		" %.2fx the durable one's, which commits each batch to bbolt before acknowledging it); disk %.0f B per reading = %.1fx its wire size of %.0f B (target <= 4x);"+
		" %.1f commits/s, %.1f fsyncs/s; p99 publish -> Kafka %.1f ms; peak RSS %.1f MB, Go heap %.1f MiB\n",
		c.Rate, mg.cpuPerMsg/mb.cpuPerMsg, mg.cpuPerMsg/me.cpuPerMsg, mg.cpuPerMsg/md.cpuPerMsg, mg.diskPerReading, mg.diskPerReading/wire, wire,
		mg.commitsPerSec, mg.fsyncsPerSec, mg.p99, mg.rssMB, mg.heapMB)
	return nil
}

// wireSize is the size of one reading of the payload in fieldgate's wire format, as the buffer stores it.
func wireSize(payload string) int {
	r := fieldgate.Reading{Device: "dev003", Metric: "temperature", Value: fieldgate.Float(21.37), Quality: fieldgate.Good,
		SourceTime: time.Now(), GatewayTime: time.Now()}
	if payload == "value" {
		r.Metric, r.SourceTime = "value", time.Time{}
	}
	b, _ := fieldgate.AppendEncode(nil, r)
	return len(b)
}

type benchResult struct {
	rate      float64 // messages per second, first publish to last landed
	cpuPerMsg float64 // microseconds of the receiving process per message
	corePct   float64 // CPU of the receiving process as a share of one core, over the run
	rssMB     float64 // peak resident set size (VmHWM)
	landed    int

	// gateway only, steady mode
	heapMB         float64 // the largest go_memstats_heap_inuse_bytes its /metrics showed during the run, MiB
	diskPerReading float64 // bytes the process wrote to storage per reading
	commitsPerSec  float64
	fsyncsPerSec   float64
	p50, p99, pmax float64 // milliseconds from publish to the reading in Kafka
}

func (r benchResult) print(who string, round int) {
	fmt.Printf("%-12s %5d %12.0f %14.1f %12.1f %10d\n", who, round, r.rate, r.cpuPerMsg, r.rssMB, r.landed)
}

func (r benchResult) printSteady(who string, round int) {
	dash := func(v float64, format string) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf(format, v)
	}
	fmt.Printf("%-12s %5d %11.1f %10.1f %10s %9s %9s %8s %8s %8s %8.1f %8s\n", who, round, r.cpuPerMsg, r.corePct,
		dash(r.diskPerReading, "%.0f"), dash(r.commitsPerSec, "%.1f"), dash(r.fsyncsPerSec, "%.1f"),
		dash(r.p50, "%.1f"), dash(r.p99, "%.1f"), dash(r.pmax, "%.1f"), r.rssMB, dash(r.heapMB, "%.1f"))
}

func medianOf(rs []benchResult) benchResult {
	pick := func(get func(benchResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return benchResult{
		rate:           pick(func(r benchResult) float64 { return r.rate }),
		cpuPerMsg:      pick(func(r benchResult) float64 { return r.cpuPerMsg }),
		corePct:        pick(func(r benchResult) float64 { return r.corePct }),
		rssMB:          pick(func(r benchResult) float64 { return r.rssMB }),
		heapMB:         pick(func(r benchResult) float64 { return r.heapMB }),
		diskPerReading: pick(func(r benchResult) float64 { return r.diskPerReading }),
		commitsPerSec:  pick(func(r benchResult) float64 { return r.commitsPerSec }),
		fsyncsPerSec:   pick(func(r benchResult) float64 { return r.fsyncsPerSec }),
		p50:            pick(func(r benchResult) float64 { return r.p50 }),
		p99:            pick(func(r benchResult) float64 { return r.p99 }),
		pmax:           pick(func(r benchResult) float64 { return r.pmax }),
	}
}

// benchBaseline runs `devsim baseline-subscriber` with the given acknowledgement mode as a child and publishes
// to it.
func benchBaseline(ctx context.Context, c benchConfig, round int, ack string) (benchResult, error) {
	self, err := os.Executable()
	if err != nil {
		return benchResult{}, err
	}
	clientID := fmt.Sprintf("fieldgate-bench-baseline-%s-%d-%d", ack, os.Getpid(), round)
	cmd := exec.CommandContext(ctx, self, "baseline-subscriber", "-mqtt", c.Broker, "-client-id", clientID,
		"-n", strconv.Itoa(c.Messages), "-ack", ack)
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
	p0, err := readProc(cmd.Process.Pid)
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
	p1, err := readProc(cmd.Process.Pid)
	if err != nil {
		return benchResult{}, err
	}
	lines.Scan() // the subscriber exits after its report
	_ = cmd.Wait()
	return p1.result(p0, received, elapsed), nil
}

// runBaselineSubscriber is the do-nothing QoS 1 subscriber with a persistent session: the floor the MQTT
// library itself sets. It prints "subscribed", then "received N" once N messages arrived, then waits for the
// harness to read its CPU figures and exits.
//
// -ack auto leaves acknowledging to paho; "each" acknowledges every message from the handler; "batched" holds
// the acknowledgements until 20 wait (Mosquitto's default in-flight limit) or 40 ms passed, as a receiver that
// group-commits would; "durable" does as "batched", committing the batch to a bbolt file first.
func runBaselineSubscriber(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devsim baseline-subscriber", flag.ContinueOnError)
	broker := fs.String("mqtt", "", "broker URL")
	clientID := fs.String("client-id", "fieldgate-bench-baseline", "client id")
	n := fs.Int("n", 0, "messages to wait for")
	ack := fs.String("ack", "auto", "auto, each, batched or durable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var store *durableBatches
	if *ack == "durable" {
		var err error
		if store, err = openDurableBatches(); err != nil {
			return err
		}
		defer store.close()
	}
	var (
		got     atomic.Int64
		done    = make(chan struct{})
		mu      sync.Mutex
		pending []paho.Message
	)
	release := func() {
		mu.Lock()
		if store != nil && len(pending) > 0 {
			if err := store.commit(pending); err != nil {
				mu.Unlock()
				fmt.Fprintln(os.Stderr, "durable subscriber:", err)
				return
			}
		}
		for _, m := range pending {
			m.Ack()
		}
		pending = pending[:0]
		mu.Unlock()
	}
	opts := paho.NewClientOptions().AddBroker(*broker).SetClientID(*clientID).SetCleanSession(false).
		SetOrderMatters(true).SetAutoAckDisabled(*ack != "auto")
	opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		switch *ack {
		case "each":
			m.Ack()
		case "batched", "durable":
			mu.Lock()
			pending = append(pending, m)
			full := len(pending) >= 20
			mu.Unlock()
			if full {
				release()
			}
		}
		if got.Add(1) == int64(*n) {
			close(done)
		}
	})
	if *ack == "batched" || *ack == "durable" {
		t := time.NewTicker(40 * time.Millisecond)
		defer t.Stop()
		go func() {
			for range t.C {
				release()
			}
		}()
	}
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
	release()
	// Leave no subscribed session behind: the broker would queue the next runs' messages for it.
	cl.Unsubscribe("bench/+/telemetry").WaitTimeout(time.Second)
	cl.Disconnect(100)
	fmt.Println("bye")
	return nil
}

// dropSession ends the broker's persistent session of clientID (a clean-session connect), so that the broker
// does not queue later runs' messages for a receiver that is gone.
func dropSession(broker, clientID string) {
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(true))
	if t := cl.Connect(); t.WaitTimeout(5*time.Second) && t.Error() == nil {
		cl.Disconnect(100)
	}
}

// durableBatches is the durable baseline's store: each batch of messages is put into a bbolt file in one
// transaction (fsynced), and the previous batch deleted in it, as a store-and-forward receiver whose forwarding
// costs nothing would.
type durableBatches struct {
	dir  string
	db   *bolt.DB
	prev [][]byte
}

func openDurableBatches() (*durableBatches, error) {
	dir, err := os.MkdirTemp("", "fieldgate-bench-durable-")
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "batches.db"), 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &durableBatches{dir: dir, db: db}, nil
}

func (d *durableBatches) commit(ms []paho.Message) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("m"))
		if err != nil {
			return err
		}
		b.FillPercent = 1
		for _, k := range d.prev {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		d.prev = d.prev[:0]
		for _, m := range ms {
			seq, _ := b.NextSequence()
			k := binary.BigEndian.AppendUint64(nil, seq)
			if err := b.Put(k, m.Payload()); err != nil {
				return err
			}
			d.prev = append(d.prev, k)
		}
		return nil
	})
}

func (d *durableBatches) close() {
	d.db.Close()
	os.RemoveAll(d.dir)
}

// benchGateway runs the gateway binary against an in-process Kafka and publishes to it.
func benchGateway(ctx context.Context, c benchConfig, round, perMsg int) (benchResult, error) {
	dir, err := os.MkdirTemp("", "fieldgate-bench-")
	if err != nil {
		return benchResult{}, err
	}
	defer os.RemoveAll(dir)
	kafkaPort, httpPort := freePort(), freePort()
	clientID := fmt.Sprintf("fieldgate-bench-gw-%d-%d", os.Getpid(), round)
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
	yamlLines := func(kvs, indent string) string {
		var out string
		for _, kv := range strings.Split(kvs, ";") {
			if kv = strings.TrimSpace(kv); kv != "" {
				out += "\n" + indent + kv
			}
		}
		return out
	}
	cfg := fmt.Sprintf(`gateway_id: bench
state_dir: %s
log: {level: warn}
http: {listen: 127.0.0.1:%d}
buffer:
  max_bytes: 256MiB%s
kafka:
  brokers: [127.0.0.1:%d]
  topic: fieldgate.readings
mqtt:
  - name: bench
    broker: %s
    client_id: %s%s
    subscriptions:
      - topic: bench/{device}/telemetry
        qos: 1
        format: %s
        metric: value
%s`, dir, httpPort, yamlLines(c.Buffer, "  "), kafkaPort, c.Broker, clientID, yamlLines(c.Input, "    "),
		c.Payload, timestampLine(c.Payload))
	cfgPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return benchResult{}, err
	}
	args := []string{"run", "-config", cfgPath}
	if c.Profile != "" {
		args = append(args, "-cpuprofile", fmt.Sprintf("%s.%d", c.Profile, round))
	}
	argv := append(append(strings.Fields(c.Exec), c.Gateway), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return benchResult{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		dropSession(c.Broker, clientID)
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
	var lat *latencies
	if c.Rate > 0 {
		if lat, err = watchLatency(ctx, fmt.Sprintf("127.0.0.1:%d", kafkaPort), time.Now()); err != nil {
			return benchResult{}, err
		}
		defer lat.stop()
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort)
	before := landed()
	m0 := scrape(ctx, metricsURL)
	p0, err := readProc(cmd.Process.Pid)
	if err != nil {
		return benchResult{}, err
	}
	heap := watchHeap(ctx, metricsURL)
	start := time.Now()
	if err := publish(ctx, c, "gw"); err != nil {
		heap()
		return benchResult{}, err
	}
	want := before + c.Messages*perMsg
	deadline = time.Now().Add(5 * time.Minute)
	for landed() < want && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	heapMB := heap()
	p1, err := readProc(cmd.Process.Pid)
	if err != nil {
		return benchResult{}, err
	}
	m1 := scrape(ctx, metricsURL)
	if len(m1) == 0 {
		return benchResult{}, fmt.Errorf("gateway metrics endpoint %s did not answer", metricsURL)
	}
	if c.Verbose {
		var names []string
		for name, v := range m1 {
			if v != m0[name] && (strings.HasPrefix(name, "fieldgate_buffer_") || strings.HasPrefix(name, "fieldgate_mqtt_") ||
				strings.HasPrefix(name, "fieldgate_kafka_")) {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			fmt.Printf("    %-52s %14.1f\n", name, m1[name]-m0[name])
		}
	}
	got := (landed() - before) / perMsg
	if got < c.Messages {
		var lines []string
		for name, v := range m1 {
			if strings.HasPrefix(name, "fieldgate_buffer_") || strings.HasPrefix(name, "fieldgate_mqtt_") || strings.HasPrefix(name, "fieldgate_kafka_") {
				lines = append(lines, fmt.Sprintf("%s %g", name, v))
			}
		}
		slices.Sort(lines)
		return benchResult{}, fmt.Errorf("only %d of %d messages landed in Kafka within 5 minutes; the gateway's counters:\n%s",
			got, c.Messages, strings.Join(lines, "\n"))
	}
	res := p1.result(p0, got, elapsed)
	res.heapMB = heapMB
	if c.Rate > 0 {
		secs := elapsed.Seconds()
		res.diskPerReading = float64(p1.writeBytes-p0.writeBytes) / float64(got*perMsg)
		res.commitsPerSec = (m1["fieldgate_buffer_commits_total"] - m0["fieldgate_buffer_commits_total"]) / secs
		res.fsyncsPerSec = (m1["fieldgate_buffer_fsyncs_total"] - m0["fieldgate_buffer_fsyncs_total"]) / secs
		res.p50, res.p99, res.pmax = lat.percentiles(c.Messages)
	}
	return res, nil
}

// watchHeap reads go_memstats_heap_inuse_bytes from the gateway's /metrics every 500 ms until the returned
// function is called, which stops it and returns the largest value seen, in MiB (0 if /metrics never answered).
func watchHeap(ctx context.Context, metricsURL string) (stop func() float64) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan float64, 1)
	go func() {
		var peak float64
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			if v, ok := scrape(ctx, metricsURL)["go_memstats_heap_inuse_bytes"]; ok {
				peak = max(peak, v)
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				done <- peak / (1 << 20)
				return
			}
		}
	}()
	return func() float64 {
		cancel()
		return <-done
	}
}

// latencies collects, from a Kafka consumer, the time from publish (the payload's microsecond timestamp, which
// becomes the reading's source time) to the moment the reading can be fetched from Kafka, for one metric of
// each message published since a given time.
type latencies struct {
	cl   *kgo.Client
	done chan struct{}
	mu   sync.Mutex
	ms   []float64
}

func watchLatency(ctx context.Context, broker string, since time.Time) (*latencies, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("fieldgate.readings"),
		kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		return nil, err
	}
	l := &latencies{cl: cl, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			fetches := cl.PollFetches(ctx)
			if fetches.IsClientClosed() || ctx.Err() != nil {
				return
			}
			now := time.Now()
			fetches.EachRecord(func(rec *kgo.Record) {
				r, err := fieldgate.Decode(rec.Value)
				if err != nil || !strings.HasSuffix(r.Metric, "temperature") || r.SourceTime.Before(since) {
					return
				}
				l.mu.Lock()
				l.ms = append(l.ms, float64(now.Sub(r.SourceTime).Microseconds())/1000)
				l.mu.Unlock()
			})
		}
	}()
	return l, nil
}

// percentiles waits (briefly) until n latencies are in, then returns the 50th, 99th and 100th percentile.
func (l *latencies) percentiles(n int) (p50, p99, pmax float64) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		l.mu.Lock()
		k := len(l.ms)
		l.mu.Unlock()
		if k >= n {
			break
		}
	}
	l.mu.Lock()
	v := slices.Clone(l.ms)
	l.mu.Unlock()
	if len(v) == 0 {
		return 0, 0, 0
	}
	slices.Sort(v)
	at := func(q float64) float64 { return v[min(len(v)-1, int(q*float64(len(v))))] }
	return at(0.50), at(0.99), v[len(v)-1]
}

func (l *latencies) stop() {
	l.cl.Close()
	<-l.done
}

// timestampLine maps the json payload's "ts" field (microseconds since the epoch, taken when the message is
// published) to the source time, so it is not a metric of its own and the latency to Kafka can be measured.
func timestampLine(payload string) string {
	if payload == "json" {
		return "        timestamp: {path: ts, format: unix_us}\n"
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
// and returns when the broker acknowledged all of them. With c.Rate set it paces them evenly at that rate, else
// it sends as fast as it can.
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
	start := time.Now()
	for i := 0; i < c.Messages && ctx.Err() == nil; i++ {
		if c.Rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / c.Rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		dev := i % c.Devices
		var payload string
		if c.Payload == "value" {
			payload = strconv.FormatFloat(20+float64(i%1000)/100, 'f', 2, 64)
		} else {
			// ts is the publish time in microseconds: unique per device, and the start of the latency to Kafka.
			payload = fmt.Sprintf(`{"ts":%d,"temperature":%.2f,"humidity":%.1f,"battery":%d}`,
				time.Now().UnixMicro(), 20+float64(i%1000)/100, 40+float64(i%300)/10, 100-i%100)
		}
		window <- cl.Publish(fmt.Sprintf("bench/dev%03d/telemetry", dev), 1, false, payload)
	}
	close(window)
	if err := <-errc; err != nil {
		return err
	}
	return ctx.Err()
}

// procSample is what /proc says of a process at one moment.
type procSample struct {
	at         time.Time
	cpu        time.Duration // user + system
	writeBytes int64         // bytes the process caused to be written to storage (/proc/PID/io write_bytes)
	rssMB      float64       // peak resident set size (VmHWM)
}

func readProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	s.cpu = time.Duration(utime+stime) * time.Second / clkTck
	if b, err = os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
				s.writeBytes, _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	if b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
				s.rssMB = kb / 1024
			}
		}
	}
	return s, nil
}

// result turns two samples around a run of n messages into its figures.
func (p1 procSample) result(p0 procSample, n int, elapsed time.Duration) benchResult {
	cpu := p1.cpu - p0.cpu
	return benchResult{
		rate:      float64(n) / elapsed.Seconds(),
		cpuPerMsg: float64(cpu.Microseconds()) / float64(n),
		corePct:   100 * cpu.Seconds() / p1.at.Sub(p0.at).Seconds(),
		rssMB:     p1.rssMB,
		landed:    n,
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
