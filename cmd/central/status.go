package main

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"sort"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/fieldgate/fieldgate/cratedb"
	"github.com/fieldgate/fieldgate/internal/webui"
	"github.com/fieldgate/fieldgate/window"
)

//go:embed ui
var pageFiles embed.FS

// statusDoc is /api/status: what /metrics says, as one JSON document for the status page at /. It is built from
// the same snapshots: the metrics registry (per-partition gauges, the loader's counters) and the window and
// database Stats. Counters are totals since start; the page computes rates from two documents.
type statusDoc struct {
	Version       string            `json:"version"`
	Started       time.Time         `json:"started"`
	UptimeSeconds float64           `json:"uptime_seconds"`
	Partitions    []partitionStatus `json:"partitions"` // assigned to this instance, by number
	Records       recordCounts      `json:"records"`
	Windows       windowStatus      `json:"windows"`
	Database      *databaseStatus   `json:"database"` // null in demo mode (no database)
	// DeadLetters counts the records written to the dead-letter table since start, by reason: decode, version,
	// refused. The rows themselves are in the table.
	DeadLetters map[string]float64 `json:"dead_letters"`
}

type partitionStatus struct {
	Partition       int32   `json:"partition"`
	Lag             float64 `json:"lag"`              // records not yet processed
	CommittedOffset float64 `json:"committed_offset"` // -1 before the first commit
}

type recordCounts struct {
	Consumed   float64 `json:"consumed"`
	Written    float64 `json:"written"` // readings upserted into the raw table
	Late       float64 `json:"late"`
	Duplicates float64 `json:"duplicates"`
}

type windowStatus struct {
	WatermarkDelaySeconds float64 `json:"watermark_delay_seconds"`
	Open                  int64   `json:"open"`
	Devices               int64   `json:"devices"`
	Fired                 uint64  `json:"fired"`
	Recomputed            float64 `json:"recomputed"`
	AggregatesWritten     float64 `json:"aggregates_written"`
}

type databaseStatus struct {
	Connected     bool      `json:"connected"`
	RawRows       uint64    `json:"raw_rows"`
	AggregateRows uint64    `json:"aggregate_rows"`
	Statements    uint64    `json:"statements"`
	WriteSeconds  float64   `json:"write_seconds"`
	Errors        float64   `json:"errors"` // failed database calls (each retried)
	RowsRejected  uint64    `json:"rows_rejected"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// status builds the document; db is nil in demo mode.
func (m *metrics) status(started time.Time, win func() window.Stats, db func() cratedb.Stats) statusDoc {
	fams, _ := m.reg.Gather()
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	const ns = "fieldgate_central_"
	value := func(name string) float64 {
		if f := byName[ns+name]; f != nil && len(f.Metric) > 0 {
			return metricValue(f.Metric[0])
		}
		return 0
	}
	// byLabel returns the family's values by their one label's value.
	byLabel := func(name string) map[string]float64 {
		out := map[string]float64{}
		if f := byName[ns+name]; f != nil {
			for _, mt := range f.Metric {
				if len(mt.Label) > 0 {
					out[mt.Label[0].GetValue()] = metricValue(mt)
				}
			}
		}
		return out
	}
	now := time.Now()
	d := statusDoc{Version: versionString(), Started: started, UptimeSeconds: now.Sub(started).Seconds(),
		Records:     recordCounts{Consumed: value("records_consumed_total"), Written: value("readings_written_total"), Late: value("readings_late_total"), Duplicates: value("readings_duplicate_total")},
		DeadLetters: byLabel("dead_letters_total"),
		Partitions:  []partitionStatus{},
	}
	committed := byLabel("committed_offset")
	for p, lag := range byLabel("consumer_lag") {
		n, _ := strconv.Atoi(p)
		c, ok := committed[p]
		if !ok {
			c = -1
		}
		d.Partitions = append(d.Partitions, partitionStatus{Partition: int32(n), Lag: lag, CommittedOffset: c})
	}
	sort.Slice(d.Partitions, func(i, j int) bool { return d.Partitions[i].Partition < d.Partitions[j].Partition })
	if win != nil {
		ws := win()
		d.Windows = windowStatus{WatermarkDelaySeconds: ws.WatermarkDelaySeconds, Open: ws.OpenWindows, Devices: ws.Devices, Fired: ws.Fired}
	}
	d.Windows.Recomputed, d.Windows.AggregatesWritten = value("windows_recomputed_total"), value("aggregates_written_total")
	if db != nil {
		s := db()
		d.Database = &databaseStatus{Connected: s.Connected, RawRows: s.RawRows, AggregateRows: s.AggregateRows, Statements: s.Statements,
			WriteSeconds: s.WriteSeconds, Errors: value("database_errors_total"), RowsRejected: s.Rejected,
			LastError: s.LastError, LastErrorTime: s.LastErrorTime}
	}
	return d
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// mountPage registers the status page (GET /, its assets under /ui/) and GET /api/status (statusDoc).
func mountPage(mux *http.ServeMux, status func() statusDoc) {
	ui, _ := fs.Sub(pageFiles, "ui")
	webui.Mount(mux, ui)
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(status())
	})
}
