package fieldgate

import "time"

// Aggregate is one tumbling window of one series (Device, Metric): what the central service computes (package
// window) and stores as a row of the aggregate table of its Size, keyed by (Device, Metric, Start).
//
// Its values are defined over the distinct readings (by identity, see Reading.EventMs) whose event time lies in
// [Start, End) — exactly what SQL over the raw table gives:
//   - Count: every reading, any kind and quality. BadCount: those of quality Bad.
//   - NumericCount, Min, Max, Sum: over the float and int values (ints as float64) of the usable readings
//     (quality Good or Uncertain, OPC UA's "usable with care"), NaN left out, ±Inf kept. Mean = Sum /
//     NumericCount. All 0 when NumericCount is 0; the database stores NULL then.
//   - First, FirstTime, Last, LastTime: the value and event time of the earliest and the latest usable reading,
//     of any kind (so the last state of a bool or string metric is kept). Event times are unique within a
//     series, so there are no ties. When every reading is Bad (Count == BadCount) there is none: the zero Value
//     and zero times, stored as NULL — never as 0.
//
// Sum is accumulated in arrival order, SQL sums in scan order: with non-integral floats they may differ in the
// last bits.
type Aggregate struct {
	Device, Metric string
	Size           time.Duration
	Start, End     time.Time // [Start, End), UTC, whole milliseconds
	// Final: no further firing of this window is expected; it changes again only if a late reading makes the
	// central service recompute it.
	Final bool

	Count, BadCount, NumericCount int64
	Min, Max, Sum, Mean           float64
	First, Last                   Value
	FirstTime, LastTime           time.Time
}

// HasFirstLast reports whether the window holds a usable reading, and so a First and a Last.
func (a *Aggregate) HasFirstLast() bool { return a.Count > a.BadCount }
