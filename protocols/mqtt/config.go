package mqtt

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldgate/fieldgate"
)

// Config is one MQTT input: one broker connection with its subscriptions. In YAML:
//
//	name: plant-sensors
//	broker: ssl://broker.plant.local:8883
//	username: gateway-07
//	password: ${file:/etc/fieldgate/mqtt.pass}
//	tls: {ca_file: /etc/fieldgate/ca.pem}
//	subscriptions:
//	  - topic: plant/{line}/{device}/telemetry
//	    device: "{line}/{device}"
//	    timestamp: {path: ts, format: unix_ms}
type Config struct {
	// Name is the input's unique name, used in logs, metrics and dead letters ("mqtt:<name>"). Required.
	Name string `yaml:"name"`
	// Broker is the broker URL: tcp://host:1883, or ssl://host:8883 (also mqtts:// and tls://) for TLS. Required.
	Broker string `yaml:"broker"`
	// ClientID identifies the session at the broker. Default "fieldgate-<name>"; the gateway daemon fills in
	// "fieldgate-<gateway_id>-<name>" instead, so two gateways with the same input name on one broker do not take
	// over each other's session. It must stay fixed, so that the
	// broker keeps the session (queued and unacknowledged messages) across gateway restarts, and it must be unique
	// per broker: a second client with the same id takes the session over.
	ClientID string `yaml:"client_id"`
	// CleanSession drops the broker-side session on every connect. Default false: a persistent session, so that
	// QoS 1/2 messages published while the gateway is down, or received but not yet committed, are delivered
	// again. Note that a persistent session also keeps the subscriptions of an earlier configuration; their
	// messages become dead letters ("topic matches no subscription") until the session is cleaned once.
	CleanSession bool `yaml:"clean_session"`
	// Username and Password authenticate to the broker. A password over plain tcp:// is allowed, with a warning.
	Username string           `yaml:"username"`
	Password fieldgate.Secret `yaml:"password"`
	// TLS configures the TLS client; an ssl://, mqtts:// or tls:// broker URL turns it on.
	TLS fieldgate.TLSConfig `yaml:"tls"`
	// KeepAlive is the MQTT keepalive interval. Default 30s.
	KeepAlive time.Duration `yaml:"keep_alive"`
	// ConnectTimeout bounds one connection attempt (TCP, TLS and CONNACK). Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxReconnectInterval caps the exponential backoff between connection attempts. Default 30s (paho's own
	// default is 10 minutes, which leaves a gateway deaf for that long after a broker restart).
	MaxReconnectInterval time.Duration `yaml:"max_reconnect_interval"`
	// MaxInflight is the broker's limit of unacknowledged QoS 1/2 messages for this client: Mosquitto's and
	// VerneMQ's max_inflight_messages (default 20), EMQX's max_inflight (32). Messages wait for the buffer's
	// commit interval so that one commit serves many, but when this many wait the commit starts at once: the
	// broker sends nothing more until it has acknowledgements, so waiting any longer would only cap the rate.
	// Default 20. Set it to the broker's value: above it, the rate falls to that value per commit interval;
	// below it, commits are more frequent than they need to be.
	MaxInflight int `yaml:"max_inflight"`
	// MaxBatch is the most messages (QoS 0 included) that may wait for their commit: beyond it the input stops
	// reading from the broker until the oldest are committed, which bounds memory against a QoS 0 flood.
	// Default 1024.
	MaxBatch int `yaml:"max_batch"`
	// MaxPayloadBytes is the largest payload the input parses. A larger message becomes a dead letter before it
	// is parsed (its first 4 KiB are stored, with its size in the reason) and is acknowledged. Default 1 MiB
	// (1048576); at most 268435455 (MQTT's limit). The broker's message_size_limit is the only bound on what the
	// client library receives: set it too.
	MaxPayloadBytes int `yaml:"max_payload_bytes"`
	// Subscriptions are the topics to read and how their payloads map to readings. At least one, unless sparkplug
	// is set. A message is mapped by the first subscription, in this order, whose topic filter matches its topic.
	Subscriptions []Subscription `yaml:"subscriptions"`
	// Sparkplug makes the input a Sparkplug B host application besides (or instead of) its subscriptions: it
	// subscribes to the Sparkplug namespace and decodes births, data and deaths (see SparkplugConfig).
	Sparkplug *SparkplugConfig `yaml:"sparkplug"`
	// SourceTime bounds the payload timestamps taken as the readings' time: one outside [gateway time − max_past,
	// gateway time + max_future] (a sensor sending seconds where milliseconds are configured, a clock never set)
	// is replaced by the gateway time and the reading marked Uncertain with fieldgate.StatusImplausibleTime, and
	// counted. The gateway applies it to every reading of the input before it commits it. Default: one day
	// either way (fieldgate.DefaultSourceTimeBound); raise max_past for devices that upload old data on purpose.
	// With sparkplug set the default looks a year back (SparkplugSourceTimeBound): edge nodes send what they
	// stored while the host was away as historical metrics, with their own time.
	SourceTime fieldgate.SourceTimeBound `yaml:"source_time"`
}

