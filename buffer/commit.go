package buffer

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// flushBytes is the size of queued readings and letters at which a round is committed without waiting for its
// interval: it bounds the memory a round holds and the length of one transaction at full speed.
const flushBytes = 1 << 20

// ackDelay is how long the deletion of acknowledged readings may wait for a commit that carries appends before
// it is committed on its own: ten commit intervals, at least a second. It bounds the duplicates a crash causes.
func (c Config) ackDelay() time.Duration { return max(time.Second, 10*c.CommitInterval) }

// run is the committer: it commits a round when it is due (see take), and on quit commits what is still queued
// (nothing can be queued after Close set closed) and exits.
func (b *Buffer) run() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		rd, wait := b.take(false)
		if rd != nil {
			b.commit(rd)
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-b.wake:
		case <-timer.C:
		case <-b.quit:
			if rd, _ := b.take(true); rd != nil {
				b.commit(rd)
			}
			return
		}
		timer.Stop()
	}
}

// take returns the round to commit now, replacing it with a fresh one, or nil and how long to wait before it is
// due (0: until woken). A round is due when it was asked to flush, or CommitInterval after its first work; a
// round with nothing queued is due when acknowledgements have waited the ack delay for their deletion. all takes the
// round whatever its age, if anything is to be done.
func (b *Buffer) take(all bool) (*round, time.Duration) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	rd := b.next
	acks := b.ackedUpTo.Load() > b.deletedUpTo
	if acks && b.ackSince.IsZero() {
		b.ackSince = now // a failed commit left them
	}
	var wait time.Duration
	switch {
	case all && (acks || !rd.empty()):
	case !rd.empty():
		due := rd.first.Add(b.cfg.CommitInterval)
		if !rd.flush && now.Before(due) {
			wait = due.Sub(now)
			if acks {
				wait = min(wait, b.ackSince.Add(b.cfg.ackDelay()).Sub(now))
			}
			return nil, max(wait, time.Microsecond)
		}
		rd.early = now.Before(due)
	case acks:
		if due := b.ackSince.Add(b.cfg.ackDelay()); !rd.flush && now.Before(due) {
			return nil, due.Sub(now)
		}
	default:
		rd.flush = false // a Flush whose acknowledgements a commit has taken meanwhile
		return nil, 0
	}
	b.next = newRound()
	return rd, 0
}

// delta is what a committed transaction changed, applied to Stats only after the commit succeeded.
type delta struct {
	entries, bytes                    int64
	appended, acked, dropOld, dropNew uint64
	dlEntries, dlBytes                int64
	dlStored, dlDropped               uint64
	oldest                            time.Time
	lastSeq                           uint64 // the bucket's sequence after the appends; 0 if none
}

// commit runs one round in one bbolt transaction, updates Stats, finishes the round's commit and recycles its
// buffers.
func (b *Buffer) commit(rd *round) {
	var d delta
	ackTo := b.ackedUpTo.Load()
	start := time.Now()
	err := b.db.Update(func(tx *bolt.Tx) error {
		var err error
		d, err = b.apply(tx, rd, ackTo)
		return err
	})
	elapsed := time.Since(start)
	var size int64
	if fi, serr := os.Stat(b.path); serr == nil {
		size = fi.Size()
	}

	if err == nil {
		b.mu.Lock()
		b.deletedUpTo = max(b.deletedUpTo, ackTo)
		if b.ackedUpTo.Load() > b.deletedUpTo {
			b.ackSince = time.Now() // acknowledged while this commit ran
		} else {
			b.ackSince = time.Time{}
		}
		b.mu.Unlock()
	}

	b.stmu.Lock()
	b.st.Commits++
	b.st.CommitSeconds += elapsed.Seconds()
	if rd.early {
		b.st.Flushes++
	}
	if err != nil {
		err = fmt.Errorf("buffer %s: commit: %w", b.path, err)
		b.st.CommitErrors++
		b.st.AppendErrors += uint64(rd.readings())
		if b.st.Healthy {
			b.log.Error("buffer commit failed; readings are not being stored and sources must not acknowledge", "path", b.path, "err", err)
		}
		b.st.Healthy = false
		b.st.LastError = err.Error()
	} else {
		if !b.st.Healthy {
			b.log.Info("buffer commits succeed again", "path", b.path)
		}
		b.st.Healthy = true
		b.st.LastError = ""
		b.st.Fsyncs += 2 // bbolt syncs the pages, then the meta page
		if size > b.fileSize && b.fileSize > 0 {
			b.st.Fsyncs++ // and the file after growing it
		}
		b.st.Entries += d.entries
		b.st.Bytes += d.bytes
		b.st.Appended += d.appended
		b.st.Acked += d.acked
		b.st.DroppedOldest += d.dropOld
		b.st.DroppedNewest += d.dropNew
		b.st.DeadLetters += d.dlEntries
		b.st.DeadLetterBytes += d.dlBytes
		b.st.DeadLettersStored += d.dlStored
		b.st.DeadLettersDropped += d.dlDropped
		b.st.OldestAppended = d.oldest
		storeMax(&b.lastSeq, d.lastSeq)
	}
	if size > 0 {
		b.fileSize = size
	}
	b.stmu.Unlock()

	rd.commit.Finish(err)
	if err == nil && d.appended > 0 {
		select {
		case b.appended <- struct{}{}:
		default:
		}
	}
	for _, req := range rd.appends {
		putReq(req)
	}
}

