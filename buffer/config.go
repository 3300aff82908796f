package buffer

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fieldgate/fieldgate"
)

// Defaults applied by Open to zero fields of Config.
const (
	// DefaultMaxBytes fits a Raspberry Pi's SD card and stays far below bbolt's 2 GB mmap ceiling on 32-bit ARM.
	DefaultMaxBytes ByteSize = 256 * MiB
	// DefaultWhenFull keeps the newest data when the buffer is full.
	DefaultWhenFull = DropOldest
	// DefaultMaxDeadLetters bounds the dead-letter bucket by count.
	DefaultMaxDeadLetters = 10000
	// DefaultMaxDeadLetterBytes bounds the dead-letter bucket by stored bytes.
	DefaultMaxDeadLetterBytes ByteSize = 16 * MiB
	// DefaultLockTimeout is how long Open waits for another process to release the file lock.
	DefaultLockTimeout = 500 * time.Millisecond
	// DefaultCheckTimeout bounds the consistency check (bbolt tx.Check) Open runs on an existing file.
	DefaultCheckTimeout = 30 * time.Second
	// DefaultCommitInterval is how long queued readings may wait for their commit: a tenth of a second keeps
	// the latency to Kafka low and the commits (and what they write to flash) at most ten a second.
	DefaultCommitInterval = 100 * time.Millisecond
)

// The bounds of commit_interval.
const (
	minCommitInterval = time.Millisecond
	maxCommitInterval = 10 * time.Second
)

// The when_full policies.
const (
	DropOldest = "drop_oldest" // delete the oldest stored readings, in the same transaction, to make room
	DropNewest = "drop_newest" // keep what is stored and drop the incoming readings that do not fit
)

// MaxDeadLetterPayload is the largest payload a dead letter keeps; a longer one is cut to this size and its
// Reason says so.
const MaxDeadLetterPayload = 64 * 1024

// minMaxBytes is the smallest accepted max_bytes: below it a single large reading could not be stored.
const minMaxBytes = 1 * MiB

// Config configures the buffer. The zero value of every field but Path means its default.
//
// YAML:
//
//	buffer:
//	  path: /var/lib/fieldgate/buffer.db
//	  max_bytes: 256MiB        # cap on stored readings
//	  when_full: drop_oldest   # or drop_newest
//	  max_dead_letters: 10000
//	  max_dead_letter_bytes: 16MiB
//	  commit_interval: 100ms   # latency against flash wear
//	  lock_timeout: 500ms
//	  check_timeout: 30s
type Config struct {
	// Path is the bbolt file. Required (the daemon fills a default). Its directory must exist.
	Path string `yaml:"path"`
	// MaxBytes caps the bytes of stored readings (keys, values and the per-entry header; not bbolt's page
	// overhead). Default 256MiB: it fits a Raspberry Pi's SD card and stays far below bbolt's 2 GB mmap ceiling
	// on 32-bit ARM. The file is larger than the stored bytes (page headers, half-empty pages, free pages) and
	// never shrinks: bbolt reuses freed pages but does not return them to the file system, so after a long
	// outage the file stays at its peak size. Measured with drop_oldest churn: 1.25 × MaxBytes for 64MiB (80 MiB),
	// 2 × for 4MiB (small files grow by doubling); bbolt grows a large file in 16 MiB steps. Minimum 1MiB; at
	// most 1GiB on 32-bit platforms.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// WhenFull is what happens to readings that do not fit under MaxBytes: "drop_oldest" (default) deletes the
	// oldest stored readings in the same transaction; "drop_newest" drops the incoming readings. Either way
	// Append returns nil (a source is never blocked or failed by a full buffer) and every drop is counted.
	WhenFull string `yaml:"when_full"`
	// MaxDeadLetters caps the dead-letter bucket by count. Default 10000; beyond it the oldest dead letters are
	// deleted and counted in Stats.DeadLettersDropped.
	MaxDeadLetters int `yaml:"max_dead_letters"`
	// MaxDeadLetterBytes caps the dead-letter bucket by stored bytes. Default 16MiB; beyond it the oldest dead
	// letters are deleted and counted. A single payload is kept up to MaxDeadLetterPayload (64 KiB).
	MaxDeadLetterBytes ByteSize `yaml:"max_dead_letter_bytes"`
	// CommitInterval is the one setting that trades latency for flash wear: readings queued by the inputs wait
	// up to this long, in memory, so that one commit (one transaction, two fsyncs) carries all of them.
	// Default 100ms: at most about ten commits a second from timers, whatever the number of inputs and devices,
	// and about 0.1 s of added latency to Kafka. An input that cannot go on without acknowledgements (an MQTT
	// input whose broker in-flight window is full) does not wait for it: its commit starts at once. Longer
	// intervals write less (each commit rewrites a few pages besides the data: see DESIGN.md); 1ms commits
	// everything at once. From 1ms to 10s. Acknowledged readings are deleted with the next commit, or on their
	// own after ten intervals (at least 1 s): a crash may re-send up to that much, as duplicates.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// LockTimeout is how long Open waits for the file lock held by another process before failing with
	// ErrLocked. Default 500ms.
	LockTimeout time.Duration `yaml:"lock_timeout"`
	// CheckTimeout bounds the consistency check Open runs on an existing file. Default 30s. A check that takes
	// longer is not waited for: Open continues, and the check's outcome is only logged.
	CheckTimeout time.Duration `yaml:"check_timeout"`
}

