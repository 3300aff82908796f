package main

// The invariant every scenario below ends with (DESIGN.md, promise 2):
//
//	the raw table holds each distinct reading (device, metric, event time in ms) exactly once, and every column
//	of every aggregate row (counts, min, max, sum, mean, first and last values and times, the last text) equals
//	what GROUP BY device, metric, window over the raw table returns — and no window of the raw table lacks its
//	row.
//
// Kafka is kfake in-process; PostgreSQL is the server named by FIELDGATE_TEST_POSTGRES (each test makes its own
// database), or for the restart scenario a private cluster started from FIELDGATE_TEST_POSTGRES_BIN.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/cratedb"
	"github.com/fieldgate/fieldgate/internal/pgtest"
	"github.com/fieldgate/fieldgate/window"
)

const childEnv = "FIELDGATE_CENTRAL_TEST_CHILD_CONFIG"

// TestMain lets a test run the service as a child process (re-executing the test binary), to kill it with
// SIGKILL.
func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(realMain([]string{"run", "-config", path}, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

var testSizes = []time.Duration{10 * time.Second, time.Minute}

type harness struct {
	t       testing.TB
	topic   string
	brokers string
	kafka   *kfake.Cluster
	prod    *kgo.Client
	dbURL   string
	check   *pgx.Conn
	mu      sync.Mutex
	want    map[string]bool // distinct identities expected in the raw table
	base    time.Time
}

type rawKey = string

func identity(r fieldgate.Reading) rawKey {
	return r.Device + "\x00" + r.Metric + "\x00" + strconv.FormatInt(r.EventMs(), 10)
}

func newHarness(t testing.TB, partitions int32, dbURL string) *harness {
	t.Helper()
	h := &harness{t: t, topic: "fieldgate.readings", dbURL: dbURL, want: map[string]bool{},
		base: time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute)}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, h.topic), kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h.kafka = c
	h.brokers = c.ListenAddrs()[0]
	h.prod, err = kgo.NewClient(kgo.SeedBrokers(h.brokers), kgo.DefaultProduceTopic(h.topic), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.prod.Close)
	// The schema first, so tests can alter it before the service starts.
	w, err := cratedb.New(cratedb.Config{URL: fieldgate.Secret(dbURL), Dialect: cratedb.Postgres, CreateSchema: true}, testSizes, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	_ = w.Close(ctx)
	h.check, err = pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.check.Close(context.Background()) })
	return h
}

func (h *harness) config(group string) *Config {
	cfg := &Config{
		Kafka: KafkaConfig{Brokers: []string{h.brokers}, Topic: h.topic, Group: group,
			CommitInterval: 200 * time.Millisecond, SessionTimeout: 3 * time.Second},
		Database: cratedb.Config{URL: fieldgate.Secret(h.dbURL), Dialect: cratedb.Postgres, CreateSchema: true,
			BatchSize: 500, Linger: 20 * time.Millisecond},
		Windows: window.Config{Sizes: testSizes, OutOfOrderness: 2 * time.Second, AllowedLateness: 5 * time.Second,
			IdleTimeout: time.Second},
		HTTP: HTTPConfig{Listen: "off"},
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		h.t.Fatal(err)
	}
	return cfg
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// start runs one instance of the service in this process; the returned func stops it and waits.
func (h *harness) start(name string, cfg *Config) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(testLogWriter{h.t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("instance", name)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, log, io.Discard) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					h.t.Errorf("instance %s: %v", name, err)
				}
			case <-time.After(30 * time.Second):
				h.t.Errorf("instance %s did not stop", name)
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

// startChild runs the service as a child process (this test binary re-executed); kill it with SIGKILL.
func (h *harness) startChild(cfg *Config) *exec.Cmd {
	path := filepath.Join(h.t.TempDir(), "central.yaml")
	y := fmt.Sprintf(`kafka:
  brokers: [%s]
  topic: %s
  group: %s
  commit_interval: %s
  session_timeout: %s
database:
  url: %s
  dialect: postgres
  create_schema: true
  batch_size: %d
  linger: %s
windows:
  sizes: [10s, 1m]
  out_of_orderness: %s
  allowed_lateness: %s
  idle_timeout: %s
http:
  listen: "off"
log:
  level: warn
`, h.brokers, h.topic, cfg.Kafka.Group, cfg.Kafka.CommitInterval, cfg.Kafka.SessionTimeout, h.dbURL,
		cfg.Database.BatchSize, cfg.Database.Linger, cfg.Windows.OutOfOrderness, cfg.Windows.AllowedLateness, cfg.Windows.IdleTimeout)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		h.t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stdout, cmd.Stderr = testLogWriter{h.t}, testLogWriter{h.t}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// produce sends readings (key = device) and records them as expected in the raw table unless reject is set.
func (h *harness) produce(rs []fieldgate.Reading) {
	h.t.Helper()
	recs := make([]*kgo.Record, 0, len(rs))
	for _, r := range rs {
		v, err := fieldgate.Encode(r)
		if err != nil {
			h.t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Key: []byte(r.Device), Value: v, Headers: []kgo.RecordHeader{
			{Key: fieldgate.HeaderGateway, Value: []byte("gw-test")}, {Key: fieldgate.HeaderFormat, Value: []byte("1")}}})
		h.mu.Lock()
		h.want[identity(r)] = true
		h.mu.Unlock()
	}
	h.produceRecords(recs)
}

func (h *harness) produceRecords(recs []*kgo.Record) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < len(recs); i += 2000 {
		if err := h.prod.ProduceSync(ctx, recs[i:min(i+2000, len(recs))]...).FirstErr(); err != nil {
			h.t.Fatal(err)
		}
	}
}