// SparkplugConfig makes an MQTT input a Sparkplug B host application (Eclipse Sparkplug 3.0, ISO/IEC 20237). In
// YAML, under an mqtt input:
//
//	sparkplug:
//	  groups: [plant1]                       # spBv1.0/plant1/#; default every group
//	  device: "{group}/{edge_node}/{device}" # names of devices' readings
//	  node: "{group}/{edge_node}"            # names of edge nodes' own readings
//	  host_id: fieldgate-gw07                # primary host: STATE birth and will (needs clean_session: true)
//	  passive: false                         # true: never ask for rebirths (another host does)
//	  reorder_timeout: 2s
//
// See the package doc for what the input does with each message.
type SparkplugConfig struct {
	// Groups are the Sparkplug group ids to read, each subscribed to as spBv1.0/<group>/#. Default: every group
	// (spBv1.0/#).
	Groups []string `yaml:"groups"`
	// Device names the device of a device's readings (DBIRTH, DDATA, DDEATH), as a template over {group},
	// {edge_node} and {device}, like a subscription's device. Default "{group}/{edge_node}/{device}".
	Device string `yaml:"device"`
	// Node names the device of an edge node's own readings (NBIRTH, NDATA, NDEATH), as a template over {group}
	// and {edge_node}. Default "{group}/{edge_node}".
	Node string `yaml:"node"`
	// HostID, when set, makes the input the primary host application of that id: its connection carries the
	// will spBv1.0/STATE/<host_id> {"online":false,...} (retained, QoS 1), and once subscribed it publishes
	// {"online":true,...} there with the same timestamp, so that edge nodes configured for this host publish
	// only while it is online (and keep their data, as historical metrics, while it is not). The specification
	// wants a host's session clean, so host_id requires clean_session: true. Default: none (no STATE).
	HostID string `yaml:"host_id"`
	// Passive: never send NCMD rebirth requests. An unknown alias, data from an edge node without a birth and a
	// sequence gap are then only counted (and undecodable data dead-lettered) until the edge node sends its births
	// by itself. For sites where another host application owns rebirths. Default false: requests, at most one per
	// edge node per second.
	Passive bool `yaml:"passive"`
	// ReorderTimeout is how long a gap in an edge node's sequence numbers may wait for the missing messages
	// before the input asks for a rebirth. Default 2s.
	ReorderTimeout time.Duration `yaml:"reorder_timeout"`
	// QoS of the subscriptions: 0 or 1 (default; Sparkplug's wills and STATE are QoS 1, its data QoS 0).
	QoS *byte `yaml:"qos"`
}

// SparkplugSourceTimeBound is the default source_time of an input with sparkplug set: a year back (historical
// metrics), a day ahead.
var SparkplugSourceTimeBound = fieldgate.SourceTimeBound{MaxPast: 365 * 24 * time.Hour, MaxFuture: 24 * time.Hour}

// SourceTimeBound returns the input's source_time with its defaults applied.
func (c Config) SourceTimeBound() fieldgate.SourceTimeBound {
	if c.Sparkplug != nil {
		return c.SourceTime.WithDefaults(SparkplugSourceTimeBound)
	}
	return c.SourceTime.WithDefaults(fieldgate.DefaultSourceTimeBound)
}

