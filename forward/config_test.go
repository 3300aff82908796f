package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"
)

func TestValidate(t *testing.T) {
	ok := Config{Brokers: []string{"kafka-1:9092", "10.0.0.5:9093"}}
	for _, tc := range []struct {
		name   string
		mod    func(*Config)
		fields []string // the FieldErrors expected, by field; nil means valid
		msg    string   // a substring of the message
	}{
		{"minimal", func(*Config) {}, nil, ""},
		{"full", func(c *Config) {
			c.Topic, c.ClientID, c.Compression, c.BatchSize = "plant_1.readings-v1", "gw", "zstd", 500
			c.ProduceTimeout, c.MinBackoff, c.MaxBackoff = 10*time.Second, time.Second, time.Minute
			c.TLS = fieldgate.TLSConfig{CAFile: "/etc/ca.pem"}
			c.SASL = fieldgate.SASLConfig{Mechanism: "PLAIN", Username: "gw", Password: "pw"}
		}, nil, ""},
		{"scram without tls", func(c *Config) {
			c.SASL = fieldgate.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "gw", Password: "pw"}
		}, nil, ""},
		{"no brokers", func(c *Config) { c.Brokers = nil }, []string{"brokers"}, "at least one broker"},
		{"broker without port", func(c *Config) { c.Brokers = []string{"kafka-1:9092", "kafka-2"} }, []string{"brokers[1]"}, "missing port"},
		{"broker bad port", func(c *Config) { c.Brokers = []string{"kafka-1:99999"} }, []string{"brokers[0]"}, "port must be"},
		{"broker without host", func(c *Config) { c.Brokers = []string{":9092"} }, []string{"brokers[0]"}, "missing host"},
		{"bad topic", func(c *Config) { c.Topic = "plant 1/readings" }, []string{"topic"}, "only ASCII letters"},
		{"bad compression", func(c *Config) { c.Compression = "brotli" }, []string{"compression"}, `"brotli" is not one of`},
		{"negative batch", func(c *Config) { c.BatchSize = -1 }, []string{"batch_size"}, "out of range"},
		{"huge batch", func(c *Config) { c.BatchSize = 1_000_000 }, []string{"batch_size"}, "out of range"},
		{"tiny max message", func(c *Config) { c.MaxMessageBytes = 10 }, []string{"max_message_bytes"}, "out of range"},
		{"tiny timeout", func(c *Config) { c.ProduceTimeout = time.Millisecond }, []string{"produce_timeout"}, "too short"},
		{"backoffs reversed", func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Minute, time.Second }, []string{"min_backoff"}, "above max_backoff"},
		{"negative backoff", func(c *Config) { c.MaxBackoff = -time.Second }, []string{"max_backoff"}, "negative"},
		{"plain without tls", func(c *Config) { c.SASL = fieldgate.SASLConfig{Mechanism: "PLAIN", Username: "gw", Password: "pw"} },
			[]string{"sasl.mechanism"}, "PLAIN sends the password in clear"},
		{"unknown mechanism", func(c *Config) { c.SASL = fieldgate.SASLConfig{Mechanism: "GSSAPI", Username: "gw", Password: "pw"} },
			[]string{"sasl.mechanism"}, `"GSSAPI" is not one of`},
		{"scram without password", func(c *Config) { c.SASL = fieldgate.SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "gw"} },
			[]string{"sasl.password"}, "required"},
		{"credentials without mechanism", func(c *Config) { c.SASL = fieldgate.SASLConfig{Username: "gw", Password: "pw"} },
			[]string{"sasl.mechanism"}, "no mechanism"},
		{"tls cert without key", func(c *Config) { c.TLS = fieldgate.TLSConfig{CertFile: "/c.pem"} }, []string{"tls.cert_file"}, "go together"},
		{"several at once", func(c *Config) { c.Brokers, c.Compression = nil, "lzma" }, []string{"brokers", "compression"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if _, err := New(c, "gw-1", nil); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *fieldgate.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%v is not a FieldError", e)
				}
				got = append(got, fe.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("fields %v, want %v (%v)", got, tc.fields, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
			if _, nerr := New(c, "gw-1", nil); nerr == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	f, err := New(Config{Brokers: []string{"k:9092"}}, "gw-7", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := f.Config()
	if c.Topic != DefaultTopic || c.ClientID != "fieldgate-gateway-gw-7" || c.Compression != DefaultCompression ||
		c.BatchSize != DefaultBatchSize || c.ProduceTimeout != DefaultProduceTimeout || c.MinBackoff != DefaultMinBackoff ||
		c.MaxBackoff != DefaultMaxBackoff || c.MaxMessageBytes != DefaultMaxMessageBytes {
		t.Errorf("defaults %+v", c)
	}
	if _, err := New(Config{Brokers: []string{"k:9092"}}, "", nil); err == nil {
		t.Error("New accepted an empty gateway id")
	}
}

func TestClassify(t *testing.T) {
	// The one function that decides; pin the decisions that matter for loss.
	for _, tc := range []struct {
		err  error
		want errClass
	}{
		{fmt.Errorf("%w (uncompressed_bytes=2000000)", kerr.MessageTooLarge), classRecord},
		{kerr.InvalidRecord, classRecord},
		{kerr.TopicAuthorizationFailed, classFatal},
		{kerr.SaslAuthenticationFailed, classFatal},
		{kerr.UnknownTopicOrPartition, classFatal}, // retriable per Kafka, but kgo gives up only after UnknownTopicRetries
		{kerr.NotEnoughReplicas, classRetriable},
		{kerr.RequestTimedOut, classRetriable},
		{context.DeadlineExceeded, classRetriable},
		{kgo.ErrRecordTimeout, classRetriable},
		{errors.New("unable to dial: connection refused"), classRetriable},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// The documented example decodes with unknown keys refused and validates.
func TestExampleYAML(t *testing.T) {
	b, err := os.ReadFile("testdata/kafka.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Brokers: []string{"kafka-1.plant.example:9093", "kafka-2.plant.example:9093"}, Topic: "fieldgate.readings",
		ClientID: "fieldgate-gateway-press-hall-1", Compression: "snappy", BatchSize: 2000, MaxMessageBytes: 1000012,
		ProduceTimeout: 30 * time.Second, MinBackoff: 100 * time.Millisecond, MaxBackoff: 30 * time.Second,
		TLS:  fieldgate.TLSConfig{Enabled: true, CAFile: "/etc/fieldgate/kafka-ca.pem"},
		SASL: fieldgate.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "gateway-press-hall-1", Password: "${file:/etc/fieldgate/kafka-password}"},
	}
	if fmt.Sprintf("%#v", c) != fmt.Sprintf("%#v", want) || c.SASL.Password != want.SASL.Password {
		t.Errorf("decoded\n%#v\nwant\n%#v", c, want)
	}
}
