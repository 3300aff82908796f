package cratedb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/pgtest"
)

func benchRows(n int) []Raw {
	rows := make([]Raw, n)
	for i := range rows {
		r := reading(fmt.Sprintf("dev-%03d", i%500), []string{"a", "b", "c", "d"}[i/500%4], time.Duration(i/2000)*time.Second, fieldgate.Float(float64(i%100)))
		rows[i] = Raw{Reading: r, Gateway: "gw"}
	}
	return rows
}

// BenchmarkWriteRaw compares WriteRaw (batches of 5000, on 1 to 3 connections) with COPY (pgx CopyFrom) of the
// same rows into the same table, each into a fresh database. "replay" writes every batch twice, as a restarted
// consumer does: the second write meets stored readings and goes through the upsert. Rows per second are the
// figure (a replayed row counts once); the ratio is what matters on a shared machine.
//
//	FIELDGATE_TEST_POSTGRES=postgres://... go test -run '^$' -bench WriteRaw -benchtime 1x ./cratedb
func BenchmarkWriteRaw(b *testing.B) {
	for _, c := range []struct {
		name   string
		conns  int
		replay bool
	}{{"copy", 0, false}, {"conns=1", 1, false}, {"conns=2", 2, false}, {"conns=3", 3, false}, {"conns=3/replay", 3, true}} {
		b.Run(c.name, func(b *testing.B) {
			n := max(b.N, 100000) // enough rows for a steady state, whatever -benchtime says
			rows := benchRows(n)
			dbURL := pgtest.NewDB(b, "")
			w, err := New(Config{URL: fieldgate.Secret(dbURL), Dialect: Postgres, CreateSchema: true, BatchSize: 5000, Connections: max(c.conns, 1)}, []time.Duration{time.Minute}, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := w.Connect(ctx); err != nil {
				b.Fatal(err)
			}
			defer w.Close(ctx)
			b.ResetTimer()
			if c.conns == 0 {
				conn, err := pgx.Connect(ctx, dbURL)
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close(ctx)
				_, err = conn.CopyFrom(ctx, pgx.Identifier{"readings"},
					[]string{"device", "metric", "ts", "kind", "value", "value_text", "quality", "status", "source_time", "gateway_time", "gateway"},
					pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
						r := rows[i].Reading
						return []any{r.Device, r.Metric, fieldgate.TruncateMs(r.EventTime()), "float", r.Value.Float(), pgtype.Text{}, "good", int64(0),
							fieldgate.TruncateMs(r.SourceTime), fieldgate.TruncateMs(r.GatewayTime), "gw"}, nil
					}))
				if err != nil {
					b.Fatal(err)
				}
			} else {
				for i := 0; i < len(rows); i += 5000 {
					batch := rows[i:min(i+5000, len(rows))]
					if rej, err := w.WriteRaw(ctx, batch); err != nil || len(rej) > 0 {
						b.Fatal(err, rej)
					}
					if c.replay {
						if rej, err := w.WriteRaw(ctx, batch); err != nil || len(rej) > 0 {
							b.Fatal(err, rej)
						}
					}
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// encodeArgs encodes statement arguments as pgx sends them (binary, with the column types of cols).
func encodeArgs(tb testing.TB, m *pgtype.Map, cols []column, args []any, buf []byte) []byte {
	for i, a := range args {
		dt, ok := m.TypeForName(cols[i].typ + "[]")
		if !ok {
			dt, ok = m.TypeForName("_" + map[string]string{"text": "text", tstz: "timestamptz", f8: "float8", i8: "int8", b1: "bool"}[cols[i].typ])
		}
		if !ok {
			tb.Fatalf("no array type for %s", cols[i].typ)
		}
		var err error
		if buf, err = m.Encode(dt.OID, pgtype.BinaryFormatCode, a, buf); err != nil {
			tb.Fatal(err)
		}
	}
	return buf
}

// TestArgsEncodeAsPlainSlices checks that the allocation-free array arguments encode to the same bytes as the
// plain slices they wrap.
func TestArgsEncodeAsPlainSlices(t *testing.T) {
	rows := benchRows(3000)
	rows[1].Reading.Value, rows[2].Reading.Value, rows[3].Reading.Value = fieldgate.String("open"), fieldgate.Int(-4), fieldgate.Bool(true)
	rows[4].Reading.SourceTime = time.Time{}
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	plain := func(args []any) []any {
		out := make([]any, len(args))
		for i, a := range args {
			switch a := a.(type) {
			case textArray:
				out[i] = []string(a)
			case nullTextArray:
				out[i] = []pgtype.Text(a)
			case float8Array:
				out[i] = []pgtype.Float8(a)
			case int8Array:
				out[i] = []int64(a)
			case boolArray:
				out[i] = []bool(a)
			case timeArray:
				out[i] = []time.Time(a)
			case nullTimeArray:
				out[i] = []pgtype.Timestamptz(a)
			default:
				t.Fatalf("argument %d: %T", i, a)
			}
		}
		return out
	}
	m := pgtype.NewMap()
	args := rawArgs(rows, idx)
	if got, want := encodeArgs(t, m, rawColumns, args, nil), encodeArgs(t, m, rawColumns, plain(args), nil); string(got) != string(want) {
		t.Error("raw arguments encode differently from plain slices")
	}
	t0 := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	aggs := []fieldgate.Aggregate{
		{Device: "d", Metric: "m", Size: time.Minute, Start: t0, End: t0.Add(time.Minute), Count: 3, NumericCount: 2, Min: 1, Max: 2,
			Sum: 3, Mean: 1.5, First: fieldgate.Float(1), Last: fieldgate.String("x"), FirstTime: t0, LastTime: t0.Add(time.Second), Final: true},
		{Device: "d2", Metric: "m", Size: time.Minute, Start: t0, End: t0.Add(time.Minute), Count: 1, BadCount: 1, Last: fieldgate.Bool(false)},
	}
	ag := aggArgs(aggs, []int{0, 1}, t0)
	if got, want := encodeArgs(t, m, aggColumns, ag, nil), encodeArgs(t, m, aggColumns, plain(ag), nil); string(got) != string(want) {
		t.Error("aggregate arguments encode differently from plain slices")
	}
}

// BenchmarkRawArgs builds and encodes the arguments of one raw statement of 5000 rows, as pgx does before
// sending it: the writer's own CPU per row.
func BenchmarkRawArgs(b *testing.B) {
	rows := benchRows(5000)
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	m := pgtype.NewMap()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = encodeArgs(b, m, rawColumns, rawArgs(rows, idx), buf[:0])
	}
}
