package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
	bolt "go.etcd.io/bbolt"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func reading(dev string, i int) fieldgate.Reading {
	return fieldgate.Reading{Device: dev, Metric: "count", Value: fieldgate.Int(int64(i)), GatewayTime: t0.Add(time.Duration(i) * time.Millisecond)}
}

func readings(dev string, from, n int) []fieldgate.Reading {
	rs := make([]fieldgate.Reading, n)
	for i := range rs {
		rs[i] = reading(dev, from+i)
	}
	return rs
}

func openT(t testing.TB, cfg Config) *Buffer {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "buffer.db")
	}
	b, err := Open(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type entry struct {
	seq        uint64
	key, value []byte
}

func scanAll(t testing.TB, b *Buffer) []entry {
	t.Helper()
	var out []entry
	if err := b.Scan(1<<30, func(seq uint64, k, v []byte) error {
		out = append(out, entry{seq, k, v})
		return nil
	}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

func mustAppend(t testing.TB, b *Buffer, rs []fieldgate.Reading) {
	t.Helper()
	if err := b.Append(context.Background(), rs); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

// commitNow commits the deletions of what was acknowledged, which otherwise wait for the next commit or the ack
// delay, and waits for it.
func commitNow(t testing.TB, b *Buffer) {
	t.Helper()
	b.mu.Lock()
	pending := b.ackedUpTo.Load() > b.deletedUpTo
	b.mu.Unlock()
	if !pending {
		return
	}
	c, err := b.Queue(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Flush()
	select {
	case <-c.Done():
		if err := c.Err(); err != nil {
			t.Fatalf("commit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the deletions were not committed within 10 s")
	}
}

// checkEntries asserts that es holds exactly want, in order, as device keys and wire bytes, with increasing
// sequence numbers.
func checkEntries(t testing.TB, es []entry, want []fieldgate.Reading) {
	t.Helper()
	if len(es) != len(want) {
		t.Fatalf("got %d entries, want %d", len(es), len(want))
	}
	for i, e := range es {
		wire, err := fieldgate.Encode(want[i])
		if err != nil {
			t.Fatal(err)
		}
		if string(e.key) != want[i].Device || !bytes.Equal(e.value, wire) {
			t.Fatalf("entry %d (seq %d) = %s %s, want %s %s", i, e.seq, e.key, e.value, want[i].Device, wire)
		}
		if i > 0 && e.seq <= es[i-1].seq {
			t.Fatalf("entry %d: seq %d after %d", i, e.seq, es[i-1].seq)
		}
	}
}

func TestFIFOOrderAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openT(t, Config{Path: path})
	var want []fieldgate.Reading
	for i := range 5 {
		rs := append(readings("plant1/press-07", i*10, 7), readings("plant1/oven-2", i*10, 3)...)
		mustAppend(t, b, rs)
		want = append(want, rs...)
	}
	es := scanAll(t, b)
	checkEntries(t, es, want)
	if es[0].seq != 1 || es[len(es)-1].seq != uint64(len(want)) {
		t.Fatalf("seqs %d..%d, want 1..%d", es[0].seq, es[len(es)-1].seq, len(want))
	}
	st := b.Stats()
	if st.Entries != int64(len(want)) || st.Appended != uint64(len(want)) || st.Bytes <= 0 || !st.Healthy {
		t.Fatalf("stats %+v", st)
	}
	if st.OldestAppended.IsZero() || time.Since(st.OldestAppended) > time.Minute {
		t.Fatalf("OldestAppended %v", st.OldestAppended)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.Append(context.Background(), readings("x", 0, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}

	b2 := openT(t, Config{Path: path})
	checkEntries(t, scanAll(t, b2), want)
	st2 := b2.Stats()
	if st2.Entries != st.Entries || st2.Bytes != st.Bytes || !st2.OldestAppended.Equal(st.OldestAppended) {
		t.Fatalf("after reopen: entries %d bytes %d oldest %v, want %d %d %v", st2.Entries, st2.Bytes, st2.OldestAppended, st.Entries, st.Bytes, st.OldestAppended)
	}
	// The sequence continues across the restart, even after everything was acknowledged.
	if err := b2.Ack(es[len(es)-1].seq); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b2, readings("plant1/press-07", 1000, 1))
	es2 := scanAll(t, b2)
	if len(es2) != 1 || es2[0].seq != uint64(len(want))+1 {
		t.Fatalf("after reopen and ack: %v, want one entry with seq %d", es2, len(want)+1)
	}
}

func TestScanReturnsCopies(t *testing.T) {
	b := openT(t, Config{})
	want := readings("dev", 0, 20)
	mustAppend(t, b, want)
	for _, e := range scanAll(t, b) {
		for i := range e.key {
			e.key[i] = 'X'
		}
		for i := range e.value {
			e.value[i] = 'X'
		}
	}
	checkEntries(t, scanAll(t, b), want)

	// Appending to a returned slice must not clobber its neighbour.
	var kept []entry
	_ = b.Scan(2, func(seq uint64, k, v []byte) error {
		kept = append(kept, entry{seq, k, v})
		return nil
	})
	_ = append(kept[0].key, "garbage"...)
	_ = append(kept[0].value, "garbage"...)
	checkEntries(t, kept, want[:2])

	// max bounds the scan; an error from fn stops it and is returned.
	n := 0
	stop := errors.New("stop")
	err := b.Scan(100, func(uint64, []byte, []byte) error {
		n++
		if n == 5 {
			return stop
		}
		return nil
	})
	if err != stop || n != 5 {
		t.Fatalf("Scan with failing fn: err %v after %d calls", err, n)
	}
	n = 0
	_ = b.Scan(3, func(uint64, []byte, []byte) error { n++; return nil })
	if n != 3 {
		t.Fatalf("Scan(3) called fn %d times", n)
	}
}

func TestScanEmptyDoesNotBlock(t *testing.T) {
	b := openT(t, Config{})
	called := false
	if err := b.Scan(10, func(uint64, []byte, []byte) error { called = true; return nil }); err != nil || called {
		t.Fatalf("Scan on empty buffer: err %v, called %v", err, called)
	}
	if !b.Stats().OldestAppended.IsZero() {
		t.Fatal("OldestAppended set on empty buffer")
	}
}

func TestAckRange(t *testing.T) {
	b := openT(t, Config{})
	want := readings("dev", 0, 100)
	mustAppend(t, b, want[:50])
	time.Sleep(5 * time.Millisecond)
	mustAppend(t, b, want[50:])
	es := scanAll(t, b)
	oldest := b.Stats().OldestAppended

	if err := b.Ack(es[49].seq); err != nil {
		t.Fatal(err)
	}
	checkEntries(t, scanAll(t, b), want[50:])
	if st := b.Stats(); st.Acked != 0 || st.Entries != 100 {
		t.Fatalf("before the deletions were committed: acked %d entries %d", st.Acked, st.Entries)
	}
	commitNow(t, b)
	st := b.Stats()
	if st.Acked != 50 || st.Entries != 50 {
		t.Fatalf("after ack: acked %d entries %d", st.Acked, st.Entries)
	}
	if !st.OldestAppended.After(oldest) {
		t.Fatalf("OldestAppended %v did not advance past %v", st.OldestAppended, oldest)
	}
	// Acking an old sequence again deletes nothing.
	if err := b.Ack(es[10].seq); err != nil {
		t.Fatal(err)
	}
	if got := b.Stats().Acked; got != 50 {
		t.Fatalf("re-ack changed Acked to %d", got)
	}
	// Acking past the end empties the buffer.
	if err := b.Ack(es[99].seq + 1000); err != nil {
		t.Fatal(err)
	}
	commitNow(t, b)
	st = b.Stats()
	if st.Entries != 0 || st.Bytes != 0 || st.Acked != 100 || !st.OldestAppended.IsZero() {
		t.Fatalf("after full ack: %+v", st)
	}
	// ... but not what comes after: readings appended later are there to forward.
	later := readings("dev", 100, 3)
	mustAppend(t, b, later)
	checkEntries(t, scanAll(t, b), later)
}

func TestInvalidReadingStoresNothing(t *testing.T) {
	b := openT(t, Config{})
	rs := readings("dev", 0, 5)
	rs[3].Device = ""
	err := b.Append(context.Background(), rs)
	if !errors.Is(err, fieldgate.ErrInvalidReading) {
		t.Fatalf("Append = %v, want ErrInvalidReading", err)
	}
	if es := scanAll(t, b); len(es) != 0 {
		t.Fatalf("%d entries stored after an invalid append", len(es))
	}
}

func TestAppendedSignal(t *testing.T) {
	b := openT(t, Config{})
	select {
	case <-b.Appended():
		t.Fatal("signal before any append")
	default:
	}
	mustAppend(t, b, readings("dev", 0, 1))
	mustAppend(t, b, readings("dev", 1, 1)) // a second signal must not block the committer
	select {
	case <-b.Appended():
	case <-time.After(time.Second):
		t.Fatal("no signal after append")
	}
}

// sizedReading returns a reading whose stored size (key + entry) is exactly size bytes.
func sizedReading(t testing.TB, dev string, i, size int) fieldgate.Reading {
	r := fieldgate.Reading{Device: dev, Metric: "blob", GatewayTime: t0}
	base := storedSize(t, r, "")
	pad := size - base
	if pad < 0 {
		t.Fatalf("size %d too small", size)
	}
	s := fmt.Sprintf("%0*d", pad, i)
	r.Value = fieldgate.String(s)
	if got := storedSize(t, r, s); got != size {
		t.Fatalf("stored size %d, want %d", got, size)
	}
	return r
}

func storedSize(t testing.TB, r fieldgate.Reading, s string) int {
	r.Value = fieldgate.String(s)
	wire, err := fieldgate.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	uv := func(n int) int { return len(binary.AppendUvarint(nil, uint64(n))) }
	return keySize + packedHeader + uv(len(r.Device)) + len(r.Device) + uv(len(wire)) + len(wire)
}

func TestCapDropOldest(t *testing.T) {
	const size = 1024
	b := openT(t, Config{MaxBytes: MiB}) // room for exactly 1024 entries
	var all []fieldgate.Reading
	for i := 0; i < 1500; i += 100 {
		var rs []fieldgate.Reading
		for j := i; j < i+100; j++ {
			rs = append(rs, sizedReading(t, "dev", j, size))
		}
		mustAppend(t, b, rs)
		all = append(all, rs...)
	}
	st := b.Stats()
	if st.Entries != 1024 || st.Bytes != int64(MiB) || st.DroppedOldest != 1500-1024 || st.DroppedNewest != 0 || st.Appended != 1500 {
		t.Fatalf("stats %+v", st)
	}
	es := scanAll(t, b)
	checkEntries(t, es, all[1500-1024:])
	if es[0].seq != 1500-1024+1 {
		t.Fatalf("oldest kept seq %d", es[0].seq)
	}

	// One append larger than the whole cap keeps only its newest readings that fit.
	var big []fieldgate.Reading
	for j := range 1100 {
		big = append(big, sizedReading(t, "dev", 5000+j, size))
	}
	mustAppend(t, b, big)
	st = b.Stats()
	if st.Entries != 1024 || st.Bytes != int64(MiB) || st.DroppedOldest != (1500-1024)+1024+(1100-1024) {
		t.Fatalf("after oversized append: %+v", st)
	}
	checkEntries(t, scanAll(t, b), big[1100-1024:])
}

func TestCapDropNewest(t *testing.T) {
	const size = 1024
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openT(t, Config{Path: path, MaxBytes: MiB, WhenFull: DropNewest})
	var all []fieldgate.Reading
	for i := 0; i < 1500; i += 100 {
		var rs []fieldgate.Reading
		for j := i; j < i+100; j++ {
			rs = append(rs, sizedReading(t, "dev", j, size))
		}
		if err := b.Append(context.Background(), rs); err != nil {
			t.Fatalf("Append into a full buffer = %v, want nil", err)
		}
		all = append(all, rs...)
	}
	st := b.Stats()
	if st.Entries != 1024 || st.Bytes != int64(MiB) || st.DroppedNewest != 1500-1024 || st.DroppedOldest != 0 || st.Appended != 1024 {
		t.Fatalf("stats %+v", st)
	}
	checkEntries(t, scanAll(t, b), all[:1024])

	// After acking, there is room again; the counts survive a reopen.
	es := scanAll(t, b)
	if err := b.Ack(es[99].seq); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b, []fieldgate.Reading{sizedReading(t, "dev", 9999, size)})
	b.Close()
	b = openT(t, Config{Path: path, MaxBytes: MiB, WhenFull: DropNewest})
	if st := b.Stats(); st.Entries != 1024-100+1 || st.Bytes != (1024-100+1)*size {
		t.Fatalf("after reopen: %+v", st)
	}
}

func TestDeadLetters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openT(t, Config{Path: path, MaxDeadLetters: 5})
	ctx := context.Background()
	for i := range 8 {
		d := fieldgate.DeadLetter{Time: t0.Add(time.Duration(i) * time.Second), Source: "mqtt:plant", Origin: "plant/x/telemetry",
			Reason: fmt.Sprintf("bad %d", i), Payload: []byte{0, 1, byte(i), 0xff}}
		if err := b.Reject(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	check := func(b *Buffer) {
		t.Helper()
		ds, err := deadLetters(b, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 5 {
			t.Fatalf("%d dead letters, want 5", len(ds))
		}
		for j, d := range ds { // newest first
			i := 7 - j
			if d.Reason != fmt.Sprintf("bad %d", i) || !d.Time.Equal(t0.Add(time.Duration(i)*time.Second)) ||
				d.Source != "mqtt:plant" || d.Origin != "plant/x/telemetry" || !bytes.Equal(d.Payload, []byte{0, 1, byte(i), 0xff}) {
				t.Fatalf("dead letter %d = %+v", j, d)
			}
		}
		if st := b.Stats(); st.DeadLetters != 5 {
			t.Fatalf("Stats.DeadLetters %d", st.DeadLetters)
		}
	}
	check(b)
	if st := b.Stats(); st.DeadLettersDropped != 3 || st.DeadLettersStored != 8 {
		t.Fatalf("stats %+v", st)
	}
	if ds, _ := deadLetters(b, 2); len(ds) != 2 {
		t.Fatalf("DeadLetters(2) returned %d", len(ds))
	}
	b.Close()
	b = openT(t, Config{Path: path, MaxDeadLetters: 5})
	check(b)

	// A huge payload is cut, and the reason says so; the byte cap drops old letters.
	if err := b.Reject(ctx, fieldgate.DeadLetter{Reason: "huge", Payload: make([]byte, 1<<20)}); err != nil {
		t.Fatal(err)
	}
	ds, _ := deadLetters(b, 1)
	if len(ds[0].Payload) != MaxDeadLetterPayload || !strings.Contains(ds[0].Reason, "cut") || ds[0].Time.IsZero() {
		t.Fatalf("huge dead letter: %d bytes, reason %q, time %v", len(ds[0].Payload), ds[0].Reason, ds[0].Time)
	}
}

func TestDeadLetterByteCap(t *testing.T) {
	b := openT(t, Config{MaxDeadLetterBytes: 256 * KiB})
	for range 10 {
		if err := b.Reject(context.Background(), fieldgate.DeadLetter{Reason: "x", Payload: make([]byte, MaxDeadLetterPayload)}); err != nil {
			t.Fatal(err)
		}
	}
	st := b.Stats()
	// A letter is a bit over 4/3 of its payload (base64, about 87 KiB): two fit under 256 KiB, three do not.
	if st.DeadLetters != 2 || st.DeadLetterBytes > int64(256*KiB) || st.DeadLettersDropped != 8 {
		t.Fatalf("stats %+v", st)
	}
}

// openCorrupt opens path, which the caller made corrupt, and checks it was moved aside and a fresh buffer works.
func openCorrupt(t *testing.T, path string) {
	t.Helper()
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	b, err := Open(Config{Path: path}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("Open of a corrupt file: %v", err)
	}
	defer b.Close()
	t.Log(logs.String())
	st := b.Stats()
	if st.CorruptFilesMovedAside != 1 || st.Entries != 0 || !st.Healthy {
		t.Fatalf("stats %+v", st)
	}
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("moved-aside files: %v", aside)
	}
	kept, err := os.ReadFile(aside[0])
	if err != nil || !bytes.Equal(kept, orig) {
		t.Fatalf("moved-aside file differs from the corrupt one (err %v)", err)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, path) || !strings.Contains(l, aside[0]) {
		t.Fatalf("no ERROR log naming both paths: %s", l)
	}
	mustAppend(t, b, readings("dev", 0, 3))
	checkEntries(t, scanAll(t, b), readings("dev", 0, 3))
}

func TestCorruptGarbageMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	garbage := bytes.Repeat([]byte("this is not a bbolt file "), 3000)
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	openCorrupt(t, path)
}

// fillFile writes a buffer file with n readings and returns its path.
func fillFile(t *testing.T, n int) string {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openT(t, Config{Path: path})
	for i := 0; i < n; i += 1000 {
		mustAppend(t, b, readings("dev", i, 1000))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCorruptTruncatedMovedAside(t *testing.T) {
	path := fillFile(t, 20000)
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()/3); err != nil {
		t.Fatal(err)
	}
	openCorrupt(t, path)
}

func TestCorruptPageMovedAside(t *testing.T) {
	path := fillFile(t, 20000)
	// Overwrite a page in the middle of the tree (not a meta page) with a pattern: the meta pages stay valid,
	// so only the walk of the tree at Open and tx.Check can find it.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var leaf int64
	_ = db.View(func(tx *bolt.Tx) error {
		// The root page of the readings bucket is a branch; find its first child's page id.
		c := tx.Bucket(bucketReadings).Cursor()
		c.First()
		leaf = int64(tx.Bucket(bucketReadings).Root())
		return nil
	})
	ps := int64(db.Info().PageSize)
	db.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	page := make([]byte, ps)
	for i := range page {
		page[i] = 0xff
	}
	if _, err := f.WriteAt(page, leaf*ps); err != nil {
		t.Fatal(err)
	}
	f.Close()
	openCorrupt(t, path)
}

func TestSecondInstanceFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openT(t, Config{Path: path})
	mustAppend(t, b, readings("dev", 0, 1))
	start := time.Now()
	b2, err := Open(Config{Path: path}, nil)
	took := time.Since(start)
	if err == nil {
		b2.Close()
		t.Fatal("second Open succeeded")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another fieldgate gateway") {
		t.Fatalf("second Open: %v", err)
	}
	if took > 1500*time.Millisecond {
		t.Fatalf("second Open took %s", took)
	}
	t.Logf("second Open failed after %s: %v", took, err)
	// The first instance is untouched.
	mustAppend(t, b, readings("dev", 1, 1))
	checkEntries(t, scanAll(t, b), readings("dev", 0, 2))
}

func TestCloseAfterCancelledAppends(t *testing.T) {
	b := openT(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				_ = b.Append(ctx, readings(fmt.Sprint("dev", g), i, 5))
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := b.Append(context.Background(), readings("dev", 0, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	if err := b.Ack(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ack after Close = %v", err)
	}
	if err := b.Reject(context.Background(), fieldgate.DeadLetter{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reject after Close = %v", err)
	}
	if err := b.Scan(1, func(uint64, []byte, []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Scan after Close = %v", err)
	}
}

// TestConcurrentAppendScanAck runs many appenders and one consumer that scans and acks, as the forwarder does,
// and checks that the consumer sees every reading once, in per-device order.
func TestConcurrentAppendScanAck(t *testing.T) {
	b := openT(t, Config{})
	const writers, calls = 8, 150
	ctx := context.Background()
	var wg sync.WaitGroup
	total := 0
	for g := range writers {
		total += calls * (g%10 + 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev := fmt.Sprint("dev", g)
			for c := range calls {
				n := g%10 + 1
				if err := b.Append(ctx, readings(dev, c*n, n)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := map[string]int64{}
	got := 0
	deadline := time.After(60 * time.Second)
	for got < total {
		var last uint64
		err := b.Scan(500, func(seq uint64, k, v []byte) error {
			r, err := fieldgate.Decode(v)
			if err != nil {
				return err
			}
			if string(k) != r.Device || r.Value.Int() != next[r.Device] {
				return fmt.Errorf("seq %d: %s value %d, want %d", seq, k, r.Value.Int(), next[r.Device])
			}
			next[r.Device]++
			last = seq
			got++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if last > 0 {
			if err := b.Ack(last); err != nil {
				t.Fatal(err)
			}
			continue
		}
		select {
		case <-b.Appended():
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatalf("consumed %d of %d", got, total)
		}
	}
	wg.Wait()
	commitNow(t, b)
	st := b.Stats()
	if st.Entries != 0 || st.Appended != uint64(total) || st.Acked != uint64(total) || st.Commits >= uint64(writers*calls) {
		t.Fatalf("stats %+v (total %d)", st, total)
	}
	t.Logf("%d readings in %d Append calls took %d commits", total, writers*calls, st.Commits)
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Path: "x"}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	err := Config{MaxBytes: 1000, WhenFull: "block", MaxDeadLetters: -1, LockTimeout: -time.Second}.Validate()
	for _, field := range []string{"path", "max_bytes", "when_full", "max_dead_letters", "lock_timeout"} {
		found := false
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var fe *fieldgate.FieldError
			if errors.As(e, &fe) && fe.Field == field {
				found = true
			}
		}
		if !found {
			t.Errorf("no FieldError for %s in %v", field, err)
		}
	}
	if _, err := Open(Config{Path: filepath.Join(t.TempDir(), "b.db"), WhenFull: "block"}, nil); err == nil {
		t.Fatal("Open accepted an invalid config")
	}
}

// TestCloseWaitsForAppends closes the buffer under load: every Append that returned nil must be in the file
// after reopening, and every later one must get ErrClosed.
func TestCloseWaitsForAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b, err := Open(Config{Path: path}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	acked := make([]int, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i += 3 {
				err := b.Append(context.Background(), readings(fmt.Sprint("dev", g), i, 3))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				acked[g] = i + 3
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	b = openT(t, Config{Path: path})
	stored := make([]int, writers)
	for _, e := range scanAll(t, b) {
		r, err := fieldgate.Decode(e.value)
		if err != nil {
			t.Fatal(err)
		}
		var g int
		fmt.Sscanf(r.Device, "dev%d", &g)
		if int(r.Value.Int()) != stored[g] {
			t.Fatalf("device %d: value %d, want %d", g, r.Value.Int(), stored[g])
		}
		stored[g]++
	}
	for g := range writers {
		if stored[g] < acked[g] {
			t.Errorf("device %d: %d stored, %d acknowledged", g, stored[g], acked[g])
		}
	}
	t.Logf("acknowledged %v, stored %v", acked, stored)
}

// TestDropOldestWhileForwarding: readings the forwarder has scanned may be dropped before it acks them; its Ack
// then deletes only what is left, and the counts add up.
func TestDropOldestWhileForwarding(t *testing.T) {
	const size = 1024
	b := openT(t, Config{MaxBytes: MiB})
	batch := func(from int) []fieldgate.Reading {
		var rs []fieldgate.Reading
		for j := from; j < from+512; j++ {
			rs = append(rs, sizedReading(t, "dev", j, size))
		}
		return rs
	}
	mustAppend(t, b, batch(0))
	mustAppend(t, b, batch(512)) // full: 1024 entries
	var last uint64
	_ = b.Scan(600, func(seq uint64, _, _ []byte) error { last = seq; return nil }) // in flight to Kafka: 1..600
	mustAppend(t, b, batch(1024))                                                   // drops 1..512
	if err := b.Ack(last); err != nil {                                             // deletes 513..600
		t.Fatal(err)
	}
	commitNow(t, b)
	st := b.Stats()
	if st.DroppedOldest != 512 || st.Acked != 600-512 || st.Entries != 1024-88 || st.Appended != 1536 {
		t.Fatalf("stats %+v", st)
	}
	es := scanAll(t, b)
	if es[0].seq != 601 || es[len(es)-1].seq != 1536 {
		t.Fatalf("left %d..%d", es[0].seq, es[len(es)-1].seq)
	}
}

// TestCommitBudget: fifty sources polling on their own unaligned timers (a plant's Modbus devices) share the
// commits: at most one a commit interval, not one per poll.
func TestCommitBudget(t *testing.T) {
	const sources, poll, run = 50, 200 * time.Millisecond, 3 * time.Second
	b := openT(t, Config{CommitInterval: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	var polls, stored atomic.Int64
	for s := range sources {
		wg.Go(func() {
			time.Sleep(time.Duration(rand.Int64N(int64(poll)))) // unaligned
			tick := time.NewTicker(poll)
			defer tick.Stop()
			dev := fmt.Sprint("plc", s)
			for i := 0; ctx.Err() == nil; i++ {
				polls.Add(1)
				if err := fieldgate.Store(context.Background(), b, readings(dev, i*5, 5)); err != nil {
					t.Error(err)
					return
				}
				stored.Add(5)
				select {
				case <-ctx.Done():
				case <-tick.C:
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	st := b.Stats()
	if st.Appended != uint64(stored.Load()) {
		t.Fatalf("%d readings stored, %d appended", stored.Load(), st.Appended)
	}
	// Each commit starts a full interval after the first work it carries: at most one per interval.
	if budget := uint64(elapsed/(100*time.Millisecond)) + 1; st.Commits > budget {
		t.Errorf("%d polls made %d commits in %s; want at most %d (one per commit interval)", polls.Load(), st.Commits, elapsed, budget)
	}
	t.Logf("%d polls of %d sources in %s: %d commits", polls.Load(), sources, elapsed.Round(time.Millisecond), st.Commits)
}
