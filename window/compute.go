package window

import (
	"time"

	"github.com/fieldgate/fieldgate"
)

// Compute is the reference definition of an Aggregate, by brute force: the aggregate of the distinct readings of
// device and metric whose event time (in ms) lies in [start, start+size), the first of each identity in rs order
// kept. ok is false when there is none. The central service recomputes windows with it (from the raw table's
// readings), and tests compare Fire's output with it. Final is not set.
func Compute(device, metric string, size time.Duration, start time.Time, rs []fieldgate.Reading) (a fieldgate.Aggregate, ok bool) {
	st := start.UnixMilli()
	end := st + size.Milliseconds()
	seen := map[int64]bool{}
	var c acc
	for _, r := range rs {
		t := r.EventMs()
		if r.Device != device || r.Metric != metric || t < st || t >= end || seen[t] {
			continue
		}
		seen[t] = true
		c.count++
		if r.Quality == fieldgate.Bad {
			c.bad++
			continue
		}
		if f, isNum := r.Value.Number(); isNum && f == f {
			if c.num == 0 {
				c.min, c.max = f, f
			}
			c.min, c.max = min(c.min, f), max(c.max, f)
			c.sum += f
			c.num++
		}
		if !c.hasFL || t < c.firstT {
			c.first, c.firstT = r.Value, t
		}
		if !c.hasFL || t > c.lastT {
			c.last, c.lastT = r.Value, t
		}
		c.hasFL = true
	}
	if c.count == 0 {
		return fieldgate.Aggregate{}, false
	}
	a = fieldgate.Aggregate{Device: device, Metric: metric, Size: size, Start: time.UnixMilli(st).UTC(), End: time.UnixMilli(end).UTC()}
	c.fill(&a)
	return a, true
}
