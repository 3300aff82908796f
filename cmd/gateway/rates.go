package main

import (
	"context"
	"sync"
	"time"

	"github.com/fieldgate/fieldgate/buffer"
)

// bufferHistory samples the buffer's write counters and fill every historyEvery for the last historyKeep, so that
// /api/status can say what the buffer costs the flash at the current rate (bytes written per day), which the
// counters alone (totals since start) do not, and /api/series can plot the last hour.
type bufferHistory struct {
	mu      sync.Mutex
	samples []bufSample // oldest first, at most historyKeep/historyEvery+1
}

type bufSample struct {
	at              time.Time
	written         int64
	commits, fsyncs uint64
	entries, bytes  int64
	oldest          time.Time
}

const (
	historyEvery = 10 * time.Second
	historyKeep  = time.Hour
	// rateWindow is how far back the rates of /api/status look.
	rateWindow = 10 * time.Minute
)

func sampleOf(st buffer.Stats, at time.Time) bufSample {
	return bufSample{at: at, written: st.DiskWrittenBytes, commits: st.Commits, fsyncs: st.Fsyncs,
		entries: st.Entries, bytes: st.Bytes, oldest: st.OldestAppended}
}

// run samples buf until ctx ends.
func (h *bufferHistory) run(ctx context.Context, buf *buffer.Buffer) {
	t := time.NewTicker(historyEvery)
	defer t.Stop()
	h.add(sampleOf(buf.Stats(), time.Now()))
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.add(sampleOf(buf.Stats(), now))
		}
	}
}

func (h *bufferHistory) add(s bufSample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, s)
	if n := len(h.samples) - int(historyKeep/historyEvery) - 1; n > 0 {
		h.samples = append(h.samples[:0], h.samples[n:]...)
	}
}

// bufferRates are the buffer's costs over the last rateWindow (or since start, if shorter).
type bufferRates struct {
	DiskWrittenBytesPerDay float64 `json:"disk_written_bytes_per_day"` // at the current rate: size the flash by it
	CommitsPerSecond       float64 `json:"commits_per_second"`
	FsyncsPerSecond        float64 `json:"fsyncs_per_second"`
	OverSeconds            float64 `json:"over_seconds"` // the time the rates are measured over
}

// rates compares cur with the oldest sample within rateWindow.
func (h *bufferHistory) rates(cur bufSample) bufferRates {
	h.mu.Lock()
	defer h.mu.Unlock()
	var from *bufSample
	for i := range h.samples {
		if cur.at.Sub(h.samples[i].at) <= rateWindow {
			from = &h.samples[i]
			break
		}
	}
	if from == nil {
		return bufferRates{}
	}
	secs := cur.at.Sub(from.at).Seconds()
	if secs <= 0 {
		return bufferRates{}
	}
	return bufferRates{
		DiskWrittenBytesPerDay: float64(cur.written-from.written) / secs * 86400,
		CommitsPerSecond:       float64(cur.commits-from.commits) / secs,
		FsyncsPerSecond:        float64(cur.fsyncs-from.fsyncs) / secs,
		OverSeconds:            secs,
	}
}
