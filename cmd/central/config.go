package main

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/cratedb"
	"github.com/fieldgate/fieldgate/internal/kafkaopt"
	"github.com/fieldgate/fieldgate/internal/logging"
	"github.com/fieldgate/fieldgate/internal/webserve"
	"github.com/fieldgate/fieldgate/internal/yamlconf"
	"github.com/fieldgate/fieldgate/window"
)

// Config is the central service's configuration file. Every scalar value may use ${ENV_VAR} and ${file:PATH}
// (see yamlconf.Decode); every key must be known.
type Config struct {
	Kafka KafkaConfig `yaml:"kafka"`
	// Database is where readings, aggregates and dead letters go. Without database.url the service runs in demo
	// mode: it prints each closed window as a line on standard output and commits offsets as windows close.
	Database cratedb.Config `yaml:"database"`
	Windows  window.Config  `yaml:"windows"`
	HTTP     HTTPConfig     `yaml:"http"`
	// Log sets the log output (standard error).
	Log logging.Config `yaml:"log"`
}

// KafkaConfig is the consumer side of the gateway's kafka section.
type KafkaConfig struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string `yaml:"brokers"`
	// Topic the gateways produce to. Default fieldgate.readings.
	Topic string `yaml:"topic"`
	// Group is the consumer group; every instance of the service in one group shares the topic's partitions.
	// Default fieldgate-central.
	Group string `yaml:"group"`
	// ClientID names this instance to the brokers. Default fieldgate-central-<hostname>.
	ClientID string `yaml:"client_id"`
	// FetchMaxBytes bounds what one fetch brings into memory (with database.batch_size, the records one poll
	// returns). Default 16 MiB.
	FetchMaxBytes int32 `yaml:"fetch_max_bytes"`
	// CommitInterval is how often window checkpoints are saved and offsets committed. Default 1s. A longer
	// interval means less database work and a longer replay after a crash; never a loss.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// SessionTimeout: how long the group waits for a silent member before giving its partitions to the others.
	// Default 45s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// TLS for the broker connections. Off unless enabled or a file is set.
	TLS fieldgate.TLSConfig `yaml:"tls"`
	// SASL authentication. Off unless a mechanism is set.
	SASL fieldgate.SASLConfig `yaml:"sasl"`
}

// HTTPConfig is the listener serving the page, /metrics, /healthz and /readyz.
type HTTPConfig struct {
	// Listen is host:port; default 127.0.0.1:9101 (loopback only). Empty after defaults is impossible; write
	// "off" to serve nothing. Another address than loopback needs a credential in auth.
	Listen string `yaml:"listen"`
	// Auth is the credential every request but /healthz needs (see internal/webserve). None by default.
	Auth webserve.Auth `yaml:"auth"`
	// TLS serves HTTPS with this certificate.
	TLS webserve.TLS `yaml:"tls"`
}

const (
	defaultTopic          = "fieldgate.readings"
	defaultGroup          = "fieldgate-central"
	defaultListen         = "127.0.0.1:9101"
	defaultFetchMaxBytes  = 16 << 20
	defaultCommitInterval = time.Second
	defaultSessionTimeout = 45 * time.Second
)

func (c *Config) applyDefaults() {
	k := &c.Kafka
	if k.Topic == "" {
		k.Topic = defaultTopic
	}
	if k.Group == "" {
		k.Group = defaultGroup
	}
	if k.ClientID == "" {
		host, _ := os.Hostname()
		k.ClientID = "fieldgate-central-" + host
	}
	if k.FetchMaxBytes == 0 {
		k.FetchMaxBytes = defaultFetchMaxBytes
	}
	if k.CommitInterval == 0 {
		k.CommitInterval = defaultCommitInterval
	}
	if k.SessionTimeout == 0 {
		k.SessionTimeout = defaultSessionTimeout
	}
	d := &c.Database
	if d.Dialect == "" {
		d.Dialect = cratedb.CrateDB
	}
	if d.BatchSize == 0 {
		d.BatchSize = cratedb.DefaultBatchSize
	}
	if d.Linger == 0 {
		d.Linger = cratedb.DefaultLinger
	}
	if d.Connections == 0 {
		d.Connections = cratedb.DefaultConns
	}
	if d.Shards == 0 {
		d.Shards = cratedb.DefaultShards
	}
	if len(c.Windows.Sizes) == 0 {
		c.Windows.Sizes = window.DefaultSizes
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = defaultListen
	}
	c.Log.ApplyDefaults()
}