// metricsPerStep is how many readings stream makes per device and step.
const metricsPerStep = 6

// stream makes n readings per series of devs devices, one every step of event time from start, of the metrics:
//
//   - pressure (float) and count (int): always Good;
//   - temp (float): NaN, Bad and Uncertain now and then;
//   - state (string): every 10 s window whose number is 2 modulo 4 holds only Bad readings (an empty string),
//     the others only Good strings;
//   - link (float): Bad (0, status 256, as a Modbus timeout) in whole 10 s and 1 m windows — every 10 s window
//     whose number is 1 modulo 3 and every odd minute — Good elsewhere: windows with only Bad readings, and
//     mixed ones;
//   - mixed: float, int, bool and string in turn, and Bad now and then: windows of mixed kinds.
//
// Float values are multiples of 1/8, so sums and means are exact in any order.
func stream(devs, n int, start time.Time, step time.Duration, prefix string) []fieldgate.Reading {
	var out []fieldgate.Reading
	for i := range n {
		for d := range devs {
			dev := fmt.Sprintf("%s/dev-%02d", prefix, d)
			at := start.Add(time.Duration(i) * step)
			gw := at.Add(50 * time.Millisecond)
			mk := func(metric string, v fieldgate.Value) fieldgate.Reading {
				return fieldgate.Reading{Device: dev, Metric: metric, Value: v, SourceTime: at, GatewayTime: gw}
			}
			p := mk("pressure", fieldgate.Float(float64((i*7+d*3)%400)/8))
			c := mk("count", fieldgate.Int(int64(i*d)))
			tm := mk("temp", fieldgate.Float(20+float64(i%16)/8))
			if i%23 == 5 {
				tm.Value = fieldgate.Float(math.NaN())
			}
			if i%17 == 3 {
				tm.Quality, tm.Status = fieldgate.Bad, 0x80000000
			}
			if i%29 == 7 {
				tm.Quality = fieldgate.Uncertain
			}
			tenSec, minute := at.Unix()/10, at.Unix()/60
			st := mk("state", fieldgate.String([]string{"run", "idle", "fault"}[(i/5+d)%3]))
			if tenSec%4 == 2 {
				st.Value, st.Quality, st.Status = fieldgate.String(""), fieldgate.Bad, 0x80000000
			}
			link := mk("link", fieldgate.Float(float64((i+d)%64)/8))
			if tenSec%3 == 1 || minute%2 == 1 {
				link.Value, link.Quality, link.Status = fieldgate.Float(0), fieldgate.Bad, 256
			}
			mixed := mk("mixed", []fieldgate.Value{fieldgate.Float(float64(i%40) / 8), fieldgate.Int(int64(i - d)),
				fieldgate.Bool(i%2 == 0), fieldgate.String(fmt.Sprint("s", i%5))}[(i+d)%4])
			if i%7 == 3 {
				mixed.Quality, mixed.Status = fieldgate.Bad, 0x80000000
			}
			out = append(out, p, c, tm, st, link, mixed)
		}
	}
	return out
}

