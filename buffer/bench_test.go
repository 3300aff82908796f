package buffer

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	bolt "go.etcd.io/bbolt"
)

// Run: go test -run '^$' -bench . -benchtime 200000x ./buffer/
//
// Every benchmark counts readings: b.N is the number of readings, and readings/s is reported. The Baseline*
// benchmarks do the same work with raw bbolt (one Put per reading, one Update per batch, default options, fsync
// on), so the buffer's overhead is the ratio of the two.

// benchReading is a typical reading: about 190 bytes on the wire.
func benchReading(i int) fieldgate.Reading {
	return fieldgate.Reading{
		Device: fmt.Sprintf("plant1/line-%d/press-%02d", i%4, i%16), Metric: "hydraulic_pressure_bar",
		Value: fieldgate.Float(120.5 + float64(i%1000)/7), Quality: fieldgate.Good,
		SourceTime:  t0.Add(time.Duration(i) * time.Millisecond),
		GatewayTime: t0.Add(time.Duration(i)*time.Millisecond + 3*time.Millisecond),
	}
}

func benchBatch(n int) []fieldgate.Reading {
	rs := make([]fieldgate.Reading, n)
	for i := range rs {
		rs[i] = benchReading(i)
	}
	return rs
}

func reportRate(b *testing.B, readings int) {
	b.ReportMetric(float64(readings)/b.Elapsed().Seconds(), "readings/s")
}

func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			buf := openT(b, Config{MaxBytes: 1 * GiB})
			rs := benchBatch(n)
			ctx := context.Background()
			b.ResetTimer()
			done := 0
			for done < b.N {
				if err := buf.Append(ctx, rs); err != nil {
					b.Fatal(err)
				}
				done += n
			}
			b.StopTimer()
			reportRate(b, done)
			b.ReportMetric(float64(buf.Stats().Commits), "commits")
		})
	}
}

// BenchmarkAppendConcurrent has many sources appending 1 to 10 readings each call, as MQTT handlers and pollers
// do; group commit is what makes this fast.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, writers := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			buf := openT(b, Config{MaxBytes: 1 * GiB})
			batches := make([][]fieldgate.Reading, 10)
			for i := range batches {
				batches[i] = benchBatch(i + 1)
			}
			ctx := context.Background()
			var left atomic.Int64
			left.Store(int64(b.N))
			var total atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; ; i++ {
						rs := batches[i%10]
						if left.Add(-int64(len(rs))) < -int64(len(rs)) {
							return
						}
						if err := buf.Append(ctx, rs); err != nil {
							b.Error(err)
							return
						}
						total.Add(int64(len(rs)))
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			reportRate(b, int(total.Load()))
			b.ReportMetric(float64(total.Load())/float64(buf.Stats().Commits), "readings/commit")
		})
	}
}

// BenchmarkDrain is the forwarder's side: Scan a batch, Ack it, until the buffer is empty.
func BenchmarkDrain(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("scan=%d", n), func(b *testing.B) {
			buf := openT(b, Config{MaxBytes: 1 * GiB})
			rs := benchBatch(1000)
			for i := 0; i < b.N; i += len(rs) {
				if err := buf.Append(context.Background(), rs); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			got := 0
			for {
				var last uint64
				if err := buf.Scan(n, func(seq uint64, k, v []byte) error { last = seq; got++; return nil }); err != nil {
					b.Fatal(err)
				}
				if last == 0 {
					break
				}
				if err := buf.Ack(last); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportRate(b, got)
		})
	}
}

func openBaseline(b *testing.B, opts *bolt.Options) *bolt.DB {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucketReadings); return err }); err != nil {
		b.Fatal(err)
	}
	return db
}

func encodedBatch(b *testing.B, n int) [][]byte {
	vs := make([][]byte, n)
	for i := range vs {
		v, err := fieldgate.Encode(benchReading(i))
		if err != nil {
			b.Fatal(err)
		}
		vs[i] = v
	}
	return vs
}

func rawAppend(db *bolt.DB, vs [][]byte) error {
	return db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketReadings)
		for _, v := range vs {
			seq, _ := bk.NextSequence()
			if err := bk.Put(binary.BigEndian.AppendUint64(nil, seq), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// BenchmarkBaselineBoltAppend: raw bbolt, one Update (fsync) per batch, one Put per reading of pre-encoded wire
// bytes. The buffer's BenchmarkAppend also encodes the readings.
func BenchmarkBaselineBoltAppend(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			db := openBaseline(b, nil)
			vs := encodedBatch(b, n)
			b.ResetTimer()
			done := 0
			for done < b.N {
				if err := rawAppend(db, vs); err != nil {
					b.Fatal(err)
				}
				done += n
			}
			b.StopTimer()
			reportRate(b, done)
		})
	}
}