// Validate checks every field and returns every problem as FieldErrors (joined).
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, fieldgate.WithField("kafka", c.Kafka.validate()))
	errs = append(errs, fieldgate.WithField("database", c.Database.Validate()))
	errs = append(errs, fieldgate.WithField("windows", c.Windows.Validate()))
	if c.HTTP.Listen != "off" {
		if _, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			errs = append(errs, fieldgate.FieldErrorf("http.listen", "%q: want host:port, e.g. 127.0.0.1:9101, or off", c.HTTP.Listen))
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			errs = append(errs, fieldgate.FieldErrorf("http.listen", "%q: bad port", c.HTTP.Listen))
		}
		errs = append(errs, fieldgate.WithField("http", webserve.Validate(c.HTTP.Listen, c.HTTP.Auth, c.HTTP.TLS)))
	}
	errs = append(errs, fieldgate.WithField("log", c.Log.Validate()))
	return errors.Join(errs...)
}

func (k KafkaConfig) validate() error {
	errs := []error{kafkaopt.Conn{Brokers: k.Brokers, TLS: k.TLS, SASL: k.SASL}.Validate()}
	if k.Topic != "" {
		if err := kafkaopt.CheckTopic(k.Topic); err != nil {
			errs = append(errs, fieldgate.FieldErrorf("topic", "%q: %v", k.Topic, err))
		}
	}
	if k.Group != "" && len(k.Group) > 255 {
		errs = append(errs, fieldgate.FieldErrorf("group", "longer than 255 characters"))
	}
	if k.FetchMaxBytes < 0 || (k.FetchMaxBytes > 0 && k.FetchMaxBytes < 1<<16) {
		errs = append(errs, fieldgate.FieldErrorf("fetch_max_bytes", "%d: at least 65536, or 0 for the default", k.FetchMaxBytes))
	}
	if k.CommitInterval < 0 || k.CommitInterval > time.Hour {
		errs = append(errs, fieldgate.FieldErrorf("commit_interval", "%s is outside 0 to 1h", k.CommitInterval))
	}
	if k.SessionTimeout != 0 && (k.SessionTimeout < time.Second || k.SessionTimeout > 30*time.Minute) {
		errs = append(errs, fieldgate.FieldErrorf("session_timeout", "%s is outside 1s to 30m", k.SessionTimeout))
	}
	return errors.Join(errs...)
}

// kafkaOpts returns the client options for the consumer group: the connection (kafkaopt.Options, TLS and SASL
// included, log as the client's logger), then the group's own settings.
func (k KafkaConfig) kafkaOpts(log *slog.Logger) ([]kgo.Opt, error) {
	opts, err := kafkaopt.Options(kafkaopt.Conn{Brokers: k.Brokers, ClientID: k.ClientID, TLS: k.TLS, SASL: k.SASL}, log)
	if err != nil {
		return nil, err
	}
	return append(opts,
		kgo.ConsumerGroup(k.Group),
		kgo.ConsumeTopics(k.Topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxBytes(k.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(min(k.FetchMaxBytes, 8<<20)),
		kgo.SessionTimeout(k.SessionTimeout),
		// Three heartbeats per session timeout, as Kafka recommends (kgo's default, 3s, assumes 45s).
		kgo.HeartbeatInterval(min(3*time.Second, k.SessionTimeout/3)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	), nil
}

// loadConfig reads, substitutes, decodes and validates the file at path, with defaults applied. Any problem comes
// back as a *yamlconf.Error naming the file, line and field.
func loadConfig(path string) (*Config, *yamlconf.Index, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var cfg Config
	idx, err := yamlconf.Decode(path, raw, &cfg, "kafka: …, database: …")
	if err != nil {
		return nil, nil, err
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, nil, idx.Locate(path, err)
	}
	return &cfg, idx, nil
}
