package main

import (
	"testing"
	"time"

	"github.com/fieldgate/fieldgate/window"
)

// /api/status reads the same numbers as /metrics: the per-partition gauges, the counters, the window snapshot.
func TestStatusFromMetrics(t *testing.T) {
	m := newMetrics()
	m.lag.WithLabelValues("1").Set(5)
	m.lag.WithLabelValues("0").Set(0)
	m.committed.WithLabelValues("0").Set(42)
	m.deadLetters.WithLabelValues("decode").Add(2)
	m.consumed.Add(10)
	m.recomputed.Inc()
	st := m.status(time.Now(), func() window.Stats { return window.Stats{Fired: 7, OpenWindows: 3, WatermarkDelaySeconds: 1.5} }, nil)
	want := []partitionStatus{{0, 0, 42}, {1, 5, -1}}
	if len(st.Partitions) != 2 || st.Partitions[0] != want[0] || st.Partitions[1] != want[1] {
		t.Errorf("partitions %+v, want %+v", st.Partitions, want)
	}
	if st.DeadLetters["decode"] != 2 || st.DeadLetters["refused"] != 0 || len(st.DeadLetters) != 3 {
		t.Errorf("dead letters %v", st.DeadLetters)
	}
	if st.Records.Consumed != 10 || st.Windows.Fired != 7 || st.Windows.Recomputed != 1 || st.Windows.WatermarkDelaySeconds != 1.5 || st.Database != nil {
		t.Errorf("status %+v", st)
	}
}
