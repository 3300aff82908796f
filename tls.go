package fieldgate

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
)

// TLSConfig is the client TLS setting shared by the MQTT input and the Kafka output.
type TLSConfig struct {
	Enabled    bool   `yaml:"enabled"`     // use TLS; implied by setting any file below
	CAFile     string `yaml:"ca_file"`     // PEM bundle of CAs to trust; default: the system's
	CertFile   string `yaml:"cert_file"`   // client certificate (PEM), with KeyFile, for mutual TLS
	KeyFile    string `yaml:"key_file"`    // client key (PEM)
	ServerName string `yaml:"server_name"` // name to verify the server certificate against; default: the host dialed
	// InsecureSkipVerify accepts any server certificate. For commissioning only: it makes TLS worthless against an
	// attacker on the network, and the gateway logs a warning at start.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// On reports whether TLS is to be used.
func (c TLSConfig) On() bool {
	return c.Enabled || c.CAFile != "" || c.CertFile != "" || c.KeyFile != ""
}

// Validate checks the fields without reading the files.
func (c TLSConfig) Validate() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return FieldErrorf("cert_file", "cert_file and key_file go together: set both for mutual TLS, or neither")
	}
	return nil
}

// Build reads the files and returns the tls.Config to dial with (TLS 1.2 at least), or nil when TLS is off.
func (c TLSConfig) Build() (*tls.Config, error) {
	if !c.On() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s: no PEM certificate found", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Secret is a password, token or key from the configuration. It prints, marshals and logs as "[redacted]", so a
// config struct can be logged or dumped without leaking it; Reveal returns the value for the one place that
// needs it.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string { return redacted }

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return redacted }

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText keeps encoders (JSON, YAML) from printing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
