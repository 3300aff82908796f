// Package cratedb stores what the central service computes — raw readings, window aggregates and dead letters —
// over the PostgreSQL wire protocol (pgx v5), in CrateDB or in PostgreSQL.
//
// The two dialects share every DML statement; only the DDL differs (Schema prints it). Every write is an
// idempotent upsert keyed by the reading's or window's identity, so a batch may be written any number of times
// with the same result: that, and a check of the affected row count on every statement (CrateDB skips failing
// rows of a multi-row insert silently and reports a smaller count), is how the service gets an exactly-once effect
// from an at-least-once stream without transactions, which CrateDB does not have.
//
// Timestamps are truncated to the millisecond before they are written (CrateDB's precision), so both databases
// agree on the identity of a reading.
//
// The package imports only the root package and pgx; cmd/central wires it to Kafka and to window/.
package cratedb

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/fieldgate/fieldgate"
)

// Dialect selects the DDL: CrateDB or PostgreSQL.
type Dialect string

const (
	CrateDB  Dialect = "cratedb"
	Postgres Dialect = "postgres"
	// Auto asks the server at connect time: CrateDB announces itself with a crate_version parameter. For the
	// writer only (Schema needs a dialect).
	Auto Dialect = "auto"
)

// Config is the database section of the central service's configuration.
type Config struct {
	// URL is a PostgreSQL connection URL, e.g. postgres://crate@db1:5432/doc (CrateDB) or
	// postgres://fieldgate@db:5432/fieldgate?sslmode=verify-full. Empty: no database (the central service then
	// prints closed windows instead). A secret: it may hold a password, and never prints.
	URL fieldgate.Secret `yaml:"url"`
	// Dialect is "cratedb" (default), "postgres", or "auto" (asks the server when connecting); it selects the
	// DDL and CrateDB's REFRESH before reads.
	Dialect Dialect `yaml:"dialect"`
	// Schema qualifies every table name (CrateDB's default schema is "doc"). Default: unqualified, so the
	// connection's default schema (search_path in PostgreSQL) is used.
	Schema string `yaml:"schema"`
	// Shards is CrateDB's CLUSTERED INTO n SHARDS per partition. Default 4 (CrateDB's own minimum default).
	Shards int `yaml:"shards"`
	// CreateSchema runs the DDL (CREATE TABLE IF NOT EXISTS) at start. Default false: a DBA applies the output
	// of `central schema`.
	CreateSchema bool `yaml:"create_schema"`
	// BatchSize is the most readings written in one statement. Default 5000.
	BatchSize int `yaml:"batch_size"`
	// Linger is how long the service waits to fill a batch before writing what it has. Default 100ms.
	Linger time.Duration `yaml:"linger"`
	// Connections is how many connections write raw readings in parallel (each a statement of its share of a
	// batch). Default 3: a database works on one statement with one core, and one connection more than the cores
	// of a small database host keeps them busy while a connection's next statement is being prepared.
	Connections int `yaml:"connections"`
}

