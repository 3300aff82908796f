package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/cratedb"
	"github.com/fieldgate/fieldgate/window"
)

// store is what the loader needs of the database; *cratedb.Writer is the one implementation. A nil store is demo
// mode.
type store interface {
	WriteRaw(ctx context.Context, rows []cratedb.Raw) ([]cratedb.Rejected, error)
	WriteAggregates(ctx context.Context, aggs []fieldgate.Aggregate) error
	WriteDeadLetters(ctx context.Context, dls []cratedb.DeadLetter) error
	ReadWindow(ctx context.Context, device, metric string, start, end time.Time) ([]fieldgate.Reading, error)
	SaveCheckpoints(ctx context.Context, group, topic string, cps []cratedb.Checkpoint) error
	LoadCheckpoints(ctx context.Context, group, topic string) (map[int32][]byte, error)
	Ping(ctx context.Context) error
}

// loader is the consumer loop: poll → decode → raw upsert → windows → aggregate upserts → checkpoint → commit.
//
// Delivery: a record's offset is committed only after (1) its reading is in the raw table or its dead letter in
// the dead-letter table, (2) every window it belongs to is either still open — then the window holds an earlier
// offset and the commit stops there — or its aggregate is written, and (3) the window checkpoint of its partition
// (each device's watermark, which windows were released) is saved. A crash or a rebalance therefore replays
// exactly the records a still-open window needs, and the restored checkpoint makes windows that were already
// final come back Late (recomputed from the raw table) instead of being rebuilt from their tail. Every write is
// an idempotent upsert, so what a replay writes again changes nothing.
type loader struct {
	cfg   *Config
	log   *slog.Logger
	cl    *kgo.Client
	db    store     // nil: demo mode
	out   io.Writer // demo mode: one line per closed window
	met   *metrics
	now   func() time.Time
	retry time.Duration // first backoff of a failed database call

	mu        sync.Mutex // the loop's state, shared with the rebalance callbacks
	win       *window.Windows
	assigned  map[int32]bool
	done      map[int32]int64 // per partition: one past the last record processed
	committed map[int32]int64
	hw        map[int32]int64 // high watermarks seen in fetches
	lastCmt   time.Time

	joined atomic.Bool

	latencyHook func(seconds float64) // tests: per written batch, the largest event time → written delay
}

func newLoader(cfg *Config, log *slog.Logger, db store, out io.Writer, met *metrics) (*loader, error) {
	win, err := window.New(cfg.Windows)
	if err != nil {
		return nil, err
	}
	return &loader{cfg: cfg, log: log, db: db, out: out, met: met, now: time.Now, retry: 100 * time.Millisecond,
		win: win, assigned: map[int32]bool{}, done: map[int32]int64{}, committed: map[int32]int64{}, hw: map[int32]int64{}}, nil
}

// clientOpts are the consumer-group options beyond the connection: the rebalance callbacks.
func (l *loader) clientOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.OnPartitionsAssigned(l.onAssigned),
		kgo.OnPartitionsRevoked(l.onRevoked),
		kgo.OnPartitionsLost(l.onLost),
	}
}

// run polls until ctx ends. It returns nil then (after committing what is safe), or an error if the loop cannot
// go on. The client is closed by the caller.
func (l *loader) run(ctx context.Context) error {
	for ctx.Err() == nil {
		recs := l.poll(ctx)
		if ctx.Err() != nil && len(recs) == 0 {
			break
		}
		t0 := time.Now()
		l.mu.Lock()
		err := l.process(ctx, recs)
		l.mu.Unlock()
		l.cl.AllowRebalance()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if len(recs) > 0 {
			l.met.batchSeconds.Observe(time.Since(t0).Seconds())
		}
	}
	// A last commit of what is safe, so a clean restart replays little; then let the group's leave (on Close)
	// proceed, which a poll without AllowRebalance would block.
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l.mu.Lock()
	err := l.commitLocked(cctx, true)
	l.mu.Unlock()
	l.cl.AllowRebalance()
	return err
}

