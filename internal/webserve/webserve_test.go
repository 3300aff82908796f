package webserve

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fieldgate/fieldgate"
)

const token = "0123456789abcdef0123"

func TestValidateRefusesOpenNetworkListener(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:9100", ":9100", "192.0.2.7:9100", "[::]:9100", "gateway.local:9100"} {
		err := Validate(listen, Auth{}, TLS{})
		if err == nil || !strings.Contains(err.Error(), "auth: required") || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("%s without a credential: %v", listen, err)
		}
		if err := Validate(listen, Auth{Token: token}, TLS{}); err != nil {
			t.Errorf("%s with a token: %v", listen, err)
		}
	}
	for _, listen := range []string{"127.0.0.1:9100", "[::1]:9100", "localhost:9100", "127.0.0.2:9100"} {
		if err := Validate(listen, Auth{}, TLS{}); err != nil {
			t.Errorf("%s: %v", listen, err)
		}
	}
	for _, c := range []struct {
		a     Auth
		t     TLS
		field string
	}{
		{Auth{Token: "short"}, TLS{}, "auth.token"},
		{Auth{PasswordBcrypt: "plaintext"}, TLS{}, "auth.password_bcrypt"},
		{Auth{User: "op"}, TLS{}, "auth.user"},
		{Auth{}, TLS{CertFile: "x.pem"}, "tls.key_file"},
		{Auth{}, TLS{CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"}, "tls.cert_file"},
	} {
		if err := Validate("127.0.0.1:1", c.a, c.t); err == nil || !strings.HasPrefix(err.Error(), c.field+":") {
			t.Errorf("%+v %+v: %v, want an error on %s", c.a, c.t, err, c.field)
		}
	}
}

func TestProtect(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	auth := Auth{Token: token, PasswordBcrypt: fieldgate.Secret(hash)}
	h := Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "content") }),
		func() Auth { return auth })
	do := func(path string, set func(*http.Request)) *http.Response {
		r := httptest.NewRequest("GET", path, nil)
		if set != nil {
			set(r)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result()
	}
	check := func(name string, res *http.Response, code int) {
		t.Helper()
		if res.StatusCode != code {
			t.Errorf("%s: %d, want %d", name, res.StatusCode, code)
		}
		if got := res.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy || !strings.Contains(got, "default-src 'self'") ||
			!strings.Contains(got, "frame-ancestors 'none'") || strings.Contains(got, "unsafe-inline") {
			t.Errorf("%s: CSP %q", name, got)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", name, res.Header)
		}
	}
	res := do("/api/status", nil)
	check("no credential", res, 401)
	if got := res.Header.Values("WWW-Authenticate"); len(got) != 2 || !strings.HasPrefix(got[0], "Basic ") || !strings.HasPrefix(got[1], "Bearer ") {
		t.Errorf("WWW-Authenticate %q", got)
	}
	check("wrong token", do("/api/status", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }), 401)
	check("token", do("/api/status", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }), 200)
	check("token, lower-case scheme", do("/", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+token) }), 200)
	check("password", do("/", func(r *http.Request) { r.SetBasicAuth("fieldgate", "s3cret pass") }), 200)
	check("password again (remembered)", do("/", func(r *http.Request) { r.SetBasicAuth("fieldgate", "s3cret pass") }), 200)
	check("wrong password", do("/", func(r *http.Request) { r.SetBasicAuth("fieldgate", "s3cret pas") }), 401)
	check("wrong user", do("/", func(r *http.Request) { r.SetBasicAuth("admin", "s3cret pass") }), 401)
	check("healthz", do("/healthz", nil), 200)
	check("metrics", do("/metrics", nil), 401)
	auth.MetricsOpen = true
	check("metrics open", do("/metrics", nil), 200)
	auth = Auth{}
	check("no auth configured", do("/api/status", nil), 200)
}

// TLS: the listener serves HTTPS with the configured certificate.
func TestListenTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	tc := TLS{CertFile: certFile, KeyFile: keyFile}
	if err := Validate("127.0.0.1:0", Auth{}, tc); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen("127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "over tls")
	}), func() Auth { return Auth{} })}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	pemBytes, _ := os.ReadFile(certFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	res, err := cl.Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "over tls" || res.TLS == nil || res.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("%q tls=%v", body, res.TLS != nil)
	}
	// Plain HTTP on the TLS port gets no page.
	if res, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(body), "over tls") {
			t.Fatal("served over plain HTTP")
		}
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fieldgate test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "http.crt"), filepath.Join(dir, "http.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
