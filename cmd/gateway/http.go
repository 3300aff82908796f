package main

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// handler serves the gateway's one HTTP listener:
//
//	/metrics     Prometheus metrics (see collector)
//	/healthz     200 while the process serves HTTP: for a liveness probe or a watchdog
//	/readyz      200 "ready" when the gateway is collecting, else 503 with the reasons, one per line:
//	             the buffer is unhealthy (disk full, write errors: readings cannot be committed, so inputs stop
//	             acknowledging), no input is connected (every input failed or lost its connection; an
//	             MQTT input counts once the broker has confirmed its subscriptions), or the gateway runs on a
//	             last good configuration because its files were invalid at start.
//	             Kafka being unreachable does not make the gateway unready: that is what the buffer is for;
//	             watch fieldgate_buffer_oldest_age_seconds for it.
//	/api/status  JSON: gateway, readiness, config (hash, applied at, files, last reload), sources (state,
//	             condition and since when, readings_per_second, counters, own stats), devices (last reading
//	             time, worst quality, metrics: each one's last value, quality and time), buffer, kafka
//	             (forwarded_per_second beside the forwarder's counters)
//	/api/series  JSON for the page's plots: devices' sparklines and the buffer's last hour (see mountPage)
//	/            the status page, and its assets under /ui/ (see page.go, internal/webui)
//	/api/deadletters, /api/deadletters/export, /api/deadletters/replay  see deadLetterRoutes
//
// serveHTTP wraps it in webserve.Protect: credentials (http.auth), CSP and the other security headers.
func (g *gateway) handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&collector{g: g},
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		reasons := g.notReady()
		if len(reasons) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(strings.Join(reasons, "\n") + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(g.status())
	})
	g.deadLetterRoutes(mux)
	g.mountPage(mux)
	return mux
}

// notReady returns why the gateway is not collecting; none when it is.
func (g *gateway) notReady() []string {
	var reasons []string
	if st := g.buf.Stats(); !st.Healthy {
		reasons = append(reasons, "buffer unhealthy: "+st.LastError)
	}
	up := false
	for _, in := range g.inputsSnapshot() {
		up = up || in.connected()
	}
	if !up {
		reasons = append(reasons, "no input is connected")
	}
	if fb := g.running.Load().fallback; fb != "" {
		reasons = append(reasons, fb)
	}
	return reasons
}

type sourceStatus struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	State string `json:"state"` // running, failed, stopped
	// Condition is what the page shows: connected, disconnected (running, retrying its connection), starting,
	// failed or stopped; Since is when the gateway first saw it in that condition (sampled every second).
	Condition         string    `json:"condition"`
	Since             time.Time `json:"since,omitzero"`
	ReadingsPerSecond float64   `json:"readings_per_second"` // over the last 10 s
	Connected         *bool     `json:"connected,omitempty"`
	LastError         string    `json:"last_error,omitempty"`
	Readings          uint64    `json:"readings"`
	Emits             uint64    `json:"emits"`
	EmitErrors        uint64    `json:"emit_errors"`
	DeadLetters       uint64    `json:"dead_letters"`
	// ImplausibleTimes counts readings committed with their source time replaced (fieldgate.SourceTimeBound).
	ImplausibleTimes uint64    `json:"implausible_source_times"`
	LastReading      time.Time `json:"last_reading,omitzero"`
	Stats            any       `json:"stats,omitempty"` // the protocol's own counters
}

type statusDoc struct {
	GatewayID        string         `json:"gateway_id"`
	Version          string         `json:"version"`
	Commit           string         `json:"commit"`
	GoVersion        string         `json:"go_version"`
	Started          time.Time      `json:"started"`
	UptimeSeconds    float64        `json:"uptime_seconds"`
	Ready            bool           `json:"ready"`
	NotReady         []string       `json:"not_ready,omitempty"`
	Config           configStatus   `json:"config"`
	Sources          []sourceStatus `json:"sources"`
	Devices          []deviceStatus `json:"devices"`
	DevicesUntracked uint64         `json:"devices_untracked_readings,omitempty"`
	// SeriesUntracked counts readings of metrics beyond the 2,000 kept with their last value and sparkline.
	SeriesUntracked uint64 `json:"series_untracked_readings,omitempty"`
	Buffer          any    `json:"buffer"`
	Kafka           any    `json:"kafka"`
}

