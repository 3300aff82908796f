package modbus

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// maxInsert plans the way Telegraf's inputs.modbus does with optimization = "max_insert" (plugins/inputs/modbus
// request.go, optimizeGroupWithinLimits): walk the fields in address order and keep adding to the current request
// while the hole before the next field is at most fill and the request stays within maxLen. It knows nothing of
// forbidden addresses. It is the baseline the planner must never lose to.
func maxInsert(items []planItem, maxLen, fill int) [][]planItem {
	if len(items) == 0 {
		return nil
	}
	var out [][]planItem
	cur := []planItem{items[0]}
	start, length := items[0].start, items[0].end-items[0].start
	for i := 1; i < len(items); i++ {
		hole := items[i].start - items[i-1].end
		if hole > fill || length+hole+(items[i].end-items[i].start) > maxLen {
			out = append(out, cur)
			cur, start, length = []planItem{items[i]}, items[i].start, items[i].end-items[i].start
			continue
		}
		cur = append(cur, items[i])
		length = items[i].end - start
	}
	return append(out, cur)
}

func costOf(runs [][]planItem) (requests, read int) {
	for _, r := range runs {
		read += r[len(r)-1].end - r[0].start
	}
	return len(runs), read
}

// runAllowed checks one run directly on the address line, independently of the planner's bookkeeping: the span
// fits, every maximal stretch of unused addresses inside it is at most gap long, and none is forbidden.
func runAllowed(run []planItem, lim planLimits) bool {
	if len(run) > 1 && lim.gap < 0 {
		return false
	}
	start, end := run[0].start, run[len(run)-1].end
	if end-start > lim.maxLen {
		return false
	}
	used := make([]bool, end-start)
	for _, it := range run {
		for a := it.start; a < it.end; a++ {
			used[a-start] = true
		}
	}
	hole := 0
	for a := start; a < end; a++ {
		if used[a-start] {
			hole = 0
			continue
		}
		hole++
		if hole > lim.gap {
			return false
		}
		for _, f := range lim.forbidden {
			if a >= f.start && a < f.end {
				return false
			}
		}
	}
	return true
}

// bruteForce tries every way to cut items into consecutive runs and returns the best cost.
func bruteForce(items []planItem, lim planLimits) (requests, read int) {
	n := len(items)
	requests, read = 1<<30, 1<<30
	for mask := 0; mask < 1<<(n-1); mask++ { // bit k set: cut between item k and k+1
		var runs [][]planItem
		from := 0
		ok := true
		for k := 0; k < n; k++ {
			if k == n-1 || mask&(1<<k) != 0 {
				run := items[from : k+1]
				if !runAllowed(run, lim) {
					ok = false
					break
				}
				runs = append(runs, run)
				from = k + 1
			}
		}
		if !ok {
			continue
		}
		q, r := costOf(runs)
		if q < requests || (q == requests && r < read) {
			requests, read = q, r
		}
	}
	return requests, read
}

func randomItems(rng *rand.Rand, n, space int) []planItem {
	var items []planItem
	a := rng.IntN(4)
	for len(items) < n && a < space {
		w := 1 + rng.IntN(4)
		items = append(items, planItem{start: a, end: a + w, tags: []compiledTag{{name: fmt.Sprint(a)}}})
		a += w + rng.IntN(8)
	}
	return items
}