// Subscription is one topic pattern and how its messages become readings.
type Subscription struct {
	// Topic is an MQTT topic filter whose single-level segments may be named: "plant/{line}/{device}/telemetry".
	// "+" (unnamed single level) and a final "#" are allowed too. The filter subscribed to is derived ({x} → +).
	// A named segment must not be empty in a message's topic. Required.
	Topic string `yaml:"topic"`
	// QoS is the subscription's maximum QoS: 0, 1 (default) or 2. Messages at QoS 1 and 2 are acknowledged only
	// after their readings (or their dead letter) are committed; QoS 0 messages can be lost in transit.
	QoS *byte `yaml:"qos"`
	// Device names the device of a message, as a template over the named segments: "{line}/{device}".
	// Default: "{device}" when the topic has a segment named device, else the whole topic.
	Device string `yaml:"device"`
	// Format of the payload: "json" (default) or "value" (the payload is one number, bool or string).
	Format string `yaml:"format"`
	// Metric is, for "value", a template for the metric name (default: the last segment of the topic); for
	// "json", an optional template prefixed with "." to every metric name ("env" → "env.temperature").
	Metric string `yaml:"metric"`
	// Fields lists the JSON paths to read, with their metric names. Empty: every number, bool and string leaf
	// becomes a metric named by its dotted path, so fields a sensor adds later flow without a config change.
	// A path naming an object or array takes every leaf below it, named metric + the rest of the path.
	Fields []Field `yaml:"fields"`
	// Timestamp is where a JSON payload carries the time of measurement (the readings' SourceTime). Absent: no
	// source time, and the gateway's receive time is the event time. When set, a message (or sample) without
	// it, or with one that does not parse, is a dead letter.
	Timestamp *Timestamp `yaml:"timestamp"`
	// Samples is the path of an array of sample objects in a JSON payload; each element is mapped like a message
	// of its own (fields and timestamp paths are relative to the element), and everything outside the array is
	// ignored. Requires Timestamp: samples without their own time would all share one identity.
	Samples string `yaml:"samples"`
}

// Field is one JSON path read into a metric.
type Field struct {
	Path   string `yaml:"path"`   // dotted path, array elements by index: "env.temp", "axes.0"
	Metric string `yaml:"metric"` // metric name; default: the path
}

// Timestamp locates and parses the source time in a JSON payload.
type Timestamp struct {
	Path string `yaml:"path"` // dotted path of the field, e.g. "ts"
	// Format is unix_s, unix_ms, unix_us, unix_ns (a JSON number, or a string holding one; unix_s may have a
	// fraction) or rfc3339 (a string, fraction and any offset allowed). Default unix_ms.
	Format string `yaml:"format"`
}

// Payload formats and timestamp formats.
const (
	FormatJSON  = "json"
	FormatValue = "value"

	TimeUnixS   = "unix_s"
	TimeUnixMS  = "unix_ms"
	TimeUnixUS  = "unix_us"
	TimeUnixNS  = "unix_ns"
	TimeRFC3339 = "rfc3339"
)

// Defaults applied by New.
const (
	DefaultKeepAlive            = 30 * time.Second
	DefaultConnectTimeout       = 10 * time.Second
	DefaultMaxReconnectInterval = 30 * time.Second
	DefaultMaxBatch             = 1024
	DefaultMaxInflight          = 20
	DefaultMaxPayloadBytes      = 1 << 20
	DefaultQoS                  = 1
	DefaultReorderTimeout       = 2 * time.Second
	DefaultSparkplugDevice      = "{group}/{edge_node}/{device}"
	DefaultSparkplugNode        = "{group}/{edge_node}"
)

// maxMQTTPayload is the largest payload an MQTT 3.1.1 packet can carry (its remaining length's maximum).
const maxMQTTPayload = 268435455