// configStatus is what runs, and what the last reload did.
type configStatus struct {
	Hash      string    `json:"hash"`
	AppliedAt time.Time `json:"applied_at"`
	Files     []string  `json:"files"`
	// Fallback says why the gateway runs on a last good configuration rather than its files; empty when it does not.
	Fallback   string        `json:"fallback,omitempty"`
	LastReload *reloadResult `json:"last_reload,omitempty"`
	Reloads    struct {
		Applied   uint64 `json:"applied"`
		Unchanged uint64 `json:"unchanged"`
		Refused   uint64 `json:"refused"`
		Failed    uint64 `json:"failed"`
	} `json:"reloads"`
}

func (g *gateway) configStatus() configStatus {
	rs := g.running.Load()
	c := configStatus{Hash: rs.loaded.hash, AppliedAt: rs.appliedAt, Fallback: rs.fallback, LastReload: g.lastLoad.Load()}
	for _, f := range rs.loaded.files {
		c.Files = append(c.Files, f.Path)
	}
	c.Reloads.Applied, c.Reloads.Unchanged = g.reloads.applied.Load(), g.reloads.unchanged.Load()
	c.Reloads.Refused, c.Reloads.Failed = g.reloads.refused.Load(), g.reloads.failed.Load()
	return c
}

func (g *gateway) status() statusDoc {
	now := time.Now()
	reasons := g.notReady()
	d := statusDoc{
		GatewayID: g.config().GatewayID, Config: g.configStatus(), Version: g.build.Version, Commit: g.build.Commit, GoVersion: g.build.GoVersion,
		Started: g.started, UptimeSeconds: now.Sub(g.started).Seconds(),
		Ready: len(reasons) == 0, NotReady: reasons,
		Devices:          g.devices.snapshot(),
		DevicesUntracked: g.devices.untracked.Load(),
		SeriesUntracked:  g.devices.untrackedSer.Load(),
	}
	sort.Slice(d.Devices, func(i, j int) bool { return d.Devices[i].Device < d.Devices[j].Device })
	for _, in := range g.inputsSnapshot() {
		in.settle()
		s := sourceStatus{
			Name: in.name, Type: in.kind, State: in.getState(), LastError: in.getLastError(),
			Readings: in.readings.Load(), Emits: in.batches.Load(), EmitErrors: in.emitErrors.Load(),
			DeadLetters: in.deadLetters.Load(), ImplausibleTimes: in.implausible.Load(),
		}
		s.Condition, s.Since, s.ReadingsPerSecond = g.live.input(in)
		c := in.connected()
		s.Connected = &c
		if ns := in.lastReading.Load(); ns != 0 {
			s.LastReading = time.Unix(0, ns)
		}
		if st := in.stats(); st != nil {
			s.Stats = snakeCase(st)
		}
		d.Sources = append(d.Sources, s)
	}
	bs := g.buf.Stats()
	buf := snakeCase(bs).(map[string]any)
	buf["path"] = g.config().Buffer.Path
	buf["oldest_age_seconds"] = ageSeconds(now, bs.OldestAppended)
	buf["rates"] = g.rates.rates(sampleOf(bs, now))
	d.Buffer = buf
	kafka := snakeCase(g.kafkaStats()).(map[string]any)
	kafka["forwarded_per_second"] = g.live.forwardedPerSecond()
	d.Kafka = kafka
	return d
}

func ageSeconds(now, t time.Time) float64 {
	if t.IsZero() || t.After(now) {
		return 0
	}
	return now.Sub(t).Seconds()
}

// snakeCase renders a component's Stats struct as a JSON object with snake_case keys (DroppedOldest →
// dropped_oldest), durations in seconds and zero times as null, so that /api/status follows the components'
// snapshots without a hand-written copy of each.
func snakeCase(v any) any {
	return snakeValue(reflect.ValueOf(v))
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
)

func snakeValue(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	switch {
	case v.Type() == timeType:
		t := v.Interface().(time.Time)
		if t.IsZero() {
			return nil
		}
		return t
	case v.Type() == durationType:
		return v.Interface().(time.Duration).Seconds()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return snakeValue(v.Elem())
	case reflect.Struct:
		m := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			m[snakeName(f.Name)] = snakeValue(v.Field(i))
		}
		return m
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return []any{}
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = snakeValue(v.Index(i))
		}
		return out
	case reflect.Map:
		m := map[string]any{}
		iter := v.MapRange()
		for iter.Next() {
			m[toString(iter.Key())] = snakeValue(iter.Value())
		}
		return m
	}
	return v.Interface()
}

func toString(v reflect.Value) string {
	if v.Kind() == reflect.String {
		return v.String()
	}
	b, _ := json.Marshal(v.Interface())
	return strings.Trim(string(b), `"`)
}

// snakeName: "DroppedOldest" → "dropped_oldest", "LastRTTSeconds" → "last_rtt_seconds".
func snakeName(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