func (r *round) readings() int {
	n := 0
	for _, req := range r.appends {
		n += len(req.ends)
	}
	for _, rq := range r.resolves {
		for _, it := range rq.items {
			if it.req != nil {
				n += len(it.req.ends)
			}
		}
	}
	return n
}

// apply does a round's work in tx and returns what changed. The order is: deletions of acknowledged readings,
// then appends under the cap, then dead letters under their caps, then the counters.
func (b *Buffer) apply(tx *bolt.Tx, rd *round, ackTo uint64) (delta, error) {
	var d delta
	b.stmu.Lock()
	entries, bytes := b.st.Entries, b.st.Bytes
	dlEntries, dlBytes := b.st.DeadLetters, b.st.DeadLetterBytes
	b.stmu.Unlock()

	rb := tx.Bucket(bucketReadings)
	// Keys only ever grow, so full pages are best: nothing is inserted in the middle later.
	rb.FillPercent = 1.0

	// Deletions: every entry whose readings Kafka all acknowledged.
	if ackTo > b.deletedUpTo {
		n, sz, err := deleteFront(rb, func(k, v []byte) bool { return lastSeq(k, v) <= ackTo }, -1)
		if err != nil {
			return d, fmt.Errorf("delete acknowledged up to %d: %w", ackTo, err)
		}
		d.acked += uint64(n)
		entries -= n
		bytes -= sz
	}

	// Replays of dead letters: each letter still stored is deleted, its readings appended with the round's, or
	// its reason rewritten. A letter gone meanwhile (a replay before, or the caps) adds nothing: exactly once.
	appends := rd.appends
	if len(rd.resolves) > 0 {
		var err error
		if appends, err = resolveLetters(tx.Bucket(bucketDead), rd, &dlEntries, &dlBytes); err != nil {
			return d, err
		}
	}

	// Appends, packed into entries.
	if len(appends) > 0 {
		limit := int64(b.cfg.MaxBytes)
		ents, dropped := b.pack(b.records(appends), limit-bytes)
		d.dropNew += uint64(dropped)
		var incoming int64
		for _, e := range ents {
			incoming += int64(e.end - e.start)
		}
		if b.cfg.WhenFull == DropOldest && bytes+incoming > limit {
			n, sz, err := deleteFront(rb, nil, bytes+incoming-limit)
			if err != nil {
				return d, fmt.Errorf("drop oldest: %w", err)
			}
			d.dropOld += uint64(n)
			entries -= n
			bytes -= sz
			// Still over (the store is empty): the oldest of the incoming readings go too.
			for len(ents) > 0 && bytes+incoming > limit {
				d.dropOld += uint64(ents[0].count)
				incoming -= int64(ents[0].end - ents[0].start)
				ents = ents[1:]
			}
		}
		seq := rb.Sequence()
		for _, e := range ents {
			k := b.slab[e.start : e.start+keySize]
			binary.BigEndian.PutUint64(k, seq+1)
			if err := rb.Put(k, b.slab[e.start+keySize:e.end]); err != nil {
				return d, fmt.Errorf("put entry %d: %w", seq+1, err)
			}
			seq += uint64(e.count)
			d.appended += uint64(e.count)
			entries += int64(e.count)
			bytes += int64(e.end - e.start)
		}
		if err := rb.SetSequence(seq); err != nil {
			return d, err
		}
		d.lastSeq = seq
	}

	// Dead letters.
	if len(rd.letters) > 0 {
		dl := tx.Bucket(bucketDead)
		dl.FillPercent = 1.0
		seq := dl.Sequence()
		for _, v := range rd.letters {
			seq++
			var k [keySize]byte
			binary.BigEndian.PutUint64(k[:], seq)
			if err := dl.Put(k[:], v); err != nil {
				return d, fmt.Errorf("put dead letter: %w", err)
			}
			dlEntries++
			dlBytes += int64(keySize + len(v))
			d.dlStored++
		}
		if err := dl.SetSequence(seq); err != nil {
			return d, err
		}
	}
	if len(rd.letters) > 0 || len(rd.resolves) > 0 {
		dl := tx.Bucket(bucketDead)
		maxN, maxB := int64(b.cfg.MaxDeadLetters), int64(b.cfg.MaxDeadLetterBytes)
		if dlEntries > maxN || dlBytes > maxB {
			n, err := deleteFrontWhile(dl, func() bool { return dlEntries > maxN || dlBytes > maxB }, &dlEntries, &dlBytes)
			if err != nil {
				return d, fmt.Errorf("drop oldest dead letters: %w", err)
			}
			d.dlDropped += uint64(n)
		}
	}

	// Counters and the age of the oldest entry.
	mb := tx.Bucket(bucketMeta)
	for _, kv := range []struct {
		k []byte
		v int64
	}{{keyEntries, entries}, {keyBytes, bytes}, {keyDLEntries, dlEntries}, {keyDLBytes, dlBytes}} {
		if err := mb.Put(kv.k, binary.BigEndian.AppendUint64(nil, uint64(kv.v))); err != nil {
			return d, err
		}
	}
	if _, v := rb.Cursor().First(); v != nil {
		d.oldest = entryTime(v)
	}

	b.stmu.Lock()
	d.entries = entries - b.st.Entries
	d.bytes = bytes - b.st.Bytes
	d.dlEntries = dlEntries - b.st.DeadLetters
	d.dlBytes = dlBytes - b.st.DeadLetterBytes
	b.stmu.Unlock()
	return d, nil
}