// poll waits up to a second for records (so idle windows still fire), then lingers to fill a batch.
func (l *loader) poll(ctx context.Context) []*kgo.Record {
	// Up to four sub-batches per poll: process keeps two of them in flight.
	max := 4 * l.subBatch()
	var recs []*kgo.Record
	collect := func(pctx context.Context) {
		f := l.cl.PollRecords(pctx, max-len(recs))
		f.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
				return
			}
			l.log.Warn("fetch failed", "topic", t, "partition", p, "err", err)
		})
		f.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 || p.HighWatermark > 0 {
				l.mu.Lock()
				l.hw[p.Partition] = p.HighWatermark
				l.mu.Unlock()
			}
		})
		recs = append(recs, f.Records()...)
	}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	collect(pctx)
	cancel()
	if len(recs) > 0 && len(recs) < max && l.cfg.Database.Linger > 0 {
		lctx, cancel := context.WithTimeout(ctx, l.cfg.Database.Linger)
		for len(recs) < max && lctx.Err() == nil {
			collect(lctx)
		}
		cancel()
	}
	return recs
}

// subBatch is how many raw readings process gives the writer at a time: a statement of batch_size on each
// connection.
func (l *loader) subBatch() int {
	return l.cfg.Database.BatchSize * max(l.cfg.Database.Connections, 1)
}

// batch is one poll's records on their way through process.
type batch struct {
	now     time.Time     // processing time, for the windows and the dead letters
	items   []item        // one per record, in fetch order (offset order per partition)
	raws    []cratedb.Raw // the decoded readings, in item order
	rawItem []int         // raws[i] is the reading of items[rawItem[i]]
}

// item is one record and what becomes of it.
type item struct {
	rec    *kgo.Record
	r      fieldgate.Reading // the decoded reading (state reading)
	state  itemState
	reason string // state dead: why, for the dead-letter table
}

type itemState uint8

const (
	reading itemState = iota // decoded: a raw row, then counted in the windows
	dead                     // undecodable or refused by the database: a dead letter
	revoked                  // fetched before its partition was revoked: not ours, the new owner reads it
)

// process handles one poll's records; l.mu is held. It returns only when they are written (retrying the
// database as long as it takes), or with ctx's error. The steps: decode; write the raw readings, giving each
// written sub-batch to the windows and writing what they fire; store the dead letters; update the lag; commit.
func (l *loader) process(ctx context.Context, recs []*kgo.Record) error {
	b := l.decode(recs)
	if err := l.load(ctx, b); err != nil {
		return err
	}
	if err := l.storeDeadLetters(ctx, b); err != nil {
		return err
	}
	l.updateLag()
	return l.commitLocked(ctx, false)
}

// decode decodes recs (in parallel) and sorts them into readings, dead letters and records of revoked
// partitions.
func (l *loader) decode(recs []*kgo.Record) *batch {
	b := &batch{now: l.now(), items: make([]item, len(recs)), raws: make([]cratedb.Raw, 0, len(recs)), rawItem: make([]int, 0, len(recs))}
	decoded := decodeAll(recs)
	for i, rec := range recs {
		it := &b.items[i]
		it.rec = rec
		if !l.assigned[rec.Partition] {
			it.state = revoked
			continue
		}
		l.met.consumed.Inc()
		if err := decoded[i].err; err != nil {
			it.state, it.reason = dead, err.Error()
			if errors.Is(err, fieldgate.ErrUnknownVersion) {
				l.met.deadLetters.WithLabelValues("version").Inc()
			} else {
				l.met.deadLetters.WithLabelValues("decode").Inc()
			}
			continue
		}
		it.r = decoded[i].raw.Reading
		b.raws = append(b.raws, decoded[i].raw)
		b.rawItem = append(b.rawItem, i)
	}
	return b
}

