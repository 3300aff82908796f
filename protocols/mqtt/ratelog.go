package mqtt

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// rateLog limits a kind of log line to one per interval, and says what it held back when the interval ends,
// not at the next line: the first line of an interval is logged; the others are counted by class, and the
// interval's end logs "suppressed N <what> logs in the last <interval>: class=count ...". So a burst of 46 bad
// messages costs two lines, and the second comes within the interval even when nothing follows the burst.
type rateLog struct {
	logger   *slog.Logger
	interval time.Duration
	what     string

	mu     sync.Mutex
	last   time.Time      // when the last line was logged
	held   map[string]int // lines held back since, by class
	timer  *time.Timer    // logs the summary at the end of the interval; nil if none is due
	closed bool
}

func newRateLog(log *slog.Logger, interval time.Duration, what string) *rateLog {
	return &rateLog{logger: log, interval: interval, what: what, held: map[string]int{}}
}

// log calls line if no line was logged in the last interval, else counts it under class.
func (r *rateLog) log(class string, line func()) {
	r.mu.Lock()
	now := time.Now()
	if r.timer == nil && now.Sub(r.last) >= r.interval {
		r.last = now
		r.mu.Unlock()
		line()
		return
	}
	r.held[class]++
	if r.timer == nil && !r.closed {
		r.timer = time.AfterFunc(r.last.Add(r.interval).Sub(now), r.summary)
	}
	r.mu.Unlock()
}

// summary logs what was held back. The next line, coming after the interval, is logged in full.
func (r *rateLog) summary() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = nil
	if len(r.held) == 0 {
		return
	}
	n := 0
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(r.held)) {
		n += r.held[c]
		parts = append(parts, fmt.Sprintf("%s=%d", c, r.held[c]))
	}
	now := time.Now()
	r.logger.Warn(fmt.Sprintf("suppressed %d %s logs in the last %s: %s", n, r.what, now.Sub(r.last).Round(time.Millisecond), strings.Join(parts, " ")))
	clear(r.held)
}

// close logs what is held back now and stops the timer.
func (r *rateLog) close() {
	r.mu.Lock()
	r.closed = true
	t := r.timer
	r.mu.Unlock()
	if t != nil && t.Stop() {
		r.summary()
	}
}
