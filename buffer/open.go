package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Open applies the defaults to cfg, validates it, and opens the buffer file, creating it if missing.
//
// Another process holding the file (another gateway) makes Open fail after cfg.LockTimeout with an error
// wrapping ErrLocked that names the path. A corrupt file (not a bbolt file, truncated, or failing bbolt's
// consistency check) is renamed to "<path>.corrupt-<UTC time>" (never deleted), a fresh file is started, an
// ERROR is logged with both paths, and Stats().CorruptFilesMovedAside is 1. Other errors (permissions, a full
// disk) are returned. The file's directory is created if missing.
//
// Opening an existing file reads all of it three times: a read-only walk of every key (where a damaged page
// panics in a goroutine that can recover), bbolt's rebuild of the freelist (NoFreelistSync), and tx.Check.
// Measured: 0.8 s for a full 256 MiB buffer (1 million readings) on a 2-core VM; expect several seconds on an
// SD card.
func Open(cfg Config, log *slog.Logger) (*Buffer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Buffer{
		cfg:      cfg,
		log:      log,
		path:     cfg.Path,
		appended: make(chan struct{}, 1),
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		next:     newRound(),
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
		return nil, fmt.Errorf("buffer %s: %w", cfg.Path, err)
	}
	db, err := b.openChecked()
	var ce *corruptError
	if errors.As(err, &ce) {
		aside := fmt.Sprintf("%s.corrupt-%s", cfg.Path, time.Now().UTC().Format("20060102T150405.000Z"))
		if rerr := os.Rename(cfg.Path, aside); rerr != nil {
			return nil, fmt.Errorf("buffer %s is corrupt (%v) and could not be moved aside: %w", cfg.Path, ce.err, rerr)
		}
		log.Error("BUFFER FILE IS CORRUPT: moved it aside and started a fresh, empty buffer; readings stored in it were not forwarded and are kept there for recovery",
			"path", cfg.Path, "moved_to", aside, "err", ce.err)
		b.st.CorruptFilesMovedAside++
		db, err = b.openChecked()
	}
	if err != nil {
		return nil, err
	}
	b.db = db
	if err := b.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	b.st.MaxBytes = int64(cfg.MaxBytes)
	b.st.Healthy = true
	// A quarter of a page: bbolt keeps at least two keys per leaf node, so an entry above half a page would
	// make every commit rewrite the entry before it too.
	b.entrySize = max(256, db.Info().PageSize/4-32)
	if fi, err := os.Stat(cfg.Path); err == nil {
		b.fileSize = fi.Size()
	}
	dropPageCache(db, b.fileSize)
	b.written0, _ = processWrittenBytes()
	go b.run()
	return b, nil
}

// corruptError marks a file Open moves aside.
type corruptError struct{ err error }

func (e *corruptError) Error() string { return e.err.Error() }

func corrupt(format string, a ...any) error {
	return &corruptError{fmt.Errorf("%w: "+format, append([]any{errCorrupt}, a...)...)}
}

// openChecked opens the file and checks it; a corruptError means it is corrupt.
func (b *Buffer) openChecked() (*bolt.DB, error) {
	path := b.cfg.Path
	existed := false
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		existed = true
		// bbolt maps the file and trusts its meta page: a truncated file would fault on access past its end,
		// which no recover catches. So check the meta pages against the file size first.
		if err := checkMeta(path); err != nil {
			return nil, err
		}
	}
	var counts *walkCounts
	if existed {
		// With NoFreelistSync, bbolt's Open walks the whole tree in a goroutine of its own, where a damaged
		// page panics beyond any recover. Walk it here first, read-only, where a panic is caught.
		c, err := walk(path, b.cfg.LockTimeout)
		if err != nil {
			return nil, err
		}
		counts = &c
	}
	db, err := openBolt(path, b.cfg.LockTimeout, false)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s: another fieldgate gateway is probably running with this buffer file (no lock after %s)", ErrLocked, path, b.cfg.LockTimeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch), errors.As(err, new(*corruptError)):
		return nil, corrupt("%s: %v", path, err)
	case err != nil:
		return nil, fmt.Errorf("buffer %s: open: %w", path, err)
	}
	if existed {
		if err := b.check(db); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	if err := initBuckets(db); err != nil {
		_ = db.Close()
		if errors.As(err, new(*corruptError)) {
			return nil, err
		}
		return nil, fmt.Errorf("buffer %s: %w", path, err)
	}
	b.counts = counts
	return db, nil
}

