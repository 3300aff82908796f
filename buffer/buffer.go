// Package buffer is the gateway's durable store-and-forward FIFO: every reading a source queues is committed here
// (fsynced) before the source may acknowledge it upstream, and leaves only when the forwarder has had Kafka
// acknowledge it.
//
// It is one bbolt file with three buckets:
//
//   - "readings": every reading has a sequence number (bbolt's bucket sequence, persisted in the same
//     transaction, so numbers increase strictly across restarts). Readings are packed, in sequence order, into
//     entries of about a quarter of a page; an entry's key is the sequence number of its first reading as 8
//     big-endian bytes, so a cursor's First is the oldest. Its value is a format byte (2), the append time (8
//     bytes, Unix nanoseconds, big endian), the number of readings (4 bytes), then per reading the device (the
//     Kafka key) and the exact wire bytes (fieldgate.AppendEncode), each as a uvarint length and the bytes.
//     Files written before packing hold one reading per entry (format byte 1, no count); both are read.
//   - "dead": dead letters, one per entry, the same kind of key, value = JSON.
//   - "meta": the reading and byte counts of both, kept in the same transaction as every change, and the format.
//
// # Commits
//
// Writes go through one committer goroutine (group commit): Queue adds readings and dead letters to the round
// being filled and returns at once with its fieldgate.Commit. The committer starts a round CommitInterval after
// its first work arrived, earlier when a source calls Flush (it cannot go on without acknowledgements) or when
// the round holds more than 1 MiB, and writes it in one bbolt transaction with one group of fsyncs (two
// fdatasyncs: pages, then meta). While a round is being written the next one fills, so under load every commit
// carries the work of every source, and the commits per second stay at most 1/CommitInterval plus the flushes.
// Packing keeps the pages a commit rewrites few: the appended entries, the partly filled last leaf, the branch
// and root pages and the meta page.
//
// Acknowledgements from the forwarder (Ack) need not be durable at once: a crash that forgets a deletion sends
// those readings to Kafka again, and the central service writes by identity. Ack only moves an in-memory mark
// (Scan starts after it); the deletion rides with the next commit, and without one is committed on its own
// after the ack delay (ten commit intervals, at least a second). A crash therefore re-sends at most the readings acknowledged in the last ack delay, plus the
// round in flight (see DESIGN.md for the measured bound).
//
// The freelist is not written to the file (bbolt NoFreelistSync, hashmap freelist): a queue that grows during an
// outage and then drains would otherwise leave a large freelist that is rewritten on every commit
// (etcd-io/bbolt#401; measured here: appends after a drained 220 MiB backlog ran 3.1 times faster without it,
// BenchmarkFreelistAfterBacklog); the price is a walk of the file at Open.
//
// Caveats:
//   - Durability is bbolt's: a commit is on disk when fdatasync returned. The power-loss test runs the buffer on
//     a file system that forgets every unsynced write; real storage must also honour flushes (cheap SD cards may
//     not).
//   - A file moved aside as corrupt is replaced by a fresh one whose sequence numbers start again at 1.
//   - A failed commit (disk full) leaves nothing of its round behind, and its commit's Err says so; later commits
//     start from the last committed state. Deleting readings inside the file needs a successful commit too, so a
//     full disk is cleared by freeing space outside the file.
package buffer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// fileFormat is the "format" value in the meta bucket: 2 since readings are packed. A file of format 1 is
	// read as it is and marked 2 by its first commit, so an older gateway refuses it rather than misread it.
	fileFormat = 2
	// The first byte of every value in the readings bucket.
	entrySingle = 1 // one reading: format, append time, device, wire bytes (files of format 1)
	entryPacked = 2 // several readings: format, append time, count, then (device, wire) pairs
	// singleHeader and packedHeader are the fixed parts of the two kinds of entry.
	singleHeader = 1 + 8
	packedHeader = 1 + 8 + 4
	// keySize is the length of every key.
	keySize = 8
)

