package cratedb

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/fieldgate/fieldgate"
)

// Raw is one reading to store, with the gateway that sent it.
type Raw struct {
	Reading fieldgate.Reading
	Gateway string // the fieldgate-gateway record header; empty if none
}

// DeadLetter is a Kafka record that could not be loaded, keyed by (Topic, Partition, Offset).
type DeadLetter struct {
	Topic     string
	Partition int32
	Offset    int64
	Reason    string
	Payload   []byte
	Time      time.Time
}

// Rejected is a raw reading the database refused for good (after the batch was bisected down to it): Index is
// its position in the slice given to WriteRaw, Reason the database's error or "skipped".
type Rejected struct {
	Index  int
	Reason string
}

// Stats is a snapshot of the writer's counters since New.
type Stats struct {
	RawRows         uint64  // distinct readings written (a reading written twice counts twice)
	BatchDupes      uint64  // readings dropped before writing because their identity was already in the batch
	AggregateRows   uint64  // aggregate rows written
	DeadLetters     uint64  // dead-letter rows upserted
	Rejected        uint64  // rows refused by the database for good (raw readings and aggregates)
	ShortCounts     uint64  // statements whose affected row count was below the rows sent
	InsertConflicts uint64  // plain INSERTs that met a stored row (a replay, a re-fired window) and went to the upsert
	Errors          uint64  // statements that failed (connection lost, server error)
	Statements      uint64  // statements that succeeded
	WriteSeconds    float64 // time spent in write statements, cumulative
	Connected       bool    // the last statement or ping succeeded
	LastErrorTime   time.Time
	LastError       string
}

// Writer writes to one database over Connections+1 connections: Connections for raw readings, one for the rest.
// Its methods are safe for concurrent use. Concurrent WriteRaw calls share the raw connections statement by
// statement (a call's next statement takes whichever connection is free); the other calls run one at a time, on
// their own connection, beside them. Every write is idempotent, so a failed call may simply be made again.
type Writer struct {
	cfg    Config
	log    *slog.Logger
	tables Tables
	sizes  []time.Duration

	raw     *statement
	agg     map[time.Duration]*statement
	deadSQL string
	readSQL string
	cpSQL   string

	// conns[0:ctl] write raw readings: a statement holds slot i (taken from rawSlots) while it uses conns[i].
	// conns[ctl] serves every other call (under mu). So raw readings and aggregates can be written at the same
	// time.
	rawSlots chan int
	mu       sync.Mutex
	ctl      int
	conns    []*pgx.Conn
	dialect  Dialect // cfg.Dialect, or what Auto found at connect

	rawRows, batchDupes, aggRows, deadRows, rejected, shortCounts, errs, stmts, writeNanos atomic.Uint64
	insertConflicts                                                                        atomic.Uint64
	connected                                                                              atomic.Bool
	lastErr                                                                                atomic.Pointer[errAt]
}

type errAt struct {
	t   time.Time
	msg string
}

// New checks cfg and prepares the statements for the given window sizes; it does no I/O (the connection is made
// by the first call that needs it, or by Connect).
func New(cfg Config, sizes []time.Duration, log *slog.Logger) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.URL.Reveal() == "" {
		return nil, fieldgate.FieldErrorf("url", "is empty")
	}
	if err := checkSizes(sizes); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Writer{cfg: cfg, log: log, tables: tableNames(cfg.Schema, sizes), sizes: sizes, agg: map[time.Duration]*statement{},
		conns: make([]*pgx.Conn, cfg.Connections+1), ctl: cfg.Connections, dialect: cfg.Dialect}
	w.rawSlots = make(chan int, w.ctl)
	for i := range w.ctl {
		w.rawSlots <- i
	}
	w.raw = newStatement(upsertSQL(w.tables.Raw, rawColumns, []string{"device", "metric", "ts", "month"}, []string{"gateway"}))
	for _, s := range sizes {
		w.agg[s] = newStatement(upsertSQL(w.tables.Aggregates[s], aggColumns, []string{"device", "metric", "window_start", "month"}, aggColumnsUpdated))
	}
	w.deadSQL = upsertSQL(w.tables.DeadLetters, deadColumns, []string{"kafka_topic", "kafka_partition", "kafka_offset"}, []string{"reason"})
	w.cpSQL = upsertSQL(w.tables.Checkpoints, []column{{"consumer_group", "text"}, {"kafka_topic", "text"},
		{"kafka_partition", i4}, {"checkpoint", "text"}, {"updated_at", tstz}},
		[]string{"consumer_group", "kafka_topic", "kafka_partition"}, []string{"checkpoint", "updated_at"})
	w.readSQL = "SELECT ts, kind, value, value_text, quality, status, source_time, gateway_time FROM " + w.tables.Raw +
		" WHERE device = $1 AND metric = $2 AND ts >= $3 AND ts < $4 ORDER BY ts"
	return w, nil
}

