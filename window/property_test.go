package window

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
)

// TestPropertyLoader simulates the central loader on random streams and checks the promise: after the stream,
// every aggregate row equals the aggregate of the distinct raw readings of its window (Compute, i.e. GROUP BY
// over the raw table), and every window with raw readings has a row.
//
// The streams: several devices spread over Kafka partitions, one of them replaying a backlog hours behind the
// others; readings shuffled within the out-of-orderness bound; duplicates re-delivered later; some readings
// delayed past the allowed lateness; devices falling silent past the idle timeout and coming back; all kinds
// and qualities. The loader follows the protocol of the package documentation (write raw, Add, Fire, write
// aggregates and recomputes, Checkpoint, commit), and is killed at random points (restarted from the persisted
// checkpoints, replaying from the committed offsets) and has partitions revoked and reassigned.
func TestPropertyLoader(t *testing.T) {
	seeds := 400
	if testing.Short() {
		seeds = 150
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			simulate(t, uint64(seed))
		})
	}
}

type record struct {
	r   fieldgate.Reading
	key int64 // delivery time, ms
}

type seriesKey struct{ device, metric string }

type tableKey struct {
	device, metric string
	size           time.Duration
	start          int64
}

func pick[T any](rng *rand.Rand, xs ...T) T { return xs[rng.IntN(len(xs))] }

func randomStream(rng *rand.Rand, cfg Config) []record {
	ooo := cfg.OutOfOrderness.Milliseconds()
	late := cfg.AllowedLateness.Milliseconds()
	size0 := slices.Min(cfg.Sizes).Milliseconds()
	idle := cfg.IdleTimeout.Milliseconds()
	nDev := 1 + rng.IntN(5)
	var recs []record
	for d := range nDev {
		dev := fmt.Sprintf("gw%d/dev%d", d%2, d)
		shift := int64(0)
		if d == 1 && rng.IntN(2) == 0 {
			shift = 3 * 3600 * 1000 // a backlog three hours behind, delivered now
		}
		nMet := 1 + rng.IntN(3)
		t0 := base.UnixMilli() + rng.Int64N(20_000) - shift
		for m := range nMet {
			metric := fmt.Sprintf("m%d", m)
			ts := t0
			step := 20 + rng.Int64N(400)
			n := 20 + rng.IntN(150)
			for range n {
				ts += 1 + rng.Int64N(2*step)
				if rng.IntN(60) == 0 { // the device falls silent, maybe past the idle timeout
					ts += rng.Int64N(2 * idle)
				}
				r := fieldgate.Reading{Device: dev, Metric: metric, SourceTime: time.UnixMilli(ts).UTC(), Value: randomValue(rng)}
				switch rng.IntN(10) {
				case 0:
					r.Quality = fieldgate.Bad
				case 1:
					r.Quality = fieldgate.Uncertain
				}
				key := ts + shift + rng.Int64N(ooo) // shuffled within the bound
				if rng.IntN(40) == 0 {
					key += rng.Int64N(3 * (ooo + late + size0)) // maybe beyond the allowed lateness
				}
				if rng.IntN(100) == 0 { // the device's clock jumps ahead, once
					r.SourceTime = time.UnixMilli(key).Add(cfg.MaxFuture + time.Duration(1+rng.IntN(600))*time.Second).UTC()
				}
				r.GatewayTime = time.UnixMilli(key).UTC()
				recs = append(recs, record{r, key})
				if rng.IntN(15) == 0 { // delivered again later, maybe with another value (the first wins)
					dup := r
					if rng.IntN(3) == 0 {
						dup.Value = randomValue(rng)
					}
					recs = append(recs, record{dup, key + rng.Int64N(2*(ooo+late+size0))})
				}
			}
		}
	}
	slices.SortStableFunc(recs, func(a, b record) int { return int(a.key - b.key) })
	return recs
}