// Buffer is an open buffer file. Its methods are safe for concurrent use. It is a fieldgate.Sink.
type Buffer struct {
	cfg  Config
	log  *slog.Logger
	db   *bolt.DB
	path string

	appended chan struct{} // cap 1; see Appended
	wake     chan struct{} // cap 1; tells the committer work is queued or a flush was asked for
	quit     chan struct{} // closed by Close
	done     chan struct{} // closed when the committer exits
	checks   sync.WaitGroup

	mu       sync.Mutex // guards closed, next and ackSince
	closed   bool
	next     *round    // the round being filled
	ackSince time.Time // when the oldest acknowledgement not yet committed came; zero if none
	closeMu  sync.Once

	// ackedUpTo is the highest sequence number the forwarder acknowledged: Scan starts after it, and the next
	// commit deletes every entry wholly at or below it. deletedUpTo (guarded by mu) is what the committer has
	// deleted up to.
	ackedUpTo   atomic.Uint64
	deletedUpTo uint64
	// lastSeq is the highest sequence number known committed (by a commit, or seen by Scan, whose read
	// transaction may see a commit before the committer notes it): an Ack beyond it is taken as up to it, so that
	// readings committed later are not hidden from Scan.
	lastSeq atomic.Uint64

	entrySize int // target size of a packed entry: about a quarter of the page size
	// The committer's scratch space, reused from commit to commit: the round's records, and the entries built.
	recBuf   []byte
	recEnds  []int
	slab     []byte
	ents     []packedEntry
	counts   *walkCounts // what Open counted in an existing file
	written0 int64       // the process's written bytes at Open (see DiskWrittenBytes)

	stmu     sync.Mutex // guards st and fileSize
	st       Stats
	fileSize int64
}

// Stats is a snapshot of the buffer's state and counters. Counters count since Open; Entries, Bytes,
// OldestAppended, DeadLetters and DeadLetterBytes describe the file as of the last commit (so readings Kafka
// acknowledged since are still counted, for at most the ack delay).
type Stats struct {
	Entries        int64     // readings stored
	Bytes          int64     // bytes of stored readings, as counted against MaxBytes
	MaxBytes       int64     // the configured cap
	OldestAppended time.Time // when the oldest stored reading was appended; zero if empty

	Appended      uint64 // readings committed
	Acked         uint64 // readings deleted after Kafka acknowledged them
	DroppedOldest uint64 // stored readings deleted to make room (drop_oldest)
	DroppedNewest uint64 // incoming readings refused for lack of room (drop_newest)

	DeadLetters        int64  // dead letters stored
	DeadLetterBytes    int64  // their stored bytes
	DeadLettersStored  uint64 // dead letters committed since Open
	DeadLettersDropped uint64 // oldest dead letters deleted by the caps

	Commits       uint64  // bbolt transactions committed by the committer
	CommitSeconds float64 // their total duration, fsync included
	CommitErrors  uint64  // commits that failed
	Flushes       uint64  // commits started before their interval was over (a source asked, or the round was full)
	// Fsyncs counts the fdatasync calls of the commits: two per commit (pages, then the meta page) and one more
	// whenever the file grows.
	Fsyncs uint64
	// DiskWrittenBytes is what the gateway process made the kernel write to storage since Open: write_bytes of
	// /proc/self/io, so page-granular and including bbolt's page rewrites (0 where the kernel does not say). The
	// buffer is nearly all of it.
	DiskWrittenBytes int64

	CorruptFilesMovedAside uint64 // corrupt files renamed aside at Open (0 or 1)
	AppendErrors           uint64 // readings whose commit failed

	// Healthy is false after a failed commit (disk full, I/O error) and true again after the next successful
	// one; LastError is the error of the failed commit, empty while healthy.
	Healthy   bool
	LastError string
	FileBytes int64 // the size of the bbolt file (it never shrinks; freed pages are reused)
}

// round is the work of one commit: everything queued since the previous commit.
type round struct {
	commit  *fieldgate.Commit
	first   time.Time // when its first work was queued
	flush   bool      // start it as soon as the committer is free
	early   bool      // it was started before its interval was over
	size    int       // bytes of queued readings and letters
	appends []*appendReq
	letters [][]byte // encoded dead letters
	// resolves are the replays of stored dead letters (Resolve), each applied in the round's transaction.
	resolves []*resolveReq
}

func newRound() *round { return &round{commit: fieldgate.NewCommit()} }

func (r *round) empty() bool {
	return len(r.appends) == 0 && len(r.letters) == 0 && len(r.resolves) == 0
}

// appendReq is the readings of one Queue call, encoded as the records of a packed entry back to back (device
// and wire bytes, each with a uvarint length); ends[i] is the end of record i.
type appendReq struct {
	buf  []byte
	ends []int
}

