package main

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fieldgate/fieldgate/cratedb"
	"github.com/fieldgate/fieldgate/window"
)

// metrics are the service's Prometheus metrics, on their own registry (no global state).
type metrics struct {
	reg *prometheus.Registry

	consumed, written, late, duplicates, recomputed, aggregates, dbErrors, commitErrors prometheus.Counter
	earlySkipped                                                                        prometheus.Counter
	deadLetters                                                                         *prometheus.CounterVec
	lag, committed                                                                      *prometheus.GaugeVec
	batchSeconds, eventToDB                                                             prometheus.Histogram
}

func newMetrics() *metrics {
	const ns = "fieldgate_central_"
	m := &metrics{reg: prometheus.NewRegistry()}
	c := func(name, help string) prometheus.Counter {
		x := prometheus.NewCounter(prometheus.CounterOpts{Name: ns + name, Help: help})
		m.reg.MustRegister(x)
		return x
	}
	m.consumed = c("records_consumed_total", "Kafka records taken from assigned partitions.")
	m.written = c("readings_written_total", "Readings upserted into the raw table (replays included).")
	m.late = c("readings_late_total", "Readings later than the allowed lateness; their windows are recomputed from the raw table.")
	m.duplicates = c("readings_duplicate_total", "Readings whose identity (device, metric, event time) was already counted: dropped from the windows.")
	m.recomputed = c("windows_recomputed_total", "Windows recomputed from the raw table (late readings, replays).")
	m.aggregates = c("aggregates_written_total", "Window aggregate rows upserted.")
	m.earlySkipped = c("early_firings_skipped_total", "Early (not final) firings of windows that ended long ago (a backlog) not written: the final firing follows.")
	m.dbErrors = c("database_errors_total", "Failed database calls (each retried).")
	m.commitErrors = c("commit_errors_total", "Failed offset commits (the next commit covers them).")
	m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "dead_letters_total",
		Help: "Records written to the dead-letter table, by reason: decode, version (unknown format version), refused (by the database)."}, []string{"reason"})
	for _, r := range []string{"decode", "version", "refused"} {
		m.deadLetters.WithLabelValues(r)
	}
	m.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "consumer_lag",
		Help: "Records in the partition not yet processed (high watermark minus the next offset)."}, []string{"partition"})
	m.committed = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "committed_offset",
		Help: "Last committed offset per partition: everything before it is in the database and needed by no open window."}, []string{"partition"})
	m.batchSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: ns + "batch_seconds",
		Help: "Time to process one polled batch: decode, write, window, commit.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)})
	m.eventToDB = prometheus.NewHistogram(prometheus.HistogramOpts{Name: ns + "event_to_db_seconds",
		Help: "Per batch, the largest delay from a reading's event time to its raw row being written.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)})
	m.reg.MustRegister(m.deadLetters, m.lag, m.committed, m.batchSeconds, m.eventToDB,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// addStats exposes the window and writer snapshots as gauges and counters computed at scrape time.
func (m *metrics) addStats(win func() window.Stats, db func() cratedb.Stats) {
	const ns = "fieldgate_central_"
	g := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: ns + name, Help: help}, f))
	}
	cf := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: ns + name, Help: help}, f))
	}
	g("watermark_delay_seconds", "At the last firing, the greatest processing time minus device watermark over devices with open windows.",
		func() float64 { return win().WatermarkDelaySeconds })
	g("open_windows", "Windows held in memory, all sizes.", func() float64 { return float64(win().OpenWindows) })
	g("devices", "Devices known to the windows.", func() float64 { return float64(win().Devices) })
	cf("windows_fired_total", "Aggregates produced by the windows (re-firings included).", func() float64 { return float64(win().Fired) })
	cf("idle_flushes_total", "Devices whose windows were closed by idleness.", func() float64 { return float64(win().IdleFlushes) })
	if db == nil {
		return
	}
	cf("database_short_counts_total", "Statements whose affected row count was below the rows sent (a row skipped by the database).",
		func() float64 { return float64(db().ShortCounts) })
	cf("database_insert_conflicts_total", "Statements whose plain INSERT met rows already stored (a replayed reading, a re-fired window) and that were written with the upsert instead.",
		func() float64 { return float64(db().InsertConflicts) })
	cf("database_rows_rejected_total", "Rows the database refused for good after bisecting a batch.", func() float64 { return float64(db().Rejected) })
	cf("database_write_seconds_total", "Time spent in write statements.", func() float64 { return db().WriteSeconds })
	cf("database_statements_total", "Write statements that succeeded.", func() float64 { return float64(db().Statements) })
}

// httpServer serves /metrics, /healthz (the process runs), /readyz (group joined, database answers), and the
// status page at / with its /api/status (see status.go).
func httpServer(m *metrics, ready func(context.Context) error, status func() statusDoc) *http.Server {
	mux := http.NewServeMux()
	mountPage(mux, status)
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

func itoa(p int32) string { return strconv.Itoa(int(p)) }
