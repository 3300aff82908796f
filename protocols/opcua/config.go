package opcua

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/fieldgate/fieldgate"
)

// Config is one OPC UA input: one server endpoint, one session, any number of node groups.
//
// Readings are named as follows: Device is the node's `device`, else its group's `device`, else the input's
// `name`; Metric is the node's `metric`, else its id as written in the config. An array node gives one reading per
// element, named `metric[i]` (arrays: elements, the default), or one reading holding the whole array as a JSON
// string (arrays: string).
type Config struct {
	// Name identifies the input in logs, metrics and /api/status; it is also the default device name. Required.
	Name string `yaml:"name"`
	// Endpoint is the server's URL, e.g. opc.tcp://plc1:4840. The session always dials this URL, whatever host name
	// the server writes into its endpoint descriptions. Required.
	Endpoint string   `yaml:"endpoint"`
	Security Security `yaml:"security"`
	Auth     Auth     `yaml:"auth"`
	// Groups of nodes, each read by a subscription or by polling. At least one.
	Groups []Group `yaml:"groups"`
	Limits Limits  `yaml:"limits"`
	// ReconnectInterval is the first wait after a failed connect or a lost session; it doubles up to
	// MaxReconnectInterval, and only a session that lasted at least MaxReconnectInterval resets it. Default 1s;
	// MaxReconnectInterval default 30s.
	ReconnectInterval    time.Duration `yaml:"reconnect_interval"`
	MaxReconnectInterval time.Duration `yaml:"max_reconnect_interval"`
	// RequestTimeout bounds each service call. Default 10s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// SessionTimeout is the session lifetime the server keeps without traffic. Default 60s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// QueueSize caps the readings held between the OPC UA publish loop and the buffer. When the buffer is slower
	// than the server for that long, the oldest readings are dropped and counted (Stats.Dropped), so the publish
	// loop never stalls and the server never drops notifications unseen. Default 100000.
	QueueSize int `yaml:"queue_size"`
	// BatchSize is the most readings handed to the buffer in one Emit call. Default 5000.
	BatchSize int `yaml:"batch_size"`
	// SourceTime bounds the source timestamps (else server timestamps) taken as the readings' time: one outside
	// [gateway time − max_past, gateway time + max_future] (a PLC clock never set, or running far ahead) is
	// replaced by the gateway time, a Good reading marked Uncertain with fieldgate.StatusImplausibleTime, and
	// counted. The gateway applies it to every reading of the input before it commits it. Default
	// DefaultSourceTimeBound: a day ahead, a year back, since a server reports a value that has not changed with
	// the time it last changed (a setpoint may be months old) — lower max_past where values change often.
	SourceTime fieldgate.SourceTimeBound `yaml:"source_time"`
}

// DefaultSourceTimeBound is the default of Config.SourceTime.
var DefaultSourceTimeBound = fieldgate.SourceTimeBound{MaxPast: 366 * 24 * time.Hour, MaxFuture: 24 * time.Hour}

// Security chooses the secure channel.
type Security struct {
	// Mode is SignAndEncrypt (default), Sign or None. None sends everything in clear text and accepts any server;
	// it is used only when written here, and the input logs a warning.
	Mode string `yaml:"mode"`
	// Policy is Aes256_Sha256_RsaPss, Aes128_Sha256_RsaOaep or Basic256Sha256; empty (default) picks the strongest
	// of these the server offers. The deprecated Basic128Rsa15 and Basic256 are used only when written here, with
	// a warning.
	Policy string `yaml:"policy"`
	// CertFile and KeyFile are the client's application instance certificate and RSA key (PEM or DER). When both
	// are empty, a certificate is generated on first start into StateDir and its SHA-256 fingerprint logged, to be
	// trusted on the server.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// StateDir holds the generated client certificate (<name>.cert.pem, <name>.key.pem). The daemon passes its
	// default (/var/lib/fieldgate/opcua) when the config leaves it empty.
	StateDir string `yaml:"state_dir"`
	// ApplicationURI is the client's application URI, written into a generated certificate. Default
	// urn:fieldgate:<name>. With CertFile it is taken from the certificate.
	ApplicationURI string `yaml:"application_uri"`
	// ServerFingerprints pins the server's certificate: SHA-256 of its DER bytes, hex, colons optional. A server
	// whose certificate matches none of them (and is not signed by ServerCAFile) is refused with a message that
	// shows its fingerprint. One of the two is required unless Mode is None.
	ServerFingerprints []string `yaml:"server_fingerprints"`
	// ServerCAFile is a PEM bundle of CAs; a server certificate that verifies against it is trusted.
	ServerCAFile string `yaml:"server_ca_file"`
}

