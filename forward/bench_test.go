package forward

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchReadings returns n realistic encoded readings: 50 devices, a few metrics each, noisy floats, some ints
// and bools, millisecond timestamps.
func benchReadings(tb testing.TB, n int) []memEntry {
	rng := rand.New(rand.NewPCG(1, 2))
	metrics := []string{"hydraulic_pressure", "oil_temperature", "motor_current", "cycle_count", "door_open", "env.humidity"}
	out := make([]memEntry, n)
	for i := range out {
		dev := fmt.Sprintf("plant1/line-%d/press-%02d", i%5, i%50)
		m := metrics[i%len(metrics)]
		var v fieldgate.Value
		switch m {
		case "cycle_count":
			v = fieldgate.Int(int64(100000 + i))
		case "door_open":
			v = fieldgate.Bool(rng.IntN(10) == 0)
		default:
			v = fieldgate.Float(20 + rng.Float64()*80)
		}
		b, err := fieldgate.Encode(fieldgate.Reading{Device: dev, Metric: m, Value: v,
			SourceTime: base.Add(time.Duration(i) * time.Millisecond), GatewayTime: base.Add(time.Duration(i)*time.Millisecond + 3*time.Millisecond)})
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = memEntry{seq: uint64(i + 1), key: []byte(dev), value: b}
	}
	return out
}

// sliceLog is a read-only Log over prepared entries that hands out the same (immutable) slices, so that a
// benchmark measures the forwarder and the client, not the copying of a test log.
type sliceLog struct {
	mu      sync.Mutex
	entries []memEntry
	next    int
	drained chan struct{}
}

func (s *sliceLog) Scan(max int, fn func(seq uint64, key, value []byte) error) error {
	s.mu.Lock()
	batch := s.entries[s.next:min(s.next+max, len(s.entries))]
	s.mu.Unlock()
	for _, e := range batch {
		if err := fn(e.seq, e.key, e.value); err != nil {
			return err
		}
	}
	return nil
}

func (s *sliceLog) Ack(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = int(seq) // seqs are 1..n at indexes 0..n-1
	if s.next == len(s.entries) {
		close(s.drained)
	}
	return nil
}

func (s *sliceLog) Reject(context.Context, fieldgate.DeadLetter) error { return nil }
func (s *sliceLog) Appended() <-chan struct{}                          { return nil }

// BenchmarkForward measures readings/s from a log into kfake (3 partitions, snappy), one op = one reading, next
// to a baseline in the same run: the same records produced by a bare kgo client (defaults, same codec) with
// ProduceSync in rounds of the same size.
//
//	go test -run '^$' -bench Forward -benchtime 200000x ./forward/
func BenchmarkForward(b *testing.B) {
	for _, batch := range []int{100, 500, 2000, 5000} {
		b.Run(fmt.Sprintf("batch=%d/forwarder", batch), func(b *testing.B) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, testTopic))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			l := &sliceLog{entries: benchReadings(b, b.N), drained: make(chan struct{})}
			cfg := testConfig(c.ListenAddrs())
			cfg.BatchSize = batch
			f, err := New(cfg, "gw-bench", discardLogger())
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			b.ReportAllocs()
			b.ResetTimer()
			done := make(chan error, 1)
			go func() { done <- f.Run(ctx, l) }()
			select {
			case <-l.drained:
			case <-time.After(5 * time.Minute):
				b.Fatal("not drained")
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
			st := f.Stats()
			b.ReportMetric(st.ProduceSeconds/float64(st.Batches)*1e3, "ms/round")
			cancel()
			<-done
		})
		b.Run(fmt.Sprintf("batch=%d/kgo-produce-sync", batch), func(b *testing.B) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, testTopic))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			entries := benchReadings(b, b.N)
			f, err := New(testConfig(c.ListenAddrs()), "gw-bench", discardLogger())
			if err != nil {
				b.Fatal(err)
			}
			// A bare client: franz-go's defaults (idempotent, acks=all), the same topic and codec.
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(testTopic),
				kgo.ProducerBatchCompression(codecs[f.cfg.Compression]))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			recs := make([]*kgo.Record, 0, batch)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < len(entries); i += batch {
				recs = recs[:0]
				for _, e := range entries[i:min(i+batch, len(entries))] {
					recs = append(recs, &kgo.Record{Key: e.key, Value: e.value, Headers: f.headers})
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err := cl.ProduceSync(ctx, recs...).FirstErr()
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}

// BenchmarkCodec compares the compression codecs on a realistic batch (2000 readings as they go into a record
// batch: key, header strings and value per record): MB/s of input and the compressed size as a ratio.
// To see the pure-Go code paths (32-bit ARM, and lz4's encoder on every architecture), add -tags noasm.
//
//	go test -run '^$' -bench Codec ./forward/
//	go test -run '^$' -bench Codec -tags noasm ./forward/
func BenchmarkCodec(b *testing.B) {
	var src []byte
	for _, e := range benchReadings(b, 2000) {
		src = append(src, e.key...)
		src = append(src, fieldgate.HeaderGateway+"gw-0042"+fieldgate.HeaderFormat+"1"...)
		src = append(src, e.value...)
	}
	for _, name := range []string{"snappy", "lz4", "zstd", "gzip"} {
		b.Run(name, func(b *testing.B) {
			comp, err := kgo.DefaultCompressor(codecs[name])
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			var out []byte
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				out, _ = comp.Compress(&buf, src)
			}
			b.ReportMetric(float64(len(src))/float64(len(out)), "ratio")
		})
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
