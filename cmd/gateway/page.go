package main

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/fieldgate/fieldgate/internal/webui"
)

//go:embed ui
var pageFiles embed.FS

// mountPage registers the status page (GET / and its assets under /ui/, see internal/webui) and the JSON only
// the page needs, GET /api/series (seriesDoc): the sparklines of every device's numeric metrics (the last value
// of each 5 s over the last 5 minutes) and the buffer over the last hour, one point a minute.
func (g *gateway) mountPage(mux *http.ServeMux) {
	ui, _ := fs.Sub(pageFiles, "ui")
	webui.Mount(mux, ui)
	mux.HandleFunc("GET /api/series", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seriesDoc{Now: now.Unix(), StepSeconds: int64(sparkStep / time.Second),
			Series: g.devices.series(now), Buffer: g.rates.minutes()})
	})
}

// liveRates samples, every second, each input's condition and reading count and Kafka's forwarded count, so
// that /api/status can say since when an input is in its condition and how many readings a second it and Kafka
// take now (over the last liveWindow).
type liveRates struct {
	mu        sync.Mutex
	inputs    map[*input]*inputLive
	forwarded ring
}

const liveWindow = 10 // seconds

// ring holds the last liveWindow+1 samples of a counter, one a second.
type ring struct {
	at  [liveWindow + 1]time.Time
	n   [liveWindow + 1]uint64
	pos int // next to write
}

func (r *ring) add(at time.Time, n uint64) {
	r.at[r.pos], r.n[r.pos] = at, n
	r.pos = (r.pos + 1) % len(r.n)
}

// perSecond is the rate between the oldest and the newest sample.
func (r *ring) perSecond() float64 {
	newest, oldest := (r.pos+len(r.n)-1)%len(r.n), r.pos
	for r.at[oldest].IsZero() && oldest != newest {
		oldest = (oldest + 1) % len(r.n)
	}
	secs := r.at[newest].Sub(r.at[oldest]).Seconds()
	if secs <= 0 || r.n[newest] < r.n[oldest] {
		return 0
	}
	return float64(r.n[newest]-r.n[oldest]) / secs
}

type inputLive struct {
	condition string
	since     time.Time
	readings  ring
}

// condition is what the page shows of an input: connected, disconnected (running, not connected: retrying),
// or its state when it does not run (starting, failed, stopped).
func (in *input) condition() string {
	switch st := in.getState(); {
	case st != "running":
		return st
	case in.connected():
		return "connected"
	}
	return "disconnected"
}

// run samples g every second until ctx ends.
func (l *liveRates) run(ctx context.Context, g *gateway) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		l.sample(g, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *liveRates) sample(g *gateway, now time.Time) {
	ins := g.inputsSnapshot()
	fwd := g.kafkaStats().Forwarded
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inputs == nil {
		l.inputs = map[*input]*inputLive{}
	}
	seen := make(map[*input]bool, len(ins))
	for _, in := range ins {
		seen[in] = true
		il := l.inputs[in]
		if il == nil {
			il = &inputLive{}
			l.inputs[in] = il
		}
		if c := in.condition(); c != il.condition {
			il.condition, il.since = c, now
		}
		in.settle()
		il.readings.add(now, in.readings.Load())
	}
	for in := range l.inputs {
		if !seen[in] {
			delete(l.inputs, in) // removed by a reload
		}
	}
	l.forwarded.add(now, fwd)
}

// input returns in's condition, since when it holds (zero before the first sample) and its readings a second.
func (l *liveRates) input(in *input) (string, time.Time, float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	il := l.inputs[in]
	if il == nil || il.condition != in.condition() {
		return in.condition(), time.Time{}, 0
	}
	return il.condition, il.since, il.readings.perSecond()
}

func (l *liveRates) forwardedPerSecond() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.forwarded.perSecond()
}