type column struct{ name, typ string }

// SQL-standard type names, which CrateDB and PostgreSQL both parse (PostgreSQL's short aliases such as
// timestamptz or float8 are not all CrateDB's).
const (
	tstz = "timestamp with time zone"
	f8   = "double precision"
	i8   = "bigint"
	i4   = "integer"
	b1   = "boolean"
)

// The raw table's written columns. month is generated by the database.
var rawColumns = []column{
	{"device", "text"}, {"metric", "text"}, {"ts", tstz}, {"kind", "text"}, {"value", f8},
	{"value_text", "text"}, {"quality", "text"}, {"status", i8}, {"source_time", tstz},
	{"gateway_time", tstz}, {"gateway", "text"},
}

var aggColumns = []column{
	{"device", "text"}, {"metric", "text"}, {"window_start", tstz}, {"window_end", tstz},
	{"count_all", i8}, {"count_bad", i8}, {"count_numeric", i8}, {"value_min", f8},
	{"value_max", f8}, {"value_sum", f8}, {"value_mean", f8}, {"value_first", f8},
	{"value_last", f8}, {"last_text", "text"}, {"time_first", tstz}, {"time_last", tstz},
	{"is_final", b1}, {"updated_at", tstz},
}

// Every aggregate column but the key (and window_start, which month is generated from) is replaced on conflict:
// a window fired again supersedes the earlier result.
var aggColumnsUpdated = func() []string {
	var out []string
	for _, c := range aggColumns[3:] {
		out = append(out, c.name)
	}
	return out
}()

var deadColumns = []column{
	{"kafka_topic", "text"}, {"kafka_partition", i4}, {"kafka_offset", i8}, {"reason", "text"},
	{"payload", "text"}, {"received_at", tstz},
}

// upsertSQL builds the one static statement of a table:
//
//	INSERT INTO t (a, b, ...) SELECT * FROM UNNEST($1::text[], $2::timestamp with time zone[], ...)
//	ON CONFLICT (key...) DO UPDATE SET c = excluded.c, ...
//
// The SET list never names a key or partition column (CrateDB refuses to update those). It is never empty, so
// every row sent counts as affected — inserted or updated — and a short count means a row was skipped.
func upsertSQL(table string, cols []column, key, update []string) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.name)
	}
	b.WriteString(") SELECT * FROM UNNEST(")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d::%s[]", i+1, c.typ)
	}
	b.WriteString(") ON CONFLICT (" + strings.Join(key, ", ") + ") DO UPDATE SET ")
	for i, c := range update {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c + " = excluded." + c)
	}
	return b.String()
}

// Tables returns the qualified table names the writer uses.
func (w *Writer) Tables() Tables { return w.tables }

// Config returns the configuration with defaults applied.
func (w *Writer) Config() Config { return w.cfg }

// Connect opens the connection now, and creates the schema when CreateSchema is set. Other methods connect on
// demand; Connect lets the service fail early on a wrong URL.
func (w *Writer) Connect(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	conn, err := w.connLocked(ctx, w.ctl)
	if err != nil {
		return err
	}
	if !w.cfg.CreateSchema {
		return nil
	}
	ddl, err := Schema(w.dialect, w.cfg.Schema, w.cfg.Shards, w.sizes)
	if err != nil {
		return err
	}
	for _, stmt := range statements(ddl) {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			w.failLocked(w.ctl, err)
			return fmt.Errorf("create schema: %w", err)
		}
	}
	return nil
}

