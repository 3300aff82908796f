package cratedb

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/pgtest"
)

var update = flag.Bool("update", false, "rewrite the golden schema files in testdata/")

var sizes = []time.Duration{time.Minute, time.Hour}

func TestSchemaGolden(t *testing.T) {
	for _, d := range []Dialect{CrateDB, Postgres} {
		got, err := Schema(d, "", 6, sizes)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "schema_"+string(d)+".sql")
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s schema differs from %s (run go test ./cratedb -run Golden -update to accept):\n%s", d, path, got)
		}
	}
}

func TestSchemaCrateDBRules(t *testing.T) {
	ddl, err := Schema(CrateDB, "doc", 3, sizes)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS doc.readings (", "CREATE TABLE IF NOT EXISTS doc.readings_1m (",
		"CREATE TABLE IF NOT EXISTS doc.readings_1h (", "CREATE TABLE IF NOT EXISTS doc.dead_letters (",
		"CLUSTERED INTO 3 SHARDS PARTITIONED BY (month)", "GENERATED ALWAYS AS date_trunc('month', ts)",
		"PRIMARY KEY (device, metric, ts, month)", "PRIMARY KEY (device, metric, window_start, month)",
	} {
		if !strings.Contains(ddl, want) {
			t.Errorf("CrateDB DDL lacks %q", want)
		}
	}
	if n := len(statements(ddl)); n != 5 {
		t.Errorf("CrateDB DDL has %d statements, want 5", n)
	}
	// CrateDB refuses DO UPDATE of key columns, partition columns and the columns a partition column is
	// generated from.
	w, err := New(Config{URL: "postgres://x@127.0.0.1:1/x", Dialect: CrateDB}, sizes, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range append([]string{w.raw.upsert, w.deadSQL}, w.agg[time.Minute].upsert, w.agg[time.Hour].upsert) {
		if strings.Contains(stmt, "?") {
			t.Errorf("statement uses ? placeholders: %s", stmt)
		}
		_, set, ok := strings.Cut(stmt, "DO UPDATE SET ")
		if !ok || set == "" {
			t.Fatalf("statement without DO UPDATE SET: %s", stmt)
		}
		for _, a := range strings.Split(set, ", ") {
			col, _, _ := strings.Cut(a, " = ")
			switch col {
			case "device", "metric", "ts", "month", "window_start", "kafka_topic", "kafka_partition", "kafka_offset":
				t.Errorf("statement updates key or partition column %s: %s", col, stmt)
			}
		}
	}
}

func TestSizeName(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute: "1m", time.Hour: "1h", 24 * time.Hour: "1d", 15 * time.Minute: "15m", 30 * time.Second: "30s",
		1500 * time.Millisecond: "1500ms", 90 * time.Minute: "90m",
	} {
		if got := SizeName(d); got != want {
			t.Errorf("SizeName(%s) = %s, want %s", d, got, want)
		}
	}
	if _, err := Schema(Postgres, "", 0, []time.Duration{time.Minute, 60 * time.Second}); err == nil {
		t.Error("two equal sizes accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Dialect: "mysql"}, "dialect"},
		{Config{Schema: "Doc; drop"}, "schema"},
		{Config{Shards: -1}, "shards"},
		{Config{BatchSize: 1 << 20}, "batch_size"},
		{Config{Linger: -time.Second}, "linger"},
		{Config{URL: "mysql://root:hunter2@db/x"}, "url"},
	} {
		err := tc.cfg.Validate()
		var fe *fieldgate.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: got %v, want an error at %s", tc.cfg, err, tc.field)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	if err := (Config{URL: "postgres://a@b/c", Dialect: Postgres, Shards: 2, BatchSize: 10}).Validate(); err != nil {
		t.Error(err)
	}
}

func newTestWriter(t *testing.T, batch int) (*Writer, *pgx.Conn) {
	t.Helper()
	dbURL := pgtest.NewDB(t, "")
	w, err := New(Config{URL: fieldgate.Secret(dbURL), Dialect: Postgres, CreateSchema: true, BatchSize: batch}, sizes, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := w.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	// Creating the schema twice is harmless.
	if err := w.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return w, c
}

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func reading(dev, metric string, at time.Duration, v fieldgate.Value) fieldgate.Reading {
	return fieldgate.Reading{Device: dev, Metric: metric, Value: v, SourceTime: t0.Add(at), GatewayTime: t0.Add(at + time.Second)}
}

func count(t *testing.T, c *pgx.Conn, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := c.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestWriteRawIntegration(t *testing.T) {
	w, c := newTestWriter(t, 3)
	ctx := context.Background()
	in := []Raw{
		{Reading: reading("p1/press", "pressure", 0, fieldgate.Float(12.5)), Gateway: "gw1"},
		{Reading: reading("p1/press", "pressure", 1500*time.Microsecond, fieldgate.Float(13)), Gateway: "gw1"},
		{Reading: reading("p1/press", "count", 0, fieldgate.Int(math.MaxInt64)), Gateway: "gw1"},
		{Reading: reading("p1/press", "running", 0, fieldgate.Bool(true)), Gateway: "gw1"},
		{Reading: reading("p1/press", "state", 0, fieldgate.String("open ' \" \\ ünïcode")), Gateway: "gw1"},
		{Reading: reading("p1/press", "nan", 0, fieldgate.Float(math.NaN())), Gateway: "gw1"},
		{Reading: reading("p1/press", "inf", 0, fieldgate.Float(math.Inf(-1))), Gateway: "gw1"},
		// The same reading again, within the batch, with another value: the first is kept.
		{Reading: reading("p1/press", "pressure", 0, fieldgate.Float(99)), Gateway: "gw1"},
		// Same millisecond as the second reading: the same identity once truncated.
		{Reading: reading("p1/press", "pressure", 1900*time.Microsecond, fieldgate.Float(98)), Gateway: "gw1"},
	}
	noSource := reading("p1/press", "pressure", 2*time.Second, fieldgate.Float(7))
	noSource.SourceTime = time.Time{}
	noSource.Quality = fieldgate.Bad
	noSource.Status = 0x80000000
	in = append(in, Raw{Reading: noSource})
	rej, err := w.WriteRaw(ctx, in)
	if err != nil || len(rej) != 0 {
		t.Fatalf("WriteRaw: %v, rejected %v", err, rej)
	}
	if n := count(t, c, "SELECT count(*) FROM readings"); n != 8 {
		t.Fatalf("raw table holds %d rows, want 8", n)
	}
	// Written again (a replay), with other values: nothing changes.
	again := append([]Raw(nil), in...)
	again[0].Reading.Value = fieldgate.Float(-1)
	if rej, err := w.WriteRaw(ctx, again); err != nil || len(rej) != 0 {
		t.Fatalf("WriteRaw again: %v, rejected %v", err, rej)
	}
	if n := count(t, c, "SELECT count(*) FROM readings"); n != 8 {
		t.Fatalf("raw table holds %d rows after a replay, want 8", n)
	}
	got, err := w.ReadWindow(ctx, "p1/press", "pressure", t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("ReadWindow: %d readings, want 3", len(got))
	}
	if !got[0].Value.Equal(fieldgate.Float(12.5)) || !got[1].Value.Equal(fieldgate.Float(13)) {
		t.Errorf("first written value not kept: %v %v", got[0].Value, got[1].Value)
	}
	if !got[1].SourceTime.Equal(t0.Add(time.Millisecond)) {
		t.Errorf("source time %s, want truncated to the millisecond", got[1].SourceTime)
	}
	if got[2].Quality != fieldgate.Bad || got[2].Status != 0x80000000 || !got[2].SourceTime.IsZero() || !got[2].EventTime().Equal(t0.Add(3*time.Second)) {
		t.Errorf("reading without source time came back as %+v", got[2])
	}
	for metric, want := range map[string]fieldgate.Value{
		"count": fieldgate.Int(math.MaxInt64), "running": fieldgate.Bool(true), "state": fieldgate.String("open ' \" \\ ünïcode"),
		"nan": fieldgate.Float(math.NaN()), "inf": fieldgate.Float(math.Inf(-1)),
	} {
		got, err := w.ReadWindow(ctx, "p1/press", metric, t0, t0.Add(time.Minute))
		if err != nil || len(got) != 1 || !got[0].Value.Equal(want) {
			t.Errorf("%s: got %v (%v), want %v", metric, got, err, want)
		}
	}
	if n := count(t, c, "SELECT count(*) FROM readings WHERE kind = 'int' AND value_text = '9223372036854775807'"); n != 1 {
		t.Error("int value not kept exactly in value_text")
	}
	s := w.Stats()
	// The replay's 8 readings went as 3 statements of at most 3 rows, each on a free connection. The first met
	// the stored readings with its plain INSERT and went through the upsert; so did any other that started before
	// that conflict was recorded, and the rest went straight to the upsert.
	if s.RawRows != 16 || s.BatchDupes != 4 || s.ShortCounts != 0 || s.InsertConflicts < 1 || s.InsertConflicts > 3 || !s.Connected {
		t.Errorf("stats %+v", s)
	}
}

// Concurrent WriteRaw calls share the raw connections. Calls that overlap (a replay racing the original, two
// instances during a rebalance) may meet each other's rows: the plain INSERT then waits and falls back to the
// upsert, or PostgreSQL breaks a deadlock by failing one statement — a retryable error, as for the loader. Once
// every call has succeeded, each reading is stored once with its value.
func TestConcurrentWriteRawIntegration(t *testing.T) {
	w, c := newTestWriter(t, 500)
	ctx := context.Background()
	var in []Raw
	for i := range 3000 {
		in = append(in, Raw{Reading: reading(fmt.Sprintf("dev-%02d", i%50), "m", time.Duration(i/50)*time.Second, fieldgate.Float(float64(i)))})
	}
	var wg sync.WaitGroup
	for g := range 4 {
		rows := slices.Clone(in)
		if g%2 == 1 {
			slices.Reverse(rows)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; ; attempt++ {
				rej, err := w.WriteRaw(ctx, rows)
				if err == nil {
					if len(rej) > 0 {
						t.Errorf("call %d: rejected %v", g, rej[:1])
					}
					return
				}
				if isDataError(err) || attempt == 10 {
					t.Errorf("call %d, attempt %d: %v", g, attempt+1, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := count(t, c, "SELECT count(*) FROM readings"); n != int64(len(in)) {
		t.Errorf("raw table holds %d rows, want %d", n, len(in))
	}
	if n := count(t, c, "SELECT count(*) FROM readings WHERE value <> (extract(epoch from ts - $1) * 50 + substr(device, 5)::int)", t0); n != 0 {
		t.Errorf("%d rows hold another reading's value", n)
	}
	if s := w.Stats(); s.InsertConflicts == 0 {
		t.Errorf("no plain INSERT met another call's rows: %+v", s)
	}
}

// CrateDB skips a row that fails inside a multi-row insert and reports a smaller count. A BEFORE INSERT trigger
// returning NULL does the same in PostgreSQL: the writer must notice, find the row, and write the rest.
func TestShortCountIntegration(t *testing.T) {
	w, c := newTestWriter(t, 100)
	ctx := context.Background()
	for _, q := range []string{
		`CREATE FUNCTION skip_poison() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN IF NEW.device = 'poison' THEN RETURN NULL; END IF; RETURN NEW; END $$`,
		`CREATE TRIGGER skip_poison BEFORE INSERT ON readings FOR EACH ROW EXECUTE FUNCTION skip_poison()`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var in []Raw
	for i := range 50 {
		in = append(in, Raw{Reading: reading("ok", "m", time.Duration(i)*time.Second, fieldgate.Float(float64(i)))})
	}
	in[17].Reading.Device = "poison"
	in = append(in, in[17]) // its duplicate is refused with it
	rej, err := w.WriteRaw(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 2 || rej[0].Index != 17 || rej[1].Index != 50 || !strings.Contains(rej[0].Reason, "skipped") {
		t.Fatalf("rejected %+v, want indexes 17 and 50, skipped", rej)
	}
	if n := count(t, c, "SELECT count(*) FROM readings"); n != 49 {
		t.Errorf("%d rows landed, want 49", n)
	}
	if s := w.Stats(); s.ShortCounts == 0 || s.Rejected != 1 {
		t.Errorf("stats %+v", s)
	}
}

// A statement PostgreSQL refuses as a whole because of one row (a CHECK constraint): the same bisection.
func TestCheckConstraintIntegration(t *testing.T) {
	w, c := newTestWriter(t, 1000)
	ctx := context.Background()
	if _, err := c.Exec(ctx, "ALTER TABLE readings ADD CONSTRAINT sane CHECK (value IS NULL OR value < 1e6)"); err != nil {
		t.Fatal(err)
	}
	var in []Raw
	for i := range 200 {
		in = append(in, Raw{Reading: reading("d", "m", time.Duration(i)*time.Second, fieldgate.Float(float64(i)))})
	}
	in[3].Reading.Value = fieldgate.Float(1e9)
	in[150].Reading.Value = fieldgate.Float(2e9)
	rej, err := w.WriteRaw(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 2 || !strings.Contains(rej[0].Reason, "sane") {
		t.Fatalf("rejected %+v, want 2 naming the constraint", rej)
	}
	if n := count(t, c, "SELECT count(*) FROM readings"); n != 198 {
		t.Errorf("%d rows landed, want 198", n)
	}
}

func TestWriteAggregatesIntegration(t *testing.T) {
	w, c := newTestWriter(t, 2)
	ctx := context.Background()
	a := fieldgate.Aggregate{Device: "d", Metric: "m", Size: time.Minute, Start: t0, End: t0.Add(time.Minute), Count: 3,
		BadCount: 1, NumericCount: 2, Min: 1, Max: 2, Sum: 3, Mean: 1.5, First: fieldgate.Float(1),
		Last: fieldgate.Float(2), FirstTime: t0, LastTime: t0.Add(time.Second)}
	b := a
	b.Metric, b.Count, b.NumericCount, b.First, b.Last = "state", 2, 0, fieldgate.String("a"), fieldgate.String("b")
	h := a
	h.Size, h.End = time.Hour, t0.Add(time.Hour)
	if err := w.WriteAggregates(ctx, []fieldgate.Aggregate{a, b, h}); err != nil {
		t.Fatal(err)
	}
	a2 := a
	a2.Count, a2.Final = 4, true
	if err := w.WriteAggregates(ctx, []fieldgate.Aggregate{a, b, a2}); err != nil { // a2 supersedes a in the same call
		t.Fatal(err)
	}
	if n := count(t, c, "SELECT count(*) FROM readings_1m"); n != 2 {
		t.Errorf("1m table holds %d rows, want 2", n)
	}
	if n := count(t, c, "SELECT count_all FROM readings_1m WHERE metric = 'm' AND is_final"); n != 4 {
		t.Errorf("window not superseded: count %d", n)
	}
	if n := count(t, c, "SELECT count(*) FROM readings_1m WHERE metric = 'state' AND value_min IS NULL AND value_last IS NULL AND last_text = 'b'"); n != 1 {
		t.Error("non-numeric window not stored with NULL numbers and its last text")
	}
	if n := count(t, c, "SELECT count(*) FROM readings_1h WHERE window_end = $1", t0.Add(time.Hour)); n != 1 {
		t.Error("1h aggregate missing")
	}
	if err := w.WriteAggregates(ctx, []fieldgate.Aggregate{{Device: "d", Metric: "m", Size: time.Second}}); err == nil {
		t.Error("aggregate of an unknown size accepted")
	}
}

// TestAllBadWindowIntegration: a window holding only Bad readings (an offline device) has no first or last
// value — NULL, as SQL over the raw table gives — and not the zero Value stored as 0.
func TestAllBadWindowIntegration(t *testing.T) {
	w, c := newTestWriter(t, 2)
	ctx := context.Background()
	bad := fieldgate.Aggregate{Device: "d", Metric: "offline", Size: time.Minute, Start: t0, End: t0.Add(time.Minute), Count: 5, BadCount: 5}
	if err := w.WriteAggregates(ctx, []fieldgate.Aggregate{bad}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, c, `SELECT count(*) FROM readings_1m WHERE metric = 'offline' AND count_bad = 5 AND value_first IS NULL
		AND value_last IS NULL AND last_text IS NULL AND time_first IS NULL AND time_last IS NULL AND value_min IS NULL`); n != 1 {
		var first, last *float64
		_ = c.QueryRow(ctx, "SELECT value_first, value_last FROM readings_1m WHERE metric = 'offline'").Scan(&first, &last)
		t.Errorf("all-Bad window stored with first %v and last %v, want NULL", deref(first), deref(last))
	}
}

func deref(f *float64) any {
	if f == nil {
		return "NULL"
	}
	return *f
}

func TestDeadLettersIntegration(t *testing.T) {
	w, c := newTestWriter(t, 10)
	ctx := context.Background()
	d := DeadLetter{Topic: "readings", Partition: 2, Offset: 7, Reason: "bad \xff utf8", Payload: []byte{0, 1, 0xff}}
	if err := w.WriteDeadLetters(ctx, []DeadLetter{d, d}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteDeadLetters(ctx, []DeadLetter{d}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, c, "SELECT count(*) FROM dead_letters WHERE kafka_partition = 2 AND kafka_offset = 7 AND payload = 'AAH/'"); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}

// A database that is not there is an error to retry, never a rejected row.
func TestUnreachable(t *testing.T) {
	l, err := netListenFree()
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{URL: fieldgate.Secret("postgres://u:hunter2@" + l + "/x?connect_timeout=2"), Dialect: Postgres}, sizes, nil)
	if err != nil {
		t.Fatal(err)
	}
	rej, err := w.WriteRaw(context.Background(), []Raw{{Reading: reading("d", "m", 0, fieldgate.Float(1))}})
	if err == nil || len(rej) != 0 {
		t.Fatalf("got rejected %v, err %v; want an error", rej, err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password: %v", err)
	}
	if w.Ping(context.Background()) == nil || w.Stats().Connected {
		t.Error("Ping succeeded against nothing")
	}
}

// netListenFree returns a local address nothing listens on.
func netListenFree() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func TestCheckpointsIntegration(t *testing.T) {
	w, _ := newTestWriter(t, 10)
	ctx := context.Background()
	if err := w.SaveCheckpoints(ctx, "g", "t", []Checkpoint{{0, []byte(`{"a":1}`)}, {3, []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := w.SaveCheckpoints(ctx, "g", "t", []Checkpoint{{0, []byte(`{"a":2}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := w.SaveCheckpoints(ctx, "other", "t", []Checkpoint{{0, []byte(`{"b":1}`)}}); err != nil {
		t.Fatal(err)
	}
	got, err := w.LoadCheckpoints(ctx, "g", "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0]) != `{"a":2}` || string(got[3]) != `{}` {
		t.Errorf("loaded %q", got)
	}
}