// WithDefaults returns c with every zero field set to its default (the Defaults above, and each subscription's).
// It is what New runs with, and applying it twice changes nothing.
func (c Config) WithDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = "fieldgate-" + c.Name
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxReconnectInterval == 0 {
		c.MaxReconnectInterval = DefaultMaxReconnectInterval
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.MaxPayloadBytes == 0 {
		c.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	subs := make([]Subscription, len(c.Subscriptions))
	for i, s := range c.Subscriptions {
		subs[i] = s.withDefaults()
	}
	c.Subscriptions = subs
	if c.Sparkplug != nil {
		sp := c.Sparkplug.withDefaults()
		c.Sparkplug = &sp
	}
	return c
}

func (c SparkplugConfig) withDefaults() SparkplugConfig {
	if c.Device == "" {
		c.Device = DefaultSparkplugDevice
	}
	if c.Node == "" {
		c.Node = DefaultSparkplugNode
	}
	if c.ReorderTimeout == 0 {
		c.ReorderTimeout = DefaultReorderTimeout
	}
	if c.QoS == nil {
		q := byte(DefaultQoS)
		c.QoS = &q
	}
	return c
}

func (s Subscription) withDefaults() Subscription {
	if s.QoS == nil {
		q := byte(DefaultQoS)
		s.QoS = &q
	}
	if s.Format == "" {
		s.Format = FormatJSON
	}
	if s.Timestamp != nil && s.Timestamp.Format == "" {
		ts := *s.Timestamp
		ts.Format = TimeUnixMS
		s.Timestamp = &ts
	}
	return s
}

// Validate checks the configuration without any I/O. Every problem is a *fieldgate.FieldError naming the YAML
// field ("subscriptions[1].qos"); several are joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, a ...any) { errs = append(errs, fieldgate.FieldErrorf(field, format, a...)) }
	if c.Name == "" {
		add("name", "required: a unique name for this input")
	} else if strings.ContainsAny(c.Name, " \t\n/") {
		add("name", "%q: no spaces or slashes (it names metrics and dead letters)", c.Name)
	}
	if c.Broker == "" {
		add("broker", "required, e.g. tcp://127.0.0.1:1883 or ssl://broker:8883")
	} else if u, err := url.Parse(c.Broker); err != nil {
		add("broker", "%v", err)
	} else {
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "tcps":
		default:
			add("broker", "scheme %q: want tcp://, ssl:// or mqtts:// (websockets are not supported)", u.Scheme)
		}
		if u.Host == "" || u.Port() == "" {
			add("broker", "%q has no host:port", c.Broker)
		} else if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
			add("broker", "%q: the port must be a number from 1 to 65535", c.Broker)
		}
		if (u.Scheme == "tcp" || u.Scheme == "mqtt") && c.TLS.On() {
			// paho would silently connect in plain text.
			add("broker", "tls is configured but %s:// is plain TCP: use ssl:// (or mqtts://)", u.Scheme)
		}
	}
	if len(c.ClientID) > 65535 {
		add("client_id", "longer than 65535 bytes")
	}
	if c.Password != "" && c.Username == "" {
		add("password", "set without username")
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, fieldgate.WithField("tls", err))
	}
	if err := c.SourceTime.Validate(); err != nil {
		errs = append(errs, fieldgate.WithField("source_time", err))
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"keep_alive", c.KeepAlive}, {"connect_timeout", c.ConnectTimeout}, {"max_reconnect_interval", c.MaxReconnectInterval}} {
		if d.v < 0 {
			add(d.field, "negative duration %v", d.v)
		}
	}
	if c.KeepAlive > 0 && c.KeepAlive < time.Second {
		add("keep_alive", "%v: MQTT counts keepalive in whole seconds; use at least 1s", c.KeepAlive)
	}
	if c.MaxBatch < 0 {
		add("max_batch", "negative")
	}
	if c.MaxInflight < 0 || c.MaxInflight > 65535 {
		add("max_inflight", "%d: want 1 to 65535 (the broker's max_inflight_messages; 0 for the default %d)", c.MaxInflight, DefaultMaxInflight)
	}
	if c.MaxPayloadBytes < 0 || c.MaxPayloadBytes > maxMQTTPayload {
		add("max_payload_bytes", "%d: want 1 to %d bytes (0 for the default %d)", c.MaxPayloadBytes, maxMQTTPayload, DefaultMaxPayloadBytes)
	}
	if len(c.Subscriptions) == 0 && c.Sparkplug == nil {
		add("subscriptions", "at least one subscription is required (or a sparkplug section)")
	}
	if c.Sparkplug != nil {
		if err := c.Sparkplug.Validate(); err != nil {
			errs = append(errs, fieldgate.WithField("sparkplug", err))
		} else if c.Sparkplug.HostID != "" && !c.CleanSession {
			add("sparkplug.host_id", "a primary host application needs clean_session: true (the specification wants a host's session clean; edge nodes keep their data while the host is offline and send it as historical metrics)")
		}
	}
	topics := map[string]int{}
	for i, s := range c.Subscriptions {
		field := fmt.Sprintf("subscriptions[%d]", i)
		if err := s.Validate(); err != nil {
			errs = append(errs, fieldgate.WithField(field, err))
			continue
		}
		p, _ := parsePattern(s.Topic)
		if j, dup := topics[p.filter]; dup {
			add(field+".topic", "filter %q is the same as subscriptions[%d]'s; the second would never match", p.filter, j)
		} else {
			topics[p.filter] = i
		}
		if c.Sparkplug != nil && c.Sparkplug.overlaps(p.filter) {
			add(field+".topic", "filter %q also matches Sparkplug topics, which the sparkplug section reads", p.filter)
		}
	}
	return errors.Join(errs...)
}