// walkCounts is what walk counted.
type walkCounts struct {
	entries, bytes, dlEntries, dlBytes int64
}

// walk opens path read-only and reads every key and value of every bucket, with faults turned into panics and
// panics into a corruptError, and checks that every stored reading decodes. It returns the counts of readings
// and dead letters. A lock held by another process makes it fail with ErrLocked.
func walk(path string, lockTimeout time.Duration) (c walkCounts, err error) {
	db, err := openBolt(path, lockTimeout, true)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return c, fmt.Errorf("%w: %s: another fieldgate gateway is probably running with this buffer file (no lock after %s)", ErrLocked, path, lockTimeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch), errors.As(err, new(*corruptError)):
		return c, corrupt("%s: %v", path, err)
	case err != nil:
		return c, fmt.Errorf("buffer %s: open: %w", path, err)
	}
	defer db.Close()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corrupt("%s: reading it panicked: %v", path, r)
		}
	}()
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			var prev []byte
			cur := bk.Cursor()
			for k, v := cur.First(); k != nil; k, v = cur.Next() {
				if prev != nil && bytes.Compare(prev, k) >= 0 {
					return fmt.Errorf("bucket %q: key %x after %x", name, k, prev)
				}
				prev = append(prev[:0], k...)
				switch {
				case bytes.Equal(name, bucketReadings):
					if err := eachReading(k, v, func(uint64, []byte, []byte) bool { return true }); err != nil {
						return err
					}
					c.entries += entryCount(v)
					c.bytes += int64(len(k) + len(v))
				case bytes.Equal(name, bucketDead):
					c.dlEntries++
					c.dlBytes += int64(len(k) + len(v))
				}
			}
			return nil
		})
	})
	if err != nil {
		return c, corrupt("%s: %v", path, err)
	}
	return c, nil
}

// openBolt opens path with the buffer's bbolt options, turning a panic of bbolt on a damaged file into a
// corruptError.
func openBolt(path string, lockTimeout time.Duration, readOnly bool) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, corrupt("%s: open panicked: %v", path, r)
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        lockTimeout,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		ReadOnly:       readOnly,
	})
}

