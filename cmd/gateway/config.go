package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/buffer"
	"github.com/fieldgate/fieldgate/forward"
	"github.com/fieldgate/fieldgate/internal/logging"
	"github.com/fieldgate/fieldgate/internal/webserve"
	"github.com/fieldgate/fieldgate/protocols/modbus"
	"github.com/fieldgate/fieldgate/protocols/mqtt"
	"github.com/fieldgate/fieldgate/protocols/opcua"
)

// Config is the gateway's configuration: one file, and optionally the drop-in files of a directory beside it
// (see loadFiles). Every scalar value may use ${ENV_VAR} and ${file:PATH} (see yamlconf.Decode); every key must
// be known.
type Config struct {
	// GatewayID names this gateway; it is required, and sent with every record as a Kafka header.
	GatewayID string `yaml:"gateway_id"`
	// StateDir holds the buffer file, the OPC UA certificates and the last applied configurations. Default
	// /var/lib/fieldgate; a relative path is taken from the working directory. Changing it needs a restart.
	StateDir string `yaml:"state_dir"`
	// Log sets the daemon's log output (always standard error).
	Log    logging.Config `yaml:"log"`
	HTTP   HTTPConfig     `yaml:"http"`
	Reload ReloadConfig   `yaml:"reload"`
	// Buffer is the durable store every reading passes through. Its path defaults to <state_dir>/buffer.db.
	// Changing any of it needs a restart: a reload that does is refused.
	Buffer buffer.Config   `yaml:"buffer"`
	Kafka  forward.Config  `yaml:"kafka"`
	MQTT   []mqtt.Config   `yaml:"mqtt"`
	Modbus []modbus.Config `yaml:"modbus"`
	// OPCUA inputs. Their generated client certificates go to <state_dir>/opcua unless security.state_dir says
	// otherwise.
	OPCUA []opcua.Config `yaml:"opcua"`
}

// HTTPConfig is the one HTTP listener serving the page, /metrics, /healthz, /readyz and the APIs.
type HTTPConfig struct {
	// Listen is host:port; default 127.0.0.1:9100 (loopback only). Another address needs a credential in auth
	// (the gateway refuses to start without one). A reload that changes it binds the new address before it lets
	// go of the old one.
	Listen string `yaml:"listen"`
	// Auth is the credential every request but /healthz needs (see internal/webserve): a bearer token and/or a
	// bcrypt password for HTTP Basic. None by default.
	Auth webserve.Auth `yaml:"auth"`
	// TLS serves HTTPS with this certificate. Changing it needs a restart.
	TLS webserve.TLS `yaml:"tls"`
	// AllowReplay lets POST /api/deadletters/replay (and `gateway deadletters replay`) replay dead letters
	// through the current mappings. Default false: the API is read-only.
	AllowReplay bool `yaml:"allow_replay"`
}

// ReloadConfig says how the gateway takes a changed configuration while it runs.
type ReloadConfig struct {
	// Watch reloads when the configuration file or a drop-in file changes (an editor's save, a config tool's
	// atomic rename). Default true. SIGHUP reloads either way.
	Watch *bool `yaml:"watch"`
	// Keep is how many of the last applied configurations are kept in <state_dir>/configs, the newest of which
	// the gateway starts on when its file is invalid. Default 10; at least 1.
	Keep int `yaml:"keep"`
}

const (
	defaultStateDir    = "/var/lib/fieldgate"
	defaultListen      = "127.0.0.1:9100"
	defaultKeepConfigs = 10
)

// applyDefaults fills the gateway-level defaults that Validate relies on; effective adds the components' own.
func (c *Config) applyDefaults() {
	if c.StateDir == "" {
		c.StateDir = defaultStateDir
	}
	if c.Buffer.Path == "" {
		c.Buffer.Path = filepath.Join(c.StateDir, "buffer.db")
	}
	c.Log.ApplyDefaults()
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = defaultListen
	}
	for i := range c.MQTT {
		if c.MQTT[i].ClientID == "" && c.MQTT[i].Name != "" {
			// A fixed client id is what makes the broker keep the session (and queue messages) across restarts.
			c.MQTT[i].ClientID = "fieldgate-" + c.GatewayID + "-" + c.MQTT[i].Name
		}
	}
	for i := range c.OPCUA {
		if c.OPCUA[i].Security.StateDir == "" {
			c.OPCUA[i].Security.StateDir = filepath.Join(c.StateDir, "opcua")
		}
	}
}