// Defaults of Config, applied by New and by the central service.
const (
	DefaultShards    = 4
	DefaultBatchSize = 5000
	DefaultLinger    = 100 * time.Millisecond
	DefaultConns     = 3
)

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Validate checks the fields; errors are FieldErrors named by their YAML field.
func (c Config) Validate() error {
	var errs []error
	switch c.Dialect {
	case "", CrateDB, Postgres, Auto:
	default:
		errs = append(errs, fieldgate.FieldErrorf("dialect", "unknown dialect %q (want cratedb, postgres or auto)", c.Dialect))
	}
	if c.Schema != "" && !identRE.MatchString(c.Schema) {
		errs = append(errs, fieldgate.FieldErrorf("schema", "%q is not a plain lower-case SQL identifier", c.Schema))
	}
	if c.Shards < 0 || c.Shards > 1000 {
		errs = append(errs, fieldgate.FieldErrorf("shards", "%d is outside 1 to 1000", c.Shards))
	}
	if c.BatchSize < 0 || c.BatchSize > 100000 {
		errs = append(errs, fieldgate.FieldErrorf("batch_size", "%d is outside 1 to 100000", c.BatchSize))
	}
	if c.Connections < 0 || c.Connections > 16 {
		errs = append(errs, fieldgate.FieldErrorf("connections", "%d is outside 1 to 16", c.Connections))
	}
	if c.Linger < 0 || c.Linger > time.Minute {
		errs = append(errs, fieldgate.FieldErrorf("linger", "%s is outside 0 to 1m", c.Linger))
	}
	if u := c.URL.Reveal(); u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		// The value itself is not repeated: it may hold a password.
		errs = append(errs, fieldgate.FieldErrorf("url", "want a postgres:// or postgresql:// URL"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Dialect == "" {
		c.Dialect = CrateDB
	}
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.Connections == 0 {
		c.Connections = DefaultConns
	}
	return c
}

// Tables names the tables of one schema.
type Tables struct {
	Raw         string                   // raw readings
	Aggregates  map[time.Duration]string // one per window size
	DeadLetters string
	Checkpoints string
}

// RawTable, AggregateTable and DeadLetterTable are the unqualified table names.
const (
	RawTable        = "readings"
	DeadLetterTable = "dead_letters"
	CheckpointTable = "checkpoints"
)

// AggregateTable is the unqualified name of the aggregate table for windows of size d: readings_1m, readings_1h,
// readings_30s, readings_1d, readings_500ms.
func AggregateTable(d time.Duration) string { return RawTable + "_" + SizeName(d) }

// SizeName is the short name of a window size used in table names: 1d, 1h, 15m, 30s, 500ms.
func SizeName(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

func tableNames(schema string, sizes []time.Duration) Tables {
	q := func(n string) string {
		if schema == "" {
			return n
		}
		return schema + "." + n
	}
	t := Tables{Raw: q(RawTable), DeadLetters: q(DeadLetterTable), Checkpoints: q(CheckpointTable), Aggregates: map[time.Duration]string{}}
	for _, s := range sizes {
		t.Aggregates[s] = q(AggregateTable(s))
	}
	return t
}

//go:embed sql/*.sql.tmpl
var sqlFS embed.FS

var ddl = template.Must(template.ParseFS(sqlFS, "sql/*.sql.tmpl"))

// Schema returns the DDL for the dialect: CREATE TABLE IF NOT EXISTS for the raw table, one aggregate table per
// window size, the dead-letter table and the consumer's checkpoint table. sizes must be whole milliseconds and distinct.
func Schema(d Dialect, schema string, shards int, sizes []time.Duration) (string, error) {
	c := Config{Dialect: d, Schema: schema, Shards: shards}
	if err := c.Validate(); err != nil {
		return "", err
	}
	c = c.withDefaults()
	if c.Dialect == Auto {
		return "", errors.New("the schema needs a dialect: cratedb or postgres")
	}
	if err := checkSizes(sizes); err != nil {
		return "", err
	}
	t := tableNames(c.Schema, sizes)
	type agg struct{ Name, Size string }
	data := struct {
		Raw, DeadLetters, Checkpoints string
		Shards                        int
		Aggregates                    []agg
	}{Raw: t.Raw, DeadLetters: t.DeadLetters, Checkpoints: t.Checkpoints, Shards: c.Shards}
	for _, s := range sizes {
		data.Aggregates = append(data.Aggregates, agg{Name: t.Aggregates[s], Size: SizeName(s)})
	}
	var b bytes.Buffer
	if err := ddl.ExecuteTemplate(&b, string(c.Dialect)+".sql.tmpl", data); err != nil {
		return "", fmt.Errorf("render %s schema: %w", c.Dialect, err)
	}
	return b.String(), nil
}

func checkSizes(sizes []time.Duration) error {
	seen := map[string]bool{}
	for _, s := range sizes {
		if s <= 0 || s%time.Millisecond != 0 {
			return fmt.Errorf("window size %s is not a positive whole number of milliseconds", s)
		}
		n := SizeName(s)
		if seen[n] {
			return fmt.Errorf("window size %s given twice", s)
		}
		seen[n] = true
	}
	return nil
}

// statements splits DDL text into statements on semicolons at line ends, dropping comments.
func statements(ddl string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(ddl, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	return out
}
