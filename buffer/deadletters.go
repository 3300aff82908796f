package buffer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fieldgate/fieldgate"
	bolt "go.etcd.io/bbolt"
)

// StoredDeadLetter is a dead letter as the buffer keeps it. ID is its key in the dead-letter bucket: it is
// stable while the letter is stored, unique in the file, and a newer letter has a higher one.
type StoredDeadLetter struct {
	ID uint64
	fieldgate.DeadLetter
}

// DeadLetterFilter selects stored dead letters. The zero value selects all of them.
type DeadLetterFilter struct {
	Source string    // only letters whose Source is this ("mqtt:plant-sensors"); empty: every source
	Since  time.Time // only letters rejected at or after this time; zero: any time
	Before uint64    // only letters with an ID below this (the cursor a previous page returned); 0: from the newest
	Limit  int       // at most this many; 0 or less: all
}

func (f DeadLetterFilter) match(d *deadLetter) bool {
	return (f.Source == "" || d.Source == f.Source) && (f.Since.IsZero() || !d.Time.Before(f.Since))
}

func (d deadLetter) public() fieldgate.DeadLetter {
	return fieldgate.DeadLetter{Time: d.Time, Source: d.Source, Origin: d.Origin, Reason: d.Reason, Class: d.Class, Payload: d.Payload, Size: d.Size}
}

// ListDeadLetters returns the stored dead letters f selects, newest first, and the cursor of the next page: the
// Before of a filter that continues after the last letter returned, 0 when there is nothing more. It reads in
// one read transaction and waits for no commit; the number of letters it walks is bounded by MaxDeadLetters.
func (b *Buffer) ListDeadLetters(f DeadLetterFilter) (list []StoredDeadLetter, next uint64, err error) {
	err = b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDead).Cursor()
		var k, v []byte
		if f.Before == 0 {
			k, v = c.Last()
		} else {
			var key [keySize]byte
			binary.BigEndian.PutUint64(key[:], f.Before)
			// The first key at or after Before, then the one below it; all below: the last.
			if k, _ = c.Seek(key[:]); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			var d deadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("dead letter %x: %w", k, err)
			}
			if !f.match(&d) {
				continue
			}
			id := binary.BigEndian.Uint64(k)
			if f.Limit > 0 && len(list) == f.Limit {
				next = list[len(list)-1].ID
				return nil
			}
			list = append(list, StoredDeadLetter{ID: id, DeadLetter: d.public()})
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, bolt.ErrDatabaseNotOpen) {
			return nil, 0, ErrClosed
		}
		return nil, 0, fmt.Errorf("buffer %s: list dead letters: %w", b.path, err)
	}
	return list, next, nil
}

// Resolution is what a replay made of one stored dead letter: the readings its payload gives now, or, when
// Reason is not empty, why it still fails (Readings are then ignored).
type Resolution struct {
	ID       uint64
	Readings []fieldgate.Reading
	Reason   string
}

// Resolved counts what Resolve did.
type Resolved struct {
	Replayed     int // letters deleted, their readings committed
	Readings     int // the readings they gave
	StillFailing int // letters kept with their new reason (an invalid reading counts here too)
	Gone         int // letters no longer stored (replayed before, or deleted by the caps): nothing done
}

// resolveReq is one Resolve call in a round; the committer fills res.
type resolveReq struct {
	items []resolveItem
	res   Resolved
}

type resolveItem struct {
	id     uint64
	req    *appendReq // the readings to append; nil when reason is set
	n      int
	reason string
}

// Resolve replaces stored dead letters by what a replay made of them, and returns once that is committed: in
// ONE transaction (the round's group commit, started at once) the readings of every letter still stored are
// appended and the letter deleted, and the letters that still fail get their new reason. So a crash leaves
// either the letters or their readings, never both, and a second replay of the same letters adds nothing
// (they count as Gone). A reading the buffer refuses as invalid keeps its letter, with that reason. Readings
// beyond max_bytes are handled by when_full as any others. A non-nil error means nothing was changed, unless
// it is ctx's, in which case the commit may still happen.
func (b *Buffer) Resolve(ctx context.Context, rs []Resolution) (Resolved, error) {
	if len(rs) == 0 {
		return Resolved{}, nil
	}
	rq := &resolveReq{items: make([]resolveItem, 0, len(rs))}
	for _, r := range rs {
		it := resolveItem{id: r.ID, reason: r.Reason}
		if it.reason == "" && len(r.Readings) > 0 {
			req, err := encodeReadings(r.Readings)
			if err != nil {
				it.reason = err.Error()
			} else {
				it.req, it.n = req, len(r.Readings)
			}
		}
		rq.items = append(rq.items, it)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return Resolved{}, ErrClosed
	}
	rd := b.next
	if rd.empty() {
		rd.first = time.Now()
	}
	rd.resolves = append(rd.resolves, rq)
	rd.flush = true
	b.mu.Unlock()
	b.signal()
	if err := rd.commit.Wait(ctx); err != nil {
		return Resolved{}, err
	}
	return rq.res, nil
}

// encodeReadings encodes rs as the records of a packed entry, as Queue does.
func encodeReadings(rs []fieldgate.Reading) (*appendReq, error) {
	req := &appendReq{}
	if err := req.add(rs); err != nil {
		return nil, err
	}
	return req, nil
}

// resolveLetters applies the round's resolutions in the dead-letter bucket dl and returns the round's appends
// with the readings of the letters deleted. It keeps *entries and *bytes (the bucket's counts) up to date.
func resolveLetters(dl *bolt.Bucket, rd *round, entries, bytes *int64) ([]*appendReq, error) {
	appends := slices.Clip(rd.appends)
	var key [keySize]byte
	for _, rq := range rd.resolves {
		rq.res = Resolved{}
		for _, it := range rq.items {
			binary.BigEndian.PutUint64(key[:], it.id)
			v := dl.Get(key[:])
			if v == nil {
				rq.res.Gone++
				continue
			}
			if it.reason != "" {
				var d deadLetter
				if err := json.Unmarshal(v, &d); err != nil {
					return nil, fmt.Errorf("dead letter %d: %w", it.id, err)
				}
				d.Reason = it.reason
				nv, err := json.Marshal(d)
				if err != nil {
					return nil, fmt.Errorf("dead letter %d: %w", it.id, err)
				}
				*bytes += int64(len(nv) - len(v))
				if err := dl.Put(slices.Clone(key[:]), nv); err != nil {
					return nil, fmt.Errorf("rewrite dead letter %d: %w", it.id, err)
				}
				rq.res.StillFailing++
				continue
			}
			*entries--
			*bytes -= int64(keySize + len(v))
			if err := dl.Delete(key[:]); err != nil {
				return nil, fmt.Errorf("delete dead letter %d: %w", it.id, err)
			}
			rq.res.Replayed++
			if it.req != nil {
				appends = append(appends, it.req)
				rq.res.Readings += it.n
			}
		}
	}
	return appends, nil
}
