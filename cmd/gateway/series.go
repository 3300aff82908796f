package main

// The recent values behind the status page: per device and metric the last value and a ring of one point per
// sparkStep over the last sparkKeep, fed from the path every reading takes (input.Queue → deviceTracker.seen),
// and the buffer's history (bufferHistory) downsampled to one point a minute over the last hour.

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fieldgate/fieldgate"
)

const (
	sparkStep   = 5 * time.Second
	sparkKeep   = 5 * time.Minute
	sparkPoints = int(sparkKeep / sparkStep)
	// maxSeries bounds the metrics kept with their values across all devices (at most sparkPoints points of 16
	// bytes each: 2 MB): readings of further metrics are still counted per device, but get no value or sparkline.
	maxSeries = 2000
	// maxTextValue bounds a string value kept as a metric's last value.
	maxTextValue = 200
)

// series is one metric of one device: its last reading and, for numbers, a ring of the last value of each
// sparkStep (by gateway time).
type series struct {
	last    fieldgate.Reading
	points  []point // ring, at most sparkPoints
	next    int     // where the next point goes once the ring is full
	numeric bool
}

type point struct {
	bucket int64 // gateway time in unix seconds, rounded down to sparkStep
	v      float64
}

// observe records r, whose gateway time is not before the series' last (older ones only update nothing).
func (s *series) observe(r *fieldgate.Reading) {
	if r.GatewayTime.Before(s.last.GatewayTime) {
		return
	}
	s.last = *r
	if r.Value.Kind() == fieldgate.KindString && len(r.Value.Str()) > maxTextValue {
		s.last.Value = fieldgate.String(strings.ToValidUTF8(r.Value.Str()[:maxTextValue], "") + "…")
	}
	v, ok := r.Value.Number()
	s.numeric = ok
	if !ok || r.Quality == fieldgate.Bad || math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	b := r.GatewayTime.Unix() / int64(sparkStep/time.Second) * int64(sparkStep/time.Second)
	if n := len(s.points); n > 0 {
		// s.next stays 0 until the ring is full: the last point is then at n-1.
		lastIdx := (s.next + n - 1) % n
		if s.points[lastIdx].bucket == b {
			s.points[lastIdx].v = v
			return
		}
	}
	if len(s.points) < sparkPoints {
		s.points = append(s.points, point{b, v})
		return
	}
	s.points[s.next] = point{b, v}
	s.next = (s.next + 1) % sparkPoints
}

// ordered returns the points oldest first.
func (s *series) ordered() []point {
	if len(s.points) < sparkPoints {
		return s.points
	}
	return append(append([]point(nil), s.points[s.next:]...), s.points[:s.next]...)
}

// metricStatus is a metric's last value in /api/status.
type metricStatus struct {
	Metric  string    `json:"metric"`
	Value   any       `json:"value"` // number, bool or string (cut at 200 bytes); null for NaN and ±Inf
	Quality string    `json:"quality"`
	Time    time.Time `json:"time"` // gateway time
}

func (s *series) status(metric string) metricStatus {
	m := metricStatus{Metric: metric, Quality: s.last.Quality.String(), Time: s.last.GatewayTime}
	switch v := s.last.Value; v.Kind() {
	case fieldgate.KindBool:
		m.Value = v.Bool()
	case fieldgate.KindString:
		m.Value = v.Str()
	case fieldgate.KindInt:
		m.Value = v.Int()
	default:
		if f := v.Float(); !math.IsNaN(f) && !math.IsInf(f, 0) {
			m.Value = f
		}
	}
	return m
}

// seriesDoc is /api/series.
type seriesDoc struct {
	Now         int64          `json:"now"`          // unix seconds
	StepSeconds int64          `json:"step_seconds"` // of the device series
	Series      []seriesPoints `json:"series"`
	// Buffer is the buffer over the last hour, one point a minute, oldest first.
	Buffer []bufferPoint `json:"buffer"`
}

// seriesPoints is one numeric metric's last values: Values[i] is the last value of the step starting at
// Start+i*StepSeconds, null where there was none.
type seriesPoints struct {
	Device string      `json:"device"`
	Metric string      `json:"metric"`
	Start  int64       `json:"start"` // unix seconds
	Values []jsonFloat `json:"values"`
}

// jsonFloat is a float written with 6 significant digits, NaN as null.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(f), 'g', 6, 64), nil
}

// series returns the numeric series of every tracked device, by device and metric.
func (t *deviceTracker) series(now time.Time) []seriesPoints {
	step := int64(sparkStep / time.Second)
	from := now.Add(-sparkKeep).Unix()/step*step + step
	t.mu.Lock()
	var out []seriesPoints
	for name, d := range t.devices {
		for metric, s := range d.metrics {
			if !s.numeric || len(s.points) == 0 {
				continue
			}
			sp := seriesPoints{Device: name, Metric: metric, Start: from, Values: make([]jsonFloat, sparkPoints)}
			for i := range sp.Values {
				sp.Values[i] = jsonFloat(math.NaN())
			}
			for _, p := range s.ordered() {
				if i := (p.bucket - from) / step; i >= 0 && i < int64(sparkPoints) {
					sp.Values[i] = jsonFloat(p.v)
				}
			}
			out = append(out, sp)
		}
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Device != out[j].Device {
			return out[i].Device < out[j].Device
		}
		return out[i].Metric < out[j].Metric
	})
	return out
}

// bufferPoint is the buffer at one minute of the last hour; the rates are over the minute before it.
type bufferPoint struct {
	Time                    int64     `json:"time"` // unix seconds
	Entries                 int64     `json:"entries"`
	Bytes                   int64     `json:"bytes"`
	OldestAgeSeconds        jsonFloat `json:"oldest_age_seconds"`
	DiskWrittenBytesPerHour jsonFloat `json:"disk_written_bytes_per_hour"`
	CommitsPerSecond        jsonFloat `json:"commits_per_second"`
}

// minutes is one sample a minute of the last hour, ending with the newest, oldest first (in the first minute,
// the rates are over the time since start).
func (h *bufferHistory) minutes() []bufferPoint {
	h.mu.Lock()
	defer h.mu.Unlock()
	every := int(time.Minute / historyEvery)
	var out []bufferPoint
	for i := len(h.samples) - 1; i > 0; i -= every {
		s, prev := h.samples[i], h.samples[max(i-every, 0)]
		secs := s.at.Sub(prev.at).Seconds()
		out = append(out, bufferPoint{Time: s.at.Unix(), Entries: s.entries, Bytes: s.bytes,
			OldestAgeSeconds:        jsonFloat(ageSeconds(s.at, s.oldest)),
			DiskWrittenBytesPerHour: jsonFloat(float64(s.written-prev.written) / secs * 3600),
			CommitsPerSecond:        jsonFloat(float64(s.commits-prev.commits) / secs)})
	}
	slices.Reverse(out)
	return out
}