// load writes b's readings to the raw table and gives them to the windows, firing after each written sub-batch:
// a reading enters the windows only once its raw row is in (a row the database refuses must not be counted).
// Without a database (demo mode) everything goes to the windows at once.
func (l *loader) load(ctx context.Context, b *batch) error {
	if l.db == nil || len(b.raws) == 0 {
		l.addToWindows(b, 0, len(b.items))
		return l.fire(ctx, b.now)
	}
	w := l.startRawWrites(ctx, b.raws)
	defer w.stop()
	next := 0 // items before next are in the windows
	for k := range w.results {
		lo, hi := w.bounds(k)
		var r rawResult
		select {
		case r = <-w.results[k]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		for _, x := range r.rejected {
			it := &b.items[b.rawItem[lo+x.Index]]
			it.state, it.reason = dead, "refused by the database: "+x.Reason
			l.met.deadLetters.WithLabelValues("refused").Inc()
		}
		l.observeWritten(b, lo, hi, len(r.rejected))
		last := b.rawItem[hi-1] + 1
		if hi == len(b.raws) {
			last = len(b.items)
		}
		l.addToWindows(b, next, last)
		next = last
		if err := l.fire(ctx, b.now); err != nil {
			return err
		}
	}
	return nil
}

// observeWritten updates the metrics of the written raws[lo:hi]: their count, and the largest delay from a
// reading's event time to now.
func (l *loader) observeWritten(b *batch, lo, hi, rejected int) {
	var lat float64
	t := l.now()
	for i := lo; i < hi; i++ {
		if b.items[b.rawItem[i]].state == reading {
			lat = max(lat, t.Sub(b.raws[i].Reading.EventTime()).Seconds())
		}
	}
	l.met.eventToDB.Observe(lat)
	if l.latencyHook != nil {
		l.latencyHook(lat)
	}
	l.met.written.Add(float64(hi - lo - rejected))
}

// addToWindows gives the readings of b.items[from:to] to the windows, in offset order, and marks every record
// there that is ours (readings and dead letters) processed.
func (l *loader) addToWindows(b *batch, from, to int) {
	for _, it := range b.items[from:to] {
		switch it.state {
		case revoked:
			continue
		case reading:
			switch l.win.Add(it.r, window.Position{Partition: it.rec.Partition, Offset: it.rec.Offset}, b.now) {
			case window.Duplicate:
				l.met.duplicates.Inc()
			case window.Late:
				l.met.late.Inc()
			}
		}
		if o := it.rec.Offset + 1; o > l.done[it.rec.Partition] {
			l.done[it.rec.Partition] = o
		}
	}
}

// rawWrites writes raw readings in sub-batches (a statement of batch_size per connection), two in flight, so
// that a sub-batch's statements take the connections the one before frees while the loop works on the windows.
// results[k] delivers sub-batch k's outcome once it is written (retried as long as it takes).
type rawWrites struct {
	n, sub  int
	results []chan rawResult
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type rawResult struct {
	rejected []cratedb.Rejected // indexes into the sub-batch
	err      error
}

func (l *loader) startRawWrites(ctx context.Context, raws []cratedb.Raw) *rawWrites {
	sub := l.subBatch()
	w := &rawWrites{n: len(raws), sub: sub, results: make([]chan rawResult, (len(raws)+sub-1)/sub)}
	for k := range w.results {
		w.results[k] = make(chan rawResult, 1)
	}
	wctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		inFlight := make(chan struct{}, 2)
		for k := range w.results {
			select {
			case inFlight <- struct{}{}:
			case <-wctx.Done():
				return
			}
			lo, hi := w.bounds(k)
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				defer func() { <-inFlight }()
				var r rawResult
				r.err = l.retryDB(wctx, "write readings", func() (err error) {
					r.rejected, err = l.db.WriteRaw(wctx, raws[lo:hi])
					return err
				})
				w.results[k] <- r
			}()
		}
	}()
	return w
}

// bounds returns the range of sub-batch k in the raws.
func (w *rawWrites) bounds(k int) (lo, hi int) { return k * w.sub, min((k+1)*w.sub, w.n) }

// stop cancels the writes still running and waits for them.
func (w *rawWrites) stop() {
	w.cancel()
	w.wg.Wait()
}

// storeDeadLetters writes b's dead letters (undecodable, refused) before the commit that moves past them; in
// demo mode it logs them.
func (l *loader) storeDeadLetters(ctx context.Context, b *batch) error {
	var dls []cratedb.DeadLetter
	for _, it := range b.items {
		if it.state == dead {
			dls = append(dls, cratedb.DeadLetter{Topic: it.rec.Topic, Partition: it.rec.Partition, Offset: it.rec.Offset,
				Reason: it.reason, Payload: it.rec.Value, Time: b.now})
		}
	}
	if len(dls) == 0 {
		return nil
	}
	if l.db == nil {
		for _, d := range dls {
			l.log.Warn("dead letter", "topic", d.Topic, "partition", d.Partition, "offset", d.Offset, "reason", d.Reason)
		}
		return nil
	}
	return l.retryDB(ctx, "write dead letters", func() error { return l.db.WriteDeadLetters(ctx, dls) })
}

// updateLag sets the lag of every partition processed: its high watermark minus the records done.
func (l *loader) updateLag() {
	for p, o := range l.done {
		if hw, ok := l.hw[p]; ok {
			l.met.lag.WithLabelValues(itoa(p)).Set(float64(max(hw-o, 0)))
		}
	}
}