// add appends the records of rs. On an error (an invalid reading) req is left as it was.
func (req *appendReq) add(rs []fieldgate.Reading) error {
	buf0, ends0 := len(req.buf), len(req.ends)
	for i := range rs {
		r := &rs[i]
		req.buf = binary.AppendUvarint(req.buf, uint64(len(r.Device)))
		req.buf = append(req.buf, r.Device...)
		// The wire bytes' length comes first: reserve what a uvarint of a length below 2 MiB takes, then move the
		// bytes to fit the length written.
		lenAt := len(req.buf)
		req.buf = append(req.buf, 0, 0, 0)
		var err error
		if req.buf, err = fieldgate.AppendEncode(req.buf, *r); err != nil {
			req.buf, req.ends = req.buf[:buf0], req.ends[:ends0]
			return fmt.Errorf("reading %d of %d: %w", i+1, len(rs), err)
		}
		req.buf = putLength(req.buf, lenAt)
		req.ends = append(req.ends, len(req.buf))
	}
	return nil
}

var reqPool = sync.Pool{New: func() any { return new(appendReq) }}

func putReq(req *appendReq) {
	if cap(req.buf) > 4<<20 {
		return // do not keep a huge buffer alive
	}
	req.buf, req.ends = req.buf[:0], req.ends[:0]
	reqPool.Put(req)
}

// deadLetter is the stored form of a fieldgate.DeadLetter.
type deadLetter struct {
	Time    time.Time `json:"time"`
	Source  string    `json:"source,omitempty"`
	Origin  string    `json:"origin,omitempty"`
	Reason  string    `json:"reason"`
	Class   string    `json:"class,omitempty"`
	Payload []byte    `json:"payload,omitempty"`
	Size    int       `json:"size,omitempty"` // the payload's size as received, when Payload is only its start
}

// Queue adds rs and dead to the round being filled and returns its commit: the fieldgate.Sink contract. The
// round is committed CommitInterval after its first work was queued, or earlier (Flush, or 1 MiB queued).
//
// Readings that do not fit under max_bytes are handled by when_full (the oldest stored readings or these ones
// are dropped and counted) and the commit still succeeds: a full buffer never blocks or fails a source. A
// payload of a dead letter longer than MaxDeadLetterPayload is cut, and its Reason says so; when the dead-letter
// caps are exceeded the oldest letters are deleted and counted. An invalid reading makes Queue return an error
// wrapping fieldgate.ErrInvalidReading and queue nothing. Queue does not keep rs or dead.
func (b *Buffer) Queue(rs []fieldgate.Reading, dead []fieldgate.DeadLetter) (*fieldgate.Commit, error) {
	var req *appendReq
	if len(rs) > 0 {
		req = reqPool.Get().(*appendReq)
		if err := req.add(rs); err != nil {
			putReq(req)
			return nil, fmt.Errorf("buffer: queue %w", err)
		}
	}
	var letters [][]byte
	for _, d := range dead {
		v, err := encodeDeadLetter(d)
		if err != nil {
			if req != nil {
				putReq(req)
			}
			return nil, err
		}
		letters = append(letters, v)
	}
	if req == nil && letters == nil {
		return b.current()
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		if req != nil {
			putReq(req)
		}
		return nil, ErrClosed
	}
	rd := b.next
	wasEmpty := rd.empty()
	if wasEmpty {
		rd.first = time.Now()
	}
	if req != nil {
		rd.appends = append(rd.appends, req)
		rd.size += len(req.buf)
	}
	for _, v := range letters {
		rd.letters = append(rd.letters, v)
		rd.size += len(v)
	}
	wasFlush := rd.flush
	if rd.size >= flushBytes {
		rd.flush = true
	}
	flush := rd.flush
	b.mu.Unlock()
	if wasEmpty || flush != wasFlush {
		b.signal()
	}
	return rd.commit, nil
}

// putLength writes the length of the bytes that follow the 3 bytes reserved at at as a uvarint there, moving
// the bytes to fit.
func putLength(buf []byte, at int) []byte {
	const reserved = 3
	n := len(buf) - at - reserved
	var tmp [binary.MaxVarintLen64]byte
	w := binary.PutUvarint(tmp[:], uint64(n))
	switch {
	case w < reserved:
		copy(buf[at+w:], buf[at+reserved:])
		buf = buf[:len(buf)-(reserved-w)]
	case w > reserved:
		buf = slices.Insert(buf, at, make([]byte, w-reserved)...)
	}
	copy(buf[at:], tmp[:w])
	return buf
}

// current returns the commit of the round being filled, for a Queue call with nothing in it.
func (b *Buffer) current() (*fieldgate.Commit, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	return b.next.commit, nil
}

