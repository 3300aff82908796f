// Package buffer is the gateway's durable store-and-forward FIFO: every reading a source emits is committed here
// (fsynced) before the source may acknowledge it upstream, and leaves only when the forwarder has had Kafka
// acknowledge it.
//
// It is one bbolt file with three buckets:
//
//   - "readings": key = the sequence number as 8 big-endian bytes (bbolt's bucket sequence, persisted in the same
//     transaction, so keys increase strictly across restarts and a cursor's First is the oldest entry); value =
//     a format byte (1), the append time (8 bytes, Unix nanoseconds, big endian), the device name (uvarint
//     length, bytes), then the reading's exact wire bytes (fieldgate.AppendEncode), which is what the forwarder
//     sends as the Kafka record value.
//   - "dead": dead letters, the same kind of key, value = JSON.
//   - "meta": the entry and byte counts of both, kept in the same transaction as every change, and the format.
//
// Writes go through one committer goroutine (group commit): Append, Reject and Ack queue their work, the
// committer takes everything queued since its last commit into one bbolt transaction with one fsync (two
// fdatasyncs: pages, then meta), and releases all callers. While one commit runs, the next one fills, so under
// load a commit carries the work of every concurrent source, and when idle a lone Append pays one commit without
// waiting for a timer. The freelist is not written to the file (bbolt NoFreelistSync, hashmap freelist): a queue
// that grows during an outage and then drains would otherwise leave a large freelist that is rewritten on every
// commit (etcd-io/bbolt#401; measured here: appends after a drained 220 MiB backlog ran 3.1 times faster
// without it, BenchmarkFreelistAfterBacklog); the price is a walk of the file at Open.
//
// Caveats:
//   - Durability is bbolt's: a commit is on disk when fdatasync returned. The crash test kills the process
//     (kill -9), which keeps the page cache; a power cut additionally depends on the storage honouring
//     flushes (cheap SD cards may not).
//   - A file moved aside as corrupt is replaced by a fresh one whose sequence numbers start again at 1.
//   - A failed commit (disk full) leaves nothing of its round behind, and its callers get the error; later
//     commits start from the last committed state. Deleting readings inside the file needs a successful
//     commit too, so a full disk is cleared by freeing space outside the file.
package buffer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/fieldgate/fieldgate"
	bolt "go.etcd.io/bbolt"
)

var (
	// ErrLocked is returned by Open when another process holds the buffer file (another gateway is running).
	ErrLocked = errors.New("buffer file is locked by another process")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("buffer is closed")

	// errCorrupt is wrapped by the reason Open gives for moving a file aside.
	errCorrupt = errors.New("corrupt buffer file")
)

var (
	bucketReadings = []byte("readings")
	bucketDead     = []byte("dead")
	bucketMeta     = []byte("meta")

	keyFormat    = []byte("format")
	keyEntries   = []byte("entries")
	keyBytes     = []byte("bytes")
	keyDLEntries = []byte("dead_entries")
	keyDLBytes   = []byte("dead_bytes")
)

const (
	fileFormat  = 1 // the "format" value in the meta bucket
	entryFormat = 1 // the first byte of every value in the readings bucket
	// entryHeader is the fixed part of a stored entry: format byte and append time.
	entryHeader = 1 + 8
	// keySize is the length of every key.
	keySize = 8
)

// Buffer is an open buffer file. Its methods are safe for concurrent use.
type Buffer struct {
	cfg  Config
	log  *slog.Logger
	db   *bolt.DB
	path string

	appended chan struct{} // cap 1; see Appended
	wake     chan struct{} // cap 1; tells the committer work is queued
	quit     chan struct{} // closed by Close
	done     chan struct{} // closed when the committer exits
	checks   sync.WaitGroup

	mu      sync.Mutex // guards closed and next
	closed  bool
	next    *round // the round being filled
	closeMu sync.Once

	counts *walkCounts // what Open counted in an existing file

	stmu  sync.Mutex // guards st
	st    Stats
	start time.Time
}

// Stats is a snapshot of the buffer's state and counters. Counters count since Open; Entries, Bytes,
// OldestAppended, DeadLetters and DeadLetterBytes describe the file.
type Stats struct {
	Entries        int64     // readings stored
	Bytes          int64     // bytes of stored readings, as counted against MaxBytes
	MaxBytes       int64     // the configured cap
	OldestAppended time.Time // when the oldest stored reading was appended; zero if empty

	Appended      uint64 // readings committed
	Acked         uint64 // readings deleted by Ack
	DroppedOldest uint64 // stored readings deleted to make room (drop_oldest)
	DroppedNewest uint64 // incoming readings refused for lack of room (drop_newest)

	DeadLetters        int64  // dead letters stored
	DeadLetterBytes    int64  // their stored bytes
	DeadLettersStored  uint64 // dead letters committed since Open
	DeadLettersDropped uint64 // oldest dead letters deleted by the caps

	Commits       uint64  // bbolt transactions committed by the committer
	CommitSeconds float64 // their total duration, fsync included
	CommitErrors  uint64  // commits that failed

	CorruptFilesMovedAside uint64 // corrupt files renamed aside at Open (0 or 1)
	AppendErrors           uint64 // Append calls that failed because their commit failed

	// Healthy is false after a failed commit (disk full, I/O error) and true again after the next successful
	// one; LastError is the error of the failed commit, empty while healthy.
	Healthy   bool
	LastError string
	FileBytes int64 // the size of the bbolt file (it never shrinks; freed pages are reused)
}