// BenchmarkBaselineBoltDrain: raw bbolt, read n oldest (copying values) in a View, delete them in an Update.
func BenchmarkBaselineBoltDrain(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("scan=%d", n), func(b *testing.B) {
			db := openBaseline(b, nil)
			vs := encodedBatch(b, 1000)
			for i := 0; i < b.N; i += len(vs) {
				if err := rawAppend(db, vs); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			got := 0
			for {
				var keys [][]byte
				_ = db.View(func(tx *bolt.Tx) error {
					c := tx.Bucket(bucketReadings).Cursor()
					for k, v := c.First(); k != nil && len(keys) < n; k, v = c.Next() {
						keys = append(keys, append([]byte(nil), k...))
						_ = append([]byte(nil), v...)
					}
					return nil
				})
				if len(keys) == 0 {
					break
				}
				got += len(keys)
				if err := db.Update(func(tx *bolt.Tx) error {
					bk := tx.Bucket(bucketReadings)
					for _, k := range keys {
						if err := bk.Delete(k); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportRate(b, got)
		})
	}
}

// BenchmarkFreelistAfterBacklog measures raw bbolt appends (batches of 100) after a backlog of 500,000 readings
// (about 100 MB) was written and drained, with the freelist written on every commit (bbolt's default) and not
// (NoFreelistSync, which the buffer uses): etcd-io/bbolt#401.
func BenchmarkFreelistAfterBacklog(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		b.Run(fmt.Sprintf("NoFreelistSync=%v", noSync), func(b *testing.B) {
			db := openBaseline(b, &bolt.Options{NoFreelistSync: noSync, FreelistType: bolt.FreelistMapType})
			vs := encodedBatch(b, 10000)
			for range 50 {
				if err := rawAppend(db, vs); err != nil {
					b.Fatal(err)
				}
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				if err := tx.DeleteBucket(bucketReadings); err != nil {
					return err
				}
				_, err := tx.CreateBucket(bucketReadings)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			vs = vs[:100]
			b.ResetTimer()
			done := 0
			for done < b.N {
				if err := rawAppend(db, vs); err != nil {
					b.Fatal(err)
				}
				done += len(vs)
			}
			b.StopTimer()
			reportRate(b, done)
			b.ReportMetric(float64(db.Stats().FreePageN), "free-pages")
		})
	}
}

// BenchmarkOpenFull measures Open of a buffer file filled to the default cap (256 MiB of readings): the
// read-only walk, bbolt's freelist rebuild and the consistency check.
func BenchmarkOpenFull(b *testing.B) {
	path := filepath.Join(b.TempDir(), "buffer.db")
	buf, err := Open(Config{Path: path}, nil)
	if err != nil {
		b.Fatal(err)
	}
	rs := benchBatch(5000)
	for buf.Stats().DroppedOldest == 0 {
		if err := buf.Append(context.Background(), rs); err != nil {
			b.Fatal(err)
		}
	}
	st := buf.Stats()
	buf.Close()
	b.ResetTimer()
	for range b.N {
		buf, err := Open(Config{Path: path}, nil)
		if err != nil {
			b.Fatal(err)
		}
		buf.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(st.Entries), "readings")
	b.ReportMetric(float64(st.FileBytes)/float64(MiB), "file-MiB")
}

// BenchmarkSteadyRounds is the buffer at a plant's steady rate: each round is one commit of 20 messages of 3
// readings (what a Mosquitto with its default in-flight limit lets through before it waits for
// acknowledgements), queued by 20 Queue calls and flushed, after which the forwarder scans and acknowledges
// them, so every commit also carries the previous round's deletion. It reports what matters for flash and CPU
// on edge hardware: bytes the process wrote to storage per reading (/proc/self/io write_bytes, page-granular),
// fsyncs per round, and the wire size of a reading to compare with. BenchmarkBaselineBoltSteadyRounds does the
// same rounds with raw bbolt as the buffer used it before packing: one key per reading, one transaction for the
// appends and one for the deletions.
//
//	go test -run '^$' -bench SteadyRounds -benchtime 2000x ./buffer/
func BenchmarkSteadyRounds(b *testing.B) {
	buf := openT(b, Config{MaxBytes: 1 * GiB})
	msgs := make([][]fieldgate.Reading, 20)
	for i := range msgs {
		msgs[i] = benchBatch(3)
	}
	w0, _ := processWrittenBytes()
	st0 := buf.Stats()
	cpu0 := processCPU()
	b.ResetTimer()
	for range b.N {
		var c *fieldgate.Commit
		for _, rs := range msgs {
			var err error
			if c, err = buf.Queue(rs, nil); err != nil {
				b.Fatal(err)
			}
		}
		buf.Flush()
		if err := c.Wait(context.Background()); err != nil {
			b.Fatal(err)
		}
		var last uint64
		if err := buf.Scan(1000, func(seq uint64, _, _ []byte) error { last = seq; return nil }); err != nil {
			b.Fatal(err)
		}
		if err := buf.Ack(last); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := processCPU() - cpu0
	w1, _ := processWrittenBytes()
	st := buf.Stats()
	readings := b.N * 60
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/round")
	reportRate(b, readings)
	b.ReportMetric(float64(w1-w0)/float64(readings), "disk-B/reading")
	b.ReportMetric(float64(st.Fsyncs-st0.Fsyncs)/float64(b.N), "fsyncs/round")
	b.ReportMetric(float64(wireSize(b)), "wire-B/reading")
}

func BenchmarkBaselineBoltSteadyRounds(b *testing.B) {
	db := openBaseline(b, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	vs := encodedBatch(b, 60)
	w0, _ := processWrittenBytes()
	cpu0 := processCPU()
	b.ResetTimer()
	for range b.N {
		if err := rawAppend(db, vs); err != nil {
			b.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucketReadings)
			c := bk.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.First() {
				if err := bk.Delete(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := processCPU() - cpu0
	w1, _ := processWrittenBytes()
	readings := b.N * 60
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/round")
	reportRate(b, readings)
	b.ReportMetric(float64(w1-w0)/float64(readings), "disk-B/reading")
	b.ReportMetric(4, "fsyncs/round") // two transactions of two fdatasyncs each
	b.ReportMetric(float64(wireSize(b)), "wire-B/reading")
}

// wireSize is the wire size of benchReading.
func wireSize(b *testing.B) int {
	v, err := fieldgate.Encode(benchReading(1))
	if err != nil {
		b.Fatal(err)
	}
	return len(v)
}

// processCPU is the user and system CPU time the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
