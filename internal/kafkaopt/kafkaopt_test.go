package kafkaopt

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fieldgate/fieldgate"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		c    Conn
		want string
	}{
		{Conn{}, "brokers: at least one broker"},
		{Conn{Brokers: []string{"nohost"}}, `brokers[0]: "nohost": address nohost: missing port`},
		{Conn{Brokers: []string{":9092"}}, "missing host"},
		{Conn{Brokers: []string{"k:70000"}}, "port must be a number from 1 to 65535"},
		{Conn{Brokers: []string{"k:9092"}, SASL: fieldgate.SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p"}}, "sasl.mechanism: PLAIN sends the password in clear"},
		{Conn{Brokers: []string{"k:9092"}, TLS: fieldgate.TLSConfig{CertFile: "c.pem"}}, "tls.cert_file"},
	} {
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	if err := (Conn{Brokers: []string{"k1:9092", "[::1]:9093"}}).Validate(); err != nil {
		t.Error(err)
	}
	for _, topic := range []string{"..", strings.Repeat("t", 250), "a b"} {
		if CheckTopic(topic) == nil {
			t.Errorf("topic %q accepted", topic)
		}
	}
}

// The options connect a client with SASL; a TLS file that cannot be read and an unknown mechanism are errors, not
// a client that silently goes without.
func TestOptions(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "gw", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts, err := Options(Conn{Brokers: c.ListenAddrs(), ClientID: "t",
		SASL: fieldgate.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "gw", Password: "s3cret"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Ping(t.Context()); err != nil {
		t.Errorf("ping with SCRAM-SHA-512: %v", err)
	}

	if _, err := Options(Conn{Brokers: []string{"k:1"}, TLS: fieldgate.TLSConfig{CAFile: filepath.Join(t.TempDir(), "no.pem")}}, nil); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("missing CA file: %v", err)
	}
	if _, err := Options(Conn{Brokers: []string{"k:1"}, SASL: fieldgate.SASLConfig{Mechanism: "GSSAPI"}}, nil); err == nil {
		t.Error("unknown mechanism accepted")
	}
}
