package window

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fieldgate/fieldgate"
)

// Position is where a reading came from in Kafka. Window keeps the partition's state apart (a device is keyed to
// one partition) and uses offsets only to compute Checkpoint.Offset.
type Position struct {
	Partition int32
	Offset    int64
}

// Outcome is what Add did with a reading.
type Outcome uint8

const (
	// Added: the reading is counted in its windows of every size.
	Added Outcome = iota
	// Duplicate: a reading with the same identity (device, metric, event time in ms) is already counted; this one
	// changed nothing.
	Duplicate
	// Late: the reading's window of at least one size was already final (W(device) ≥ end + AllowedLateness). The
	// next Fire returns those windows with Recompute set; the windows of larger sizes that were still open went
	// into recompute mode. Count it (Flink's numLateRecordsDropped, except nothing is dropped).
	Late
)

func (o Outcome) String() string {
	switch o {
	case Added:
		return "added"
	case Duplicate:
		return "duplicate"
	case Late:
		return "late"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Firing is one window returned by Fire: its aggregate (the row to upsert), or with Recompute set only the
// window's key and Final, its values to be recomputed.
type Firing struct {
	fieldgate.Aggregate
	// Recompute: the values are not set. Recompute the window with Compute over its stored readings, after the
	// raw rows Added before this Fire are written.
	Recompute bool
}

// Checkpoint is the state of one partition that must survive a crash or a rebalance, beside its offset: persist it
// (it marshals to JSON), then commit Offset. See "Using it from the loader" in the package documentation.
type Checkpoint struct {
	Partition int32 `json:"partition"`
	// Offset is the first offset a replay must read: the lowest offset held by a window still open, or one past
	// the highest offset Added when none is open. -1 when nothing is known about the partition: commit nothing.
	Offset int64 `json:"offset"`
	// Through is one past the highest offset Added when the checkpoint was taken (0: unknown). On replay, a
	// reading below it whose window was already final then is not recomputed again: its row is up to date.
	Through int64        `json:"through,omitempty"`
	Devices []DeviceMark `json:"devices,omitempty"`
}

// DeviceMark is what a device's replay must start from: its watermark, and for each window size how far the
// windows released by idleness reached.
type DeviceMark struct {
	Device    string    `json:"device"`
	Watermark time.Time `json:"watermark,omitzero"` // zero: none yet
	Taint     []Taint   `json:"taint,omitempty"`
	Future    []Future  `json:"future,omitempty"`
}

// Future is a window that got a reading from a clock running ahead: if it is created later, it is in recompute
// mode. In JSON: {"metric":"temp","size":"1m0s","start":"2027-01-01T00:00:00Z"}.
type Future struct {
	Metric string
	Size   time.Duration
	Start  time.Time
}

type futureJSON struct {
	Metric string    `json:"metric"`
	Size   string    `json:"size"`
	Start  time.Time `json:"start"`
}

// MarshalJSON writes the size as a Go duration string.
func (f Future) MarshalJSON() ([]byte, error) {
	return json.Marshal(futureJSON{f.Metric, f.Size.String(), f.Start})
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (f *Future) UnmarshalJSON(b []byte) error {
	var j futureJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	d, err := time.ParseDuration(j.Size)
	if err != nil {
		return fmt.Errorf("future window size: %w", err)
	}
	*f = Future{Metric: j.Metric, Size: d, Start: j.Start}
	return nil
}

// Taint says that windows of Size starting before Before were fired and released while incomplete (idleness): if
// one is re-created, it is in recompute mode. In JSON: {"size":"1m0s","before":"2026-01-01T00:01:00Z"}.
type Taint struct {
	Size   time.Duration
	Before time.Time
}

type taintJSON struct {
	Size   string    `json:"size"`
	Before time.Time `json:"before"`
}

// MarshalJSON writes the size as a Go duration string.
func (t Taint) MarshalJSON() ([]byte, error) {
	return json.Marshal(taintJSON{t.Size.String(), t.Before})
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (t *Taint) UnmarshalJSON(b []byte) error {
	var j taintJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	d, err := time.ParseDuration(j.Size)
	if err != nil {
		return fmt.Errorf("taint size: %w", err)
	}
	*t = Taint{Size: d, Before: j.Before}
	return nil
}

// Stats is a snapshot of a Windows' counters. Counters count since New.
type Stats struct {
	Added, Duplicates, Late uint64 // readings by Outcome
	Fired                   uint64 // aggregates returned by Fire with values (Final ones included)
	Recomputes              uint64 // aggregates returned by Fire with Recompute set
	Finalized               uint64 // windows released (final or idle)
	IdleFlushes             uint64 // devices whose windows were released by idleness
	Moves                   uint64 // devices seen on a second partition (their overlapping windows recomputed)
	Future                  uint64 // readings more than MaxFuture ahead of now (counted in Late too)
	OpenWindows             int64  // windows held now, all sizes
	TaintedWindows          int64  // of which in recompute mode
	Devices                 int64  // devices known (with or without open windows)
	Partitions              int64  // partitions known
	// WatermarkDelaySeconds is, at the last Fire, the greatest now − W(device) over devices with open windows:
	// how far behind processing time the slowest device's event time is (a replaying gateway shows hours).
	WatermarkDelaySeconds float64
}

// Windows holds the open windows of every device of the partitions it was given. It is not safe for concurrent
// use, except Stats.
type Windows struct {
	cfg    Config
	sizes  []int64 // ms, ascending
	ooo    int64
	late   int64
	idle   int64
	future int64

	parts   map[int32]*partition
	owner   map[string]*device  // the device's state in the partition it was last seen on
	pending map[recKey]struct{} // windows to recompute at the next Fire (Late readings)
	free    [][]uint32          // recycled dedup slices

	// Counters, plain for Add's speed; Fire and the other methods publish them into stats.
	added, dups, lates, fired, recomputes, finalized, idleFlushes, moves, futures uint64
	open, tainted, devices, partitions                                            int64
	wmDelay                                                                       float64
	stats                                                                         atomic.Pointer[Stats]
}

type recKey struct {
	device, metric string
	size           int
	start          int64
}

type partition struct {
	last    *device // the device of the last Add: records of one device often come in a row
	devices map[string]*device
	next    int64 // one past the highest offset Added (or the restored offset); -1 if none
	through int64 // the restored checkpoint's Through: offsets below it were processed before it was taken
}

const none = math.MinInt64

type device struct {
	name     string
	maxEvent int64 // greatest event time Added, ms; none if none
	wm       int64 // W(d), ms; none if none
	restored int64 // the watermark of the restored checkpoint, ms; none if none
	lastAdd  int64 // processing time of the last Add, ms
	taint    []int64
	series   map[string]*series
	open     int                    // open windows, all sizes
	dueAt    int64                  // Fire needs to look at this device once wm ≥ dueAt
	refire   bool                   // a window already due changed
	shared   bool                   // also seen on another partition (see handover)
	future   map[futureKey]struct{} // windows that got a reading from the future (see addFuture)
}

type series struct {
	metric string
	wins   [][]*win // per size index, sorted by start
}

type futureKey struct {
	metric string
	size   int
	start  int64
}

const maxFuture = 1024 // future windows remembered per device before they collapse into taints

type win struct {
	start   int64
	minOff  int64
	seen    []uint32 // smallest size only: event times in ms since start, sorted; nil when tainted
	changed bool     // changed since last returned by Fire
	tainted bool     // recompute mode
	acc
}

type acc struct {
	count, bad, num int64
	min, max, sum   float64
	first, last     fieldgate.Value
	firstT, lastT   int64
	hasFL           bool
}

// New returns empty windows for cfg, with the defaults applied to its zero fields.
func New(cfg Config) (*Windows, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	w := &Windows{
		cfg:     cfg,
		ooo:     cfg.OutOfOrderness.Milliseconds(),
		late:    cfg.AllowedLateness.Milliseconds(),
		idle:    cfg.IdleTimeout.Milliseconds(),
		future:  cfg.MaxFuture.Milliseconds(),
		parts:   map[int32]*partition{},
		owner:   map[string]*device{},
		pending: map[recKey]struct{}{},
	}
	for _, s := range cfg.Sizes {
		w.sizes = append(w.sizes, s.Milliseconds())
	}
	return w, nil
}

// Config returns the configuration in use, defaults applied, sizes ascending.
func (w *Windows) Config() Config {
	c := w.cfg
	c.Sizes = slices.Clone(c.Sizes)
	return c
}

// Bounds returns the window of size that holds t: [start, end), epoch-aligned, in UTC milliseconds.
func Bounds(t time.Time, size time.Duration) (start, end time.Time) {
	s := size.Milliseconds()
	st := floorDiv(t.UnixMilli(), s) * s
	return time.UnixMilli(st).UTC(), time.UnixMilli(st + s).UTC()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func (w *Windows) part(p int32) *partition {
	pt := w.parts[p]
	if pt == nil {
		pt = &partition{devices: map[string]*device{}, next: -1}
		w.parts[p] = pt
		w.partitions++
	}
	return pt
}

func (w *Windows) device(pt *partition, name string) *device {
	d := pt.devices[name]
	if d == nil {
		d = &device{name: name, maxEvent: none, wm: none, restored: none, lastAdd: none, dueAt: math.MaxInt64,
			taint: make([]int64, len(w.sizes)), series: map[string]*series{}}
		for i := range d.taint {
			d.taint[i] = none
		}
		pt.devices[name] = d
		w.devices++
		if o := w.owner[name]; o != nil {
			w.handover(o, d)
		}
		w.owner[name] = d
	}
	return d
}

// handover deals with a device that moved to another partition (the topic got more partitions, or a producer
// keyed it differently): its windows in the old partition and the same windows in the new one would each hold
// part of the readings. Both sides go to recompute mode for those windows; the new side keeps the watermark.
func (w *Windows) handover(from, to *device) {
	to.wm = max(to.wm, from.wm)
	to.maxEvent = max(to.maxEvent, from.maxEvent)
	for i := range to.taint {
		to.taint[i] = max(to.taint[i], from.taint[i])
	}
	for k := range from.future {
		if to.future == nil {
			to.future = map[futureKey]struct{}{}
		}
		to.future[k] = struct{}{}
	}
	for _, s := range from.series {
		for i, ws := range s.wins {
			for _, wn := range ws {
				w.taint(wn)
				to.taint[i] = max(to.taint[i], wn.start+w.sizes[i])
			}
		}
	}
	copy(from.taint, to.taint) // should it come back, the same windows are in recompute mode there too
	from.wm = max(from.wm, to.wm)
	from.shared, to.shared = true, true
	w.moves++
}

// Add counts r in its windows. pos is its Kafka position; a partition's readings must be Added in offset order.
// now is the processing time (it only matters for idleness). Add never fails: every reading is either counted,
// recognised as a duplicate, or Late (its window is recomputed from the raw table).
func (w *Windows) Add(r fieldgate.Reading, pos Position, now time.Time) Outcome {
	t := r.EventMs()
	pt := w.part(pos.Partition)
	if pos.Offset >= pt.next {
		pt.next = pos.Offset + 1
	}
	d := pt.last
	if d == nil || d.name != r.Device {
		if d = pt.devices[r.Device]; d == nil {
			d = w.device(pt, r.Device)
		}
		pt.last = d
	}
	if d.shared { // the device has been seen on another partition: whichever side speaks takes over
		if o := w.owner[r.Device]; o != d {
			if o != nil {
				w.handover(o, d)
			}
			w.owner[r.Device] = d
		}
	}
	nowMs := now.UnixMilli()
	if nowMs > d.lastAdd {
		d.lastAdd = nowMs
	}
	s := d.series[r.Metric]
	if s == nil {
		s = &series{metric: r.Metric, wins: make([][]*win, len(w.sizes))}
		d.series[r.Metric] = s
	}
	if t > nowMs+w.future {
		w.addFuture(d, s, t, pos.Offset, pos.Offset < pt.through)
		return Late
	}
	if t > d.maxEvent || d.maxEvent == none {
		d.maxEvent = t
		if wm := t - w.ooo; wm > d.wm {
			d.wm = wm
		}
	}

	s0 := w.sizes[0]
	st0 := floorDiv(t, s0) * s0
	if d.wm >= st0+s0+w.late {
		// The smallest window is final: recompute it; larger windows that are final too are recomputed, those
		// still open cannot tell whether this is a duplicate and go into recompute mode. A replayed reading
		// (before the restored checkpoint's Through) of a window that was final at that checkpoint is already in
		// that window's stored row: nothing to recompute.
		replayed := pos.Offset < pt.through
		late := false
		for i, size := range w.sizes {
			st := floorDiv(t, size) * size
			if d.wm >= st+size+w.late {
				if !replayed || d.restored < st+size+w.late {
					w.pending[recKey{r.Device, r.Metric, i, st}] = struct{}{}
					late = true
				}
				continue
			}
			wn := w.window(d, s, i, st)
			w.taint(wn)
			wn.touch(d, pos.Offset, st+size)
		}
		if !late {
			w.dups++
			return Duplicate
		}
		w.lates++
		return Late
	}

	w0 := w.window(d, s, 0, st0)
	if !w0.tainted {
		off := uint32(t - st0)
		n := len(w0.seen)
		if n == 0 || off > w0.seen[n-1] {
			if n == cap(w0.seen) && len(w.free) > 0 && n == 0 {
				w0.seen = w.free[len(w.free)-1][:0]
				w.free = w.free[:len(w.free)-1]
			}
			w0.seen = append(w0.seen, off)
		} else {
			i, found := slices.BinarySearch(w0.seen, off)
			if found {
				w.dups++
				return Duplicate
			}
			w0.seen = slices.Insert(w0.seen, i, off)
		}
	}
	w0.add(d, r, t, pos.Offset, st0+s0)
	for i := 1; i < len(w.sizes); i++ {
		size := w.sizes[i]
		st := floorDiv(t, size) * size
		wn := w.window(d, s, i, st)
		if w0.tainted && !wn.tainted {
			w.taint(wn)
		}
		wn.add(d, r, t, pos.Offset, st+size)
	}
	w.added++
	return Added
}

// addFuture handles a reading from a clock running ahead (more than MaxFuture after now): it must not move the
// device's watermark (that would make every later reading of the device Late), so it is Late itself: the windows
// it falls in are recomputed, and remembered so that a window created for them later is in recompute mode.
func (w *Windows) addFuture(d *device, s *series, t, off int64, replayed bool) {
	for i, size := range w.sizes {
		st := floorDiv(t, size) * size
		if wn := s.find(i, st); wn != nil {
			w.taint(wn)
			wn.touch(d, off, st+size)
			continue
		}
		if !replayed { // else recomputed before the checkpoint that is being replayed
			w.pending[recKey{d.name, s.metric, i, st}] = struct{}{}
		}
		if d.future == nil {
			d.future = map[futureKey]struct{}{}
		}
		d.future[futureKey{s.metric, i, st}] = struct{}{}
	}
	if len(d.future) > maxFuture {
		// Too many to remember one by one: every window of the device up to the furthest is in recompute mode.
		for k := range d.future {
			d.taint[k.size] = max(d.taint[k.size], k.start+w.sizes[k.size])
		}
		clear(d.future)
	}
	w.lates++
	w.futures++
}

func (s *series) find(i int, st int64) *win {
	for _, wn := range s.wins[i] {
		if wn.start == st {
			return wn
		}
	}
	return nil
}

// window finds or creates the window of size index i starting at st.
func (w *Windows) window(d *device, s *series, i int, st int64) *win {
	ws := s.wins[i]
	// Usually the newest window; scan from the end.
	j := len(ws) - 1
	for ; j >= 0 && ws[j].start > st; j-- {
	}
	if j >= 0 && ws[j].start == st {
		return ws[j]
	}
	wn := &win{start: st, minOff: math.MaxInt64}
	if _, fut := d.future[futureKey{s.metric, i, st}]; st < d.taint[i] || fut {
		wn.tainted = true
		w.tainted++
	}
	s.wins[i] = slices.Insert(ws, j+1, wn)
	d.open++
	w.open++
	if end := st + w.sizes[i]; end < d.dueAt {
		d.dueAt = end
	}
	return wn
}

func (w *Windows) taint(wn *win) {
	if wn.tainted {
		return
	}
	wn.tainted = true
	wn.acc = acc{}
	if wn.seen != nil {
		w.recycle(wn.seen)
		wn.seen = nil
	}
	w.tainted++
}

func (w *Windows) recycle(s []uint32) {
	if cap(s) > 0 && cap(s) <= 1<<16 && len(w.free) < 1024 {
		w.free = append(w.free, s[:0])
	}
}

// touch records a change of wn (ending at end) by the reading at off.
func (wn *win) touch(d *device, off int64, end int64) {
	wn.changed = true
	if off < wn.minOff {
		wn.minOff = off
	}
	if d.wm >= end {
		d.refire = true
	}
}

func (wn *win) add(d *device, r fieldgate.Reading, t, off, end int64) {
	wn.touch(d, off, end)
	if wn.tainted {
		return
	}
	a := &wn.acc
	a.count++
	if r.Quality == fieldgate.Bad {
		a.bad++
		return
	}
	if f, ok := r.Value.Number(); ok && f == f {
		if a.num == 0 {
			a.min, a.max = f, f
		} else {
			a.min = min(a.min, f)
			a.max = max(a.max, f)
		}
		a.sum += f
		a.num++
	}
	if !a.hasFL || t < a.firstT {
		a.first, a.firstT = r.Value, t
	}
	if !a.hasFL || t > a.lastT {
		a.last, a.lastT = r.Value, t
	}
	a.hasFL = true
}

// Fire returns, sorted by device, metric, size and start:
//   - every window whose watermark passed its end (W ≥ end) and that changed since it was last returned;
//   - every window that became final (W ≥ end + AllowedLateness), with Final set, after which it is released;
//   - every open window of a device idle for IdleTimeout at now, with Final set, after which it is released;
//   - every window that got a Late reading since the last Fire, with Recompute and Final set.
//
// Windows in recompute mode are returned with Recompute set and no values. The caller owns the slice.
func (w *Windows) Fire(now time.Time) []Firing {
	nowMs := now.UnixMilli()
	var out []Firing
	delay := math.Inf(-1)
	for _, pt := range w.parts {
		for _, d := range pt.devices {
			if d.open == 0 {
				continue
			}
			if dl := float64(nowMs-d.wm) / 1000; dl > delay {
				delay = dl
			}
			idle := nowMs-d.lastAdd >= w.idle
			if !idle && !d.refire && d.wm < d.dueAt {
				continue
			}
			out = w.fireDevice(out, d, idle)
		}
	}
	if delay < 0 {
		delay = 0
	}
	w.wmDelay = delay
	for k := range w.pending {
		st := time.UnixMilli(k.start).UTC()
		out = append(out, Firing{Aggregate: fieldgate.Aggregate{Device: k.device, Metric: k.metric, Size: w.cfg.Sizes[k.size],
			Start: st, End: st.Add(w.cfg.Sizes[k.size]), Final: true}, Recompute: true})
		w.recomputes++
	}
	clear(w.pending)
	w.publish()
	slices.SortFunc(out, func(a, b Firing) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Metric, b.Metric),
			cmp.Compare(a.Size, b.Size), a.Start.Compare(b.Start), boolCmp(a.Recompute, b.Recompute))
	})
	// One window can come out twice: from its state and from a Late reading that arrived before this Fire
	// released it, or from both sides of a device that moved partitions. The recompute covers everything.
	keep := out[:0]
	for _, a := range out {
		if n := len(keep); n > 0 {
			p := &keep[n-1]
			if p.Device == a.Device && p.Metric == a.Metric && p.Size == a.Size && p.Start.Equal(a.Start) {
				final := p.Final || a.Final
				if a.Recompute {
					*p = a
				}
				p.Final = final
				continue
			}
		}
		keep = append(keep, a)
	}
	return keep
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func (w *Windows) fireDevice(out []Firing, d *device, idle bool) []Firing {
	d.refire = false
	d.dueAt = math.MaxInt64
	released := 0
	for metric, s := range d.series {
		left := 0
		for i, ws := range s.wins {
			size := w.sizes[i]
			keep := ws[:0]
			for _, wn := range ws {
				end := wn.start + size
				final := idle || d.wm >= end+w.late
				switch {
				case final:
					out = w.emit(out, d.name, metric, i, wn, true)
					if idle && end > d.taint[i] {
						d.taint[i] = end
					}
					if wn.tainted {
						w.tainted--
					}
					if wn.seen != nil {
						w.recycle(wn.seen)
					}
					released++
					continue
				case d.wm >= end && wn.changed:
					out = w.emit(out, d.name, metric, i, wn, false)
				}
				next := end
				if d.wm >= end {
					next = end + w.late
				}
				d.dueAt = min(d.dueAt, next)
				keep = append(keep, wn)
			}
			clear(ws[len(keep):])
			s.wins[i] = keep
			left += len(keep)
		}
		if left == 0 {
			delete(d.series, metric)
		}
	}
	for k := range d.future { // final windows: a reading for them is Late anyway
		if d.wm >= k.start+w.sizes[k.size]+w.late {
			delete(d.future, k)
		}
	}
	d.open -= released
	w.open -= int64(released)
	w.finalized += uint64(released)
	if idle && released > 0 {
		w.idleFlushes += 1
	}
	return out
}

func (w *Windows) emit(out []Firing, device, metric string, i int, wn *win, final bool) []Firing {
	wn.changed = false
	size := w.cfg.Sizes[i]
	st := time.UnixMilli(wn.start).UTC()
	f := Firing{Aggregate: fieldgate.Aggregate{Device: device, Metric: metric, Size: size, Start: st, End: st.Add(size), Final: final}}
	if wn.tainted {
		f.Recompute = true
		w.recomputes++
		return append(out, f)
	}
	wn.acc.fill(&f.Aggregate)
	w.fired++
	return append(out, f)
}

func (c *acc) fill(a *fieldgate.Aggregate) {
	a.Count, a.BadCount, a.NumericCount = c.count, c.bad, c.num
	if c.num > 0 {
		a.Min, a.Max, a.Sum, a.Mean = c.min, c.max, c.sum, c.sum/float64(c.num)
	}
	if c.hasFL {
		a.First, a.Last = c.first, c.last
		a.FirstTime, a.LastTime = time.UnixMilli(c.firstT).UTC(), time.UnixMilli(c.lastT).UTC()
	}
}

// Checkpoint returns what a replay of partition p must start from. Take it after the output of the last Fire is
// written; persist it before committing its Offset.
func (w *Windows) Checkpoint(p int32) Checkpoint {
	c := Checkpoint{Partition: p, Offset: -1}
	pt := w.parts[p]
	if pt == nil {
		return c
	}
	c.Offset = pt.next
	c.Through = max(pt.next, 0) // not the restored Through: the watermark may have moved since (see addFuture)
	for _, d := range pt.devices {
		for _, s := range d.series {
			for _, ws := range s.wins {
				for _, wn := range ws {
					if wn.minOff < c.Offset || c.Offset < 0 {
						c.Offset = wn.minOff
					}
				}
			}
		}
		if d.wm == none && slices.Max(d.taint) == none && len(d.future) == 0 {
			continue
		}
		m := DeviceMark{Device: d.name}
		if d.wm != none {
			m.Watermark = time.UnixMilli(d.wm).UTC()
		}
		for i, tb := range d.taint {
			if tb != none {
				m.Taint = append(m.Taint, Taint{Size: w.cfg.Sizes[i], Before: time.UnixMilli(tb).UTC()})
			}
		}
		for k := range d.future {
			m.Future = append(m.Future, Future{Metric: k.metric, Size: w.cfg.Sizes[k.size], Start: time.UnixMilli(k.start).UTC()})
		}
		slices.SortFunc(m.Future, func(a, b Future) int {
			return cmp.Or(cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.Size, b.Size), a.Start.Compare(b.Start))
		})
		c.Devices = append(c.Devices, m)
	}
	slices.SortFunc(c.Devices, func(a, b DeviceMark) int { return cmp.Compare(a.Device, b.Device) })
	w.publish()
	return c
}

// SafeOffsets returns Checkpoint(p).Offset for every known partition with one: per partition, the offset to
// commit (the next record a replay must read). Partitions never Added nor Restored are absent.
func (w *Windows) SafeOffsets() map[int32]int64 {
	m := make(map[int32]int64, len(w.parts))
	for p := range w.parts {
		if o := w.Checkpoint(p).Offset; o >= 0 {
			m[p] = o
		}
	}
	return m
}

// Restore brings back a partition's checkpoint after an assignment, before the first Add of that partition. It
// merges (watermarks and taints only move forward), so restoring twice or restoring an older checkpoint is
// harmless. Taints of sizes no longer configured are ignored.
func (w *Windows) Restore(c Checkpoint) {
	pt := w.part(c.Partition)
	if c.Offset > pt.next {
		pt.next = c.Offset
	}
	pt.through = max(pt.through, c.Through)
	for _, m := range c.Devices {
		d := w.device(pt, m.Device)
		if !m.Watermark.IsZero() {
			d.wm = max(d.wm, m.Watermark.UnixMilli())
			d.restored = max(d.restored, m.Watermark.UnixMilli())
		}
		for _, tn := range m.Taint {
			if i := slices.Index(w.cfg.Sizes, tn.Size); i >= 0 {
				d.taint[i] = max(d.taint[i], tn.Before.UnixMilli())
			}
		}
		for _, f := range m.Future {
			if i := slices.Index(w.cfg.Sizes, f.Size); i >= 0 {
				if d.future == nil {
					d.future = map[futureKey]struct{}{}
				}
				d.future[futureKey{f.Metric, i, f.Start.UnixMilli()}] = struct{}{}
			}
		}
	}
	w.publish()
}

// Forget drops every state of partition p (its windows, devices and offsets) after a rebalance revoked it: the new
// owner replays it from its checkpoint. Nothing is returned or fired. Windows to recompute already pending (Late
// readings) stay pending: recomputing is always safe.
func (w *Windows) Forget(p int32) {
	pt := w.parts[p]
	if pt == nil {
		return
	}
	for _, d := range pt.devices {
		if w.owner[d.name] == d {
			delete(w.owner, d.name)
		}
		for _, s := range d.series {
			for _, ws := range s.wins {
				for _, wn := range ws {
					if wn.tainted {
						w.tainted--
					}
				}
			}
		}
		w.open -= int64(d.open)
	}
	w.devices -= int64(len(pt.devices))
	w.partitions--
	delete(w.parts, p)
	// A device that moved keeps its state on another partition: that one is its owner now.
	for _, d := range pt.devices {
		if d.shared && w.owner[d.name] == nil {
			for _, other := range w.parts {
				if o := other.devices[d.name]; o != nil {
					w.owner[d.name] = o
					break
				}
			}
		}
	}
	w.publish()
}

// Stats returns a snapshot of the counters as of the last call to Fire, Checkpoint, Restore or Forget (Add does
// not publish, to stay cheap). It is safe to call from any goroutine.
func (w *Windows) Stats() Stats {
	if s := w.stats.Load(); s != nil {
		return *s
	}
	return Stats{}
}

func (w *Windows) publish() {
	w.stats.Store(&Stats{
		Added: w.added, Duplicates: w.dups, Late: w.lates, Fired: w.fired, Recomputes: w.recomputes,
		Finalized: w.finalized, IdleFlushes: w.idleFlushes, Moves: w.moves, Future: w.futures, OpenWindows: w.open, TaintedWindows: w.tainted,
		Devices: w.devices, Partitions: w.partitions, WatermarkDelaySeconds: w.wmDelay,
	})
}