// Auth is the user identity of the session.
type Auth struct {
	// Method is anonymous (default), username or certificate.
	Method   string           `yaml:"method"`
	Username string           `yaml:"username"`
	Password fieldgate.Secret `yaml:"password"` // from the environment or a file through the daemon's substitution
	// CertFile and KeyFile are the user certificate and key for method certificate (PEM or DER).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Limits lowers the server's operation limits, for servers that report none or report too much. Each service call
// is split so that it carries at most min(server limit, this limit) operations. Zero means the default.
type Limits struct {
	MaxNodesPerRead          int `yaml:"max_nodes_per_read"`           // default 1000
	MaxMonitoredItemsPerCall int `yaml:"max_monitored_items_per_call"` // default 1000
	MaxNodesPerBrowse        int `yaml:"max_nodes_per_browse"`         // default 500
	// MaxMessageSize is the largest response, in bytes, the gateway accepts; it tells the server so when it
	// connects, and a server that still sends more loses its connection. Decoding a response takes up to about
	// 170 times its size in memory when it is built to be costly (a malformed one is refused before that), so the
	// default, 1 MiB, bounds one input's decoding at about 170 MB: raise it only for large arrays. Default 1 MiB,
	// at least 64 KiB.
	MaxMessageSize int `yaml:"max_message_size"`
}

// Group is a set of nodes read the same way.
type Group struct {
	// Name identifies the group in logs and Stats. Required, unique in the input.
	Name string `yaml:"name"`
	// Device names the readings of the group's nodes that set no device of their own. Default: the input's name.
	Device string `yaml:"device"`
	// Mode is subscribe (default: a subscription with one monitored item per node) or poll (a Read of all nodes
	// every PollInterval).
	Mode string `yaml:"mode"`
	// PublishingInterval of the subscription. Default 1s.
	PublishingInterval time.Duration `yaml:"publishing_interval"`
	// SamplingInterval of each monitored item. Default: the publishing interval.
	SamplingInterval time.Duration `yaml:"sampling_interval"`
	// KeepAliveCount: publishing intervals without data after which the server sends a keep-alive. Default: as many
	// as fit in 5s (at least 1). The subscription watchdog rebuilds a subscription that sends neither data nor a
	// keep-alive for twice this time.
	KeepAliveCount uint32 `yaml:"keep_alive_count"`
	// QueueSize of each monitored item on the server. Default 10.
	QueueSize uint32 `yaml:"queue_size"`
	// DiscardOldest drops the oldest value when a server queue is full. Default true.
	DiscardOldest *bool `yaml:"discard_oldest"`
	// Trigger of the data-change filter: status, status_value (default) or status_value_timestamp.
	Trigger string `yaml:"trigger"`
	// Deadband is none (default), absolute or percent (of the node's EURange); DeadbandValue its size.
	Deadband      string  `yaml:"deadband"`
	DeadbandValue float64 `yaml:"deadband_value"`
	// PollInterval of a poll group. Default 1s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Arrays is elements (default: one reading per element, metric[i]) or string (one reading, a JSON array).
	Arrays string `yaml:"arrays"`
	Nodes  []Node `yaml:"nodes"`
}

// Node is one variable.
type Node struct {
	// ID in any OPC UA form: ns=2;s=Name, ns=2;i=42, i=2258, ns=3;g=<guid>, ns=2;b=<base64>, or nsu=<uri>;s=Name
	// (the namespace URI is resolved to its index at each connect). Required.
	ID string `yaml:"id"`
	// Metric names the readings. Default: ID.
	Metric string `yaml:"metric"`
	// Device overrides the group's device.
	Device string `yaml:"device"`
	// Arrays overrides the group's arrays setting.
	Arrays string `yaml:"arrays"`
}

// Defaults.
const (
	defaultReconnectInterval    = time.Second
	defaultMaxReconnectInterval = 30 * time.Second
	defaultRequestTimeout       = 10 * time.Second
	defaultSessionTimeout       = time.Minute
	defaultQueueSize            = 100000
	defaultBatchSize            = 5000
	defaultMaxNodesPerRead      = 1000
	defaultMaxItemsPerCall      = 1000
	defaultMaxNodesPerBrowse    = 500
	defaultMaxMessageSize       = 1 << 20
	minMaxMessageSize           = 64 << 10
	defaultPublishingInterval   = time.Second
	defaultPollInterval         = time.Second
	defaultItemQueueSize        = 10
	defaultKeepAliveTarget      = 5 * time.Second
)

// Security modes, policies, auth methods, group modes: the config spellings.
const (
	ModeNone           = "None"
	ModeSign           = "Sign"
	ModeSignAndEncrypt = "SignAndEncrypt"

	PolicyNone                = "None"
	PolicyBasic128Rsa15       = "Basic128Rsa15"
	PolicyBasic256            = "Basic256"
	PolicyBasic256Sha256      = "Basic256Sha256"
	PolicyAes128Sha256RsaOaep = "Aes128_Sha256_RsaOaep"
	PolicyAes256Sha256RsaPss  = "Aes256_Sha256_RsaPss"

	AuthAnonymous   = "anonymous"
	AuthUsername    = "username"
	AuthCertificate = "certificate"

	GroupSubscribe = "subscribe"
	GroupPoll      = "poll"
)

// securePolicies in order of preference, strongest first.
var securePolicies = []string{PolicyAes256Sha256RsaPss, PolicyAes128Sha256RsaOaep, PolicyBasic256Sha256}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// Validate checks the config without touching files or the network. Errors are FieldErrors naming the YAML path.
func (c Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.Name == "" {
		add(fieldgate.FieldErrorf("name", "required"))
	}
	if c.Endpoint == "" {
		add(fieldgate.FieldErrorf("endpoint", "required"))
	} else if !strings.HasPrefix(c.Endpoint, "opc.tcp://") {
		add(fieldgate.FieldErrorf("endpoint", "%q is not an opc.tcp:// URL", c.Endpoint))
	}
	add(fieldgate.WithField("security", c.Security.validate(c.Endpoint)))
	add(fieldgate.WithField("auth", c.Auth.validate(c.Security)))
	for field, d := range map[string]time.Duration{"reconnect_interval": c.ReconnectInterval,
		"max_reconnect_interval": c.MaxReconnectInterval, "request_timeout": c.RequestTimeout,
		"session_timeout": c.SessionTimeout} {
		if d < 0 {
			add(fieldgate.FieldErrorf(field, "must not be negative"))
		}
	}
	if c.QueueSize < 0 {
		add(fieldgate.FieldErrorf("queue_size", "must not be negative"))
	}
	if c.BatchSize < 0 {
		add(fieldgate.FieldErrorf("batch_size", "must not be negative"))
	}
	if c.Limits.MaxNodesPerRead < 0 {
		add(fieldgate.FieldErrorf("limits.max_nodes_per_read", "must not be negative"))
	}
	if c.Limits.MaxMonitoredItemsPerCall < 0 {
		add(fieldgate.FieldErrorf("limits.max_monitored_items_per_call", "must not be negative"))
	}
	if c.Limits.MaxNodesPerBrowse < 0 {
		add(fieldgate.FieldErrorf("limits.max_nodes_per_browse", "must not be negative"))
	}
	add(fieldgate.WithField("source_time", c.SourceTime.Validate()))
	if c.Limits.MaxMessageSize != 0 && (c.Limits.MaxMessageSize < minMaxMessageSize || int64(c.Limits.MaxMessageSize) > math.MaxUint32) {
		add(fieldgate.FieldErrorf("limits.max_message_size", "%d bytes: want at least %d (64 KiB) and at most 4 GiB", c.Limits.MaxMessageSize, minMaxMessageSize))
	}
	if len(c.Groups) == 0 {
		add(fieldgate.FieldErrorf("groups", "at least one group is required"))
	}
	names := map[string]bool{}
	for i, g := range c.Groups {
		add(fieldgate.WithField(fmt.Sprintf("groups[%d]", i), g.validate()))
		if g.Name != "" && names[g.Name] {
			add(fieldgate.FieldErrorf(fmt.Sprintf("groups[%d].name", i), "group %q is defined twice", g.Name))
		}
		names[g.Name] = true
	}
	return errors.Join(errs...)
}

// validate checks the security settings of an input of endpoint.
func (s Security) validate(endpoint string) error {
	var errs []error
	if s.Mode != "" && !oneOf(s.Mode, ModeNone, ModeSign, ModeSignAndEncrypt) {
		errs = append(errs, fieldgate.FieldErrorf("mode", "unknown mode %q (want SignAndEncrypt, Sign or None)", s.Mode))
	}
	if s.Policy != "" && !oneOf(s.Policy, PolicyNone, PolicyBasic128Rsa15, PolicyBasic256, PolicyBasic256Sha256,
		PolicyAes128Sha256RsaOaep, PolicyAes256Sha256RsaPss) {
		errs = append(errs, fieldgate.FieldErrorf("policy", "unknown policy %q (want Aes256_Sha256_RsaPss, "+
			"Aes128_Sha256_RsaOaep or Basic256Sha256; None, Basic256, Basic128Rsa15 only if you must)", s.Policy))
	}
	none := s.Mode == ModeNone
	if none && s.Policy != "" && s.Policy != PolicyNone {
		errs = append(errs, fieldgate.FieldErrorf("policy", "policy %s needs mode Sign or SignAndEncrypt, not None", s.Policy))
	}
	if !none && s.Policy == PolicyNone {
		errs = append(errs, fieldgate.FieldErrorf("mode", "policy None needs mode None (write mode: None to accept an unsecured channel)"))
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		errs = append(errs, fieldgate.FieldErrorf("cert_file", "cert_file and key_file go together: set both, or neither to generate one into state_dir"))
	}
	if !none && len(s.ServerFingerprints) == 0 && s.ServerCAFile == "" {
		if !strings.HasPrefix(endpoint, "opc.tcp://") {
			endpoint = "opc.tcp://HOST:PORT"
		}
		errs = append(errs, fieldgate.FieldErrorf("server_fingerprints", "set server_fingerprints or server_ca_file "+
			"to trust the server's certificate: `gateway opcua trust -endpoint %s` shows it and prints the lines to "+
			"paste, once you have checked its fingerprint on the server", endpoint))
	}
	for i, f := range s.ServerFingerprints {
		if _, err := parseFingerprint(f); err != nil {
			errs = append(errs, fieldgate.FieldErrorf(fmt.Sprintf("server_fingerprints[%d]", i), "%v", err))
		}
	}
	return errors.Join(errs...)
}

// validate checks the auth method against the security mode: a password or user certificate on an unsecured
// channel would travel in clear text.
func (a Auth) validate(sec Security) error {
	switch a.Method {
	case "", AuthAnonymous:
		return nil
	case AuthUsername:
		if a.Username == "" {
			return fieldgate.FieldErrorf("username", "required for method username")
		}
		if sec.Mode == ModeNone {
			return fieldgate.FieldErrorf("method", "a password is not sent over security mode None")
		}
	case AuthCertificate:
		if a.CertFile == "" || a.KeyFile == "" {
			return fieldgate.FieldErrorf("cert_file", "cert_file and key_file are required for method certificate")
		}
		if sec.Mode == ModeNone {
			return fieldgate.FieldErrorf("method", "certificate user authentication needs security mode Sign or SignAndEncrypt")
		}
	default:
		return fieldgate.FieldErrorf("method", "unknown method %q (want anonymous, username or certificate)", a.Method)
	}
	return nil
}

func (g Group) validate() error {
	var errs []error
	add := func(field, format string, a ...any) { errs = append(errs, fieldgate.FieldErrorf(field, format, a...)) }
	if g.Name == "" {
		add("name", "required")
	}
	if g.Mode != "" && !oneOf(g.Mode, GroupSubscribe, GroupPoll) {
		add("mode", "unknown mode %q (want subscribe or poll)", g.Mode)
	}
	if g.PublishingInterval < 0 || (g.PublishingInterval > 0 && g.PublishingInterval < time.Millisecond) {
		add("publishing_interval", "must be at least 1ms")
	}
	if g.SamplingInterval < 0 {
		add("sampling_interval", "must not be negative")
	}
	if g.PollInterval < 0 || (g.PollInterval > 0 && g.PollInterval < time.Millisecond) {
		add("poll_interval", "must be at least 1ms")
	}
	if g.Trigger != "" && !oneOf(g.Trigger, "status", "status_value", "status_value_timestamp") {
		add("trigger", "unknown trigger %q (want status, status_value or status_value_timestamp)", g.Trigger)
	}
	switch g.Deadband {
	case "", "none":
		if g.DeadbandValue != 0 {
			add("deadband_value", "set deadband to absolute or percent to use a deadband value")
		}
	case "absolute":
		if g.DeadbandValue < 0 {
			add("deadband_value", "must not be negative")
		}
	case "percent":
		if g.DeadbandValue < 0 || g.DeadbandValue > 100 {
			add("deadband_value", "must be between 0 and 100 for a percent deadband")
		}
	default:
		add("deadband", "unknown deadband %q (want none, absolute or percent)", g.Deadband)
	}
	if g.Arrays != "" && !oneOf(g.Arrays, "elements", "string") {
		add("arrays", "unknown arrays %q (want elements or string)", g.Arrays)
	}
	if len(g.Nodes) == 0 {
		add("nodes", "at least one node is required")
	}
	seen := map[string]int{}
	for i, n := range g.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		if n.ID == "" {
			add(f+".id", "required")
		} else if _, err := parseNodeID(n.ID, nil); err != nil && !errors.Is(err, errNeedNamespaces) {
			add(f+".id", "%v", err)
		}
		if n.Arrays != "" && !oneOf(n.Arrays, "elements", "string") {
			add(f+".arrays", "unknown arrays %q (want elements or string)", n.Arrays)
		}
		key := n.Device + "\x00" + n.Metric
		if n.Metric == "" {
			key = n.Device + "\x00" + n.ID
		}
		if j, ok := seen[key]; ok {
			add(f, "same device and metric as nodes[%d]: their readings would be indistinguishable", j)
		}
		seen[key] = i
	}
	return errors.Join(errs...)
}

