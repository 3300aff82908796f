package cratedb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/fieldgate/fieldgate"
)

func benchRows(n int) []Raw {
	rows := make([]Raw, n)
	for i := range rows {
		r := reading(fmt.Sprintf("dev-%03d", i%500), []string{"a", "b", "c", "d"}[i/500%4], time.Duration(i/2000)*time.Second, fieldgate.Float(float64(i%100)))
		rows[i] = Raw{Reading: r, Gateway: "gw"}
	}
	return rows
}

// BenchmarkWriteRaw compares the writer's UNNEST upsert (batches of 5000, on 1 and 2 connections) with COPY
// (pgx CopyFrom) of the same rows into the same table, each into a fresh database. Rows per second are the
// figure; the ratio is what matters on a shared machine.
//
//	FIELDGATE_TEST_POSTGRES=postgres://... go test -run '^$' -bench WriteRaw -benchtime 1x ./cratedb
func BenchmarkWriteRaw(b *testing.B) {
	for _, conns := range []int{0, 1, 2} {
		name := fmt.Sprintf("upsert_conns=%d", conns)
		if conns == 0 {
			name = "copy"
		}
		b.Run(name, func(b *testing.B) {
			n := max(b.N, 100000) // enough rows for a steady state, whatever -benchtime says
			rows := benchRows(n)
			dbURL := testDB(b)
			w, err := New(Config{URL: fieldgate.Secret(dbURL), Dialect: Postgres, CreateSchema: true, BatchSize: 5000, Connections: max(conns, 1)}, []time.Duration{time.Minute}, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := w.Connect(ctx); err != nil {
				b.Fatal(err)
			}
			defer w.Close(ctx)
			b.ResetTimer()
			if conns == 0 {
				c, err := pgx.Connect(ctx, dbURL)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close(ctx)
				_, err = c.CopyFrom(ctx, pgx.Identifier{"readings"},
					[]string{"device", "metric", "ts", "kind", "value", "value_text", "quality", "status", "source_time", "gateway_time", "gateway"},
					pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
						r := rows[i].Reading
						return []any{r.Device, r.Metric, Ms(r.EventTime()), "float", r.Value.Float(), pgtype.Text{}, "good", int64(0),
							Ms(r.SourceTime), Ms(r.GatewayTime), "gw"}, nil
					}))
				if err != nil {
					b.Fatal(err)
				}
			} else {
				for i := 0; i < len(rows); i += 5000 {
					if rej, err := w.WriteRaw(ctx, rows[i:min(i+5000, len(rows))]); err != nil || len(rej) > 0 {
						b.Fatal(err, rej)
					}
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