// check runs bbolt's consistency check, waiting at most CheckTimeout. A check still running then goes on in
// the background; its outcome is logged, and Close waits for it.
func (b *Buffer) check(db *bolt.DB) error {
	path := b.cfg.Path
	result := make(chan error, 1)
	b.checks.Add(1)
	go func() {
		defer b.checks.Done()
		result <- db.View(func(tx *bolt.Tx) error {
			var errs []error
			for err := range tx.Check() {
				if len(errs) < 10 {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		})
	}()
	start := time.Now()
	select {
	case err := <-result:
		if err != nil {
			return corrupt("%s: consistency check: %v", path, err)
		}
		b.log.Debug("buffer consistency check passed", "path", path, "took", time.Since(start))
		return nil
	case <-time.After(b.cfg.CheckTimeout):
		b.log.Warn("buffer consistency check is taking longer than check_timeout; starting without waiting for it", "path", path, "check_timeout", b.cfg.CheckTimeout)
		b.checks.Add(1)
		go func() {
			defer b.checks.Done()
			if err := <-result; err != nil {
				b.log.Error("BUFFER FILE FAILED ITS CONSISTENCY CHECK after the gateway started with it; stop the gateway and move the file aside", "path", path, "err", err)
			} else {
				b.log.Info("buffer consistency check passed", "path", path, "took", time.Since(start))
			}
		}()
		return nil
	}
}

// initBuckets creates the buckets of a new file and checks the format of an existing one. A file of format 1
// (one reading per entry) is marked format 2: its entries are read as they are, and an older gateway would not
// read the packed entries that follow.
func initBuckets(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		mb := tx.Bucket(bucketMeta)
		if mb != nil {
			v := mb.Get(keyFormat)
			if len(v) != 8 || binary.BigEndian.Uint64(v) < 1 || binary.BigEndian.Uint64(v) > fileFormat {
				return fmt.Errorf("buffer file format %x is not 1 or %d; was it written by a newer fieldgate?", v, fileFormat)
			}
			if tx.Bucket(bucketReadings) == nil || tx.Bucket(bucketDead) == nil {
				return corrupt("buckets missing")
			}
			if binary.BigEndian.Uint64(v) < fileFormat {
				return mb.Put(keyFormat, binary.BigEndian.AppendUint64(nil, fileFormat))
			}
			return nil
		}
		if tx.Bucket(bucketReadings) != nil || tx.Bucket(bucketDead) != nil {
			return corrupt("meta bucket missing")
		}
		var err error
		if mb, err = tx.CreateBucket(bucketMeta); err != nil {
			return err
		}
		if err := mb.Put(keyFormat, binary.BigEndian.AppendUint64(nil, fileFormat)); err != nil {
			return err
		}
		for _, k := range [][]byte{keyEntries, keyBytes, keyDLEntries, keyDLBytes} {
			if err := mb.Put(k, make([]byte, 8)); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucket(bucketReadings); err != nil {
			return err
		}
		_, err = tx.CreateBucket(bucketDead)
		return err
	})
}

// load reads the counters and the oldest entry's time into Stats.
func (b *Buffer) load() error {
	return b.db.View(func(tx *bolt.Tx) error {
		mb := tx.Bucket(bucketMeta)
		get := func(k []byte) int64 {
			if v := mb.Get(k); len(v) == 8 {
				return int64(binary.BigEndian.Uint64(v))
			}
			return 0
		}
		b.lastSeq.Store(tx.Bucket(bucketReadings).Sequence())
		b.st.Entries, b.st.Bytes = get(keyEntries), get(keyBytes)
		b.st.DeadLetters, b.st.DeadLetterBytes = get(keyDLEntries), get(keyDLBytes)
		if c := b.counts; c != nil && (c.entries != b.st.Entries || c.bytes != b.st.Bytes || c.dlEntries != b.st.DeadLetters || c.dlBytes != b.st.DeadLetterBytes) {
			b.log.Warn("buffer counters in the file differ from what is stored; using the counted values",
				"path", b.path, "entries", c.entries, "bytes", c.bytes, "counter_entries", b.st.Entries, "counter_bytes", b.st.Bytes)
			b.st.Entries, b.st.Bytes, b.st.DeadLetters, b.st.DeadLetterBytes = c.entries, c.bytes, c.dlEntries, c.dlBytes
		}
		if _, v := tx.Bucket(bucketReadings).Cursor().First(); v != nil {
			b.st.OldestAppended = entryTime(v)
		}
		return nil
	})
}

// bbolt's file layout (go.etcd.io/bbolt internal/common): every page starts with a 16-byte header; pages 0 and 1
// hold a meta: magic, version, page size, flags (4 bytes each), root bucket (16), freelist, pgid, txid (8 each),
// then an FNV-64a checksum of the preceding 56 bytes. pgid is the high-water mark: the file must hold pgid pages.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltPageHeader = 16
	boltMetaSize   = 64
)

// checkMeta reads the two meta pages of a bbolt file and checks that one is valid and that the file is as long
// as it says. A failure is a corruptError; an I/O error is returned as is.
func checkMeta(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("buffer %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("buffer %s: %w", path, err)
	}
	size := fi.Size()
	read := func(off int64) (pageSize uint32, pgid, txid uint64, ok bool) {
		var buf [boltPageHeader + boltMetaSize]byte
		if _, err := f.ReadAt(buf[:], off); err != nil {
			return 0, 0, 0, false
		}
		m := buf[boltPageHeader:]
		le := binary.LittleEndian // bbolt writes its structs in the machine's order; fieldgate targets little-endian CPUs
		h := fnv.New64a()
		h.Write(m[:56])
		if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion || le.Uint64(m[56:]) != h.Sum64() {
			return 0, 0, 0, false
		}
		return le.Uint32(m[8:]), le.Uint64(m[40:]), le.Uint64(m[48:]), true
	}
	ps0, pgid0, tx0, ok0 := read(0)
	second := int64(os.Getpagesize())
	if ok0 {
		second = int64(ps0)
	}
	ps1, pgid1, tx1, ok1 := read(second)
	if !ok1 && !ok0 && second != 4096 {
		ps1, pgid1, tx1, ok1 = read(4096)
	}
	var ps uint32
	var pgid uint64
	switch {
	case ok0 && (!ok1 || tx0 >= tx1):
		ps, pgid = ps0, pgid0
	case ok1:
		ps, pgid = ps1, pgid1
	default:
		return corrupt("%s: not a bbolt file (no valid meta page)", path)
	}
	if ps < 1024 || ps > 1<<20 || pgid > uint64(size)/uint64(ps) {
		return corrupt("%s: truncated: %d bytes, but its meta page says %d pages of %d bytes", path, size, pgid, ps)
	}
	return nil
}
