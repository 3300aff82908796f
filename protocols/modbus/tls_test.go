package modbus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
	"github.com/simonvetter/modbus"
)

type certs struct {
	caPool                    *x509.CertPool
	server                    tls.Certificate
	caFile, certFile, keyFile string
}

// makeCerts writes a CA, a server certificate for 127.0.0.1 and a client certificate signed by the CA.
func makeCerts(t *testing.T) certs {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, server bool) (tls.Certificate, []byte, []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
		if server {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c, certPEM, keyPEM
	}
	c := certs{caPool: x509.NewCertPool()}
	c.caPool.AddCert(ca)
	c.server, _, _ = leaf(2, true)
	_, certPEM, keyPEM := leaf(3, false)
	c.caFile, c.certFile, c.keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	for f, b := range map[string][]byte{c.caFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), c.certFile: certPEM, c.keyFile: keyPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestTLS reads the fixture over Modbus/TCP Security (mutual TLS) from the library's server.
func TestTLS(t *testing.T) {
	c := makeCerts(t)
	im := &image{}
	im.fill()
	addr := testutil.FreeAddr(t)
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp+tls://" + addr, Timeout: time.Minute, MaxClients: 4,
		TLSServerCert: &c.server, TLSClientCAs: c.caPool, Logger: log.New(io.Discard, "", 0)}, im)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	cfg := fixtureConfig(addr)
	cfg.Transport = TransportTLS
	cfg.TLS = fieldgate.TLSConfig{CAFile: c.caFile, CertFile: c.certFile, KeyFile: c.keyFile}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	b := run(t, s, 1, 10*time.Second)
	if len(b) == 0 {
		t.Fatal("no poll")
	}
	checkFixture(t, b[0], before)

	// A client whose CA does not know the server's certificate must not read anything.
	other := makeCerts(t)
	cfg.TLS.CAFile = other.caFile
	s, err = New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b = run(t, s, 1, 10*time.Second)
	if len(b) == 0 || b[0][0].Quality != fieldgate.Bad || b[0][0].Status != StatusConnection {
		t.Errorf("untrusted server: %+v", b)
	}
}
