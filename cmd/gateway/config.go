package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/buffer"
	"github.com/fieldgate/fieldgate/forward"
	"github.com/fieldgate/fieldgate/internal/logging"
	"github.com/fieldgate/fieldgate/internal/yamlconf"
	"github.com/fieldgate/fieldgate/protocols/modbus"
	"github.com/fieldgate/fieldgate/protocols/mqtt"
	"github.com/fieldgate/fieldgate/protocols/opcua"
)

// Config is the gateway's configuration file. Every scalar value may use ${ENV_VAR} and ${file:PATH} (see
// yamlconf.Decode); every key must be known.
type Config struct {
	// GatewayID names this gateway; it is required, and sent with every record as a Kafka header.
	GatewayID string `yaml:"gateway_id"`
	// StateDir holds the buffer file (and the OPC UA certificates). Default /var/lib/fieldgate; a relative path is
	// taken from the working directory.
	StateDir string `yaml:"state_dir"`
	// Log sets the daemon's log output (always standard error).
	Log  logging.Config `yaml:"log"`
	HTTP HTTPConfig     `yaml:"http"`
	// Buffer is the durable store every reading passes through. Its path defaults to <state_dir>/buffer.db.
	Buffer buffer.Config   `yaml:"buffer"`
	Kafka  forward.Config  `yaml:"kafka"`
	MQTT   []mqtt.Config   `yaml:"mqtt"`
	Modbus []modbus.Config `yaml:"modbus"`
	// OPCUA inputs. Their generated client certificates go to <state_dir>/opcua unless security.state_dir says
	// otherwise.
	OPCUA []opcua.Config `yaml:"opcua"`
}

// HTTPConfig is the one HTTP listener serving /metrics, /healthz, /readyz and /api/status.
type HTTPConfig struct {
	// Listen is host:port; default 127.0.0.1:9100 (loopback only). Listening on another address exposes the
	// metrics and status, unauthenticated, to that network.
	Listen string `yaml:"listen"`
}

const (
	defaultStateDir = "/var/lib/fieldgate"
	defaultListen   = "127.0.0.1:9100"
)

// applyDefaults fills the gateway-level defaults; each component applies its own in New.
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

var gatewayIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

// Validate checks the gateway's own fields and every component's Validate, and returns every problem found
// (joined FieldErrors).
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
	errs = append(errs, fieldgate.WithField("buffer", c.Buffer.Validate()))
	errs = append(errs, fieldgate.WithField("kafka", c.Kafka.Validate()))

	names := map[string]string{} // input name → field path of its first use
	useName := func(path, name string) {
		if name == "" {
			return // the component's Validate reports a missing name
		}
		if first, ok := names[name]; ok {
			errs = append(errs, fieldgate.FieldErrorf(path+".name", "duplicate input name %q (also used by %s); names must be unique across all inputs", name, first))
			return
		}
		names[name] = path
	}
	for i, m := range c.MQTT {
		path := fmt.Sprintf("mqtt[%d]", i)
		errs = append(errs, fieldgate.WithField(path, m.Validate()))
		useName(path, m.Name)
	}
	for i, m := range c.Modbus {
		path := fmt.Sprintf("modbus[%d]", i)
		errs = append(errs, fieldgate.WithField(path, m.Validate()))
		useName(path, m.Name)
	}
	for i, o := range c.OPCUA {
		path := fmt.Sprintf("opcua[%d]", i)
		errs = append(errs, fieldgate.WithField(path, o.Validate()))
		useName(path, o.Name)
	}
	if c.inputCount() == 0 {
		errs = append(errs, fieldgate.FieldErrorf("", "no input configured: add at least one entry under mqtt, modbus or opcua"))
	}
	return errors.Join(errs...)
}

func (c *Config) inputCount() int { return len(c.MQTT) + len(c.Modbus) + len(c.OPCUA) }

// ---- loading ----------------------------------------------------------------------------------------------------

// loadConfig reads, substitutes, decodes and validates the file at path, with defaults applied. Any problem comes
// back as a *yamlconf.Error naming the file, line and field.
func loadConfig(path string) (*Config, *yamlconf.Index, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	cfg, idx, err := parseConfig(path, raw)
	if err != nil {
		return nil, nil, err
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, nil, idx.Locate(path, err)
	}
	if err := cfg.checkTLSFiles(); err != nil {
		return nil, nil, idx.Locate(path, err)
	}
	return cfg, idx, nil
}

// checkTLSFiles reads the certificate and key files of every TLS setting that is on, so that a missing or bad
// file is reported with its line before anything starts, rather than by an input failing at run time.
func (c *Config) checkTLSFiles() error {
	var errs []error
	check := func(field string, t fieldgate.TLSConfig) {
		if _, err := t.Build(); err != nil {
			errs = append(errs, fieldgate.FieldErrorf(field, "%v", err))
		}
	}
	check("kafka.tls", c.Kafka.TLS)
	for i, m := range c.MQTT {
		check(fmt.Sprintf("mqtt[%d].tls", i), m.TLS)
	}
	for i, m := range c.Modbus {
		check(fmt.Sprintf("modbus[%d].tls", i), m.TLS)
	}
	return errors.Join(errs...)
}

// parseConfig decodes raw (the contents of file) into a Config: unknown keys, type errors and failed
// substitutions are reported with their lines (see yamlconf.Decode). It applies no defaults and does not validate.
func parseConfig(file string, raw []byte) (*Config, *yamlconf.Index, error) {
	var cfg Config
	idx, err := yamlconf.Decode(file, raw, &cfg, "gateway_id: …, mqtt: …")
	if err != nil {
		return nil, nil, err
	}
	return &cfg, idx, nil
}
