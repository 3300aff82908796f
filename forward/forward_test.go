package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const testTopic = "fg.test"

// --- helpers ---------------------------------------------------------------------------------------------------

func newCluster(t testing.TB, partitions int32, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, testTopic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func testConfig(brokers []string) Config {
	return Config{
		Brokers:        brokers,
		Topic:          testTopic,
		BatchSize:      100,
		ProduceTimeout: time.Second,
		MinBackoff:     10 * time.Millisecond,
		MaxBackoff:     200 * time.Millisecond,
	}
}

// syncWriter serialises writes and drops them once the test is over, since the Kafka client may log late.
type syncWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
	buf  bytes.Buffer // everything logged, for assertions
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	if !s.done && s.w != nil {
		s.w.Write(p)
	}
	return len(p), nil
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func testLogger(t testing.TB) (*slog.Logger, *syncWriter) {
	w := &syncWriter{}
	if testing.Verbose() {
		w.w = t.Output()
	}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})), w
}

func newTestForwarder(t testing.TB, cfg Config) (*Forwarder, *syncWriter) {
	t.Helper()
	log, w := testLogger(t)
	f, err := New(cfg, "gw-test", log)
	if err != nil {
		t.Fatal(err)
	}
	// The test speed tip of the reference: re-read metadata quickly and retry quickly.
	f.extraOpts = []kgo.Opt{
		kgo.MetadataMinAge(50 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
	}
	return f, w
}

// start runs f in the background. The returned stop cancels it and fails the test unless Run returns nil within
// the given bound; it is also registered as a cleanup.
func start(t testing.TB, f *Forwarder, l Log) (stop func(within time.Duration)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, l) }()
	var once sync.Once
	stop = func(within time.Duration) {
		once.Do(func() {
			cancel()
			began := time.Now()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v, want nil", err)
				}
				t.Logf("Run returned %v after cancel", time.Since(began).Round(time.Millisecond))
			case <-time.After(within):
				t.Errorf("Run did not return within %v of cancel", within)
			}
		})
	}
	t.Cleanup(func() { stop(10 * time.Second) })
	return stop
}