// fire writes what the windows have to say now: aggregates, and windows recomputed from the raw table.
func (l *loader) fire(ctx context.Context, now time.Time) error {
	fired := l.win.Fire(now)
	if len(fired) == 0 {
		return nil
	}
	rows := make([]fieldgate.Aggregate, 0, len(fired))
	var recompute []window.Firing
	// An early (not final) firing is for live dashboards. For a window that ended long ago — a backlog being
	// caught up — it is wasted work: the final firing follows, in this instance or, after a crash or a
	// rebalance, in the one that replays the window (it was open at the last checkpoint).
	wc := l.win.Config()
	stale := now.Add(-(wc.OutOfOrderness + wc.AllowedLateness))
	for _, f := range fired {
		switch {
		case f.Recompute:
			recompute = append(recompute, f)
		case !f.Final && f.End.Before(stale):
			l.met.earlySkipped.Inc()
		default:
			rows = append(rows, f.Aggregate)
		}
	}
	if l.db == nil {
		for _, f := range fired {
			if f.Final || f.Recompute {
				l.printWindow(f)
			}
		}
		return nil
	}
	for _, f := range recompute {
		var rs []fieldgate.Reading
		if err := l.retryDB(ctx, "read window", func() (err error) {
			rs, err = l.db.ReadWindow(ctx, f.Device, f.Metric, f.Start, f.End)
			return err
		}); err != nil {
			return err
		}
		a, ok := window.Compute(f.Device, f.Metric, f.Size, f.Start, rs)
		if !ok {
			continue // nothing stored (every reading refused): no row
		}
		a.Final = f.Final
		rows = append(rows, a)
		l.met.recomputed.Inc()
	}
	if err := l.retryDB(ctx, "write aggregates", func() error { return l.db.WriteAggregates(ctx, rows) }); err != nil {
		return err
	}
	l.met.aggregates.Add(float64(len(rows)))
	return nil
}

// commitLocked saves the window checkpoint of every assigned partition whose safe offset moved, then commits
// those offsets — at most once per commit interval unless force. l.mu is held.
func (l *loader) commitLocked(ctx context.Context, force bool) error {
	if !force && l.now().Sub(l.lastCmt) < l.cfg.Kafka.CommitInterval {
		return nil
	}
	l.lastCmt = l.now()
	var cps []cratedb.Checkpoint
	offsets := map[int32]int64{}
	for p := range l.assigned {
		if d, ok := l.done[p]; ok {
			// Records that became dead letters are done too; the windows only know the offsets they were given.
			l.win.Restore(window.Checkpoint{Partition: p, Offset: d})
		}
		cp := l.win.Checkpoint(p)
		if cp.Offset < 0 {
			continue
		}
		if c, ok := l.committed[p]; ok && cp.Offset <= c {
			continue
		}
		data, err := json.Marshal(cp)
		if err != nil {
			return fmt.Errorf("checkpoint of partition %d: %w", p, err)
		}
		cps = append(cps, cratedb.Checkpoint{Partition: p, Data: data})
		offsets[p] = cp.Offset
	}
	if len(offsets) == 0 {
		return nil
	}
	if l.db != nil {
		topic, group := l.cfg.Kafka.Topic, l.cfg.Kafka.Group
		if err := l.retryDB(ctx, "save checkpoints", func() error { return l.db.SaveCheckpoints(ctx, group, topic, cps) }); err != nil {
			return err
		}
	}
	commit := map[string]map[int32]kgo.EpochOffset{l.cfg.Kafka.Topic: {}}
	for p, o := range offsets {
		commit[l.cfg.Kafka.Topic][p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	var cerr error
	l.cl.CommitOffsetsSync(ctx, commit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
					cerr = fmt.Errorf("partition %d: %w", p.Partition, e)
					continue
				}
				l.committed[p.Partition] = offsets[p.Partition]
				l.met.committed.WithLabelValues(itoa(p.Partition)).Set(float64(offsets[p.Partition]))
			}
		}
	})
	if cerr != nil {
		// Not fatal: the next commit covers it, and until then a restart replays a little more.
		l.log.Warn("offset commit failed", "err", cerr)
		l.met.commitErrors.Inc()
	}
	return nil
}

// onAssigned restores the window checkpoints of newly assigned partitions before their first record is read.
func (l *loader) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	l.joined.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	ps := assigned[l.cfg.Kafka.Topic]
	var stored map[int32][]byte
	if l.db != nil && len(ps) > 0 {
		topic, group := l.cfg.Kafka.Topic, l.cfg.Kafka.Group
		_ = l.retryDB(ctx, "load checkpoints", func() (err error) {
			stored, err = l.db.LoadCheckpoints(ctx, group, topic)
			return err
		})
	}
	for _, p := range ps {
		l.assigned[p] = true
		if data, ok := stored[p]; ok {
			var cp window.Checkpoint
			if err := json.Unmarshal(data, &cp); err != nil {
				l.log.Error("stored window checkpoint unreadable; windows of this partition that were final may be rewritten from a partial replay", "partition", p, "err", err)
				continue
			}
			cp.Partition = p
			l.win.Restore(cp)
		}
	}
	l.log.Info("partitions assigned", "topic", l.cfg.Kafka.Topic, "partitions", ps)
}

