package mqtt

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fieldgate/fieldgate"
)

func qos(q byte) *byte { return &q }

func validConfig() Config {
	return Config{
		Name: "plant", Broker: "tcp://127.0.0.1:1883",
		Subscriptions: []Subscription{{Topic: "plant/{line}/{device}/telemetry", Device: "{line}/{device}"}},
	}
}

func TestValidateNamesTheField(t *testing.T) {
	cases := []struct {
		name   string
		change func(c *Config)
		field  string
		text   string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "name", "required"},
		{"name with slash", func(c *Config) { c.Name = "a/b" }, "name", "no spaces or slashes"},
		{"no broker", func(c *Config) { c.Broker = "" }, "broker", "required"},
		{"websocket broker", func(c *Config) { c.Broker = "ws://h:80" }, "broker", `scheme "ws"`},
		{"broker without host", func(c *Config) { c.Broker = "tcp://" }, "broker", "no host"},
		{"broker without port", func(c *Config) { c.Broker = "tcp://broker" }, "broker", "no host:port"},
		{"broker port out of range", func(c *Config) { c.Broker = "tcp://127.0.0.1:70000" }, "broker", "port must be a number from 1 to 65535"},
		{"broker port zero", func(c *Config) { c.Broker = "ssl://broker:0" }, "broker", "port must be a number from 1 to 65535"},
		{"tls over tcp", func(c *Config) { c.TLS.CAFile = "ca.pem" }, "broker", "use ssl://"},
		{"password without user", func(c *Config) { c.Password = "x" }, "password", "without username"},
		{"half mutual tls", func(c *Config) { c.TLS.CertFile = "c.pem" }, "tls.cert_file", "go together"},
		{"negative keepalive", func(c *Config) { c.KeepAlive = -time.Second }, "keep_alive", "negative"},
		{"sub-second keepalive", func(c *Config) { c.KeepAlive = 500 * time.Millisecond }, "keep_alive", "whole seconds"},
		{"negative max batch", func(c *Config) { c.MaxBatch = -1 }, "max_batch", "negative"},
		{"no subscriptions", func(c *Config) { c.Subscriptions = nil }, "subscriptions", "at least one"},
		{"bad qos", func(c *Config) { c.Subscriptions[0].QoS = qos(3) }, "subscriptions[0].qos", "want 0, 1 or 2"},
		{"no topic", func(c *Config) { c.Subscriptions[0].Topic = "" }, "subscriptions[0].topic", "required"},
		{"hash not last", func(c *Config) { c.Subscriptions[0].Topic = "a/#/b" }, "subscriptions[0].topic", "last segment"},
		{"partial wildcard", func(c *Config) { c.Subscriptions[0].Topic = "a/b+/c" }, "subscriptions[0].topic", "whole segment"},
		{"bad segment name", func(c *Config) { c.Subscriptions[0].Topic = "a/{b c}/d" }, "subscriptions[0].topic", "segment name"},
		{"segment named twice", func(c *Config) { c.Subscriptions[0].Topic = "a/{x}/{x}" }, "subscriptions[0].topic", "named twice"},
		{"template unknown segment", func(c *Config) { c.Subscriptions[0].Device = "{site}/{device}" }, "subscriptions[0].device", "{site} is not a named segment"},
		{"template unclosed", func(c *Config) { c.Subscriptions[0].Device = "{line" }, "subscriptions[0].device", "unclosed"},
		{"metric template unknown", func(c *Config) { c.Subscriptions[0].Metric = "{quantity}" }, "subscriptions[0].metric", "{quantity}"},
		{"bad format", func(c *Config) { c.Subscriptions[0].Format = "xml" }, "subscriptions[0].format", `"xml"`},
		{"fields with value", func(c *Config) {
			c.Subscriptions[0].Format = FormatValue
			c.Subscriptions[0].Fields = []Field{{Path: "a"}}
		}, "subscriptions[0].fields", "only for format json"},
		{"timestamp with value", func(c *Config) {
			c.Subscriptions[0].Format = FormatValue
			c.Subscriptions[0].Timestamp = &Timestamp{Path: "ts"}
		}, "subscriptions[0].timestamp", "only for format json"},
		{"empty field path", func(c *Config) { c.Subscriptions[0].Fields = []Field{{Metric: "x"}} }, "subscriptions[0].fields[0].path", "required"},
		{"bad field path", func(c *Config) { c.Subscriptions[0].Fields = []Field{{Path: "a..b"}} }, "subscriptions[0].fields[0].path", "empty path segment"},
		{"duplicate field path", func(c *Config) { c.Subscriptions[0].Fields = []Field{{Path: "a"}, {Path: "a"}} }, "subscriptions[0].fields[1].path", "listed twice"},
		{"bad timestamp format", func(c *Config) { c.Subscriptions[0].Timestamp = &Timestamp{Path: "ts", Format: "unix"} }, "subscriptions[0].timestamp.format", `"unix"`},
		{"timestamp without path", func(c *Config) { c.Subscriptions[0].Timestamp = &Timestamp{Format: TimeUnixS} }, "subscriptions[0].timestamp.path", "required"},
		{"samples without timestamp", func(c *Config) { c.Subscriptions[0].Samples = "s" }, "subscriptions[0].samples", "needs timestamp"},
		{"duplicate filter", func(c *Config) {
			c.Subscriptions = append(c.Subscriptions, Subscription{Topic: "plant/+/{dev}/telemetry"})
		}, "subscriptions[1].topic", "same as subscriptions[0]"},
		{"sparkplug group with a slash", func(c *Config) { c.Sparkplug = &SparkplugConfig{Groups: []string{"a/b"}} }, "sparkplug.groups[0]", "not allowed"},
		{"sparkplug group STATE", func(c *Config) { c.Sparkplug = &SparkplugConfig{Groups: []string{"STATE"}} }, "sparkplug.groups[0]", "reserved"},
		{"sparkplug group twice", func(c *Config) { c.Sparkplug = &SparkplugConfig{Groups: []string{"a", "a"}} }, "sparkplug.groups[1]", "listed twice"},
		{"sparkplug empty group", func(c *Config) { c.Sparkplug = &SparkplugConfig{Groups: []string{""}} }, "sparkplug.groups[0]", "empty"},
		{"sparkplug host id with a wildcard", func(c *Config) {
			c.CleanSession, c.Sparkplug = true, &SparkplugConfig{HostID: "gw+1"}
		}, "sparkplug.host_id", "not allowed"},
		{"sparkplug device template", func(c *Config) { c.Sparkplug = &SparkplugConfig{Device: "{line}/{device}"} }, "sparkplug.device", "{line} is not a named segment"},
		{"sparkplug node template with device", func(c *Config) { c.Sparkplug = &SparkplugConfig{Node: "{edge_node}/{device}"} }, "sparkplug.node", "{device}"},
		{"sparkplug negative reorder timeout", func(c *Config) { c.Sparkplug = &SparkplugConfig{ReorderTimeout: -time.Second} }, "sparkplug.reorder_timeout", "negative"},
		{"sparkplug qos 2", func(c *Config) { c.Sparkplug = &SparkplugConfig{QoS: qos(2)} }, "sparkplug.qos", "want 0 or 1"},
		{"subscription overlapping sparkplug", func(c *Config) {
			c.Subscriptions[0].Topic, c.Subscriptions[0].Device = "#", ""
			c.Sparkplug = &SparkplugConfig{Groups: []string{"plant1"}}
		}, "subscriptions[0].topic", "also matches Sparkplug topics"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := validConfig()
			c.change(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if !hasFieldError(err, c.field, c.text) {
				t.Errorf("error %q has no FieldError at %q containing %q", err, c.field, c.text)
			}
			if _, nerr := New(cfg, nil); nerr == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func hasFieldError(err error, field, text string) bool {
	for _, e := range fieldgate.Flatten(err) {
		var fe *fieldgate.FieldError
		if errors.As(e, &fe) && fe.Field == field && strings.Contains(fe.Err.Error(), text) {
			return true
		}
	}
	return false
}

func TestValidateAcceptsAndDefaults(t *testing.T) {
	cfg := validConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := cfg.WithDefaults()
	s := d.Subscriptions[0]
	if d.ClientID != "fieldgate-plant" || d.CleanSession || d.KeepAlive != 30*time.Second ||
		d.ConnectTimeout != 10*time.Second || d.MaxReconnectInterval != 30*time.Second || d.MaxBatch != 1024 ||
		*s.QoS != 1 || s.Format != FormatJSON {
		t.Errorf("defaults: %+v, subscription %+v", d, s)
	}
	if cfg.Subscriptions[0].QoS != nil {
		t.Error("WithDefaults changed the caller's subscription")
	}
	// An explicit QoS 0 stays 0.
	cfg.Subscriptions[0].QoS = qos(0)
	if q := *cfg.WithDefaults().Subscriptions[0].QoS; q != 0 {
		t.Errorf("qos 0 became %d", q)
	}
}

// A Sparkplug input needs no subscription; its defaults, filters and source-time bound.
func TestSparkplugConfigDefaults(t *testing.T) {
	cfg := Config{Name: "spb", Broker: "tcp://127.0.0.1:1883", Sparkplug: &SparkplugConfig{Groups: []string{"plant1", "plant2"}, HostID: "gw"}}
	cfg.CleanSession = true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sp := cfg.WithDefaults().Sparkplug
	if sp.Device != "{group}/{edge_node}/{device}" || sp.Node != "{group}/{edge_node}" || sp.ReorderTimeout != 2*time.Second || *sp.QoS != 1 {
		t.Errorf("defaults %+v", sp)
	}
	if cfg.Sparkplug.QoS != nil {
		t.Error("withDefaults changed the caller's sparkplug section")
	}
	if f := sp.filters(); strings.Join(f, " ") != "spBv1.0/plant1/# spBv1.0/plant2/# spBv1.0/STATE/gw" {
		t.Errorf("filters %v", f)
	}
	if f := (SparkplugConfig{}).filters(); len(f) != 1 || f[0] != "spBv1.0/#" {
		t.Errorf("filters of every group %v", f)
	}
	if b := cfg.SourceTimeBound(); b.MaxPast != 365*24*time.Hour || b.MaxFuture != 24*time.Hour {
		t.Errorf("source-time bound %+v", b)
	}
	if b := validConfig().SourceTimeBound(); b != fieldgate.DefaultSourceTimeBound {
		t.Errorf("source-time bound without sparkplug %+v", b)
	}
	if w := cfg.Warnings(); len(w) != 0 {
		t.Errorf("a clean session is what the specification wants of a host, no warning: %v", w)
	}
}

func TestWarnings(t *testing.T) {
	cfg := validConfig()
	cfg.Username, cfg.Password = "u", "secret-value"
	cfg.Subscriptions[0].QoS = qos(0)
	w := strings.Join(cfg.Warnings(), "\n")
	if !strings.Contains(w, "clear text") || !strings.Contains(w, "QoS 0") {
		t.Errorf("warnings: %s", w)
	}
	if strings.Contains(w, "secret-value") {
		t.Error("a warning shows the password")
	}
	cfg.Broker = "ssl://broker:8883"
	if w := strings.Join(cfg.Warnings(), "\n"); strings.Contains(w, "clear text") {
		t.Errorf("warns about clear text over ssl://: %s", w)
	}
	// The password never reaches the log, whatever is logged.
	var buf bytes.Buffer
	src, err := New(cfg, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	src.log.Info("config", "cfg", src.cfg)
	if strings.Contains(buf.String(), "secret-value") {
		t.Errorf("log shows the password: %s", buf.String())
	}
}

// TestSensorsSnippet loads testdata/mqtt-sensors.yaml, the input the demo configuration uses for cmd/devsim's
// simulated sensors, with unknown keys refused, and checks that it validates and maps devsim's payloads.
func TestSensorsSnippet(t *testing.T) {
	b, err := os.ReadFile("testdata/mqtt-sensors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.KeepAlive != 30*time.Second {
		t.Errorf("keep_alive = %v, want 30s from the YAML", cfg.KeepAlive)
	}
	src, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ topic, payload string }{
		{"plant/line1/env-01/telemetry", `{"ts":1764076570123,"temperature":21.5,"humidity":40.1,"battery":{"voltage":3.6}}`},
		{"plant/line1/vib-01/vibration", `{"ts":1764076570000,"rms":0.3,"samples":[{"t":1764076570000000,"x":0.1,"y":0.2,"z":0.3}]}`},
		{"plant/line2/meter-01/energy", `{"time":"2026-11-25T13:16:10Z","power_w":1200,"energy_kwh":1234.5,"phase":{"l1":{"v":230.1}}}`},
		{"plant/line2/pump-03/state", `running`},
	} {
		routed := false
		for _, sub := range src.subs {
			m, err := NewMapper(sub)
			if err != nil {
				t.Fatal(err)
			}
			if !m.Matches(c.topic) {
				continue
			}
			routed = true
			if rs, err := m.Map(nil, c.topic, []byte(c.payload), time.Now()); err != nil || len(rs) == 0 {
				t.Errorf("%s: %v (%d readings)", c.topic, err, len(rs))
			}
			break
		}
		if !routed {
			t.Errorf("%s matches no subscription of the snippet", c.topic)
		}
	}
}