var base = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fill appends n readings spread over the given number of devices; the value of each is its index within its
// device (0, 1, 2, ...), so order can be checked after delivery. It returns how many each device got.
func fill(t testing.TB, l *memLog, n, devices int, from map[string]int64) map[string]int64 {
	t.Helper()
	if from == nil {
		from = map[string]int64{}
	}
	for i := range n {
		dev := fmt.Sprintf("plant1/dev-%02d", i%devices)
		b, err := fieldgate.Encode(fieldgate.Reading{
			Device: dev, Metric: "pressure", Value: fieldgate.Int(from[dev]),
			GatewayTime: base.Add(time.Duration(i) * time.Millisecond),
		})
		if err != nil {
			t.Fatal(err)
		}
		from[dev]++
		l.add(dev, b)
	}
	return from
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// landed reads every record of the topic.
func landed(t testing.TB, c *kfake.Cluster, partitions int32, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	var total int64
	for p := range partitions {
		total += c.PartitionInfo(testTopic, p).HighWatermark
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(testTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(50 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for int64(len(recs)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records: %v", len(recs), total, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

// checkLanded asserts that every reading of want landed, with the right key, value and headers, in per-device
// order: each record of a device carries either the next index (a first delivery) or one already seen (a
// duplicate from a retry). With exact, no duplicate is allowed. It returns the number of duplicates.
func checkLanded(t testing.TB, recs []*kgo.Record, want map[string]int64, exact bool) int {
	t.Helper()
	next := map[string]int64{}
	dups := 0
	for _, r := range recs {
		rd, err := fieldgate.Decode(r.Value)
		if err != nil {
			t.Fatalf("record at %d/%d does not decode: %v", r.Partition, r.Offset, err)
		}
		if string(r.Key) != rd.Device {
			t.Fatalf("record key %q, device in value %q", r.Key, rd.Device)
		}
		if len(r.Headers) != 2 || r.Headers[0].Key != fieldgate.HeaderGateway || string(r.Headers[0].Value) != "gw-test" ||
			r.Headers[1].Key != fieldgate.HeaderFormat || string(r.Headers[1].Value) != "1" {
			t.Fatalf("headers %v", r.Headers)
		}
		if r.Timestamp.IsZero() || time.Since(r.Timestamp) > time.Minute {
			t.Fatalf("record timestamp %v: want the client's produce time", r.Timestamp)
		}
		k := rd.Value.Int()
		switch {
		case k == next[rd.Device]:
			next[rd.Device]++
		case k < next[rd.Device]:
			dups++
		default:
			t.Fatalf("device %s: reading %d landed before reading %d (reordered or lost)", rd.Device, k, next[rd.Device])
		}
	}
	for dev, n := range want {
		if next[dev] != n {
			t.Errorf("device %s: %d of %d readings landed", dev, next[dev], n)
		}
	}
	if len(next) != len(want) {
		t.Errorf("%d devices landed, want %d", len(next), len(want))
	}
	if exact && dups > 0 {
		t.Errorf("%d duplicates, want none", dups)
	}
	return dups
}

// produceErrors answers a produce request with code for every partition whose batch hit reports true.
func produceErrors(req *kmsg.ProduceRequest, hit func(records []byte) bool, code int16) (*kmsg.ProduceResponse, bool) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	any := false
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			if hit(rp.Records) {
				sp.ErrorCode = code
				any = true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, any
}

// --- tests -----------------------------------------------------------------------------------------------------

func TestHappyPath(t *testing.T) {
	c := newCluster(t, 3)
	l := newMemLog()
	want := fill(t, l, 1000, 7, nil)
	f, _ := newTestForwarder(t, testConfig(c.ListenAddrs()))
	stop := start(t, f, l)
	waitFor(t, 10*time.Second, "the log to drain", func() bool { return l.len() == 0 })
	// More while running: the Appended signal wakes the loop.
	want = fill(t, l, 500, 7, want)
	waitFor(t, 10*time.Second, "the log to drain again", func() bool { return l.len() == 0 })
	stop(5 * time.Second)

	recs := landed(t, c, 3)
	if len(recs) != 1500 {
		t.Errorf("%d records landed, want 1500", len(recs))
	}
	checkLanded(t, recs, want, true)
	st := f.Stats()
	if st.Forwarded != 1500 || st.DeadLettered != 0 || !st.Connected || st.LastSuccess.IsZero() || st.InFlight != 0 ||
		st.Batches == 0 || st.ProduceSeconds <= 0 || st.ProduceErrors != (ErrorCounts{}) || st.ClientRestarts != 0 || st.LastError != "" {
		t.Errorf("stats %+v", st)
	}
	if len(l.deadLetters()) != 0 {
		t.Errorf("dead letters: %v", l.deadLetters())
	}

	// A third-party client reads the same records (key, headers, the value bytes through lz4).
	kcat := os.Getenv("FIELDGATE_TEST_KCAT")
	if kcat == "" {
		t.Log("FIELDGATE_TEST_KCAT unset: not checking with kcat")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kcat, "-C", "-b", c.ListenAddrs()[0], "-t", testTopic, "-o", "beginning", "-e", "-q",
		"-f", "%k %h %s\n").Output()
	if err != nil {
		t.Fatalf("kcat: %v (%s)", err, out)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	var kcatRecs []*kgo.Record
	for _, line := range lines {
		key, rest, _ := strings.Cut(line, " ")
		hdrs, value, _ := strings.Cut(rest, " ")
		if hdrs != fieldgate.HeaderGateway+"=gw-test,"+fieldgate.HeaderFormat+"=1" {
			t.Fatalf("kcat headers %q", hdrs)
		}
		kcatRecs = append(kcatRecs, &kgo.Record{Key: []byte(key), Value: []byte(value), Timestamp: time.Now(),
			Headers: []kgo.RecordHeader{{Key: fieldgate.HeaderGateway, Value: []byte("gw-test")}, {Key: fieldgate.HeaderFormat, Value: []byte("1")}}})
	}
	if len(kcatRecs) != 1500 {
		t.Errorf("kcat read %d records, want 1500", len(kcatRecs))
	}
	checkLanded(t, kcatRecs, want, true)
}

// A retriable error the client rides out by itself (a few NOT_LEADER answers), and one that outlasts several
// rounds: the readings stay in the log, the rounds are retried, and everything lands in order.
func TestRetriableErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		outage  time.Duration
		rounded bool // the outage outlasts a round, so the forwarder itself must retry
	}{
		{"transient", 0, false},
		{"outlasts rounds", 2500 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3)
			var failing atomic.Bool
			var fails atomic.Int64
			transient := atomic.Int64{}
			transient.Store(5)
			failing.Store(true)
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				if !failing.Load() {
					return nil, nil, false
				}
				if !tc.rounded && transient.Add(-1) < 0 {
					return nil, nil, false
				}
				c.KeepControl()
				fails.Add(1)
				code := kerr.NotLeaderForPartition.Code
				if tc.rounded {
					code = kerr.NotEnoughReplicas.Code
				}
				resp, _ := produceErrors(req.(*kmsg.ProduceRequest), func([]byte) bool { return true }, code)
				return resp, nil, true
			})
			l := newMemLog()
			want := fill(t, l, 600, 5, nil)
			f, _ := newTestForwarder(t, testConfig(c.ListenAddrs()))
			stop := start(t, f, l)
			if tc.rounded {
				time.Sleep(tc.outage)
				waitFor(t, 10*time.Second, "a failed round", func() bool { return f.Stats().ProduceErrors.Retriable > 0 })
				if n := l.len(); n != 600 {
					t.Fatalf("during the outage the log holds %d readings, want all 600", n)
				}
				st := f.Stats()
				if st.LastError == "" || st.Forwarded != 0 || st.ProduceErrors.Fatal != 0 {
					t.Errorf("stats during the outage: %+v", st)
				}
				t.Logf("during the outage: %d failed produce answers, stats %+v", fails.Load(), st)
				failing.Store(false)
			}
			waitFor(t, 15*time.Second, "the log to drain", func() bool { return l.len() == 0 })
			stop(5 * time.Second)
			if fails.Load() == 0 {
				t.Fatal("no produce request was failed: the test injected nothing")
			}
			dups := checkLanded(t, landed(t, c, 3), want, false)
			t.Logf("%d injected failures, %d duplicates, stats %+v", fails.Load(), dups, f.Stats())
			if st := f.Stats(); st.Forwarded != 600 || st.DeadLettered != 0 || st.ProduceErrors.Fatal != 0 || !st.Connected {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// One record Kafka refuses for good (MESSAGE_TOO_LARGE on whatever batch holds it): it becomes a dead letter with
// the reason, topic and seq, its batch neighbours are not blamed, and everything else lands in order.
func TestNonRetriableRecordIsDeadLettered(t *testing.T) {
	c := newCluster(t, 1)
	poison := []byte("plant1/poison")
	var refused atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		resp, hit := produceErrors(req.(*kmsg.ProduceRequest), func(recs []byte) bool { return bytes.Contains(recs, poison) },
			kerr.MessageTooLarge.Code)
		if !hit {
			return nil, nil, false
		}
		c.KeepControl()
		refused.Add(1)
		return resp, nil, true
	})
	l := newMemLog()
	want := fill(t, l, 150, 3, nil)
	b, _ := fieldgate.Encode(fieldgate.Reading{Device: string(poison), Metric: "m", Value: fieldgate.Float(1), GatewayTime: base})
	poisonSeq := l.add(string(poison), b)
	want = fill(t, l, 150, 3, want)

	cfg := testConfig(c.ListenAddrs())
	cfg.Compression = "none" // so that the control function can see the key in the batch
	f, _ := newTestForwarder(t, cfg)
	stop := start(t, f, l)
	waitFor(t, 15*time.Second, "the log to drain", func() bool { return l.len() == 0 })
	stop(5 * time.Second)

	dead := l.deadLetters()
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1: %+v", len(dead), dead)
	}
	d := dead[0]
	if !bytes.Equal(d.Payload, b) || !strings.Contains(d.Reason, "MESSAGE_TOO_LARGE") || d.Source != "forward" ||
		!strings.Contains(d.Origin, testTopic) || !strings.Contains(d.Origin, fmt.Sprintf("seq %d", poisonSeq)) || d.Time.IsZero() {
		t.Errorf("dead letter %+v", d)
	}
	checkLanded(t, landed(t, c, 1), want, false)
	if st := f.Stats(); st.DeadLettered != 1 || st.Forwarded != 300 {
		t.Errorf("stats %+v", st)
	}
	if refused.Load() < 2 {
		t.Errorf("refused %d batches; the poison should have been refused in a batch and then alone", refused.Load())
	}
}

// A record larger than Kafka's max.message.bytes is refused by the client itself; same outcome.
func TestOversizedRecordIsDeadLettered(t *testing.T) {
	c := newCluster(t, 2)
	l := newMemLog()
	want := fill(t, l, 20, 2, nil)
	big := bytes.Repeat([]byte("x"), 1_100_000)
	bigSeq := l.add("plant1/huge", big)
	want = fill(t, l, 20, 2, want)
	f, _ := newTestForwarder(t, testConfig(c.ListenAddrs()))
	start(t, f, l)
	waitFor(t, 10*time.Second, "the log to drain", func() bool { return l.len() == 0 })
	dead := l.deadLetters()
	if len(dead) != 1 || !bytes.Equal(dead[0].Payload, big) || !strings.Contains(dead[0].Reason, "MESSAGE_TOO_LARGE") ||
		!strings.Contains(dead[0].Origin, fmt.Sprintf("seq %d", bigSeq)) {
		t.Fatalf("dead letters: %d, want the big one", len(dead))
	}
	checkLanded(t, landed(t, c, 2), want, false)
}

// An error about the configuration (topic authorization) is not the record's fault: nothing is dead-lettered,
// everything stays in the log, the error is counted as fatal and named; when it is fixed, everything lands.
func TestConfigErrorKeepsReadings(t *testing.T) {
	c := newCluster(t, 2)
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: testTopic, Err: kerr.TopicAuthorizationFailed, Count: -1})
	l := newMemLog()
	want := fill(t, l, 200, 4, nil)
	f, logs := newTestForwarder(t, testConfig(c.ListenAddrs()))
	stop := start(t, f, l)
	waitFor(t, 10*time.Second, "a fatal error in stats", func() bool { return f.Stats().ProduceErrors.Fatal >= 2 })
	st := f.Stats()
	if l.len() != 200 || len(l.deadLetters()) != 0 || st.Forwarded != 0 || !strings.Contains(st.LastError, "TOPIC_AUTHORIZATION_FAILED") {
		t.Fatalf("during the refusal: log %d, dead %d, stats %+v", l.len(), len(l.deadLetters()), st)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "TOPIC_AUTHORIZATION_FAILED") {
		t.Errorf("no error logged naming the cause:\n%s", logs.String())
	}
	h.Remove()
	waitFor(t, 15*time.Second, "the log to drain", func() bool { return l.len() == 0 })
	stop(5 * time.Second)
	checkLanded(t, landed(t, c, 2), want, false)
}

// A broker that takes longer than produce_timeout to answer: rounds are abandoned and retried, nothing hangs,
// Run stops promptly even with requests parked in the broker, and everything lands once the broker is fast again.
func TestSlowBroker(t *testing.T) {
	for _, replace := range []bool{false, true} {
		// replace: the client gets no grace to fail its records after a round's timeout, so the forwarder closes
		// it and starts a new one each time (the path that guards against a client that never answers).
		t.Run(fmt.Sprintf("replace client=%v", replace), func(t *testing.T) {
			c := newCluster(t, 2)
			release := make(chan struct{})
			var slowed atomic.Int64
			c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
				select {
				case <-release:
				default:
					slowed.Add(1)
					c.SleepControl(func() { <-release })
				}
				return nil, nil, false
			})
			l := newMemLog()
			want := fill(t, l, 300, 3, nil)
			cfg := testConfig(c.ListenAddrs())
			cfg.ProduceTimeout = 500 * time.Millisecond
			f, _ := newTestForwarder(t, cfg)
			if replace {
				f.grace = time.Nanosecond
			}
			stop := start(t, f, l)
			waitFor(t, 10*time.Second, "rounds to time out", func() bool { return f.Stats().ProduceErrors.Retriable >= 3 })
			if l.len() != 300 {
				t.Fatalf("log holds %d, want 300 while the broker sleeps", l.len())
			}
			st := f.Stats()
			t.Logf("while slow: %d requests parked, stats %+v", slowed.Load(), st)
			if st.Forwarded != 0 || !strings.Contains(st.LastError, "produce_timeout") || (st.ClientRestarts > 0) != replace {
				t.Errorf("stats %+v", st)
			}
			close(release)
			waitFor(t, 20*time.Second, "the log to drain", func() bool { return l.len() == 0 })
			stop(5 * time.Second)
			checkLanded(t, landed(t, c, 2), want, false)
		})
	}
}