// onRevoked commits what is safe for the revoked partitions and forgets them: the new owner replays the rest.
func (l *loader) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := l.commitLocked(cctx, true); err != nil {
		l.log.Warn("commit on revocation failed; the new owner replays more", "err", err)
	}
	cancel()
	l.forgetLocked(revoked[l.cfg.Kafka.Topic])
	l.log.Info("partitions revoked", "topic", l.cfg.Kafka.Topic, "partitions", revoked[l.cfg.Kafka.Topic])
}

// onLost forgets partitions taken away without a chance to commit (session expired).
func (l *loader) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetLocked(lost[l.cfg.Kafka.Topic])
	l.log.Warn("partitions lost", "topic", l.cfg.Kafka.Topic, "partitions", lost[l.cfg.Kafka.Topic])
}

func (l *loader) forgetLocked(ps []int32) {
	for _, p := range ps {
		l.win.Forget(p)
		delete(l.assigned, p)
		delete(l.done, p)
		delete(l.committed, p)
		delete(l.hw, p)
		l.met.lag.DeleteLabelValues(itoa(p))
		l.met.committed.DeleteLabelValues(itoa(p))
	}
}

// retryDB calls fn until it succeeds or ctx ends, backing off up to 5s. While it retries nothing is polled:
// that is the backpressure on a slow or absent database.
func (l *loader) retryDB(ctx context.Context, what string, fn func() error) error {
	wait := l.retry
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			if attempt > 0 {
				l.log.Info("database answers again", "op", what, "attempts", attempt+1)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.met.dbErrors.Inc()
		if attempt == 0 || attempt%20 == 0 {
			l.log.Warn("database call failed; retrying", "op", what, "attempt", attempt+1, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

type decodedRecord struct {
	raw cratedb.Raw
	err error
}

// decodeAll decodes recs, on every core for a large batch (JSON decoding is most of the loader's own CPU time).
func decodeAll(recs []*kgo.Record) []decodedRecord {
	out := make([]decodedRecord, len(recs))
	workers := min(runtime.GOMAXPROCS(0), len(recs)/500+1)
	var wg sync.WaitGroup
	per := (len(recs) + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*per, min((w+1)*per, len(recs))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				out[i].raw, out[i].err = decodeRecord(recs[i])
			}
		}()
	}
	wg.Wait()
	return out
}

// decodeRecord turns a Kafka record into the row to store: the reading and its gateway header. An error wrapping
// fieldgate.ErrUnknownVersion or naming the broken field sends the record to the dead-letter table.
func decodeRecord(rec *kgo.Record) (cratedb.Raw, error) {
	r, err := fieldgate.Decode(rec.Value)
	if err != nil {
		return cratedb.Raw{}, err
	}
	return cratedb.Raw{Reading: r, Gateway: header(rec, fieldgate.HeaderGateway)}, nil
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// printWindow writes one closed window as a table line (demo mode).
func (l *loader) printWindow(a window.Firing) {
	if l.out == nil {
		return
	}
	size := cratedb.SizeName(a.Size)
	span := a.Start.Format("2006-01-02 15:04:05") + "+" + size
	if a.Recompute {
		fmt.Fprintf(l.out, "%-4s %-28s %-24s %s  late reading: recompute needs a database\n", size, trunc(a.Device, 28), trunc(a.Metric, 24), span)
		return
	}
	num := func(f float64) string {
		if a.NumericCount == 0 || math.IsNaN(f) {
			return "-"
		}
		return fmt.Sprintf("%.4g", f)
	}
	last := "-"
	if !a.LastTime.IsZero() {
		last = a.Last.String()
	}
	fmt.Fprintf(l.out, "%-4s %-28s %-24s %s  n=%-5d bad=%-3d min=%-9s mean=%-9s max=%-9s last=%s\n",
		size, trunc(a.Device, 28), trunc(a.Metric, 24), span, a.Count, a.BadCount, num(a.Min), num(a.Mean), num(a.Max), trunc(last, 20))
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
