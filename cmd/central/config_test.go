package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/cratedb"
	"github.com/fieldgate/fieldgate/internal/logging"
	"github.com/fieldgate/fieldgate/internal/testutil"
	"github.com/fieldgate/fieldgate/window"
)

func TestExampleConfigs(t *testing.T) {
	t.Setenv("CENTRAL_DB_URL", "postgres://crate:s3cret-pw@db1:5432/doc")
	t.Setenv("KAFKA_PASSWORD", "kafka-s3cret")
	cfg, _, err := loadConfig("../../configs/central.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.Dialect != cratedb.CrateDB || cfg.Database.Shards != 6 || cfg.Kafka.SASL.Mechanism != "SCRAM-SHA-512" ||
		cfg.Windows.OutOfOrderness != 5*time.Second || len(cfg.Windows.Sizes) != 2 || cfg.HTTP.Listen != "127.0.0.1:9101" {
		t.Errorf("example config decoded as %+v", cfg)
	}
	if cfg.Database.URL.Reveal() != "postgres://crate:s3cret-pw@db1:5432/doc" || cfg.Kafka.SASL.Password.Reveal() != "kafka-s3cret" {
		t.Error("secrets not substituted")
	}
	// A config printed or logged never shows the secrets.
	var out bytes.Buffer
	logging.New(logging.Config{Format: "json"}, &out).Info("config", "cfg", cfg)
	if s := out.String(); strings.Contains(s, "s3cret") {
		t.Errorf("logged config shows a secret: %s", s)
	}

	demo, _, err := loadConfig("../../configs/central-demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if demo.Database.URL != "" || demo.Kafka.Brokers[0] != "127.0.0.1:19092" {
		t.Errorf("demo config decoded as %+v", demo)
	}
	t.Setenv("CENTRAL_DB_URL", "postgres://postgres@127.0.0.1:5432/fieldgate")
	demoDB, _, err := loadConfig("../../configs/central-demo-db.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if demoDB.Database.Dialect != cratedb.Auto || !demoDB.Database.CreateSchema || demoDB.Database.URL == "" {
		t.Errorf("demo-db config decoded as %+v", demoDB.Database)
	}
}

func TestBadConfigs(t *testing.T) {
	const good = `kafka:
  brokers: [127.0.0.1:9092]
database:
  url: postgres://u@h/db
windows:
  sizes: [1m]
`
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error, each naming file:line and field
	}{
		{"unknown key", good + "http:\n  listn: 1.2.3.4:5\n", []string{"central.yaml:8: http.listn: unknown field (did you mean \"listen\"?)"}},
		{"no brokers", "kafka: {topic: x}\n", []string{"central.yaml:1: kafka.brokers: at least one broker"}},
		{"bad broker", "kafka:\n  brokers: [nohost]\n", []string{"central.yaml:2: kafka.brokers[0]:"}},
		{"dialect", "kafka:\n  brokers: [a:1]\ndatabase:\n  dialect: mysql\n", []string{"central.yaml:4: database.dialect: unknown dialect \"mysql\""}},
		{"window size", "kafka:\n  brokers: [a:1]\nwindows:\n  sizes: [1m, 7m]\n", []string{"central.yaml:4: windows.sizes[1]: window size 7m0s does not divide 24h"}},
		{"duration type", good + "  out_of_orderness: soon\n", []string{"central.yaml:7", "out_of_orderness"}},
		{"plain without tls", "kafka:\n  brokers: [a:1]\n  sasl:\n    mechanism: PLAIN\n    username: u\n    password: p\n", []string{"kafka.sasl.mechanism: PLAIN sends the password in clear"}},
		{"unset env", "kafka:\n  brokers: [a:1]\ndatabase:\n  url: ${FIELDGATE_NO_SUCH_VAR}\n", []string{"central.yaml:4: database.url: environment variable FIELDGATE_NO_SUCH_VAR is not set"}},
		{"batch size", "kafka:\n  brokers: [a:1]\ndatabase:\n  batch_size: -3\n", []string{"central.yaml:4: database.batch_size: -3 is outside"}},
		{"not postgres url", "kafka:\n  brokers: [a:1]\ndatabase:\n  url: mysql://root:hunter2@x/y\n", []string{"central.yaml:4: database.url: want a postgres://"}},
		{"listen", good + "http:\n  listen: everywhere\n", []string{"central.yaml:8: http.listen"}},
		{"log level", good + "log: {level: loud}\n", []string{"central.yaml:7: log.level"}},
		{"open listener", good + "http:\n  listen: 0.0.0.0:9101\n", []string{"central.yaml:7: http.auth: required: listen \"0.0.0.0:9101\" is not a loopback address"}},
		{"short token", good + "http:\n  auth: {token: abc}\n", []string{"central.yaml:8: http.auth.token: too short"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "central.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := loadConfig(path)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows a password: %v", err)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := realMain([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "central ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	out.Reset()
	if code := realMain([]string{"--version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "central ") {
		t.Errorf("--version: %d %q", code, out.String())
	}
	for _, d := range []string{"cratedb", "postgres"} {
		out.Reset()
		if code := realMain([]string{"schema", "-dialect", d, "-sizes", "1m,1h"}, &out, &errb); code != 0 {
			t.Fatalf("schema %s: %d %s", d, code, errb.String())
		}
		want, err := cratedb.Schema(cratedb.Dialect(d), "", 0, []time.Duration{time.Minute, time.Hour})
		if err != nil || out.String() != want {
			t.Errorf("schema -dialect %s printed something else than cratedb.Schema", d)
		}
	}
	if code := realMain([]string{"schema", "-dialect", "oracle"}, &out, &errb); code != exitUsage {
		t.Errorf("schema -dialect oracle: exit %d", code)
	}
	out.Reset()
	if code := realMain([]string{"validate", "-config", "../../configs/central-demo.yaml"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "demo mode") {
		t.Errorf("validate: %d %q %q", code, out.String(), errb.String())
	}
	if code := realMain([]string{"frobnicate"}, &out, &errb); code != exitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
}

// The central binary must not link the gateway's inputs or its buffer; the gateway must not link pgx.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("go list is slow-ish")
	}
	deps := func(pkg string) string {
		cmd := exec.Command("go", "list", "-deps", pkg)
		cmd.Dir = "../.."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		return string(out)
	}
	t.Run("central", func(t *testing.T) {
		d := deps("./cmd/central")
		for _, bad := range []string{"go.etcd.io/bbolt", "github.com/eclipse/paho.mqtt.golang", "github.com/simonvetter/modbus", "github.com/gopcua/opcua"} {
			if strings.Contains(d, bad) {
				t.Errorf("cmd/central links %s", bad)
			}
		}
		if !strings.Contains(d, "github.com/jackc/pgx/v5") {
			t.Error("go list output does not look right: no pgx")
		}
	})
	t.Run("gateway", func(t *testing.T) {
		if _, err := os.Stat("../gateway"); err != nil {
			t.Skip("cmd/gateway does not exist yet")
		}
		if d := deps("./cmd/gateway"); strings.Contains(d, "github.com/jackc/pgx") {
			t.Error("cmd/gateway links pgx")
		}
	})
}

// FuzzDecodeRecord feeds hostile record values to the loader's decode path: it must never panic, and whatever
// it accepts must be a valid reading that encodes back to an equal reading.
func FuzzDecodeRecord(f *testing.F) {
	good, _ := fieldgate.Encode(fieldgate.Reading{Device: "d", Metric: "m", Value: fieldgate.Float(1.5),
		SourceTime: time.Unix(1, 123456789), GatewayTime: time.Unix(2, 0)})
	for _, s := range [][]byte{good, []byte(`{"v":2}`), []byte(`{"v":"1"}`), []byte(`{}`), nil, []byte("\xff\xfe"),
		[]byte(`{"v":1,"device":"d","metric":"m","type":"int","value":1e400,"quality":"good","gateway_time":"2026-01-01T00:00:00Z"}`),
		[]byte(`{"v":1,"device":"d","metric":"m","type":"string","value":"x","quality":"bad","gateway_time":"0000-01-01T00:00:00Z"}`)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := decodeRecord(&kgo.Record{Value: b, Headers: []kgo.RecordHeader{{Key: fieldgate.HeaderGateway, Value: []byte("gw")}}})
		if err != nil {
			return
		}
		r := raw.Reading
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted an invalid reading: %v", err)
		}
		if raw.Gateway != "gw" {
			t.Fatalf("gateway lost: %+v", raw)
		}
		enc, err := fieldgate.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := fieldgate.Decode(enc)
		if err != nil || !back.Value.Equal(r.Value) || back.Device != r.Device || !back.EventTime().Equal(r.EventTime()) {
			t.Fatalf("round trip: %+v → %+v (%v)", r, back, err)
		}
	})
}

// Without a database the service prints each closed window as one line, and commits offsets.
func TestDemoMode(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "fieldgate.readings"), kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("fieldgate.readings"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	base := time.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute)
	var recs []*kgo.Record
	for _, r := range stream(2, 30, base, time.Second, "demo") {
		v, _ := fieldgate.Encode(r)
		recs = append(recs, &kgo.Record{Key: []byte(r.Device), Value: v})
	}
	recs = append(recs, &kgo.Record{Key: []byte("x"), Value: []byte("not json")})
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Kafka: KafkaConfig{Brokers: c.ListenAddrs(), Group: "demo", SessionTimeout: 3 * time.Second, CommitInterval: 100 * time.Millisecond},
		Windows: window.Config{Sizes: []time.Duration{10 * time.Second, time.Minute}, OutOfOrderness: time.Second, AllowedLateness: time.Second, IdleTimeout: time.Second},
		HTTP:    HTTPConfig{Listen: testutil.FreeAddr(t)}}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	out := &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.DiscardHandler), out) }()
	deadline := time.Now().Add(20 * time.Second)
	// 2 devices × metricsPerStep metrics × (3 windows of 10s + 1 of 1m).
	const windowLines = 2 * metricsPerStep * 4
	for strings.Count(out.String(), "\n") < windowLines && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + cfg.HTTP.Listen + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{fmt.Sprintf("fieldgate_central_records_consumed_total %d", len(recs)), `fieldgate_central_dead_letters_total{reason="decode"} 1`,
		"fieldgate_central_consumer_lag{partition=", "fieldgate_central_batch_seconds_bucket", "fieldgate_central_watermark_delay_seconds"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if n := strings.Count(s, "\n"); n != windowLines {
		t.Errorf("%d window lines, want %d:\n%s", n, windowLines, s)
	}
	if !strings.Contains(s, "10s  demo/dev-00") || !strings.Contains(s, "n=10") || !strings.Contains(s, `last="`) {
		t.Errorf("window lines look wrong:\n%s", s)
	}
	adm := kadm.NewClient(prod)
	offs, err := adm.FetchOffsets(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != int64(len(recs)) {
		t.Errorf("committed offsets sum to %d, want %d (every record, the undecodable one included)", committed, len(recs))
	}
}