// round is the work of one commit: every request queued since the previous commit. Callers wait on done, then
// read err.
type round struct {
	done    chan struct{}
	err     error
	appends []*appendReq
	letters [][]byte // encoded dead letters
	ackUpTo uint64
	acks    int
}

func newRound() *round { return &round{done: make(chan struct{})} }

func (r *round) empty() bool { return len(r.appends) == 0 && len(r.letters) == 0 && r.acks == 0 }

// appendReq is the encoded readings of one Append call: buf holds the stored values back to back, ends[i] is
// the end of value i.
type appendReq struct {
	buf  []byte
	ends []int
}

var reqPool = sync.Pool{New: func() any { return new(appendReq) }}

// Append stores rs durably: it returns nil only after every reading of rs that is kept is committed and fsynced.
// It is a fieldgate.Emit. Readings that do not fit under max_bytes are handled by when_full (the oldest stored
// readings or these ones are dropped and counted) and Append still returns nil: a full buffer never blocks or
// fails a source.
//
// Append blocks for at most one group commit (the one in progress, if any, then the one carrying rs). A
// non-nil error means the commit failed (disk full, I/O error): the caller must not acknowledge upstream, and
// nothing of rs is stored. When ctx ends first Append returns ctx.Err(), but rs may still be committed: it was
// already queued (at-least-once: the source must not acknowledge, and a redelivery makes a duplicate). An
// invalid reading makes Append return an error wrapping fieldgate.ErrInvalidReading and store nothing of rs.
// Append does not keep rs.
func (b *Buffer) Append(ctx context.Context, rs []fieldgate.Reading) error {
	if len(rs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	req := reqPool.Get().(*appendReq)
	now := time.Now().UnixNano()
	for i := range rs {
		r := &rs[i]
		start := len(req.buf)
		req.buf = append(req.buf, entryFormat)
		req.buf = binary.BigEndian.AppendUint64(req.buf, uint64(now))
		req.buf = binary.AppendUvarint(req.buf, uint64(len(r.Device)))
		req.buf = append(req.buf, r.Device...)
		var err error
		if req.buf, err = fieldgate.AppendEncode(req.buf, *r); err != nil {
			req.buf = req.buf[:start]
			putReq(req)
			return fmt.Errorf("buffer: append reading %d of %d: %w", i+1, len(rs), err)
		}
		req.ends = append(req.ends, len(req.buf))
	}
	rd, err := b.enqueue(func(r *round) { r.appends = append(r.appends, req) })
	if err != nil {
		putReq(req)
		return err
	}
	select {
	case <-rd.done:
		if rd.err != nil {
			b.stmu.Lock()
			b.st.AppendErrors++
			b.stmu.Unlock()
		}
		return rd.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func putReq(req *appendReq) {
	if cap(req.buf) > 4<<20 {
		return // do not keep a huge buffer alive
	}
	req.buf, req.ends = req.buf[:0], req.ends[:0]
	reqPool.Put(req)
}

// enqueue adds work to the round being filled and wakes the committer.
func (b *Buffer) enqueue(add func(*round)) (*round, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	rd := b.next
	add(rd)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return rd, nil
}

// deadLetter is the stored form of a fieldgate.DeadLetter.
type deadLetter struct {
	Time    time.Time `json:"time"`
	Source  string    `json:"source,omitempty"`
	Origin  string    `json:"origin,omitempty"`
	Reason  string    `json:"reason"`
	Payload []byte    `json:"payload,omitempty"`
}

// Reject stores a dead letter durably; it is a fieldgate.Reject, with Append's contract: nil only after the
// commit, ctx.Err() if ctx ends first (the letter may still be stored). A payload longer than
// MaxDeadLetterPayload is cut, and Reason says so. When the dead-letter caps are exceeded the oldest letters are
// deleted and counted.
func (b *Buffer) Reject(ctx context.Context, d fieldgate.DeadLetter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.Time.IsZero() {
		d.Time = time.Now()
	}
	if len(d.Payload) > MaxDeadLetterPayload {
		d.Reason = fmt.Sprintf("%s (payload of %d bytes cut to %d)", d.Reason, len(d.Payload), MaxDeadLetterPayload)
		d.Payload = d.Payload[:MaxDeadLetterPayload]
	}
	v, err := json.Marshal(deadLetter{Time: d.Time.UTC(), Source: d.Source, Origin: d.Origin, Reason: d.Reason, Payload: d.Payload})
	if err != nil {
		return fmt.Errorf("buffer: encode dead letter: %w", err)
	}
	rd, err := b.enqueue(func(r *round) { r.letters = append(r.letters, v) })
	if err != nil {
		return err
	}
	select {
	case <-rd.done:
		return rd.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ack deletes every stored reading with a sequence number <= seq, and returns after that is committed. The
// forwarder calls it only after Kafka acknowledged those readings. Acks share commits with appends. An error
// means nothing was deleted; the readings stay and are sent again (at-least-once).
func (b *Buffer) Ack(seq uint64) error {
	if seq == 0 {
		return nil
	}
	rd, err := b.enqueue(func(r *round) {
		r.ackUpTo = max(r.ackUpTo, seq)
		r.acks++
	})
	if err != nil {
		return err
	}
	<-rd.done
	return rd.err
}

// Appended returns a channel that receives a value (without blocking the committer: it has capacity 1) after
// each commit that stored readings. A forwarder waits on it when Scan found nothing.
func (b *Buffer) Appended() <-chan struct{} { return b.appended }

// Scan calls fn for up to max of the oldest stored readings, oldest first, with the reading's sequence number,
// its device (the Kafka key) and its exact wire bytes (the Kafka value). key and value are copies fn may keep
// and modify. Scan reads in one short read transaction and calls fn after it ended, so a slow fn holds up
// nothing. It does not wait for data: with nothing stored it returns nil without calling fn. An error from fn
// stops the scan and is returned.
func (b *Buffer) Scan(max int, fn func(seq uint64, key, value []byte) error) error {
	if max <= 0 {
		return nil
	}
	type ent struct {
		seq           uint64
		dev, val, end int
	}
	var (
		ents []ent
		slab []byte
	)
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketReadings).Cursor()
		for k, v := c.First(); k != nil && len(ents) < max; k, v = c.Next() {
			seq, dev, wire, err := decodeEntry(k, v)
			if err != nil {
				return err
			}
			if ents == nil {
				ents = make([]ent, 0, min(max, 4096))
				slab = make([]byte, 0, min(max, 4096)*(len(dev)+len(wire)))
			}
			e := ent{seq: seq, dev: len(slab)}
			slab = append(slab, dev...)
			e.val = len(slab)
			slab = append(slab, wire...)
			e.end = len(slab)
			ents = append(ents, e)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, bolt.ErrDatabaseNotOpen) {
			return ErrClosed
		}
		return fmt.Errorf("buffer %s: scan: %w", b.path, err)
	}
	for _, e := range ents {
		if err := fn(e.seq, slab[e.dev:e.val:e.val], slab[e.val:e.end:e.end]); err != nil {
			return err
		}
	}
	return nil
}

// decodeEntry splits a stored entry into its sequence number, device and wire bytes (slices of v).
func decodeEntry(k, v []byte) (seq uint64, dev, wire []byte, err error) {
	if len(k) != keySize || len(v) < entryHeader+1 || v[0] != entryFormat {
		return 0, nil, nil, fmt.Errorf("entry %x: unknown format", k)
	}
	n, w := binary.Uvarint(v[entryHeader:])
	if w <= 0 || uint64(len(v)-entryHeader-w) < n {
		return 0, nil, nil, fmt.Errorf("entry %x: bad device length", k)
	}
	p := entryHeader + w
	return binary.BigEndian.Uint64(k), v[p : p+int(n)], v[p+int(n):], nil
}

// entryTime returns the append time stored in an entry.
func entryTime(v []byte) time.Time {
	if len(v) < entryHeader {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[1:entryHeader])))
}

// DeadLetters returns up to max stored dead letters, newest first.
func (b *Buffer) DeadLetters(max int) ([]fieldgate.DeadLetter, error) {
	var out []fieldgate.DeadLetter
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDead).Cursor()
		for k, v := c.Last(); k != nil && len(out) < max; k, v = c.Prev() {
			var d deadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("dead letter %x: %w", k, err)
			}
			out = append(out, fieldgate.DeadLetter{Time: d.Time, Source: d.Source, Origin: d.Origin, Reason: d.Reason, Payload: d.Payload})
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, bolt.ErrDatabaseNotOpen) {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("buffer %s: read dead letters: %w", b.path, err)
	}
	return out, nil
}

// Stats returns a snapshot of the buffer's state and counters.
func (b *Buffer) Stats() Stats {
	b.stmu.Lock()
	s := b.st
	b.stmu.Unlock()
	if fi, err := os.Stat(b.path); err == nil {
		s.FileBytes = fi.Size()
	}
	return s
}

// Close commits what is queued, waits for it, stops the committer and closes the file. Appends after Close
// return ErrClosed. It is safe to call after the callers' contexts were cancelled, and more than once.
func (b *Buffer) Close() error {
	var err error
	b.closeMu.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.quit)
		<-b.done
		b.checks.Wait()
		err = b.db.Close()
		if err != nil {
			err = fmt.Errorf("buffer %s: close: %w", b.path, err)
		}
	})
	return err
}