// Run stops promptly when cancelled while the broker sleeps on its requests.
func TestCancelWhileBrokerSlow(t *testing.T) {
	c := newCluster(t, 1)
	release := make(chan struct{})
	defer close(release)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	l := newMemLog()
	fill(t, l, 50, 2, nil)
	cfg := testConfig(c.ListenAddrs())
	cfg.ProduceTimeout = 30 * time.Second // the default: cancellation, not the round timeout, must end it
	f, _ := newTestForwarder(t, cfg)
	stop := start(t, f, l)
	waitFor(t, 10*time.Second, "records in flight", func() bool { return f.Stats().InFlight > 0 })
	time.Sleep(300 * time.Millisecond)
	stop(4 * time.Second)
	if l.len() != 50 {
		t.Errorf("log holds %d, want all 50", l.len())
	}
}

// The broker dies mid-stream and comes back on the same port with its data: every reading lands, in order.
func TestBrokerRestart(t *testing.T) {
	port, dir := testutil.FreePort(t), t.TempDir()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir)}
	c, err := kfake.NewCluster(append(opts, kfake.SeedTopics(2, testTopic))...)
	if err != nil {
		t.Fatal(err)
	}
	l := newMemLog()
	f, _ := newTestForwarder(t, testConfig(c.ListenAddrs()))
	stop := start(t, f, l)
	want := fill(t, l, 500, 4, nil)
	waitFor(t, 10*time.Second, "some readings forwarded", func() bool { return f.Stats().Forwarded > 0 })
	c.Close()
	want = fill(t, l, 500, 4, want)
	time.Sleep(1500 * time.Millisecond)
	if l.len() == 0 {
		t.Fatal("log drained while the broker was down")
	}
	if st := f.Stats(); st.Connected || st.LastError == "" {
		t.Errorf("stats while down: %+v", st)
	}
	c, err = kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want = fill(t, l, 200, 4, want)
	waitFor(t, 30*time.Second, "the log to drain after the restart", func() bool { return l.len() == 0 })
	stop(5 * time.Second)
	dups := checkLanded(t, landed(t, c, 2), want, false)
	t.Logf("%d duplicates; stats %+v", dups, f.Stats())
}