func (w *Writer) connLocked(ctx context.Context, i int) (*pgx.Conn, error) {
	if c := w.conns[i]; c != nil && !c.IsClosed() {
		return c, nil
	}
	pc, err := pgx.ParseConfig(w.cfg.URL.Reveal())
	if err != nil {
		// pgx's message may quote the URL, password included: do not wrap it.
		return nil, errors.New("database url: cannot be parsed")
	}
	if pc.ConnectTimeout == 0 {
		pc.ConnectTimeout = 10 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		w.noteErr(err)
		return nil, fmt.Errorf("connect to database %s:%d: %w", pc.Host, pc.Port, err)
	}
	w.conns[i] = conn
	if i == w.ctl && w.cfg.Dialect == Auto && w.dialect == Auto {
		w.dialect = Postgres
		if conn.PgConn().ParameterStatus("crate_version") != "" {
			w.dialect = CrateDB
		}
		w.log.Info("database dialect detected", "dialect", w.dialect)
	}
	return conn, nil
}

// failLocked records a failed statement and drops the connection unless the server answered with an error (the
// connection is then fine).
func (w *Writer) failLocked(i int, err error) {
	w.errs.Add(1)
	w.noteErr(err)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) && w.conns[i] != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = w.conns[i].Close(ctx)
		cancel()
		w.conns[i] = nil
	}
}

func (w *Writer) noteErr(err error) {
	w.connected.Store(false)
	w.lastErr.Store(&errAt{t: time.Now(), msg: err.Error()})
}

