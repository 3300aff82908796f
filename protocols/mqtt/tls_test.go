package mqtt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
)

// testCA writes a CA certificate to dir and returns a server certificate for 127.0.0.1 signed by it.
func testCA(t *testing.T, dir, name string) (caFile string, server tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, name+"-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
}

// TestTLSAndCredentials runs a TLS broker that wants a username and password: the source connects with the
// right CA and credentials, and never with a wrong password or a CA that did not sign the broker's certificate.
func TestTLSAndCredentials(t *testing.T) {
	dir := t.TempDir()
	caFile, serverCert := testCA(t, dir, "good")
	otherCA, _ := testCA(t, dir, "other")
	port := testutil.FreePort(t)
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	err := srv.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{Auth: auth.AuthRules{
		{Username: "gateway", Password: "s3cret", Allow: true},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tls", Address: fmt.Sprintf("127.0.0.1:%d", port),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}}))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { testutil.CloseMochi(t, srv.Close) })
	testutil.WaitListening(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	url := fmt.Sprintf("ssl://127.0.0.1:%d", port)

	cfg := testConfig(url, uniq("tls"))
	cfg.Username, cfg.Password, cfg.TLS.CAFile = "gateway", "s3cret", caFile
	sk := testutil.NewSink(t)
	r := start(t, cfg, sk)

	// Publish through the same TLS listener with the same credentials.
	pubCfg := &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
	pem, _ := os.ReadFile(caFile)
	pubCfg.RootCAs.AppendCertsFromPEM(pem)
	pub := newPublisherWith(t, url, "gateway", "s3cret", pubCfg)
	pub.one(cfg.Name+"/l1/d1/telemetry", string(telemetry(1)))
	waitFor(t, 15*time.Second, "a reading over TLS", func() bool { n, _ := sk.Count(); return n >= 3 })
	r.stop(t)

	for name, change := range map[string]func(c *Config){
		"wrong password": func(c *Config) { c.Password = "guess" },
		"untrusted CA":   func(c *Config) { c.TLS.CAFile = otherCA },
		"plain tcp":      func(c *Config) { c.Broker = fmt.Sprintf("tcp://127.0.0.1:%d", port); c.TLS = fieldgate.TLSConfig{} },
	} {
		t.Run(name, func(t *testing.T) {
			bad := cfg
			change(&bad)
			src, err := New(bad, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			if err := src.Run(ctx, sk); err != nil {
				t.Fatalf("Run = %v; a refused connection is retried, not fatal", err)
			}
			if st := src.Stats(); st.Connects != 0 {
				t.Errorf("connected with %s: %+v", name, st)
			}
		})
	}
}