// effective returns c (validated, gateway defaults applied) with every component's defaults applied too: the
// configuration as it runs, which the gateway compares and hashes. c is not changed.
func (c Config) effective() *Config {
	e := c
	if e.Reload.Watch == nil {
		on := true
		e.Reload.Watch = &on
	}
	if e.Reload.Keep == 0 {
		e.Reload.Keep = defaultKeepConfigs
	}
	e.Buffer = c.Buffer.WithDefaults()
	e.Kafka = c.Kafka.WithDefaults(c.GatewayID)
	e.MQTT = make([]mqtt.Config, len(c.MQTT))
	for i, m := range c.MQTT {
		e.MQTT[i] = m.WithDefaults()
	}
	e.Modbus = make([]modbus.Config, len(c.Modbus))
	for i, m := range c.Modbus {
		e.Modbus[i] = m.WithDefaults()
	}
	e.OPCUA = make([]opcua.Config, len(c.OPCUA))
	for i, o := range c.OPCUA {
		e.OPCUA[i] = o.WithDefaults()
	}
	return &e
}

var gatewayIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

// Validate checks the gateway's own fields, every component's Validate and what spans inputs (unique input and
// device names), and returns every problem found (joined FieldErrors).
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.GatewayID == "":
		errs = append(errs, fieldgate.FieldErrorf("gateway_id", "required: a name for this gateway, sent with every record"))
	case len(c.GatewayID) > 128 || !gatewayIDPattern.MatchString(c.GatewayID):
		errs = append(errs, fieldgate.FieldErrorf("gateway_id", "%q: use letters, digits and . _ : - (at most 128)", c.GatewayID))
	}
	errs = append(errs, fieldgate.WithField("log", c.Log.Validate()))
	if _, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		errs = append(errs, fieldgate.FieldErrorf("http.listen", "%q: want host:port, e.g. 127.0.0.1:9100", c.HTTP.Listen))
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		errs = append(errs, fieldgate.FieldErrorf("http.listen", "%q: bad port", c.HTTP.Listen))
	}
	errs = append(errs, fieldgate.WithField("http", webserve.Validate(c.HTTP.Listen, c.HTTP.Auth, c.HTTP.TLS)))
	if c.Reload.Keep < 0 || c.Reload.Keep > 1000 {
		errs = append(errs, fieldgate.FieldErrorf("reload.keep", "%d: want 1 to 1000, or 0 for the default %d", c.Reload.Keep, defaultKeepConfigs))
	}
	errs = append(errs, fieldgate.WithField("buffer", c.Buffer.Validate()))
	errs = append(errs, fieldgate.WithField("kafka", c.Kafka.Validate()))

	names := map[string]string{} // input name → field path of its first use
	for _, in := range c.inputs() {
		errs = append(errs, fieldgate.WithField(in.field, in.validate()))
		if in.name == "" {
			continue // the component's Validate reports a missing name
		}
		if first, ok := names[in.name]; ok {
			errs = append(errs, fieldgate.FieldErrorf(in.field+".name", "duplicate input name %q (also used by %s); names must be unique across all inputs", in.name, first))
			continue
		}
		names[in.name] = in.field
	}
	if c.inputCount() == 0 {
		errs = append(errs, fieldgate.FieldErrorf("", "no input configured: add at least one entry under mqtt, modbus or opcua"))
	}
	errs = append(errs, c.checkDevices()...)
	return errors.Join(errs...)
}

func (c *Config) inputCount() int { return len(c.MQTT) + len(c.Modbus) + len(c.OPCUA) }

// checkDevices refuses a device name that two inputs give their readings: a reading is identified by device,
// metric and time, so two devices under one name (a Modbus connection copied for a second PLC, say) would
// overwrite each other's readings downstream. Only names the configuration fixes are known here: a device taken
// from an MQTT topic is the publishers' choice.
func (c *Config) checkDevices() []error {
	type use struct{ input, field string }
	first := map[string]use{}
	var errs []error
	for _, in := range c.inputs() {
		for _, d := range in.devices() {
			f, seen := first[d.name]
			switch {
			case !seen:
				first[d.name] = use{in.name, d.field}
			case f.input != in.name:
				errs = append(errs, &fieldgate.FieldError{Field: d.field, Err: alsoAt{
					format: "device %q is also a device of input " + strconv.Quote(f.input) + " (%s): readings are identified by device, metric and time, so two inputs must not share a device name",
					name:   d.name, other: f.field}})
			}
		}
	}
	return errs
}