// Close closes the connection.
func (w *Writer) Close(ctx context.Context) error {
	for range w.ctl {
		<-w.rawSlots // wait for the raw statements in flight
	}
	defer func() {
		for i := range w.ctl {
			w.rawSlots <- i
		}
	}()
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for i, c := range w.conns {
		if c != nil {
			errs = append(errs, c.Close(ctx))
			w.conns[i] = nil
		}
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers. While a write is in progress it does not wait and reports the result of
// the last statement instead.
func (w *Writer) Ping(ctx context.Context) error {
	if !w.mu.TryLock() {
		if w.connected.Load() {
			return nil
		}
		return errors.New("database: last statement failed")
	}
	defer w.mu.Unlock()
	conn, err := w.connLocked(ctx, w.ctl)
	if err != nil {
		return err
	}
	if err := conn.Ping(ctx); err != nil {
		w.failLocked(w.ctl, err)
		return fmt.Errorf("ping database: %w", err)
	}
	w.connected.Store(true)
	return nil
}

// Stats returns a snapshot of the counters.
func (w *Writer) Stats() Stats {
	s := Stats{
		RawRows: w.rawRows.Load(), BatchDupes: w.batchDupes.Load(), AggregateRows: w.aggRows.Load(),
		DeadLetters: w.deadRows.Load(), Rejected: w.rejected.Load(), ShortCounts: w.shortCounts.Load(),
		InsertConflicts: w.insertConflicts.Load(), Errors: w.errs.Load(), Statements: w.stmts.Load(),
		WriteSeconds: float64(w.writeNanos.Load()) / 1e9, Connected: w.connected.Load(),
	}
	if e := w.lastErr.Load(); e != nil {
		s.LastErrorTime, s.LastError = e.t, e.msg
	}
	return s
}

type rawKey struct {
	device, metric string
	ms             int64
}

// WriteRaw upserts the readings into the raw table, BatchSize per statement. Readings are deduplicated by
// identity (device, metric, event time in ms) first, keeping the first; the first one written to the database is
// kept too (a later duplicate only refreshes the gateway column), so the stored value of a reading never changes.
//
// A statement whose affected count is short, or that fails with a data error (SQLSTATE class 22 or 23), is split
// in halves and written again down to single rows; a single row the database still refuses is returned in
// rejected (every index of its identity), and the rest is written. Any other error (connection lost, server
// down) is returned as err: then nothing may be taken as written, and the call should be repeated later with the
// same rows — the upserts make that safe.
func (w *Writer) WriteRaw(ctx context.Context, rows []Raw) (rejected []Rejected, err error) {
	if len(rows) == 0 {
		return nil, nil
	}
	first := make(map[rawKey]int, len(rows))
	var dupOf map[int][]int // first index → later indexes of the same identity
	distinct := make([]int, 0, len(rows))
	for i := range rows {
		r := &rows[i].Reading
		k := rawKey{r.Device, r.Metric, r.EventMs()}
		if j, ok := first[k]; ok {
			if dupOf == nil {
				dupOf = map[int][]int{}
			}
			dupOf[j] = append(dupOf[j], i)
			continue
		}
		first[k] = i
		distinct = append(distinct, i)
	}
	w.batchDupes.Add(uint64(len(rows) - len(distinct)))
	// Statements of at most BatchSize rows, each on a free raw connection (their keys are distinct, so they never
	// wait for each other's rows). A call of few rows still spreads over every connection.
	per := min(w.cfg.BatchSize, (len(distinct)+w.ctl-1)/w.ctl)
	rej := map[int]string{}
	var (
		rmu      sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	failed := func() bool {
		rmu.Lock()
		defer rmu.Unlock()
		return firstErr != nil
	}
	for start := 0; start < len(distinct) && !failed(); start += per {
		chunk := distinct[start:min(start+per, len(distinct))]
		var slot int
		select {
		case slot = <-w.rawSlots:
		case <-ctx.Done():
			rmu.Lock()
			firstErr = cmp.Or(firstErr, ctx.Err())
			rmu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { w.rawSlots <- slot }()
			r, err := w.insertLocked(ctx, slot, w.raw, chunk, func(idx []int) []any { return rawArgs(rows, idx) })
			rmu.Lock()
			defer rmu.Unlock()
			if err != nil {
				firstErr = cmp.Or(firstErr, err)
				return
			}
			for i, why := range r {
				rej[i] = why
			}
			w.rawRows.Add(uint64(len(chunk) - len(r)))
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("write %d readings to %s: %w", len(distinct), w.tables.Raw, firstErr)
	}
	for i, why := range rej {
		rejected = append(rejected, Rejected{Index: i, Reason: why})
		for _, j := range dupOf[i] {
			rejected = append(rejected, Rejected{Index: j, Reason: why})
		}
	}
	w.rejected.Add(uint64(len(rej)))
	return rejected, nil
}

// statement is the write of one table: the upsert, and the same INSERT without ON CONFLICT, tried first.
type statement struct {
	upsert, insert string
	upsertNext     atomic.Int64 // statements to write with the upsert before trying the INSERT again
}

func newStatement(upsert string) *statement {
	insert, _, _ := strings.Cut(upsert, " ON CONFLICT ")
	return &statement{upsert: upsert, insert: insert}
}

// conflictUpserts is how many statements of a table go straight to the upsert after a plain INSERT met a stored
// row: a replay (a restart, a rebalance, a gateway resending) spans several batches, and live windows re-fire.
const conflictUpserts = 16

// insertLocked writes the rows idx (all distinct keys) with st's plain INSERT, and with its upsert if that meets
// a row already stored or a refused row — or straight with the upsert for a while after such a conflict. The
// plain INSERT costs PostgreSQL about 30 % less CPU per row than the upsert, whose speculative insertion probes
// the key first; the upsert alone decides what an existing row becomes, so the result is the same either way.
// PostgreSQL refuses the whole INSERT on a duplicate key (nothing of it stays); CrateDB skips the duplicates and
// reports a short count. Both lead to the upsert of the whole statement, which settles it idempotently.
func (w *Writer) insertLocked(ctx context.Context, slot int, st *statement, idx []int, args func([]int) []any) (map[int]string, error) {
	if st.upsertNext.Load() > 0 {
		st.upsertNext.Add(-1)
		return w.upsertLocked(ctx, slot, st.upsert, idx, args)
	}
	conn, err := w.connLocked(ctx, slot)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	tag, err := conn.Exec(ctx, st.insert, args(idx)...)
	w.writeNanos.Add(uint64(time.Since(t0)))
	switch {
	case err == nil && tag.RowsAffected() == int64(len(idx)):
		w.stmts.Add(1)
		w.connected.Store(true)
		return nil, nil
	case err != nil && !isDataError(err):
		w.failLocked(slot, err)
		return nil, err
	}
	w.insertConflicts.Add(1)
	st.upsertNext.Store(conflictUpserts)
	return w.upsertLocked(ctx, slot, st.upsert, idx, args)
}

// upsertLocked runs stmt over the rows idx (all distinct keys) and bisects on a short count or a data error.
func (w *Writer) upsertLocked(ctx context.Context, slot int, stmt string, idx []int, args func([]int) []any) (map[int]string, error) {
	conn, err := w.connLocked(ctx, slot)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	tag, err := conn.Exec(ctx, stmt, args(idx)...)
	w.writeNanos.Add(uint64(time.Since(t0)))
	if err == nil && tag.RowsAffected() == int64(len(idx)) {
		w.stmts.Add(1)
		w.connected.Store(true)
		return nil, nil
	}
	var why string
	if err != nil {
		if !isDataError(err) {
			w.failLocked(slot, err)
			return nil, err
		}
		w.errs.Add(1)
		w.connected.Store(true) // the server answered
		why = err.Error()
	} else {
		w.shortCounts.Add(1)
		w.stmts.Add(1)
		w.connected.Store(true)
		why = fmt.Sprintf("skipped by the database (%d of %d rows affected)", tag.RowsAffected(), len(idx))
		w.log.Warn("short affected row count; bisecting the batch", "sent", len(idx), "affected", tag.RowsAffected())
	}
	if len(idx) == 1 {
		if err == nil {
			// A skipped single row: CrateDB gives no reason. Try once more before giving up on it.
			tag, err2 := conn.Exec(ctx, stmt, args(idx)...)
			if err2 == nil && tag.RowsAffected() == 1 {
				w.stmts.Add(1)
				return nil, nil
			}
			if err2 != nil && !isDataError(err2) {
				w.failLocked(slot, err2)
				return nil, err2
			}
		}
		w.log.Warn("row refused by the database", "reason", why)
		return map[int]string{idx[0]: why}, nil
	}
	h := len(idx) / 2
	a, err := w.upsertLocked(ctx, slot, stmt, idx[:h], args)
	if err != nil {
		return nil, err
	}
	b, err := w.upsertLocked(ctx, slot, stmt, idx[h:], args)
	if err != nil {
		return nil, err
	}
	for k, v := range b {
		if a == nil {
			a = map[int]string{}
		}
		a[k] = v
	}
	return a, nil
}

// isDataError reports whether the server refused the statement because of the data in it (data exception or
// integrity constraint violation): bisecting then finds the rows to blame. Anything else is worth a retry.
func isDataError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || len(pe.Code) < 2 {
		return false
	}
	switch pe.Code[:2] {
	case "22", "23":
		return true
	}
	return false
}

func rawArgs(rows []Raw, idx []int) []any {
	n := len(idx)
	device, metric, kind, quality, gateway := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ts, gwTime := make([]time.Time, n), make([]time.Time, n)
	srcTime := make([]pgtype.Timestamptz, n)
	value := make([]pgtype.Float8, n)
	text := make([]pgtype.Text, n)
	status := make([]int64, n)
	for j, i := range idx {
		r := &rows[i].Reading
		device[j], metric[j] = r.Device, r.Metric
		ts[j] = fieldgate.TruncateMs(r.EventTime())
		kind[j] = r.Value.Kind().String()
		if f, ok := r.Value.Number(); ok {
			value[j] = pgtype.Float8{Float64: f, Valid: true}
		}
		if r.Value.Kind() != fieldgate.KindFloat {
			text[j] = pgtype.Text{String: valueText(r.Value), Valid: true}
		}
		quality[j] = r.Quality.String()
		status[j] = int64(r.Status)
		if !r.SourceTime.IsZero() {
			srcTime[j] = pgtype.Timestamptz{Time: fieldgate.TruncateMs(r.SourceTime), Valid: true}
		}
		gwTime[j] = fieldgate.TruncateMs(r.GatewayTime)
		gateway[j] = rows[i].Gateway
	}
	return []any{textArray(device), textArray(metric), timeArray(ts), textArray(kind), float8Array(value), nullTextArray(text),
		textArray(quality), int8Array(status), nullTimeArray(srcTime), timeArray(gwTime), textArray(gateway)}
}

// valueText is the exact text of a value: "42", "true", "open", "12.5" (Value.String, but strings unquoted).
func valueText(v fieldgate.Value) string {
	if v.Kind() == fieldgate.KindString {
		return v.Str()
	}
	return v.String()
}

type aggKey struct {
	device, metric string
	start          int64
}

// WriteAggregates upserts aggregates into the table of their size, one statement per size and BatchSize rows. A
// window given twice is written once, from its last occurrence (a later firing supersedes an earlier one). A row
// the database refuses for good (found by bisecting, as in WriteRaw) is logged, counted in Stats.Rejected and
// dropped; any other error is returned, and the call may be repeated.
//
// Min, Max, Sum and Mean are stored as NULL when NumericCount is 0; First and Last as doubles when numeric (else
// NULL), and Last also as text (last_text) when it is an int, bool or string, so the last state of a bool or
// string metric is kept; all four are NULL when the window holds no usable reading.
func (w *Writer) WriteAggregates(ctx context.Context, aggs []fieldgate.Aggregate) error {
	if len(aggs) == 0 {
		return nil
	}
	bySize := map[time.Duration][]int{}
	last := map[time.Duration]map[aggKey]int{}
	for i := range aggs {
		a := &aggs[i]
		if _, ok := w.agg[a.Size]; !ok {
			return fmt.Errorf("write aggregate of %s/%s: no table for window size %s", a.Device, a.Metric, a.Size)
		}
		m := last[a.Size]
		if m == nil {
			m = map[aggKey]int{}
			last[a.Size] = m
		}
		k := aggKey{a.Device, a.Metric, a.Start.UnixMilli()}
		if j, ok := m[k]; ok {
			// Replace the earlier occurrence in place, keeping the order of first appearance.
			for n, x := range bySize[a.Size] {
				if x == j {
					bySize[a.Size][n] = i
				}
			}
			m[k] = i
			continue
		}
		m[k] = i
		bySize[a.Size] = append(bySize[a.Size], i)
	}
	now := fieldgate.TruncateMs(time.Now())
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, size := range w.sizes {
		idx := bySize[size]
		for start := 0; start < len(idx); start += w.cfg.BatchSize {
			end := min(start+w.cfg.BatchSize, len(idx))
			rej, err := w.insertLocked(ctx, w.ctl, w.agg[size], idx[start:end], func(ix []int) []any { return aggArgs(aggs, ix, now) })
			if err != nil {
				return fmt.Errorf("write %d aggregates to %s: %w", end-start, w.tables.Aggregates[size], err)
			}
			for i, why := range rej {
				w.log.Error("aggregate refused by the database; dropped", "device", aggs[i].Device, "metric", aggs[i].Metric,
					"window_start", aggs[i].Start, "size", size, "reason", why)
			}
			w.rejected.Add(uint64(len(rej)))
			w.aggRows.Add(uint64(end - start - len(rej)))
		}
	}
	return nil
}

func aggArgs(aggs []fieldgate.Aggregate, idx []int, now time.Time) []any {
	n := len(idx)
	device, metric := make([]string, n), make([]string, n)
	start, end, updated := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	count, bad, numeric := make([]int64, n), make([]int64, n), make([]int64, n)
	vmin, vmax, vsum, vmean, vfirst, vlast := make([]pgtype.Float8, n), make([]pgtype.Float8, n), make([]pgtype.Float8, n),
		make([]pgtype.Float8, n), make([]pgtype.Float8, n), make([]pgtype.Float8, n)
	lastText := make([]pgtype.Text, n)
	tFirst, tLast := make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
	final := make([]bool, n)
	num := func(f float64, ok bool) pgtype.Float8 { return pgtype.Float8{Float64: f, Valid: ok} }
	ts := func(t time.Time) pgtype.Timestamptz {
		return pgtype.Timestamptz{Time: fieldgate.TruncateMs(t), Valid: true}
	}
	for j, i := range idx {
		a := &aggs[i]
		device[j], metric[j] = a.Device, a.Metric
		start[j], end[j], updated[j] = fieldgate.TruncateMs(a.Start), fieldgate.TruncateMs(a.End), now
		count[j], bad[j], numeric[j] = a.Count, a.BadCount, a.NumericCount
		has := a.NumericCount > 0
		vmin[j], vmax[j], vsum[j], vmean[j] = num(a.Min, has), num(a.Max, has), num(a.Sum, has), num(a.Mean, has)
		// In a window of Bad readings only, First and Last are the zero Value, which is not a 0 to store.
		if a.HasFirstLast() {
			vfirst[j], vlast[j] = num(a.First.Number()), num(a.Last.Number())
			if a.Last.Kind() != fieldgate.KindFloat {
				lastText[j] = pgtype.Text{String: valueText(a.Last), Valid: true}
			}
			tFirst[j], tLast[j] = ts(a.FirstTime), ts(a.LastTime)
		}
		final[j] = a.Final
	}
	return []any{textArray(device), textArray(metric), timeArray(start), timeArray(end), int8Array(count), int8Array(bad),
		int8Array(numeric), float8Array(vmin), float8Array(vmax), float8Array(vsum), float8Array(vmean), float8Array(vfirst),
		float8Array(vlast), nullTextArray(lastText), nullTimeArray(tFirst), nullTimeArray(tLast), boolArray(final), timeArray(updated)}
}

// WriteDeadLetters upserts dead letters keyed by (topic, partition, offset): a record dead-lettered again after a
// replay replaces its row. An error means the call should be repeated.
func (w *Writer) WriteDeadLetters(ctx context.Context, dls []DeadLetter) error {
	if len(dls) == 0 {
		return nil
	}
	type key struct {
		t string
		p int32
		o int64
	}
	seen := map[key]bool{}
	var idx []int
	for i, d := range dls {
		k := key{d.Topic, d.Partition, d.Offset}
		if !seen[k] {
			seen[k] = true
			idx = append(idx, i)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	rej, err := w.upsertLocked(ctx, w.ctl, w.deadSQL, idx, func(ix []int) []any {
		n := len(ix)
		topic, reason, payload := make([]string, n), make([]string, n), make([]string, n)
		part, off, at := make([]int32, n), make([]int64, n), make([]time.Time, n)
		for j, i := range ix {
			d := &dls[i]
			topic[j], part[j], off[j] = d.Topic, d.Partition, d.Offset
			reason[j] = strings.ToValidUTF8(d.Reason, "?")
			payload[j] = base64.StdEncoding.EncodeToString(d.Payload)
			at[j] = fieldgate.TruncateMs(d.Time)
			if at[j].IsZero() {
				at[j] = fieldgate.TruncateMs(time.Now())
			}
		}
		return []any{topic, part, off, reason, payload, at}
	})
	if err != nil {
		return fmt.Errorf("write %d dead letters to %s: %w", len(idx), w.tables.DeadLetters, err)
	}
	if len(rej) > 0 {
		return fmt.Errorf("write dead letters to %s: %d refused by the database", w.tables.DeadLetters, len(rej))
	}
	w.deadRows.Add(uint64(len(idx)))
	return nil
}

// ReadWindow returns the stored readings of one series with event time in [start, end), in event-time order —
// what a window over that range aggregates. On CrateDB it first refreshes the raw table, so rows just written
// are seen. Gateway is not returned.
func (w *Writer) ReadWindow(ctx context.Context, device, metric string, start, end time.Time) ([]fieldgate.Reading, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	conn, err := w.connLocked(ctx, w.ctl)
	if err != nil {
		return nil, err
	}
	if w.dialect == CrateDB {
		if _, err := conn.Exec(ctx, "REFRESH TABLE "+w.tables.Raw); err != nil {
			w.failLocked(w.ctl, err)
			return nil, fmt.Errorf("refresh %s: %w", w.tables.Raw, err)
		}
	}
	rows, err := conn.Query(ctx, w.readSQL, device, metric, fieldgate.TruncateMs(start), fieldgate.TruncateMs(end))
	if err != nil {
		w.failLocked(w.ctl, err)
		return nil, fmt.Errorf("read %s/%s from %s: %w", device, metric, w.tables.Raw, err)
	}
	var out []fieldgate.Reading
	for rows.Next() {
		var (
			ts, gw        time.Time
			kind, quality string
			value         pgtype.Float8
			text          pgtype.Text
			status        int64
			src           pgtype.Timestamptz
		)
		if err := rows.Scan(&ts, &kind, &value, &text, &quality, &status, &src, &gw); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read %s/%s from %s: %w", device, metric, w.tables.Raw, err)
		}
		r := fieldgate.Reading{Device: device, Metric: metric, Status: uint32(status), GatewayTime: gw.UTC()}
		if src.Valid {
			r.SourceTime = src.Time.UTC()
		}
		if r.Quality, err = fieldgate.ParseQuality(quality); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read %s/%s at %s: %w", device, metric, ts, err)
		}
		if r.Value, err = parseValue(kind, value, text); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read %s/%s at %s: %w", device, metric, ts, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		w.failLocked(w.ctl, err)
		return nil, fmt.Errorf("read %s/%s from %s: %w", device, metric, w.tables.Raw, err)
	}
	w.connected.Store(true)
	return out, nil
}

func parseValue(kind string, value pgtype.Float8, text pgtype.Text) (fieldgate.Value, error) {
	k, err := fieldgate.ParseKind(kind)
	if err != nil {
		return fieldgate.Value{}, err
	}
	switch k {
	case fieldgate.KindFloat:
		if !value.Valid {
			return fieldgate.Float(math.NaN()), nil
		}
		return fieldgate.Float(value.Float64), nil
	case fieldgate.KindInt:
		i, err := strconv.ParseInt(text.String, 10, 64)
		return fieldgate.Int(i), err
	case fieldgate.KindBool:
		b, err := strconv.ParseBool(text.String)
		return fieldgate.Bool(b), err
	}
	return fieldgate.String(text.String), nil
}

// Checkpoint is the consumer's opaque state of one Kafka partition (JSON), stored by SaveCheckpoints.
type Checkpoint struct {
	Partition int32
	Data      []byte
}

// SaveCheckpoints upserts the checkpoints of group's partitions of topic. An error means none may be taken as
// saved (so the offsets they go with must not be committed); the call may be repeated.
func (w *Writer) SaveCheckpoints(ctx context.Context, group, topic string, cps []Checkpoint) error {
	if len(cps) == 0 {
		return nil
	}
	idx := make([]int, len(cps))
	for i := range idx {
		idx[i] = i
	}
	now := fieldgate.TruncateMs(time.Now())
	w.mu.Lock()
	defer w.mu.Unlock()
	rej, err := w.upsertLocked(ctx, w.ctl, w.cpSQL, idx, func(ix []int) []any {
		n := len(ix)
		g, t, data, at := make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n)
		part := make([]int32, n)
		for j, i := range ix {
			g[j], t[j], part[j], data[j], at[j] = group, topic, cps[i].Partition, string(cps[i].Data), now
		}
		return []any{g, t, part, data, at}
	})
	if err == nil && len(rej) > 0 {
		err = fmt.Errorf("%d refused by the database", len(rej))
	}
	if err != nil {
		return fmt.Errorf("save checkpoints of group %s topic %s: %w", group, topic, err)
	}
	return nil
}

// LoadCheckpoints returns the stored checkpoints of group's partitions of topic, by partition (refreshing the
// table first on CrateDB).
func (w *Writer) LoadCheckpoints(ctx context.Context, group, topic string) (map[int32][]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	conn, err := w.connLocked(ctx, w.ctl)
	if err != nil {
		return nil, err
	}
	if w.dialect == CrateDB {
		if _, err := conn.Exec(ctx, "REFRESH TABLE "+w.tables.Checkpoints); err != nil {
			w.failLocked(w.ctl, err)
			return nil, fmt.Errorf("refresh %s: %w", w.tables.Checkpoints, err)
		}
	}
	rows, err := conn.Query(ctx, "SELECT kafka_partition, checkpoint FROM "+w.tables.Checkpoints+
		" WHERE consumer_group = $1 AND kafka_topic = $2", group, topic)
	if err != nil {
		w.failLocked(w.ctl, err)
		return nil, fmt.Errorf("load checkpoints of group %s topic %s: %w", group, topic, err)
	}
	out := map[int32][]byte{}
	for rows.Next() {
		var p int32
		var data string
		if err := rows.Scan(&p, &data); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load checkpoints of group %s topic %s: %w", group, topic, err)
		}
		out[p] = []byte(data)
	}
	if err := rows.Err(); err != nil {
		w.failLocked(w.ctl, err)
		return nil, fmt.Errorf("load checkpoints of group %s topic %s: %w", group, topic, err)
	}
	return out, nil
}