// Validate checks the sparkplug section; field paths are relative to it.
func (c SparkplugConfig) Validate() error {
	var errs []error
	add := func(field, format string, a ...any) { errs = append(errs, fieldgate.FieldErrorf(field, format, a...)) }
	seen := map[string]int{}
	for i, g := range c.Groups {
		field := fmt.Sprintf("groups[%d]", i)
		if err := checkSparkplugID(g); err != nil {
			add(field, "%v", err)
		} else if g == "STATE" {
			add(field, "STATE is reserved for host applications' state, not a group")
		} else if j, dup := seen[g]; dup {
			add(field, "%q is listed twice (also groups[%d])", g, j)
		} else {
			seen[g] = i
		}
	}
	if c.HostID != "" {
		if err := checkSparkplugID(c.HostID); err != nil {
			add("host_id", "%v", err)
		}
	}
	if _, err := parseTemplate(c.Device, sparkplugDevicePattern); err != nil {
		errs = append(errs, fieldgate.WithField("device", err))
	}
	if _, err := parseTemplate(c.Node, sparkplugNodePattern); err != nil {
		errs = append(errs, fieldgate.WithField("node", err))
	}
	if c.ReorderTimeout < 0 {
		add("reorder_timeout", "negative duration %v", c.ReorderTimeout)
	}
	if c.QoS != nil && *c.QoS > 1 {
		add("qos", "%d: want 0 or 1 (Sparkplug uses no QoS 2)", *c.QoS)
	}
	return errors.Join(errs...)
}

// checkSparkplugID checks a group, edge node or host id: a topic level (tck-id-topic-structure-namespace-valid-*).
func checkSparkplugID(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case strings.ContainsAny(s, "+#/"):
		return fmt.Errorf("%q: +, # and / are not allowed in a Sparkplug id", s)
	case strings.ContainsRune(s, 0) || !utf8.ValidString(s):
		return fmt.Errorf("%q: not valid UTF-8 text", s)
	}
	return nil
}

// filters returns the MQTT filters the sparkplug section subscribes to: its groups (or every group) and, for a
// primary host, its own STATE topic.
func (c SparkplugConfig) filters() []string {
	var fs []string
	if len(c.Groups) == 0 {
		fs = append(fs, sparkplugNamespace+"/#")
	}
	for _, g := range c.Groups {
		fs = append(fs, sparkplugNamespace+"/"+g+"/#")
	}
	if c.HostID != "" && len(c.Groups) > 0 {
		fs = append(fs, sparkplugStateTopic(c.HostID))
	}
	return fs
}

// overlaps reports whether an MQTT filter would receive messages of the sparkplug section's filters.
func (c SparkplugConfig) overlaps(filter string) bool {
	groups := c.Groups
	if len(groups) == 0 {
		groups = []string{"g"}
	}
	for _, g := range groups {
		for _, t := range []string{"NBIRTH/n", "DDATA/n/d", "NDATA/n"} {
			if matchFilter(filter, sparkplugNamespace+"/"+g+"/"+t) {
				return true
			}
		}
	}
	return false
}

