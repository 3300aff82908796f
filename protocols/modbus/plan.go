package modbus

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// PlannedRequest is one read request of the poll plan, as `gateway validate -v` shows it.
type PlannedRequest struct {
	Connection string
	Device     string
	UnitID     uint8
	Group      string
	Interval   time.Duration
	Register   RegisterKind
	Address    uint16 // first address read
	Count      uint16 // registers or bits read, gap fill included
	Tags       []string
	Filled     int // addresses read that no tag uses
}

func (p PlannedRequest) String() string {
	unit := "registers"
	if p.Register.IsBit() {
		unit = "bits"
	}
	return fmt.Sprintf("%s %s (unit %d) group %s every %v: read %s %d-%d (%d %s, %d filled): %s",
		p.Connection, p.Device, p.UnitID, p.Group, p.Interval, p.Register, p.Address, int(p.Address)+int(p.Count)-1,
		p.Count, unit, p.Filled, strings.Join(p.Tags, ", "))
}

// WritePlan prints plan one request per line, for `gateway validate -v`.
func WritePlan(w io.Writer, plan []PlannedRequest) error {
	for _, p := range plan {
		if _, err := fmt.Fprintln(w, p.String()); err != nil {
			return err
		}
	}
	return nil
}

// readRequest is one planned read and the tags it serves.
type readRequest struct {
	kind  RegisterKind
	addr  int
	count int
	tags  []compiledTag // addr is absolute; offset in the reply is tag.addr - addr
}

// planItem is the unit the planner moves around: one tag, or several bool tags on bits of one register.
type planItem struct {
	start, end int // [start, end)
	tags       []compiledTag
}

// planLimits are the constraints on one request.
type planLimits struct {
	maxLen    int    // registers or bits per request
	gap       int    // largest run of unused addresses inside a request; -1: one item per request
	forbidden []span // addresses never read
}

// planKind splits items (one register kind, sorted by start, not overlapping) into the fewest requests that
// satisfy lim, and among those the plan that reads the fewest addresses. A request covers a run of consecutive
// items; a run is allowed when it spans at most maxLen, every hole between neighbours is at most gap long and
// holds no forbidden address. Any sub-run of an allowed run is allowed, so a dynamic program over run ends is
// exact: best[i] is the optimum for items[:i], and the run ending at i can only start within maxLen of its end,
// which bounds the work by len(items)*maxLen.
func planKind(items []planItem, lim planLimits) [][]planItem {
	n := len(items)
	if n == 0 {
		return nil
	}
	// joinable[k]: items k and k+1 may share a request (the hole is short and holds no forbidden address).
	joinable := make([]bool, n)
	for k := 0; k+1 < n; k++ {
		hole := items[k+1].start - items[k].end
		joinable[k] = lim.gap >= 0 && hole <= lim.gap && !hitsForbidden(items[k].end, items[k+1].start, lim.forbidden)
	}
	type cost struct{ requests, read int }
	const inf = int(^uint(0) >> 1)
	best := make([]cost, n+1)
	from := make([]int, n+1)
	for i := 1; i <= n; i++ {
		best[i] = cost{inf, inf}
		for j := i - 1; j >= 0; j-- {
			if j < i-1 && !joinable[j] {
				break
			}
			length := items[i-1].end - items[j].start
			if length > lim.maxLen {
				break
			}
			c := cost{best[j].requests + 1, best[j].read + length}
			if c.requests < best[i].requests || (c.requests == best[i].requests && c.read < best[i].read) {
				best[i], from[i] = c, j
			}
		}
	}
	var runs [][]planItem
	for i := n; i > 0; i = from[i] {
		runs = append(runs, items[from[i]:i])
	}
	slices.Reverse(runs)
	return runs
}

func hitsForbidden(start, end int, forbidden []span) bool {
	for _, f := range forbidden {
		if start < f.end && f.start < end {
			return true
		}
	}
	return false
}

// itemsOf groups a kind's tags into plan items, sorted by address: bool bits of one register become one item.
func itemsOf(tags []compiledTag) []planItem {
	sorted := slices.Clone(tags)
	slices.SortStableFunc(sorted, func(a, b compiledTag) int { return a.addr - b.addr })
	var items []planItem
	for _, t := range sorted {
		if n := len(items); n > 0 && t.isRegisterBit() && items[n-1].start == t.addr && items[n-1].tags[0].isRegisterBit() {
			items[n-1].tags = append(items[n-1].tags, t)
			continue
		}
		items = append(items, planItem{start: t.addr, end: t.addr + t.width, tags: []compiledTag{t}})
	}
	return items
}

// planGroup plans the requests of one group of one device.
func planGroup(tags []compiledTag, regs, bits planLimits, forbidden [4][]span) []readRequest {
	var out []readRequest
	for kind := Holding; kind <= Discrete; kind++ {
		var of []compiledTag
		for _, t := range tags {
			if t.kind == kind {
				of = append(of, t)
			}
		}
		lim := regs
		if kind.IsBit() {
			lim = bits
		}
		lim.forbidden = forbidden[kind]
		for _, run := range planKind(itemsOf(of), lim) {
			r := readRequest{kind: kind, addr: run[0].start, count: run[len(run)-1].end - run[0].start}
			for _, it := range run {
				r.tags = append(r.tags, it.tags...)
			}
			out = append(out, r)
		}
	}
	return out
}
