package main

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/webserve"
)

// A device's series keeps the last value of each 5 s step for 5 minutes (older steps fall out of the ring), its
// last value whatever its kind, and the number of series is bounded.
func TestDeviceSeries(t *testing.T) {
	tr := newDeviceTracker(10)
	tr.maxSeries = 3
	t0 := time.Unix(1_800_000_000, 0) // a multiple of 5 s
	for i := 0; i < 10*60; i++ {      // 10 minutes, one reading a second: 120 steps
		at := t0.Add(time.Duration(i) * time.Second)
		tr.seen("in", []fieldgate.Reading{
			{Device: "d", Metric: "temp", Value: fieldgate.Float(float64(i)), GatewayTime: at},
			{Device: "d", Metric: "state", Value: fieldgate.String(strings.Repeat("x", 300)), GatewayTime: at},
		})
	}
	tr.seen("in", []fieldgate.Reading{{Device: "d", Metric: "p", Value: fieldgate.Int(7), Quality: fieldgate.Bad, GatewayTime: t0},
		{Device: "d", Metric: "beyond", Value: fieldgate.Int(1), GatewayTime: t0}})
	now := t0.Add(10 * time.Minute)
	ss := tr.series(now)
	if len(ss) != 1 || ss[0].Metric != "temp" {
		t.Fatalf("series %+v, want temp only (p is Bad, state a string)", ss)
	}
	v := ss[0].Values
	if len(v) != sparkPoints || ss[0].Start != now.Add(-sparkKeep).Unix()+5 {
		t.Fatalf("%d values from %d", len(v), ss[0].Start)
	}
	// The step starting at Start+i*5 s (t0+305 s+5i) holds the reading of its last second.
	for i := 0; i < sparkPoints-1; i++ {
		if want := float64(305 + 5*i + 4); float64(v[i]) != want {
			t.Fatalf("value %d = %v, want %v", i, v[i], want)
		}
	}
	if !math.IsNaN(float64(v[sparkPoints-1])) {
		t.Errorf("the step starting now has %v, want none", v[sparkPoints-1])
	}
	d := tr.snapshot()[0]
	if len(d.Metrics) != 3 || d.Quality != "bad" || tr.untrackedSer.Load() != 1 {
		t.Fatalf("metrics %+v quality %s untracked %d", d.Metrics, d.Quality, tr.untrackedSer.Load())
	}
	if s := d.Metrics[1].Value.(string); d.Metrics[1].Metric != "state" || len(s) != maxTextValue+len("…") {
		t.Errorf("state %q", s)
	}
	b, _ := json.Marshal(seriesPoints{Values: []jsonFloat{jsonFloat(math.NaN()), 1.0 / 3}})
	if string(b) != `{"device":"","metric":"","start":0,"values":[null,0.333333]}` {
		t.Errorf("json %s", b)
	}
}

// The buffer's hour comes as one point a minute, the rates over the minute before each.
func TestBufferMinutes(t *testing.T) {
	var h bufferHistory
	t0 := time.Now()
	for i := 0; i <= 3*6; i++ { // 3 minutes of 10 s samples: 60 commits and 6 MB a minute
		at := t0.Add(time.Duration(i) * historyEvery)
		h.add(bufSample{at: at, commits: uint64(i * 10), written: int64(i) * 1e6, entries: int64(i), oldest: t0})
	}
	ps := h.minutes()
	if len(ps) != 3 {
		t.Fatalf("%d points, want 3: %+v", len(ps), ps)
	}
	last := ps[2]
	if last.Entries != 18 || last.CommitsPerSecond != 1 || last.DiskWrittenBytesPerHour != 360e6 || last.OldestAgeSeconds != 180 {
		t.Errorf("last point %+v", last)
	}
}

// The page and the JSON it reads: / is HTML under the strict CSP, with no inline script or style, every asset it
// names is served, the page with its assets stays within 200 KB, /api/series answers.
func TestPageServed(t *testing.T) {
	g := testGateway(t, "testdata/good/all_inputs.yaml")
	srv := httptest.NewServer(webserve.Protect(g.handler(), func() webserve.Auth { return webserve.Auth{} }))
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return resp, string(b)
	}
	resp, page := get("/")
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" || resp.Header.Get("Content-Security-Policy") != webserve.ContentSecurityPolicy {
		t.Errorf("content type %q, CSP %q", ct, resp.Header.Get("Content-Security-Policy"))
	}
	if regexp.MustCompile(`<script>|<style|\sstyle=|\son[a-z]+=`).MatchString(page) {
		t.Error("inline script or style in the page")
	}
	size := len(page)
	for _, m := range regexp.MustCompile(`(?:src|href)="(/ui/[^"]+)"`).FindAllStringSubmatch(page, -1) {
		_, body := get(m[1])
		size += len(body)
		if strings.Contains(body, "innerHTML") || strings.Contains(body, ".style.") {
			t.Errorf("%s sets innerHTML or an inline style", m[1])
		}
	}
	if size > 200<<10 {
		t.Errorf("the page and its assets are %d bytes, want at most 200 KB", size)
	}
	t.Logf("page and assets: %d bytes", size)
	var sd seriesDoc
	if _, body := get("/api/series"); json.Unmarshal([]byte(body), &sd) != nil || sd.StepSeconds != 5 {
		t.Errorf("/api/series: %s", body)
	}
}
