package forward

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// selfSigned returns a server certificate for 127.0.0.1 and the path of its PEM, to be trusted as a CA.
func selfSigned(t *testing.T, name string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// TLS with a private CA, and SASL PLAIN over it (the only way PLAIN is allowed).
func TestTLSAndPlain(t *testing.T) {
	cert, caFile := selfSigned(t, "broker")
	c := newCluster(t, 1, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}),
		kfake.EnableSASL(), kfake.Superuser("PLAIN", "gateway", "s3cret"))
	l := newMemLog()
	want := fill(t, l, 40, 2, nil)
	cfg := testConfig(c.ListenAddrs())
	cfg.TLS = fieldgate.TLSConfig{CAFile: caFile}
	cfg.SASL = fieldgate.SASLConfig{Mechanism: "PLAIN", Username: "gateway", Password: "s3cret"}
	f, _ := newTestForwarder(t, cfg)
	start(t, f, l)
	waitFor(t, 10*time.Second, "the log to drain", func() bool { return l.len() == 0 })
	tlsCfg, err := cfg.TLS.Build()
	if err != nil {
		t.Fatal(err)
	}
	checkLanded(t, landed(t, c, 1, kgo.DialTLSConfig(tlsCfg), kgo.SASL(plain.Auth{User: "gateway", Pass: "s3cret"}.AsMechanism())), want, true)
}

// A broker certificate the gateway does not trust: a clear error, no hang, nothing lost.
func TestTLSUntrustedBroker(t *testing.T) {
	cert, _ := selfSigned(t, "broker")
	_, otherCA := selfSigned(t, "other")
	c := newCluster(t, 1, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	l := newMemLog()
	fill(t, l, 10, 1, nil)
	cfg := testConfig(c.ListenAddrs())
	cfg.TLS = fieldgate.TLSConfig{CAFile: otherCA}
	f, _ := newTestForwarder(t, cfg)
	stop := start(t, f, l)
	waitFor(t, 10*time.Second, "a fatal certificate error in stats", func() bool {
		return strings.Contains(f.Stats().LastError, "certificate") && f.Stats().ProduceErrors.Fatal > 0
	})
	stop(4 * time.Second)
	if l.len() != 10 || f.Stats().Connected {
		t.Errorf("log %d, stats %+v", l.len(), f.Stats())
	}
	t.Logf("last error: %s", f.Stats().LastError)
}

// An unreadable CA file is the one error Run returns.
func TestTLSMissingFile(t *testing.T) {
	cfg := testConfig([]string{"127.0.0.1:9"})
	cfg.TLS = fieldgate.TLSConfig{CAFile: filepath.Join(t.TempDir(), "missing.pem")}
	f, _ := newTestForwarder(t, cfg)
	err := f.Run(t.Context(), newMemLog())
	if err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Fatalf("Run: %v, want an error naming ca_file", err)
	}
}
