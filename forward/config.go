package forward

import (
	"errors"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/kafkaopt"
)

// Defaults applied by WithDefaults to zero fields of Config.
const (
	DefaultTopic          = "fieldgate.readings"
	DefaultCompression    = "snappy"
	DefaultBatchSize      = 2000
	DefaultProduceTimeout = 30 * time.Second
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	// DefaultMaxMessageBytes is Kafka's default max.message.bytes.
	DefaultMaxMessageBytes = 1_000_012

	maxBatchSize = 100_000
)

// Config is the Kafka output of a gateway (the `kafka:` section of its YAML).
type Config struct {
	// Brokers are the seed brokers, "host:port". Required.
	Brokers []string `yaml:"brokers"`
	// Topic receives one record per reading. Default "fieldgate.readings". The topic must exist unless the
	// cluster creates topics on first use.
	Topic string `yaml:"topic"`
	// ClientID names the gateway to the brokers (quotas, broker logs). Default "fieldgate-gateway-<gateway id>".
	ClientID string `yaml:"client_id"`
	// Compression of record batches: none, snappy, lz4, zstd or gzip. Default snappy, the cheapest per byte:
	// on a batch of fieldgate readings (BenchmarkCodec) it compresses 8.0:1 at 1380 MB/s against lz4's 9.3:1 at
	// 560 MB/s, and in the pure-Go code paths that 32-bit ARM runs (-tags noasm) 650 MB/s against 200 MB/s;
	// arm64 has an assembly snappy encoder, lz4's encoder is pure Go everywhere. zstd (16.9:1, ~140-175 MB/s)
	// suits a metered uplink that is worth 5-10x the CPU; gzip is slower and larger than zstd.
	Compression string `yaml:"compression"`
	// BatchSize is how many readings are read from the buffer and produced per round; a round also ends at
	// max_message_bytes of readings, so that each partition gets one batch per round. A round is acknowledged to
	// the buffer as its longest acknowledged prefix, and the next round starts when it is answered. Default 2000:
	// a round of about 0.6 MB that kfake answers in about 2 ms. Into kfake on 2 cores (BenchmarkForward), 500 to
	// 5000 all give 0.8-0.9 million readings/s (100: 0.4 million), 1.0-1.8x a bare client producing the same
	// rounds with ProduceSync and some 25x the MQTT input's ceiling: the batch size is a latency and memory
	// choice more than a throughput one.
	BatchSize int `yaml:"batch_size"`
	// ProduceTimeout bounds one round: records not acknowledged by then are failed, kept in the buffer, and
	// produced again after a backoff (possibly duplicating what the broker did write). Default 30s.
	ProduceTimeout time.Duration `yaml:"produce_timeout"`
	// MinBackoff and MaxBackoff bound the pause after a failed round; it doubles per failure, with jitter.
	// Defaults 100ms and 30s.
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxMessageBytes is the largest record batch the gateway sends, and so the largest reading. Default
	// 1000012, Kafka's default max.message.bytes; set it to the topic's max.message.bytes if that is lower, or
	// Kafka refuses whole batches (the forwarder then narrows each refusal down one record at a time, slowly).
	// A reading larger than this becomes a dead letter.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// TLS for the broker connections. Off unless enabled or a file is set.
	TLS fieldgate.TLSConfig `yaml:"tls"`
	// SASL authentication. Off unless a mechanism is set.
	SASL fieldgate.SASLConfig `yaml:"sasl"`
}

// Validate checks the configuration without touching the network or the files it names. Errors are
// *fieldgate.FieldError values (joined) naming the YAML field.
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, kafkaopt.Conn{Brokers: c.Brokers, TLS: c.TLS, SASL: c.SASL}.Validate())
	if c.Topic != "" {
		if err := kafkaopt.CheckTopic(c.Topic); err != nil {
			errs = append(errs, fieldgate.FieldErrorf("topic", "%q: %v", c.Topic, err))
		}
	}
	if c.Compression != "" {
		if _, ok := codecs[c.Compression]; !ok {
			errs = append(errs, fieldgate.FieldErrorf("compression", "%q is not one of none, snappy, lz4, zstd, gzip", c.Compression))
		}
	}
	if c.BatchSize < 0 || c.BatchSize > maxBatchSize {
		errs = append(errs, fieldgate.FieldErrorf("batch_size", "%d is out of range: 1 to %d, or 0 for the default %d", c.BatchSize, maxBatchSize, DefaultBatchSize))
	}
	if c.MaxMessageBytes != 0 && (c.MaxMessageBytes < 1024 || c.MaxMessageBytes > 64<<20) {
		errs = append(errs, fieldgate.FieldErrorf("max_message_bytes", "%d is out of range: 1024 to 67108864, or 0 for the default %d", c.MaxMessageBytes, DefaultMaxMessageBytes))
	}
	if c.ProduceTimeout != 0 && c.ProduceTimeout < 100*time.Millisecond {
		errs = append(errs, fieldgate.FieldErrorf("produce_timeout", "%s is too short: at least 100ms, or 0 for the default %s", c.ProduceTimeout, DefaultProduceTimeout))
	}
	if c.MinBackoff < 0 {
		errs = append(errs, fieldgate.FieldErrorf("min_backoff", "must not be negative"))
	}
	if c.MaxBackoff < 0 {
		errs = append(errs, fieldgate.FieldErrorf("max_backoff", "must not be negative"))
	}
	if c.MinBackoff > 0 && c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		errs = append(errs, fieldgate.FieldErrorf("min_backoff", "%s is above max_backoff %s", c.MinBackoff, c.MaxBackoff))
	}
	return errors.Join(errs...)
}

// WithDefaults returns c with every zero field set to its default: the constants above, and the client id
// "fieldgate-gateway-<gatewayID>". It is what New runs with, and applying it twice changes nothing.
func (c Config) WithDefaults(gatewayID string) Config {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.ClientID == "" {
		c.ClientID = "fieldgate-gateway-" + gatewayID
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.ProduceTimeout == 0 {
		c.ProduceTimeout = DefaultProduceTimeout
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	return c
}