func encodeDeadLetter(d fieldgate.DeadLetter) ([]byte, error) {
	if d.Time.IsZero() {
		d.Time = time.Now()
	}
	if len(d.Payload) > MaxDeadLetterPayload {
		d.Size = max(d.Size, len(d.Payload))
		d.Reason = fmt.Sprintf("%s (payload of %d bytes cut to %d)", d.Reason, d.Size, MaxDeadLetterPayload)
		d.Payload = d.Payload[:MaxDeadLetterPayload]
	}
	if d.Size <= len(d.Payload) {
		d.Size = 0
	}
	v, err := json.Marshal(deadLetter{Time: d.Time.UTC(), Source: d.Source, Origin: d.Origin, Reason: d.Reason, Class: d.Class, Payload: d.Payload, Size: d.Size})
	if err != nil {
		return nil, fmt.Errorf("buffer: encode dead letter: %w", err)
	}
	return v, nil
}

// Flush asks for the round being filled, and the deletion of what Kafka acknowledged, to be committed as soon
// as the committer is free, rather than at the end of the commit interval. It returns at once. With nothing
// queued or acknowledged it does nothing.
func (b *Buffer) Flush() {
	b.mu.Lock()
	rd := b.next
	ask := !b.closed && !rd.flush && (!rd.empty() || b.ackedUpTo.Load() > b.deletedUpTo)
	if ask {
		rd.flush = true
	}
	b.mu.Unlock()
	if ask {
		b.signal()
	}
}

// signal wakes the committer without blocking.
func (b *Buffer) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Append stores rs and commits at once: it returns nil only after every reading of rs that is kept is committed
// and fsynced, and blocks for at most the commit in progress and the one carrying rs. It is Queue, Flush and
// Wait; a source that can wait for the commit interval uses fieldgate.Store instead, so that its readings share
// a commit with others. A non-nil error means nothing of rs may be taken as stored; ctx ending first returns
// ctx.Err(), and rs may still be committed.
func (b *Buffer) Append(ctx context.Context, rs []fieldgate.Reading) error {
	if len(rs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := b.Queue(rs, nil)
	if err != nil {
		return err
	}
	b.Flush()
	return c.Wait(ctx)
}

// Reject stores a dead letter and commits at once, with Append's contract; it is what the forwarder calls for a
// record Kafka refused for good.
func (b *Buffer) Reject(ctx context.Context, d fieldgate.DeadLetter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := b.Queue(nil, []fieldgate.DeadLetter{d})
	if err != nil {
		return err
	}
	b.Flush()
	return c.Wait(ctx)
}

// Ack marks every stored reading with a sequence number <= seq (at most the last one committed) as acknowledged
// by Kafka, and returns at once:
// Scan no longer returns them, and the next commit deletes the entries they fill (within the ack delay, or when
// the buffer is closed). A crash before that commit keeps them, and they are sent again: duplicates, which the
// central service writes once. The only error is ErrClosed.
func (b *Buffer) Ack(seq uint64) error {
	seq = min(seq, b.lastSeq.Load())
	if seq <= b.ackedUpTo.Load() {
		return nil
	}
	storeMax(&b.ackedUpTo, seq)
	b.mu.Lock()
	closed := b.closed
	first := b.ackSince.IsZero()
	if first {
		b.ackSince = time.Now()
	}
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if first {
		b.signal()
	}
	return nil
}

// Appended returns a channel that receives a value (without blocking the committer: it has capacity 1) after
// each commit that stored readings. A forwarder waits on it when Scan found nothing.
func (b *Buffer) Appended() <-chan struct{} { return b.appended }

// Scan calls fn for up to max of the oldest readings not yet acknowledged, oldest first, with the reading's
// sequence number, its device (the Kafka key) and its exact wire bytes (the Kafka value). key and value are
// copies fn may keep and modify. Scan reads in one short read transaction and calls fn after it ended, so a slow
// fn holds up nothing. It does not wait for data: with nothing to return it returns nil without calling fn. An
// error from fn stops the scan and is returned.
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
	after := b.ackedUpTo.Load()
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketReadings).Cursor()
		k, v := seekEntry(c, after+1)
		for ; k != nil && len(ents) < max; k, v = c.Next() {
			err := eachReading(k, v, func(seq uint64, dev, wire []byte) bool {
				if seq <= after {
					return true
				}
				if ents == nil {
					// Sized for a round of a steady stream; append grows it for a backlog.
					ents = make([]ent, 0, min(max, 256))
					slab = make([]byte, 0, min(max, 256)*(len(dev)+len(wire)))
				}
				e := ent{seq: seq, dev: len(slab)}
				slab = append(slab, dev...)
				e.val = len(slab)
				slab = append(slab, wire...)
				e.end = len(slab)
				ents = append(ents, e)
				return len(ents) < max
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, bolt.ErrDatabaseNotOpen) {
			return ErrClosed
		}
		return fmt.Errorf("buffer %s: scan: %w", b.path, err)
	}
	if len(ents) > 0 {
		storeMax(&b.lastSeq, ents[len(ents)-1].seq)
	}
	for _, e := range ents {
		if err := fn(e.seq, slab[e.dev:e.val:e.val], slab[e.val:e.end:e.end]); err != nil {
			return err
		}
	}
	return nil
}