// alsoAt is a problem that names another field of the configuration: format takes the name and the other field's
// place, which the loader writes as file:line (Error writes the field path).
type alsoAt struct {
	format, name, other string
}

func (e alsoAt) Error() string                 { return e.withPlace(e.other) }
func (e alsoAt) withPlace(place string) string { return fmt.Sprintf(e.format, e.name, place) }

// ---- inputs, whatever their protocol ------------------------------------------------------------------------------

// inputConfig is one configured input: what Validate, the reload and the builder need, the same for every
// protocol. The protocol packages are named here and in wire.go only.
type inputConfig struct {
	kind  string // "mqtt", "modbus", "opcua"
	name  string
	field string // its place in the configuration, e.g. "mqtt[0]"
	cfg   any    // the protocol's Config, as loaded (effective, once the config is)
	// times is the source_time bound the gateway checks the input's readings against.
	times fieldgate.SourceTimeBound
}

// inputs lists every input of c, MQTT first, then Modbus, then OPC UA, each in file order.
func (c *Config) inputs() []inputConfig {
	var out []inputConfig
	for i, m := range c.MQTT {
		out = append(out, inputConfig{kind: "mqtt", name: m.Name, field: fmt.Sprintf("mqtt[%d]", i), cfg: m,
			times: m.SourceTimeBound()})
	}
	for i, m := range c.Modbus {
		out = append(out, inputConfig{kind: "modbus", name: m.Name, field: fmt.Sprintf("modbus[%d]", i), cfg: m})
	}
	for i, o := range c.OPCUA {
		out = append(out, inputConfig{kind: "opcua", name: o.Name, field: fmt.Sprintf("opcua[%d]", i), cfg: o,
			times: o.SourceTime.WithDefaults(opcua.DefaultSourceTimeBound)})
	}
	return out
}

func (in inputConfig) validate() error {
	switch c := in.cfg.(type) {
	case mqtt.Config:
		return c.Validate()
	case modbus.Config:
		return c.Validate()
	case opcua.Config:
		return c.Validate()
	}
	panic("unknown input config " + in.kind)
}

// deviceUse is a device name an input's configuration fixes, and the field that fixes it.
type deviceUse struct{ name, field string }

// devices returns the device names the input's readings carry that its configuration fixes (see the Device
// fields of each protocol's Config).
func (in inputConfig) devices() []deviceUse {
	var out []deviceUse
	switch c := in.cfg.(type) {
	case mqtt.Config:
		for i, s := range c.Subscriptions {
			switch {
			case s.Device != "" && !strings.Contains(s.Device, "{"):
				out = append(out, deviceUse{s.Device, fmt.Sprintf("%s.subscriptions[%d].device", in.field, i)})
			case s.Device == "" && !strings.ContainsAny(s.Topic, "+#{"):
				out = append(out, deviceUse{s.Topic, fmt.Sprintf("%s.subscriptions[%d].topic", in.field, i)})
			}
		}
	case modbus.Config:
		for i, d := range c.Devices {
			out = append(out, deviceUse{d.Name, fmt.Sprintf("%s.devices[%d].name", in.field, i)})
		}
	case opcua.Config:
		for i, g := range c.Groups {
			for j, n := range g.Nodes {
				switch {
				case n.Device != "":
					out = append(out, deviceUse{n.Device, fmt.Sprintf("%s.groups[%d].nodes[%d].device", in.field, i, j)})
				case g.Device != "":
					out = append(out, deviceUse{g.Device, fmt.Sprintf("%s.groups[%d].device", in.field, i)})
				default:
					out = append(out, deviceUse{c.Name, in.field + ".name"})
				}
			}
		}
	}
	return out
}

// reloadWatch reports whether the configuration files are watched.
func (c *Config) reloadWatch() bool { return c.Reload.Watch == nil || *c.Reload.Watch }