// interleave merges a and b in chunks of n, keeping the order within each.
func interleave(a, b []fieldgate.Reading, n int) []fieldgate.Reading {
	out := make([]fieldgate.Reading, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		k := min(n, len(a))
		out, a = append(out, a[:k]...), a[k:]
		k = min(n, len(b))
		out, b = append(out, b[:k]...), b[k:]
	}
	return out
}

// shuffle moves each reading by a random amount within bound positions, keeping per-device event times within
// the out-of-orderness bound when bound × step × metrics is below it.
func shuffle(rs []fieldgate.Reading, bound int, seed uint64) {
	rng := mrand.New(mrand.NewPCG(seed, seed))
	for i := range rs {
		j := i + rng.IntN(bound+1)
		if j < len(rs) {
			rs[i], rs[j] = rs[j], rs[i]
		}
	}
}

// invariantSQL lists (up to 10) aggregate rows of one size (%[1]d: its milliseconds, %[2]s: its table) that differ
// from the aggregate of the raw table's readings in that window, written from the definitions (DESIGN.md) and
// not from the service's code: Bad readings count in n and nbad only; min, max, sum and mean are over the
// numeric values of usable (Good or Uncertain) readings, NaN left out; first and last are the earliest and latest
// usable readings of any kind (value is NULL for bool and string readings, value_text NULL for floats).
const invariantSQL = `
WITH r AS (
  SELECT *, to_timestamp((floor(extract(epoch FROM ts) * 1000 / %[1]d) * %[1]d / 1000)::double precision) AS ws,
    quality <> 'bad' AS usable,
    quality <> 'bad' AND value IS NOT NULL AND value <> 'NaN' AS num
  FROM readings),
g AS (
  SELECT device, metric, ws,
    count(*) AS n,
    count(*) FILTER (WHERE NOT usable) AS nbad,
    count(*) FILTER (WHERE num) AS nnum,
    min(value) FILTER (WHERE num) AS vmin,
    max(value) FILTER (WHERE num) AS vmax,
    sum(value) FILTER (WHERE num) AS vsum,
    sum(value) FILTER (WHERE num) / nullif(count(*) FILTER (WHERE num), 0) AS vmean,
    (array_agg(value ORDER BY ts) FILTER (WHERE usable))[1] AS vfirst,
    (array_agg(value ORDER BY ts DESC) FILTER (WHERE usable))[1] AS vlast,
    (array_agg(value_text ORDER BY ts DESC) FILTER (WHERE usable))[1] AS tlast,
    min(ts) FILTER (WHERE usable) AS tsfirst,
    max(ts) FILTER (WHERE usable) AS tslast
  FROM r GROUP BY 1, 2, 3)
SELECT coalesce(g.device, a.device), coalesce(g.metric, a.metric), coalesce(g.ws, a.window_start),
  format('raw n=%%s bad=%%s num=%%s min=%%s max=%%s sum=%%s mean=%%s first=%%s@%%s last=%%s/%%s@%%s'
    ' | agg n=%%s bad=%%s num=%%s min=%%s max=%%s sum=%%s mean=%%s first=%%s@%%s last=%%s/%%s@%%s',
    g.n, g.nbad, g.nnum, g.vmin, g.vmax, g.vsum, g.vmean, g.vfirst, g.tsfirst, g.vlast, g.tlast, g.tslast,
    a.count_all, a.count_bad, a.count_numeric, a.value_min, a.value_max, a.value_sum, a.value_mean,
    a.value_first, a.time_first, a.value_last, a.last_text, a.time_last)
FROM g FULL OUTER JOIN %[2]s a ON a.device = g.device AND a.metric = g.metric AND a.window_start = g.ws
WHERE g.n IS DISTINCT FROM a.count_all OR g.nbad IS DISTINCT FROM a.count_bad OR g.nnum IS DISTINCT FROM a.count_numeric
   OR g.vmin IS DISTINCT FROM a.value_min OR g.vmax IS DISTINCT FROM a.value_max OR g.vsum IS DISTINCT FROM a.value_sum
   OR g.vmean IS DISTINCT FROM a.value_mean
   OR g.vfirst IS DISTINCT FROM a.value_first OR g.tsfirst IS DISTINCT FROM a.time_first
   OR g.vlast IS DISTINCT FROM a.value_last OR g.tlast IS DISTINCT FROM a.last_text OR g.tslast IS DISTINCT FROM a.time_last
   OR a.window_end IS DISTINCT FROM g.ws + interval '%[1]d milliseconds'
ORDER BY 1, 2, 3 LIMIT 10`