// storeMax raises v to n if it is lower.
func storeMax(v *atomic.Uint64, n uint64) {
	for {
		cur := v.Load()
		if n <= cur || v.CompareAndSwap(cur, n) {
			return
		}
	}
}

// seekEntry positions c on the entry holding sequence number seq, or, if no entry holds it, on the first one
// after it.
func seekEntry(c *bolt.Cursor, seq uint64) (k, v []byte) {
	var key [keySize]byte
	binary.BigEndian.PutUint64(key[:], seq)
	k, v = c.Seek(key[:])
	if k != nil && binary.BigEndian.Uint64(k) == seq {
		return k, v
	}
	// The entry before may start below seq and reach it.
	pk, pv := c.Prev()
	if pk != nil && lastSeq(pk, pv) >= seq {
		return pk, pv
	}
	if pk != nil {
		return c.Next()
	}
	return c.First()
}

// lastSeq returns the sequence number of an entry's last reading (its first if the entry cannot be read).
func lastSeq(k, v []byte) uint64 {
	first := binary.BigEndian.Uint64(k)
	if len(v) >= packedHeader && v[0] == entryPacked {
		if n := binary.BigEndian.Uint32(v[9:packedHeader]); n > 0 {
			return first + uint64(n) - 1
		}
	}
	return first
}

// entryCount returns the number of readings in an entry.
func entryCount(v []byte) int64 {
	if len(v) >= packedHeader && v[0] == entryPacked {
		return int64(binary.BigEndian.Uint32(v[9:packedHeader]))
	}
	return 1
}

// eachReading calls fn for every reading of the entry k, v with its sequence number, device and wire bytes
// (slices of v), until fn returns false. A malformed entry is an error.
func eachReading(k, v []byte, fn func(seq uint64, dev, wire []byte) bool) error {
	if len(k) != keySize || len(v) < singleHeader+1 {
		return fmt.Errorf("entry %x: unknown format", k)
	}
	seq := binary.BigEndian.Uint64(k)
	switch v[0] {
	case entrySingle:
		dev, rest, ok := field(v[singleHeader:])
		if !ok {
			return fmt.Errorf("entry %x: bad device length", k)
		}
		fn(seq, dev, rest)
		return nil
	case entryPacked:
		if len(v) < packedHeader {
			return fmt.Errorf("entry %x: truncated header", k)
		}
		n := binary.BigEndian.Uint32(v[9:packedHeader])
		p := v[packedHeader:]
		for i := uint32(0); i < n; i++ {
			dev, rest, ok := field(p)
			if !ok {
				return fmt.Errorf("entry %x: reading %d: bad device length", k, i)
			}
			wire, rest, ok := field(rest)
			if !ok || len(wire) == 0 {
				return fmt.Errorf("entry %x: reading %d: bad length", k, i)
			}
			p = rest
			if !fn(seq+uint64(i), dev, wire) {
				return nil
			}
		}
		if len(p) != 0 || n == 0 {
			return fmt.Errorf("entry %x: %d readings and %d bytes left over", k, n, len(p))
		}
		return nil
	}
	return fmt.Errorf("entry %x: unknown format %d", k, v[0])
}

// field splits a uvarint length and that many bytes off the front of p.
func field(p []byte) (f, rest []byte, ok bool) {
	n, w := binary.Uvarint(p)
	if w <= 0 || uint64(len(p)-w) < n {
		return nil, nil, false
	}
	return p[w : w+int(n)], p[w+int(n):], true
}

// entryTime returns the append time stored in an entry.
func entryTime(v []byte) time.Time {
	if len(v) < singleHeader {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[1:singleHeader])))
}

// Stats returns a snapshot of the buffer's state and counters.
func (b *Buffer) Stats() Stats {
	b.stmu.Lock()
	s := b.st
	s.FileBytes = b.fileSize
	b.stmu.Unlock()
	if w, ok := processWrittenBytes(); ok {
		s.DiskWrittenBytes = w - b.written0
	}
	return s
}

// Close commits what is queued (acknowledgements included), waits for it, stops the committer and closes the
// file. Queue and Append after Close return ErrClosed. It is safe to call after the callers' contexts were
// cancelled, and more than once.
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

// processWrittenBytes reads write_bytes of /proc/self/io: the bytes this process caused to be written to storage.
func processWrittenBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