// Warnings returns configuration that is valid but probably unwise, for the caller to log.
func (c Config) Warnings() []string {
	var w []string
	if c.Password != "" && !c.tlsOn() {
		w = append(w, fmt.Sprintf("mqtt input %q sends its password in clear text over %s: use ssl:// and tls", c.Name, c.Broker))
	}
	if c.TLS.InsecureSkipVerify {
		w = append(w, fmt.Sprintf("mqtt input %q does not verify the broker's certificate (tls.insecure_skip_verify)", c.Name))
	}
	// A Sparkplug host's session is clean by the specification: edge nodes keep their data while it is away.
	if c.CleanSession && len(c.Subscriptions) > 0 {
		w = append(w, fmt.Sprintf("mqtt input %q uses a clean session: messages published while the gateway is down are lost", c.Name))
	}
	for i, s := range c.Subscriptions {
		if s.QoS != nil && *s.QoS == 0 {
			w = append(w, fmt.Sprintf("mqtt input %q subscriptions[%d] (%s) uses QoS 0: messages may be lost", c.Name, i, s.Topic))
		}
	}
	return w
}

func (c Config) tlsOn() bool {
	if c.TLS.On() {
		return true
	}
	u, err := url.Parse(c.Broker)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "ssl", "tls", "mqtts", "tcps":
		return true
	}
	return false
}

// Validate checks one subscription; field paths are relative to it.
func (s Subscription) Validate() error {
	var errs []error
	add := func(field, format string, a ...any) { errs = append(errs, fieldgate.FieldErrorf(field, format, a...)) }
	p, err := parsePattern(s.Topic)
	if err != nil {
		errs = append(errs, fieldgate.WithField("topic", err))
	}
	if s.QoS != nil && *s.QoS > 2 {
		add("qos", "%d: want 0, 1 or 2", *s.QoS)
	}
	if err == nil {
		if _, terr := parseTemplate(s.Device, p); terr != nil {
			errs = append(errs, fieldgate.WithField("device", terr))
		}
		if _, terr := parseTemplate(s.Metric, p); terr != nil {
			errs = append(errs, fieldgate.WithField("metric", terr))
		}
	}
	format := s.Format
	if format == "" {
		format = FormatJSON
	}
	switch format {
	case FormatJSON:
	case FormatValue:
		if len(s.Fields) > 0 {
			add("fields", "only for format json")
		}
		if s.Timestamp != nil {
			add("timestamp", "only for format json (a value payload carries no time)")
		}
		if s.Samples != "" {
			add("samples", "only for format json")
		}
	default:
		add("format", "%q: want json or value", s.Format)
	}
	seenPath := map[string]int{}
	for i, f := range s.Fields {
		field := fmt.Sprintf("fields[%d]", i)
		if err := checkPath(f.Path); err != nil {
			add(field+".path", "%v", err)
		} else if j, dup := seenPath[f.Path]; dup {
			add(field+".path", "%q is listed twice (also fields[%d])", f.Path, j)
		} else {
			seenPath[f.Path] = i
		}
		if len(f.Metric) > fieldgate.MaxNameBytes {
			add(field+".metric", "longer than %d bytes", fieldgate.MaxNameBytes)
		}
	}
	if s.Timestamp != nil {
		if err := checkPath(s.Timestamp.Path); err != nil {
			add("timestamp.path", "%v", err)
		}
		switch s.Timestamp.Format {
		case "", TimeUnixS, TimeUnixMS, TimeUnixUS, TimeUnixNS, TimeRFC3339:
		default:
			add("timestamp.format", "%q: want unix_s, unix_ms, unix_us, unix_ns or rfc3339", s.Timestamp.Format)
		}
	}
	if s.Samples != "" {
		if err := checkPath(s.Samples); err != nil {
			add("samples", "%v", err)
		}
		if s.Timestamp == nil {
			add("samples", "needs timestamp: samples without their own time would all get the same event time, and the central service would keep only one of them")
		}
	}
	return errors.Join(errs...)
}

func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("required")
	case strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, ".."):
		return fmt.Errorf("%q: empty path segment", p)
	case len(p) > fieldgate.MaxNameBytes:
		return fmt.Errorf("longer than %d bytes", fieldgate.MaxNameBytes)
	}
	return nil
}
