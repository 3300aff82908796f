// Package kafkaopt connects a franz-go client to Kafka one way for both fieldgate commands: the gateway's
// forwarder and the central service's consumer build their connection options here (seed brokers, client id, a
// dialer with a connect timeout and TLS, SASL, the client's logger) and add only what their role needs (producer
// or consumer group settings). The broker and topic checks of both configs are here too.
package kafkaopt

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/fieldgate/fieldgate"
)

// DialTimeout bounds one connection to a broker (TCP, then the TLS handshake).
const DialTimeout = 10 * time.Second

// Conn is how a client reaches the brokers.
type Conn struct {
	Brokers  []string // seed brokers, host:port
	ClientID string
	TLS      fieldgate.TLSConfig
	SASL     fieldgate.SASLConfig
}

// Validate checks the brokers, TLS and SASL without reading files or dialing. Errors are FieldErrors at
// "brokers", "brokers[i]", "tls.…" and "sasl.…", joined.
func (c Conn) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, fieldgate.FieldErrorf("brokers", "at least one broker is required (host:port)"))
	}
	for i, b := range c.Brokers {
		if err := checkBroker(b); err != nil {
			errs = append(errs, fieldgate.FieldErrorf("brokers["+strconv.Itoa(i)+"]", "%q: %v", b, err))
		}
	}
	errs = append(errs, fieldgate.WithField("tls", c.TLS.Validate()))
	errs = append(errs, fieldgate.WithField("sasl", c.SASL.Validate(c.TLS.On())))
	return errors.Join(errs...)
}

func checkBroker(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("missing host")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return errors.New("port must be a number from 1 to 65535")
	}
	return nil
}

// CheckTopic applies Kafka's rule for topic names.
func CheckTopic(t string) error {
	if t == "." || t == ".." {
		return errors.New(`"." and ".." are not topic names`)
	}
	if len(t) > 249 {
		return errors.New("longer than 249 characters")
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return errors.New("only ASCII letters, digits, '.', '_' and '-' are allowed")
		}
	}
	return nil
}

// Options returns the options that connect a client as c says: seed brokers, client id, a dialer with
// DialTimeout and TCP keep-alives (with TLS when c.TLS is on; the server name defaults to the host dialed), SASL
// when a mechanism is set, and log as the client's logger (none when nil). It reads the TLS files; an error
// names the one that failed.
func Options(c Conn, log *slog.Logger) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(c.ClientID)}
	tc, err := c.TLS.Build()
	if err != nil {
		return nil, err
	}
	nd := &net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}
	if tc != nil {
		opts = append(opts, kgo.Dialer((&tls.Dialer{NetDialer: nd, Config: tc}).DialContext))
	} else {
		opts = append(opts, kgo.Dialer(nd.DialContext))
	}
	m, err := mechanism(c.SASL)
	if err != nil {
		return nil, err
	}
	if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	if log != nil {
		opts = append(opts, kgo.WithLogger(kslog.New(log)))
	}
	return opts, nil
}

// mechanism returns franz-go's mechanism for s, or nil when s sets none.
func mechanism(s fieldgate.SASLConfig) (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "":
		return nil, nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsSha512Mechanism(), nil
	case "PLAIN":
		return plain.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsMechanism(), nil
	}
	return nil, fmt.Errorf("sasl mechanism %q is not one of SCRAM-SHA-256, SCRAM-SHA-512, PLAIN", s.Mechanism)
}
