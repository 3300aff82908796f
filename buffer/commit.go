package buffer

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// run is the committer: it takes the queued round whenever woken, commits it, and releases its callers. On quit
// it commits what is still queued (nothing can be queued after Close set closed) and exits.
func (b *Buffer) run() {
	defer close(b.done)
	for {
		select {
		case <-b.wake:
		case <-b.quit:
			b.mu.Lock()
			rd := b.next
			b.next = nil
			b.mu.Unlock()
			if !rd.empty() {
				b.commit(rd)
			}
			return
		}
		b.mu.Lock()
		rd := b.next
		b.next = newRound()
		b.mu.Unlock()
		if !rd.empty() {
			b.commit(rd)
		}
	}
}

// delta is what a committed transaction changed, applied to Stats only after the commit succeeded.
type delta struct {
	entries, bytes                    int64
	appended, acked, dropOld, dropNew uint64
	dlEntries, dlBytes                int64
	dlStored, dlDropped               uint64
	oldest                            time.Time
}

// commit runs one round in one bbolt transaction, updates Stats, releases the round's callers and recycles its
// buffers.
func (b *Buffer) commit(rd *round) {
	var d delta
	start := time.Now()
	err := b.db.Update(func(tx *bolt.Tx) error {
		var err error
		d, err = b.apply(tx, rd)
		return err
	})
	elapsed := time.Since(start)

	b.stmu.Lock()
	b.st.Commits++
	b.st.CommitSeconds += elapsed.Seconds()
	if err != nil {
		err = fmt.Errorf("buffer %s: commit: %w", b.path, err)
		b.st.CommitErrors++
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
	}
	b.stmu.Unlock()

	rd.err = err
	close(rd.done)
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

// apply does a round's work in tx and returns what changed. The order is: acks, then appends under the cap,
// then dead letters under their caps, then the counters.
func (b *Buffer) apply(tx *bolt.Tx, rd *round) (delta, error) {
	var d delta
	b.stmu.Lock()
	entries, bytes := b.st.Entries, b.st.Bytes
	dlEntries, dlBytes := b.st.DeadLetters, b.st.DeadLetterBytes
	b.stmu.Unlock()

	rb := tx.Bucket(bucketReadings)
	// Keys only ever grow, so full pages are best: nothing is inserted in the middle later.
	rb.FillPercent = 1.0

	// Acks.
	if rd.ackUpTo > 0 {
		n, sz, err := deleteFront(rb, func(k []byte) bool { return binary.BigEndian.Uint64(k) <= rd.ackUpTo }, -1)
		if err != nil {
			return d, fmt.Errorf("ack up to %d: %w", rd.ackUpTo, err)
		}
		d.acked += uint64(n)
		entries -= n
		bytes -= sz
	}

	// Appends.
	if len(rd.appends) > 0 {
		var incoming int64
		for _, req := range rd.appends {
			incoming += int64(len(req.ends)*keySize + len(req.buf))
		}
		limit := int64(b.cfg.MaxBytes)
		skip := 0 // drop_oldest: incoming readings dropped because they alone exceed the cap
		if b.cfg.WhenFull == DropOldest && bytes+incoming > limit {
			need := bytes + incoming - limit
			n, sz, err := deleteFront(rb, nil, need)
			if err != nil {
				return d, fmt.Errorf("drop oldest: %w", err)
			}
			d.dropOld += uint64(n)
			entries -= n
			bytes -= sz
			// Still over (the store is empty): the oldest of the incoming readings go too.
			for over := bytes + incoming - limit; over > 0; skip++ {
				req, i := locate(rd.appends, skip)
				sz := int64(keySize + req.valueLen(i))
				over -= sz
				incoming -= sz
				d.dropOld++
			}
		}
		seq := rb.Sequence()
		idx := 0
		for _, req := range rd.appends {
			start := 0
			for _, end := range req.ends {
				v := req.buf[start:end:end]
				start = end
				idx++
				if idx <= skip {
					continue
				}
				sz := int64(keySize + len(v))
				if b.cfg.WhenFull == DropNewest && bytes+sz > limit {
					d.dropNew++
					continue
				}
				seq++
				var k [keySize]byte
				binary.BigEndian.PutUint64(k[:], seq)
				if err := rb.Put(k[:], v); err != nil {
					return d, fmt.Errorf("put %d: %w", seq, err)
				}
				d.appended++
				entries++
				bytes += sz
			}
		}
		if err := rb.SetSequence(seq); err != nil {
			return d, err
		}
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

func (r *appendReq) valueLen(i int) int {
	if i == 0 {
		return r.ends[0]
	}
	return r.ends[i] - r.ends[i-1]
}

// locate returns the request and index within it of the n-th (0-based) reading of reqs.
func locate(reqs []*appendReq, n int) (*appendReq, int) {
	for _, req := range reqs {
		if n < len(req.ends) {
			return req, n
		}
		n -= len(req.ends)
	}
	panic("buffer: locate out of range")
}

// deleteFront deletes entries from the front of bk while cond(k) holds (nil: always) and, if need >= 0, until
// at least need bytes (key plus value) are freed. It returns the count and bytes deleted.
//
// It finds the keys first and then deletes each by key: deleting at a cursor and calling First again walks over
// the emptied leaves every time, which makes a large delete quadratic.
func deleteFront(bk *bolt.Bucket, cond func(k []byte) bool, need int64) (n, sz int64, err error) {
	var keys []uint64
	c := bk.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if need >= 0 && sz >= need {
			break
		}
		if cond != nil && !cond(k) {
			break
		}
		sz += int64(len(k) + len(v))
		keys = append(keys, binary.BigEndian.Uint64(k))
	}
	return int64(len(keys)), sz, deleteKeys(bk, keys)
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
