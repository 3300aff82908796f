package fieldgate

import (
	"testing"
	"time"
)

// TestEventMs: the identity's millisecond is the event time rounded down, before and after 1970, and it is the
// instant TruncateMs gives (what the database stores).
func TestEventMs(t *testing.T) {
	gw := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		src  time.Time
		want int64
	}{
		{time.Time{}, gw.UnixMilli()},
		{time.Unix(1, 999_999_999), 1999},
		{time.Unix(-1, 1), -1000},
		{time.Unix(-1, 999_999), -1000},
		{time.Unix(0, 1_000_000).In(time.FixedZone("X", 3600)), 1},
		{time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()},
	} {
		r := Reading{SourceTime: c.src, GatewayTime: gw}
		if got := r.EventMs(); got != c.want {
			t.Errorf("EventMs of %v = %d, want %d", c.src, got, c.want)
		}
		if tr := TruncateMs(r.EventTime()); tr.UnixMilli() != r.EventMs() || tr.Location() != time.UTC || tr.Nanosecond()%1e6 != 0 {
			t.Errorf("TruncateMs(%v) = %v, not the instant of EventMs %d", r.EventTime(), tr, r.EventMs())
		}
	}
	if !TruncateMs(time.Time{}).IsZero() {
		t.Error("TruncateMs of the zero time is not zero")
	}
}

func TestZero(t *testing.T) {
	for k, want := range map[Kind]Value{KindFloat: Float(0), KindInt: Int(0), KindBool: Bool(false), KindString: String(""), Kind(9): Float(0)} {
		if got := Zero(k); got != want {
			t.Errorf("Zero(%s) = %#v, want %#v", k, got, want)
		}
	}
}