// With no broker at all, cancelling Run returns within a few seconds, keeps every reading, and leaves no goroutine.
func TestCancelWhileBrokerDown(t *testing.T) {
	before := runtime.NumGoroutine()
	l := newMemLog()
	fill(t, l, 100, 3, nil)
	cfg := testConfig([]string{fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))})
	cfg.ProduceTimeout = 30 * time.Second
	f, _ := newTestForwarder(t, cfg)
	stop := start(t, f, l)
	waitFor(t, 10*time.Second, "a connection error in stats", func() bool { return f.Stats().LastError != "" })
	time.Sleep(500 * time.Millisecond)
	st := f.Stats()
	if st.Connected || !strings.Contains(st.LastError, "connection refused") {
		t.Errorf("stats %+v", st)
	}
	stop(3 * time.Second)
	if l.len() != 100 {
		t.Errorf("log holds %d, want all 100", l.len())
	}
	waitFor(t, 5*time.Second, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
}

// Failures of the log itself (a full disk) are counted and retried, and lose nothing.
func TestLogFailures(t *testing.T) {
	c := newCluster(t, 1)
	l := newMemLog()
	want := fill(t, l, 100, 2, nil)
	l.setErrs(nil, errors.New("disk full"), nil)
	f, _ := newTestForwarder(t, testConfig(c.ListenAddrs()))
	stop := start(t, f, l)
	waitFor(t, 10*time.Second, "log errors", func() bool { return f.Stats().LogErrors >= 2 })
	if st := f.Stats(); !strings.Contains(st.LastError, "disk full") || st.Forwarded != 0 {
		t.Errorf("stats %+v", st)
	}
	l.setErrs(nil, nil, nil)
	waitFor(t, 10*time.Second, "the log to drain", func() bool { return l.len() == 0 })
	stop(5 * time.Second)
	checkLanded(t, landed(t, c, 1), want, false)
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c := newCluster(t, 1, kfake.EnableSASL(), kfake.Superuser(mech, "gateway", "s3cret"))
			l := newMemLog()
			want := fill(t, l, 50, 2, nil)
			cfg := testConfig(c.ListenAddrs())
			cfg.SASL = fieldgate.SASLConfig{Mechanism: mech, Username: "gateway", Password: "s3cret"}
			f, _ := newTestForwarder(t, cfg)
			start(t, f, l)
			waitFor(t, 10*time.Second, "the log to drain", func() bool { return l.len() == 0 })
			auth := scram.Auth{User: "gateway", Pass: "s3cret"}
			m := auth.AsSha256Mechanism()
			if mech == "SCRAM-SHA-512" {
				m = auth.AsSha512Mechanism()
			}
			checkLanded(t, landed(t, c, 1, kgo.SASL(m)), want, true)
			if f.Stats().Forwarded != 50 {
				t.Errorf("stats %+v", f.Stats())
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		c := newCluster(t, 1, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "gateway", "s3cret"))
		l := newMemLog()
		fill(t, l, 50, 2, nil)
		cfg := testConfig(c.ListenAddrs())
		cfg.SASL = fieldgate.SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "gateway", Password: "hunter2-wrong"}
		f, logs := newTestForwarder(t, cfg)
		stop := start(t, f, l)
		waitFor(t, 10*time.Second, "an authentication error in stats", func() bool {
			e := f.Stats().LastError
			return strings.Contains(e, "SASL SCRAM-SHA-256") && strings.Contains(e, `user "gateway"`) && strings.Contains(e, "password")
		})
		waitFor(t, 10*time.Second, "a failed round", func() bool { return f.Stats().ProduceErrors != (ErrorCounts{}) })
		if !strings.Contains(logs.String(), "SASL SCRAM-SHA-256") {
			t.Errorf("the log does not name the SASL failure:\n%s", logs.String())
		}
		stop(4 * time.Second)
		st := f.Stats()
		if st.Connected || l.len() != 50 || len(l.deadLetters()) != 0 {
			t.Errorf("stats %+v, log %d", st, l.len())
		}
		if strings.Contains(logs.String(), "hunter2") {
			t.Errorf("the password was logged:\n%s", logs.String())
		}
		t.Logf("last error: %s", st.LastError)
	})
}