// WithDefaults returns c with every zero field but Path set to its default. It is what Open runs with.
func (c Config) WithDefaults() Config {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.WhenFull == "" {
		c.WhenFull = DefaultWhenFull
	}
	if c.MaxDeadLetters == 0 {
		c.MaxDeadLetters = DefaultMaxDeadLetters
	}
	if c.MaxDeadLetterBytes == 0 {
		c.MaxDeadLetterBytes = DefaultMaxDeadLetterBytes
	}
	if c.LockTimeout == 0 {
		c.LockTimeout = DefaultLockTimeout
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = DefaultCheckTimeout
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	return c
}

// Validate reports every invalid field as a fieldgate.FieldError, joined. Zero fields (but Path) are valid: they
// mean the default.
func (c Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, fieldgate.FieldErrorf("path", "is required"))
	}
	if c.MaxBytes != 0 && c.MaxBytes < minMaxBytes {
		errs = append(errs, fieldgate.FieldErrorf("max_bytes", "%s is below the minimum of %s", c.MaxBytes, ByteSize(minMaxBytes)))
	}
	if strconv.IntSize == 32 && c.MaxBytes > 1*GiB {
		errs = append(errs, fieldgate.FieldErrorf("max_bytes", "%s is above 1GiB, the limit on 32-bit platforms (bbolt maps the file into a 2 GB address space)", c.MaxBytes))
	}
	switch c.WhenFull {
	case "", DropOldest, DropNewest:
	default:
		errs = append(errs, fieldgate.FieldErrorf("when_full", "%q is not one of %q, %q", c.WhenFull, DropOldest, DropNewest))
	}
	if c.MaxDeadLetters < 0 {
		errs = append(errs, fieldgate.FieldErrorf("max_dead_letters", "%d is negative", c.MaxDeadLetters))
	}
	if c.MaxDeadLetterBytes != 0 && c.MaxDeadLetterBytes < MaxDeadLetterPayload {
		errs = append(errs, fieldgate.FieldErrorf("max_dead_letter_bytes", "%s is below the minimum of %s", c.MaxDeadLetterBytes, ByteSize(MaxDeadLetterPayload)))
	}
	if c.LockTimeout < 0 {
		errs = append(errs, fieldgate.FieldErrorf("lock_timeout", "%s is negative", c.LockTimeout))
	}
	if c.CommitInterval != 0 && (c.CommitInterval < minCommitInterval || c.CommitInterval > maxCommitInterval) {
		errs = append(errs, fieldgate.FieldErrorf("commit_interval", "%s is outside %s..%s", c.CommitInterval, minCommitInterval, maxCommitInterval))
	}
	if c.CheckTimeout < 0 {
		errs = append(errs, fieldgate.FieldErrorf("check_timeout", "%s is negative", c.CheckTimeout))
	}
	return errors.Join(errs...)
}

// ByteSize is a size in bytes. In YAML it is an integer ("500000") or a number with a unit: B, KB, MB, GB, TB
// (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. "256MiB", "1GB", "1.5GiB". Units are
// case-insensitive; a space between number and unit is allowed.
type ByteSize int64

// Binary and decimal units of ByteSize.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
	KB  ByteSize = 1e3
	MB  ByteSize = 1e6
	GB  ByteSize = 1e9
	TB  ByteSize = 1e12
)

var byteUnits = map[string]ByteSize{
	"": 1, "b": 1,
	"kb": KB, "mb": MB, "gb": GB, "tb": TB,
	"kib": KiB, "mib": MiB, "gib": GiB, "tib": TiB,
}

// ParseByteSize parses s as described on ByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := byteUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("invalid size %q: want a number with an optional unit B, KB, MB, GB, TB, KiB, MiB, GiB or TiB, e.g. 256MiB", s)
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n > math.MaxInt64/int64(mult) {
			return 0, fmt.Errorf("invalid size %q: too large", s)
		}
		return ByteSize(n) * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %q is not a number", s, num)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return ByteSize(math.Round(v)), nil
}

// UnmarshalText implements encoding.TextUnmarshaler, so YAML and flags can use ParseByteSize.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalText implements encoding.TextMarshaler with String's form, which ParseByteSize reads back exactly.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// String formats b with the largest binary unit that divides it exactly ("256MiB"), else in bytes ("500000").
func (b ByteSize) String() string {
	if b != 0 {
		for _, u := range []struct {
			size ByteSize
			name string
		}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
			if b%u.size == 0 {
				return strconv.FormatInt(int64(b/u.size), 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