// invariantDiff returns the violations of the invariant, empty when it holds.
func (h *harness) invariantDiff(ctx context.Context) ([]string, error) {
	var diffs []string
	var n int64
	if err := h.check.QueryRow(ctx, "SELECT count(*) FROM readings").Scan(&n); err != nil {
		return nil, err
	}
	h.mu.Lock()
	want := len(h.want)
	h.mu.Unlock()
	if n != int64(want) {
		diffs = append(diffs, fmt.Sprintf("raw table holds %d readings, want %d distinct", n, want))
		return diffs, nil
	}
	for _, size := range testSizes {
		q := fmt.Sprintf(invariantSQL, size.Milliseconds(), cratedb.AggregateTable(size))
		rows, err := h.check.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var dev, metric, what string
			var ws time.Time
			if err := rows.Scan(&dev, &metric, &ws, &what); err != nil {
				rows.Close()
				return nil, err
			}
			diffs = append(diffs, fmt.Sprintf("%s %s/%s %s: %s", cratedb.SizeName(size), dev, metric, ws.UTC().Format(time.TimeOnly), what))
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return diffs, nil
}

// waitInvariant waits until the invariant holds (the service has caught up and closed its windows), failing
// with the differences after timeout.
func (h *harness) waitInvariant(timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	var last []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d, err := h.invariantDiff(ctx)
		cancel()
		if err == nil && len(d) == 0 {
			return
		}
		if err != nil {
			last = []string{err.Error()}
		} else {
			last = d
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("invariant does not hold after %s:\n%s", timeout, strings.Join(last, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (h *harness) count(q string, args ...any) int64 {
	h.t.Helper()
	var n int64
	if err := h.check.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		h.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// ---- scenarios ----------------------------------------------------------------------------------------------

func TestInvariantInOrder(t *testing.T) {
	h := newHarness(t, 4, pgtest.NewDB(t, ""))
	h.start("a", h.config("g"))
	h.produce(stream(6, 90, h.base, time.Second, "line1"))
	// Hostile records among them: undecodable, and a version this build does not know.
	h.produceRecords([]*kgo.Record{{Key: []byte("x"), Value: []byte("\x00garbage")}, {Key: []byte("y"), Value: []byte(`{"v":2,"device":"d"}`)}})
	h.produce(stream(6, 30, h.base.Add(90*time.Second), time.Second, "line1"))
	h.waitInvariant(30 * time.Second)
	if n := h.count("SELECT count(*) FROM dead_letters WHERE kafka_topic = $1 AND reason <> '' AND kafka_offset >= 0", h.topic); n != 2 {
		t.Errorf("%d dead letters, want 2", n)
	}
	if n := h.count("SELECT count(*) FROM dead_letters WHERE reason LIKE '%unknown wire format version 2%'"); n != 1 {
		t.Error("unknown version not named in the dead letter's reason")
	}
	// The invariant covered the windows that matter (stream makes them): a string metric's last state, windows
	// holding only Bad readings (of a float and of a string metric), and windows of mixed kinds.
	for what, q := range map[string]string{
		"string windows with their last state":     "SELECT count(*) FROM readings_1m WHERE metric = 'state' AND last_text IS NOT NULL AND value_min IS NULL",
		"10s windows with only Bad readings":       "SELECT count(*) FROM readings_10s WHERE metric = 'link' AND count_bad = count_all AND value_first IS NULL",
		"1m windows with only Bad readings":        "SELECT count(*) FROM readings_1m WHERE metric = 'link' AND count_bad = count_all AND value_last IS NULL",
		"string windows with only Bad readings":    "SELECT count(*) FROM readings_10s WHERE metric = 'state' AND count_bad = count_all AND last_text IS NULL",
		"mixed windows ending on a bool or string": "SELECT count(*) FROM readings_10s WHERE metric = 'mixed' AND count_numeric > 0 AND value_last IS NULL AND last_text IS NOT NULL",
	} {
		if n := h.count(q); n == 0 {
			t.Errorf("no %s", what)
		}
	}
}

func TestInvariantShuffled(t *testing.T) {
	h := newHarness(t, 3, pgtest.NewDB(t, ""))
	h.start("a", h.config("g"))
	// Live data (event time up to now), so windows also fire early and are superseded by their final firing.
	rs := stream(5, 120, time.Now().UTC().Add(-30*time.Second), 250*time.Millisecond, "line2")
	// 5 devices × 6 metrics per step of 250ms: moving a reading by up to 20 positions moves it by at most
	// 250ms of event time, well within the 2s out-of-orderness.
	shuffle(rs, 20, 1)
	h.produce(rs)
	h.waitInvariant(30 * time.Second)
}

func TestInvariantLate(t *testing.T) {
	h := newHarness(t, 2, pgtest.NewDB(t, ""))
	var lp *loader
	testHook = func(l *loader) { lp = l }
	defer func() { testHook = nil }()
	h.start("a", h.config("g"))
	h.produce(stream(3, 80, h.base, time.Second, "line3"))
	h.waitInvariant(30 * time.Second)
	// Readings 70 s behind their devices' newest: far beyond out-of-orderness + allowed lateness (7s). They are
	// new identities (half a second off the stream's).
	late := stream(3, 5, h.base.Add(500*time.Millisecond), time.Second, "line3")
	h.produce(late)
	h.waitInvariant(30 * time.Second)
	if s := lp.win.Stats(); s.Late == 0 || s.Recomputes == 0 {
		t.Errorf("no late readings or recomputes counted: %+v", s)
	}
}

func TestInvariantReplay(t *testing.T) {
	h := newHarness(t, 4, pgtest.NewDB(t, ""))
	var lp *loader
	testHook = func(l *loader) { lp = l }
	defer func() { testHook = nil }()
	h.start("a", h.config("g"))
	rs := stream(4, 60, h.base, time.Second, "line4")
	h.produce(rs)
	// The gateway sends everything again (its buffer was not acknowledged): while windows are open, and after.
	h.produce(rs[:len(rs)/2])
	h.waitInvariant(30 * time.Second)
	h.produce(rs)
	time.Sleep(2 * time.Second) // idle timeout: let any (wrong) re-firing happen
	h.waitInvariant(30 * time.Second)
	// The replayed readings went the writer's slow way: the plain INSERT met them, the upsert settled them.
	if s := lp.db.(*cratedb.Writer).Stats(); s.InsertConflicts == 0 {
		t.Errorf("no INSERT met a stored reading: %+v", s)
	}
}

func TestInvariantKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	// One partition holding devices whose event time moves at different speeds per record (one reading every
	// 200ms and every 1s, interleaved one to one, as when a gateway replays its backlog beside live ones): the
	// committed offset is held back by the slow devices' open windows while windows of the fast devices at
	// those offsets are already final. A replay without the window checkpoint would rebuild those from their
	// tail and overwrite their rows with partial aggregates.
	h := newHarness(t, 1, pgtest.NewDB(t, ""))
	cfg := h.config("g")
	child := h.startChild(cfg)
	rs := interleave(stream(4, 600, h.base.Add(30*time.Second), 200*time.Millisecond, "line5"),
		stream(4, 600, h.base, time.Second, "line5b"), 16) // 28,800 readings
	h.produce(rs)
	deadline := time.Now().Add(30 * time.Second)
	// SIGKILL mid-stream, once part of the readings and some final windows are in.
	for h.count("SELECT count(*) FROM readings") < int64(len(rs)/2) || h.count("SELECT count(*) FROM readings_1m") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the child loaded nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	n := h.count("SELECT count(*) FROM readings")
	t.Logf("killed the child with %d of %d readings in the raw table; %d aggregate rows", n, len(rs), h.count("SELECT count(*) FROM readings_10s"))
	h.produce(interleave(stream(4, 50, h.base.Add(150*time.Second), 200*time.Millisecond, "line5"),
		stream(4, 50, h.base.Add(600*time.Second), time.Second, "line5b"), 16))
	h.startChild(cfg)
	h.waitInvariant(60 * time.Second)
}

func TestInvariantRebalance(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for group rebalances")
	}
	h := newHarness(t, 6, pgtest.NewDB(t, ""))
	cfg := h.config("g")
	h.start("a", cfg)
	h.produce(stream(12, 40, h.base, 250*time.Millisecond, "line6"))
	stopB := h.start("b", h.config("g"))
	h.produce(stream(12, 40, h.base.Add(10*time.Second), 250*time.Millisecond, "line6"))
	time.Sleep(2 * time.Second) // b has joined and taken partitions
	h.produce(stream(12, 40, h.base.Add(20*time.Second), 250*time.Millisecond, "line6"))
	stopB()
	h.produce(stream(12, 40, h.base.Add(30*time.Second), 250*time.Millisecond, "line6"))
	h.waitInvariant(60 * time.Second)
}

func TestInvariantRejectedRow(t *testing.T) {
	h := newHarness(t, 2, pgtest.NewDB(t, ""))
	if _, err := h.check.Exec(context.Background(), "ALTER TABLE readings ADD CONSTRAINT sane CHECK (value IS NULL OR value = 'NaN' OR value < 1e6)"); err != nil {
		t.Fatal(err)
	}
	h.start("a", h.config("g"))
	rs := stream(2, 40, h.base, time.Second, "line7")
	h.produce(rs)
	bad := fieldgate.Reading{Device: "line7/dev-00", Metric: "pressure", Value: fieldgate.Float(1e9),
		SourceTime: h.base.Add(41*time.Second + 300*time.Millisecond), GatewayTime: h.base.Add(42 * time.Second)}
	v, _ := fieldgate.Encode(bad)
	res := h.prod.ProduceSync(context.Background(), &kgo.Record{Key: []byte(bad.Device), Value: v})
	rec, err := res.First()
	if err != nil {
		t.Fatal(err)
	}
	h.produce(stream(2, 20, h.base.Add(42*time.Second), time.Second, "line7"))
	h.waitInvariant(30 * time.Second)
	if n := h.count("SELECT count(*) FROM dead_letters WHERE kafka_partition = $1 AND kafka_offset = $2 AND reason LIKE '%sane%'",
		rec.Partition, rec.Offset); n != 1 {
		t.Error("the refused reading is not in the dead-letter table with its partition, offset and reason")
	}
}

// PostgreSQL killed (immediate shutdown) mid-stream and restarted: the service waits, retries, and catches up.
func TestInvariantPostgresRestart(t *testing.T) {
	bin := os.Getenv("FIELDGATE_TEST_POSTGRES_BIN")
	if bin == "" {
		t.Skip("FIELDGATE_TEST_POSTGRES_BIN is not set")
	}
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	pg := startPostgres(t, bin)
	h := newHarness(t, 4, pgtest.NewDB(t, pg.url))
	h.start("a", h.config("g"))
	h.produce(stream(6, 100, h.base, 500*time.Millisecond, "line8"))
	deadline := time.Now().Add(20 * time.Second)
	for h.count("SELECT count(*) FROM readings") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing loaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.check.Close(context.Background())
	pg.stop(t)
	h.produce(stream(6, 100, h.base.Add(50*time.Second), 500*time.Millisecond, "line8"))
	time.Sleep(time.Second)
	pg.startServer(t)
	var err error
	if h.check, err = pgx.Connect(context.Background(), h.dbURL); err != nil {
		t.Fatal(err)
	}
	h.waitInvariant(60 * time.Second)
}

type privatePG struct {
	bin, dir string
	port     int
	url      string
	asPG     func(args ...string) *exec.Cmd
}

func startPostgres(t *testing.T, bin string) *privatePG {
	t.Helper()
	dir, err := os.MkdirTemp("", "fieldgate-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	pg := &privatePG{bin: bin, dir: dir, port: port, url: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres", port)}
	asPG := func(args ...string) *exec.Cmd {
		if os.Geteuid() == 0 {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		}
		return exec.Command(args[0], args[1:]...)
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	if out, err := asPG(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	pg.asPG = asPG
	pg.startServer(t)
	t.Cleanup(func() { pg.stop(t) })
	return pg
}

func (pg *privatePG) startServer(t *testing.T) {
	t.Helper()
	out, err := pg.asPG(filepath.Join(pg.bin, "pg_ctl"), "-D", filepath.Join(pg.dir, "data"), "-w", "-l", filepath.Join(pg.dir, "log"),
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", pg.port, pg.dir), "start").CombinedOutput()
	if err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
}

// stop kills the server the hard way (immediate shutdown: no checkpoint, crash recovery at the next start).
func (pg *privatePG) stop(t *testing.T) {
	_, _ = pg.asPG(filepath.Join(pg.bin, "pg_ctl"), "-D", filepath.Join(pg.dir, "data"), "-m", "immediate", "stop").CombinedOutput()
}
