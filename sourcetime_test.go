package fieldgate

import (
	"strings"
	"testing"
	"time"
)

func TestSourceTimeBoundCheck(t *testing.T) {
	gw := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	custom := SourceTimeBound{MaxPast: time.Hour, MaxFuture: time.Minute}
	for _, c := range []struct {
		name      string
		b         SourceTimeBound
		src       time.Time
		q         Quality
		status    uint32
		plausible bool
		wantQ     Quality
		wantS     uint32
	}{
		{"none", SourceTimeBound{}, time.Time{}, Good, 0, true, Good, 0},
		{"now", SourceTimeBound{}, gw, Good, 0, true, Good, 0},
		{"a day back, the default edge", SourceTimeBound{}, gw.Add(-24 * time.Hour), Good, 0, true, Good, 0},
		{"a day ahead, the default edge", SourceTimeBound{}, gw.Add(24 * time.Hour), Good, 0, true, Good, 0},
		{"seconds sent as milliseconds", SourceTimeBound{}, time.UnixMilli(gw.Unix()), Good, 0, false, Uncertain, StatusImplausibleTime},
		{"milliseconds sent as seconds", SourceTimeBound{}, DeviceTime(time.Unix(gw.UnixMilli(), 0)), Good, 0, false, Uncertain, StatusImplausibleTime},
		{"year 1", SourceTimeBound{}, DeviceTime(time.Time{}), Good, 0, false, Uncertain, StatusImplausibleTime},
		{"year 9999", SourceTimeBound{MaxPast: 1<<63 - 1, MaxFuture: 1<<63 - 1}, DeviceTime(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)), Good, 0, false, Uncertain, StatusImplausibleTime},
		{"custom bound, inside", custom, gw.Add(-59 * time.Minute), Good, 0, true, Good, 0},
		{"custom bound, past", custom, gw.Add(-61 * time.Minute), Good, 0, false, Uncertain, StatusImplausibleTime},
		{"custom bound, ahead", custom, gw.Add(61 * time.Second), Good, 0, false, Uncertain, StatusImplausibleTime},
		{"uncertain keeps its status", SourceTimeBound{}, gw.Add(-48 * time.Hour), Uncertain, 0x40900000, false, Uncertain, 0x40900000},
		{"bad keeps its status", SourceTimeBound{}, gw.Add(48 * time.Hour), Bad, 0x80310000, false, Bad, 0x80310000},
	} {
		r := Reading{Device: "d", Metric: "m", Value: Float(1), Quality: c.q, Status: c.status, SourceTime: c.src, GatewayTime: gw}
		if got := c.b.Check(&r); got != c.plausible {
			t.Errorf("%s: Check = %v, want %v", c.name, got, c.plausible)
		}
		if r.Quality != c.wantQ || r.Status != c.wantS {
			t.Errorf("%s: quality %v status %#x, want %v %#x", c.name, r.Quality, r.Status, c.wantQ, c.wantS)
		}
		if !c.plausible && (!r.SourceTime.IsZero() || !r.EventTime().Equal(gw)) {
			t.Errorf("%s: event time %v, want the gateway time", c.name, r.EventTime())
		}
		if c.plausible && !r.SourceTime.Equal(c.src) {
			t.Errorf("%s: source time changed to %v", c.name, r.SourceTime)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestDeviceTime: every device time becomes one a reading holds as a source time (not the zero time, within
// the years 1 to 9999), unchanged when it already is one.
func TestDeviceTime(t *testing.T) {
	for _, c := range []struct{ in, want time.Time }{
		{time.Time{}, time.Time{}.Add(time.Nanosecond)},
		{time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC), time.Time{}.Add(time.Nanosecond)},
		{time.Date(1, 1, 1, 0, 0, 0, 5, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 5, time.UTC)},
		{time.Unix(1<<40, 0), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600)), time.Date(2026, 1, 2, 2, 4, 5, 6, time.UTC)},
	} {
		got := DeviceTime(c.in)
		if !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("DeviceTime(%v) = %v, want %v", c.in, got, c.want)
		}
		if err := (Reading{Device: "d", Metric: "m", SourceTime: got, GatewayTime: time.Now()}).Validate(); err != nil || got.IsZero() {
			t.Errorf("DeviceTime(%v) = %v is no source time: %v", c.in, got, err)
		}
	}
}

func TestSourceTimeBoundValidate(t *testing.T) {
	if err := (SourceTimeBound{}).Validate(); err != nil {
		t.Errorf("zero bound: %v", err)
	}
	err := SourceTimeBound{MaxPast: time.Second, MaxFuture: -time.Hour}.Validate()
	if err == nil || !strings.Contains(err.Error(), "max_past") || !strings.Contains(err.Error(), "max_future") {
		t.Errorf("want both fields refused: %v", err)
	}
}