// A topic that does not exist (and is not created on demand) is a configuration error: kept, counted as fatal,
// named; once the topic exists, everything lands.
func TestMissingTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l := newMemLog()
	want := fill(t, l, 30, 2, nil)
	f, _ := newTestForwarder(t, testConfig(c.ListenAddrs()))
	stop := start(t, f, l)
	waitFor(t, 15*time.Second, "a fatal error", func() bool { return f.Stats().ProduceErrors.Fatal > 0 })
	if st := f.Stats(); l.len() != 30 || !strings.Contains(st.LastError, "UNKNOWN_TOPIC_OR_PARTITION") || len(l.deadLetters()) != 0 {
		t.Fatalf("log %d, stats %+v", l.len(), st)
	}
	if err := c.CreateTopic(testTopic, 2, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the log to drain", func() bool { return l.len() == 0 })
	stop(5 * time.Second)
	checkLanded(t, landed(t, c, 2), want, true)
}

// The topic's max.message.bytes is below the client's: the broker refuses whole batches with MESSAGE_TOO_LARGE.
// The forwarder must not blame the innocent readings in them: it narrows each refusal down one record at a time,
// delivers every reading that fits, and dead-letters only the one that does not fit even alone. With
// max_message_bytes set to the topic's limit, the batches fit from the start.
func TestTopicLimitBelowClientLimit(t *testing.T) {
	for _, configured := range []bool{false, true} {
		t.Run(fmt.Sprintf("max_message_bytes configured=%v", configured), func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			if err := c.CreateTopic(testTopic, 1, map[string]string{"max.message.bytes": "20000"}); err != nil {
				t.Fatal(err)
			}
			l := newMemLog()
			want := fill(t, l, 200, 4, nil)
			big := bytes.Repeat([]byte("y"), 30_000)
			bigSeq := l.add("plant1/huge", big)
			want = fill(t, l, 200, 4, want)
			cfg := testConfig(c.ListenAddrs())
			cfg.Compression = "none"
			if configured {
				cfg.MaxMessageBytes = 20000
			}
			f, _ := newTestForwarder(t, cfg)
			stop := start(t, f, l)
			waitFor(t, 30*time.Second, "the log to drain", func() bool { return l.len() == 0 })
			stop(5 * time.Second)
			dead := l.deadLetters()
			if len(dead) != 1 || !bytes.Equal(dead[0].Payload, big) || !strings.Contains(dead[0].Origin, fmt.Sprintf("seq %d", bigSeq)) {
				t.Fatalf("%d dead letters, want only the big reading", len(dead))
			}
			checkLanded(t, landed(t, c, 1), want, false)
			st := f.Stats()
			t.Logf("rounds %d, stats %+v", st.Batches, st)
			if st.Forwarded != 400 || st.DeadLettered != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}