// WithDefaults returns the config with every zero field set to its documented default. It is what New runs with,
// and applying it twice changes nothing.
func (c Config) WithDefaults() Config {
	if c.ReconnectInterval == 0 {
		c.ReconnectInterval = defaultReconnectInterval
	}
	if c.MaxReconnectInterval == 0 {
		c.MaxReconnectInterval = defaultMaxReconnectInterval
	}
	if c.MaxReconnectInterval < c.ReconnectInterval {
		c.MaxReconnectInterval = c.ReconnectInterval
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = defaultSessionTimeout
	}
	if c.QueueSize == 0 {
		c.QueueSize = defaultQueueSize
	}
	if c.BatchSize == 0 {
		c.BatchSize = defaultBatchSize
	}
	if c.Security.Mode == "" {
		c.Security.Mode = ModeSignAndEncrypt
	}
	if c.Security.ApplicationURI == "" {
		c.Security.ApplicationURI = "urn:fieldgate:" + c.Name
	}
	if c.Auth.Method == "" {
		c.Auth.Method = AuthAnonymous
	}
	if c.Limits.MaxNodesPerRead == 0 {
		c.Limits.MaxNodesPerRead = defaultMaxNodesPerRead
	}
	if c.Limits.MaxMonitoredItemsPerCall == 0 {
		c.Limits.MaxMonitoredItemsPerCall = defaultMaxItemsPerCall
	}
	if c.Limits.MaxNodesPerBrowse == 0 {
		c.Limits.MaxNodesPerBrowse = defaultMaxNodesPerBrowse
	}
	if c.Limits.MaxMessageSize == 0 {
		c.Limits.MaxMessageSize = defaultMaxMessageSize
	}
	groups := make([]Group, len(c.Groups))
	for i, g := range c.Groups {
		if g.Mode == "" {
			g.Mode = GroupSubscribe
		}
		if g.Device == "" {
			g.Device = c.Name
		}
		if g.PublishingInterval == 0 {
			g.PublishingInterval = defaultPublishingInterval
		}
		if g.SamplingInterval == 0 {
			g.SamplingInterval = g.PublishingInterval
		}
		if g.KeepAliveCount == 0 {
			g.KeepAliveCount = uint32(max(1, defaultKeepAliveTarget/g.PublishingInterval))
		}
		if g.QueueSize == 0 {
			g.QueueSize = defaultItemQueueSize
		}
		if g.DiscardOldest == nil {
			t := true
			g.DiscardOldest = &t
		}
		if g.Trigger == "" {
			g.Trigger = "status_value"
		}
		if g.Deadband == "" {
			g.Deadband = "none"
		}
		if g.PollInterval == 0 {
			g.PollInterval = defaultPollInterval
		}
		if g.Arrays == "" {
			g.Arrays = "elements"
		}
		nodes := make([]Node, len(g.Nodes))
		for j, n := range g.Nodes {
			if n.Metric == "" {
				n.Metric = n.ID
			}
			if n.Device == "" {
				n.Device = g.Device
			}
			if n.Arrays == "" {
				n.Arrays = g.Arrays
			}
			nodes[j] = n
		}
		g.Nodes = nodes
		groups[i] = g
	}
	c.Groups = groups
	return c
}