// TestPlannerMinimal proves on generated maps that the planner reaches the optimum a brute force finds: the fewest
// requests, and among those the fewest addresses read, with every request within the limits.
func TestPlannerMinimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		items := randomItems(rng, 1+rng.IntN(11), 80)
		lim := planLimits{maxLen: 4 + rng.IntN(20), gap: rng.IntN(8) - 1}
		for range rng.IntN(3) {
			s := rng.IntN(80)
			f := span{s, s + 1 + rng.IntN(3)}
			if !hitsForbidden(f.start, f.end, spansOf(items)) {
				lim.forbidden = append(lim.forbidden, f)
			}
		}
		runs := planKind(items, lim)
		// Every item exactly once, in order, and every request allowed.
		k := 0
		for _, run := range runs {
			if !runAllowed(run, lim) {
				t.Fatalf("map %d: planned request %v breaks the limits %+v", i, run, lim)
			}
			for _, it := range run {
				if it.start != items[k].start {
					t.Fatalf("map %d: item %d out of order", i, k)
				}
				k++
			}
		}
		if k != len(items) {
			t.Fatalf("map %d: planned %d of %d items", i, k, len(items))
		}
		gotQ, gotR := costOf(runs)
		wantQ, wantR := bruteForce(items, lim)
		if gotQ != wantQ || gotR != wantR {
			t.Fatalf("map %d (%v, %+v): planner %d requests/%d read, optimum %d/%d", i, items, lim, gotQ, gotR, wantQ, wantR)
		}
		if lim.forbidden == nil && lim.gap >= 0 {
			if q, r := costOf(maxInsert(items, lim.maxLen, lim.gap)); gotQ > q || (gotQ == q && gotR > r) {
				t.Fatalf("map %d: planner %d/%d worse than max_insert %d/%d", i, gotQ, gotR, q, r)
			}
		}
	}
}

func spansOf(items []planItem) []span {
	var s []span
	for _, it := range items {
		s = append(s, span{it.start, it.end})
	}
	return s
}

// TestPlannerNeverLosesToMaxInsertLarge compares with Telegraf's max_insert on large maps, where brute force is
// out of reach.
func TestPlannerNeverLosesToMaxInsertLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		items := randomItems(rng, 300, 5000)
		maxLen, fill := 30+rng.IntN(96), rng.IntN(60)
		runs := planKind(items, planLimits{maxLen: maxLen, gap: fill})
		q, r := costOf(runs)
		bq, br := costOf(maxInsert(items, maxLen, fill))
		if q > bq || (q == bq && r > br) {
			t.Fatalf("planner %d requests/%d registers, max_insert %d/%d", q, r, bq, br)
		}
	}
}

// TestPlanTelegrafIssue14387 is Telegraf's overflow_issue_14387 map: 109 contiguous uint32 counters (218 registers)
// from 12800. Requests must stay within 125 registers without cutting a 32-bit value in two.
func TestPlanTelegrafIssue14387(t *testing.T) {
	var tags []compiledTag
	for i := range 109 {
		tags = append(tags, compiledTag{name: fmt.Sprintf("energy-%d", i), kind: Holding, addr: 12800 + 2*i, width: 2, dec: Decoding{Type: TypeUint32, Order: ABCD}})
	}
	reqs := planGroup(tags, planLimits{maxLen: 125, gap: 10}, planLimits{maxLen: 2000, gap: 160}, [4][]span{})
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	n := 0
	for _, r := range reqs {
		if r.count > 125 {
			t.Errorf("request of %d registers", r.count)
		}
		for _, tag := range r.tags {
			if tag.addr < r.addr || tag.addr+tag.width > r.addr+r.count {
				t.Errorf("tag %s at %d cut by request %d+%d", tag.name, tag.addr, r.addr, r.count)
			}
			n++
		}
	}
	if n != 109 {
		t.Errorf("%d tags planned, want 109", n)
	}
}

func TestPlanBitsShareRegisterAndForbidden(t *testing.T) {
	b0, b3 := 0, 3
	cfg := Config{Name: "c", Address: "127.0.0.1:502", Devices: []Device{{
		Name:      "d",
		Forbidden: []AddressRange{{Register: "holding", Start: 5}},
		Groups: []Group{{Tags: []Tag{
			{Name: "run", Address: 2, Type: "bool", Bit: &b0},
			{Name: "alarm", Address: 2, Type: "bool", Bit: &b3},
			{Name: "a", Address: 3},
			{Name: "b", Address: 7},
			{Name: "c1", Register: "coil", Address: 0},
			{Name: "c2", Register: "coil", Address: 100},
		}}},
	}}}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range s.Plan() {
		got = append(got, fmt.Sprintf("%s %d+%d %v", p.Register, p.Address, p.Count, p.Tags))
	}
	want := []string{"holding 2+2 [run alarm a]", "holding 7+1 [b]", "coil 0+101 [c1 c2]"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("plan %q, want %q (address 5 is forbidden, so 2-3 and 7 stay apart)", got, want)
	}
}