func randomValue(rng *rand.Rand) fieldgate.Value {
	switch rng.IntN(20) {
	case 0:
		return fieldgate.Bool(rng.IntN(2) == 0)
	case 1:
		return fieldgate.String(pick(rng, "open", "closed", "fault"))
	case 2:
		return fieldgate.Int(rng.Int64N(1000) - 500)
	case 3:
		return fieldgate.Float(math.NaN())
	case 4:
		if rng.IntN(4) == 0 {
			return fieldgate.Float(math.Inf(pick(rng, 1, -1)))
		}
	}
	return fieldgate.Float(float64(rng.IntN(1601)-800) / 8) // exact sums in any order
}

func simulate(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	cfg := Config{
		Sizes:           pick(rng, []time.Duration{time.Second, 10 * time.Second}, []time.Duration{2 * time.Second, time.Minute}, []time.Duration{time.Second, 5 * time.Second, time.Minute}),
		OutOfOrderness:  pick(rng, time.Millisecond, 500*time.Millisecond, 2*time.Second),
		AllowedLateness: pick(rng, time.Millisecond, time.Second, 5*time.Second),
		IdleTimeout:     pick(rng, 3*time.Second, 20*time.Second, time.Hour),
		MaxFuture:       pick(rng, time.Minute, time.Hour),
	}
	recs := randomStream(rng, cfg)
	nPart := 1 + rng.IntN(3)
	logs := make([][]record, nPart)
	partOf := map[string]int{}
	moveAt := -1 // sometimes the topic gets more partitions midway, and a device moves to another one
	if nPart > 1 && rng.IntN(4) == 0 {
		moveAt = rng.IntN(len(recs))
	}
	for i, rc := range recs {
		p, ok := partOf[rc.r.Device]
		if !ok {
			p = len(partOf) % nPart
			partOf[rc.r.Device] = p
		}
		if i == moveAt {
			p = (p + 1) % nPart
			partOf[rc.r.Device] = p
		}
		logs[p] = append(logs[p], rc)
	}

	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var (
		pos       = make([]int64, nPart) // next offset to fetch
		committed = make([]int64, nPart)
		persisted = make([][]byte, nPart)
		raw       = map[tableKey]bool{} // identities written (size 0)
		rawBy     = map[seriesKey][]fieldgate.Reading{}
		table     = map[tableKey]fieldgate.Aggregate{}
		now       int64
		crashes   int
		steps     int
	)
	restart := func(parts ...int) {
		for _, p := range parts {
			if persisted[p] != nil {
				var c Checkpoint
				if err := json.Unmarshal(persisted[p], &c); err != nil {
					t.Fatal(err)
				}
				w.Restore(c)
			}
			pos[p] = committed[p]
		}
	}
	faults := 2 + rng.IntN(4) // crashes and rebalances, at random points (a budget, so the stream ends)
	fault := func(oneIn int) bool {
		if faults > 0 && rng.IntN(oneIn) == 0 {
			faults--
			return true
		}
		return false
	}
	crash := func() {
		crashes++
		if w, err = New(cfg); err != nil {
			t.Fatal(err)
		}
		all := make([]int, nPart)
		for p := range all {
			all[p] = p
		}
		restart(all...)
	}
	apply := func(fs []Firing) {
		for _, a := range fs {
			k := tableKey{a.Device, a.Metric, a.Size, a.Start.UnixMilli()}
			if !a.Recompute {
				table[k] = a.Aggregate
				continue
			}
			if c, ok := Compute(a.Device, a.Metric, a.Size, a.Start, rawBy[seriesKey{a.Device, a.Metric}]); ok {
				table[k] = c
			} else {
				delete(table, k)
			}
		}
	}
	for {
		// The next partition to fetch: mostly the one whose next record is due first, sometimes any.
		p := -1
		for q := range nPart {
			if pos[q] < int64(len(logs[q])) && (p < 0 || logs[q][pos[q]].key < logs[p][pos[p]].key) {
				p = q
			}
		}
		if p < 0 {
			break
		}
		if rng.IntN(5) == 0 {
			if q := rng.IntN(nPart); pos[q] < int64(len(logs[q])) {
				p = q
			}
		}
		batch := logs[p][pos[p]:min(pos[p]+1+int64(rng.IntN(20)), int64(len(logs[p])))]
		for _, rc := range batch { // raw: first written wins
			k := tableKey{rc.r.Device, rc.r.Metric, 0, rc.r.EventMs()}
			if !raw[k] {
				raw[k] = true
				sk := seriesKey{rc.r.Device, rc.r.Metric}
				rawBy[sk] = append(rawBy[sk], rc.r)
			}
		}
		if fault(50) { // killed after the raw rows are written, before the windows have them
			crash()
			continue
		}
		for _, rc := range batch {
			now = max(now, rc.key)
			w.Add(rc.r, Position{int32(p), pos[p]}, time.UnixMilli(now))
			pos[p]++
		}
		if fault(50) { // killed before Fire's output is written
			crash()
			continue
		}
		apply(w.Fire(time.UnixMilli(now)))
		if fault(50) { // killed before the checkpoint
			crash()
			continue
		}
		for q := range nPart {
			c := w.Checkpoint(int32(q))
			if c.Offset < 0 {
				continue
			}
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			persisted[q] = b
			if fault(20) { // killed between persisting the checkpoint and committing its offset
				crash()
				break
			}
			committed[q] = c.Offset
		}
		if fault(60) {
			crash()
		}
		if fault(60) { // a rebalance revokes a partition and gives it back
			q := rng.IntN(nPart)
			w.Forget(int32(q))
			restart(q)
		}
		if steps++; steps > 1_000_000 {
			t.Fatal("the simulation does not end")
		}
	}
	apply(w.Fire(time.UnixMilli(now).Add(cfg.IdleTimeout + 24*time.Hour)))
	if st := w.Stats(); st.OpenWindows != 0 || st.TaintedWindows != 0 {
		t.Errorf("after the final idle flush: %+v", st)
	}

	// Every window with raw readings has a row equal to its aggregate over the raw table, and no other rows.
	want := map[tableKey]fieldgate.Aggregate{}
	for sk, rs := range rawBy {
		for _, r := range rs {
			for _, size := range cfg.Sizes {
				st, _ := Bounds(r.EventTime(), size)
				k := tableKey{sk.device, sk.metric, size, st.UnixMilli()}
				if _, done := want[k]; !done {
					want[k], _ = Compute(sk.device, sk.metric, size, st, rs)
				}
			}
		}
	}
	bad := 0
	for k, a := range want {
		got, ok := table[k]
		if !ok {
			t.Errorf("window %v: no row; want %s", k, formatRow(a))
			bad++
		} else if !sameValues(got, a) {
			t.Errorf("window %v:\n\tgot  %s\n\twant %s", k, formatRow(got), formatRow(a))
			bad++
		}
		if bad > 5 {
			break
		}
	}
	for k, a := range table {
		if _, ok := want[k]; !ok {
			t.Errorf("row without raw readings: %s", formatRow(a))
		}
	}
	if t.Failed() {
		t.Logf("config %+v, %d records in %d partitions, %d crashes, move at %d", cfg, len(recs), nPart, crashes, moveAt)
	}
}

func sameFloat(a, b float64) bool { return a == b || (a != a && b != b) }

func formatRow(a fieldgate.Aggregate) string { return format(Firing{Aggregate: a}) }

func sameValues(a, b fieldgate.Aggregate) bool {
	return a.Device == b.Device && a.Metric == b.Metric && a.Size == b.Size && a.Start.Equal(b.Start) &&
		a.End.Equal(b.End) && a.Count == b.Count && a.BadCount == b.BadCount && a.NumericCount == b.NumericCount &&
		sameFloat(a.Min, b.Min) && sameFloat(a.Max, b.Max) && sameFloat(a.Sum, b.Sum) && sameFloat(a.Mean, b.Mean) &&
		a.First.Equal(b.First) && a.Last.Equal(b.Last) && a.FirstTime.Equal(b.FirstTime) && a.LastTime.Equal(b.LastTime)
}