// records is a round's readings as one sequence of encoded records: buf holds them back to back (reusing the
// first request's buffer when the round has one request), ends[i] is the end of record i.
type records struct {
	buf  []byte
	ends []int
}

// records collects the readings of appends in order.
func (b *Buffer) records(appends []*appendReq) records {
	if len(appends) == 1 {
		return records{buf: appends[0].buf, ends: appends[0].ends}
	}
	r := records{buf: b.recBuf[:0], ends: b.recEnds[:0]}
	for _, req := range appends {
		base := len(r.buf)
		r.buf = append(r.buf, req.buf...)
		for _, e := range req.ends {
			r.ends = append(r.ends, base+e)
		}
	}
	b.recBuf, b.recEnds = r.buf, r.ends
	return r
}

func (r records) record(i int) []byte {
	start := 0
	if i > 0 {
		start = r.ends[i-1]
	}
	return r.buf[start:r.ends[i]]
}

// packedEntry is one entry built by pack: its key and value are b.slab[start:end], the key first.
type packedEntry struct {
	start, end int
	count      uint32
}

// pack builds the records into entries of about b.entrySize bytes in b.slab, in order, each stamped with the
// append time; their keys are left for the caller to number. room is the bytes left under the cap: with
// drop_newest a reading that does not fit is dropped, and counted in dropped. The slab is built whole before
// anything is put, since bbolt keeps the key and value slices until the transaction commits.
func (b *Buffer) pack(recs records, room int64) (ents []packedEntry, dropped int) {
	now := time.Now().UnixNano()
	slab := b.slab[:0]
	ents = b.ents[:0]
	var (
		sz  int64
		cur = -1 // index in ents of the entry being built, -1 if none
	)
	for i := range recs.ends {
		rec := recs.record(i)
		overhead := 0
		if cur < 0 || len(slab)-ents[cur].start-keySize+len(rec) > b.entrySize {
			overhead = keySize + packedHeader
		}
		if b.cfg.WhenFull == DropNewest && sz+int64(overhead+len(rec)) > room {
			dropped++
			continue
		}
		if overhead > 0 {
			ents = append(ents, packedEntry{start: len(slab)})
			cur = len(ents) - 1
			slab = append(slab, make([]byte, keySize)...) // the key, numbered by the caller
			slab = append(slab, entryPacked)
			slab = binary.BigEndian.AppendUint64(slab, uint64(now))
			slab = append(slab, 0, 0, 0, 0) // the count
		}
		slab = append(slab, rec...)
		sz += int64(overhead + len(rec))
		e := &ents[cur]
		e.count++
		e.end = len(slab)
		binary.BigEndian.PutUint32(slab[e.start+keySize+9:], e.count)
	}
	b.slab, b.ents = slab, ents
	return ents, dropped
}

// deleteFront deletes entries from the front of bk while cond(k, v) holds (nil: always) and, if need >= 0,
// until at least need bytes (key plus value) are freed. It returns the readings and bytes deleted.
//
// It finds the keys first and then deletes each by key: deleting at a cursor and calling First again walks over
// the emptied leaves every time, which makes a large delete quadratic.
func deleteFront(bk *bolt.Bucket, cond func(k, v []byte) bool, need int64) (n, sz int64, err error) {
	var keys []uint64
	c := bk.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if need >= 0 && sz >= need {
			break
		}
		if cond != nil && !cond(k, v) {
			break
		}
		sz += int64(len(k) + len(v))
		n += entryCount(v)
		keys = append(keys, binary.BigEndian.Uint64(k))
	}
	return n, sz, deleteKeys(bk, keys)
}

func deleteKeys(bk *bolt.Bucket, keys []uint64) error {
	var k [keySize]byte
	for _, key := range keys {
		binary.BigEndian.PutUint64(k[:], key)
		if err := bk.Delete(k[:]); err != nil {
			return err
		}
	}
	return nil
}

// deleteFrontWhile deletes entries from the front of bk while more() holds, decrementing *entries and *bytes.
func deleteFrontWhile(bk *bolt.Bucket, more func() bool, entries, bytes *int64) (n int64, err error) {
	var keys []uint64
	c := bk.Cursor()
	for k, v := c.First(); k != nil && more(); k, v = c.Next() {
		keys = append(keys, binary.BigEndian.Uint64(k))
		*entries--
		*bytes -= int64(len(k) + len(v))
	}
	return int64(len(keys)), deleteKeys(bk, keys)
}
