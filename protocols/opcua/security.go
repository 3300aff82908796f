package opcua

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

// Fingerprint returns the SHA-256 fingerprint of a DER certificate as colon-separated upper-case hex, the form
// the config's server_fingerprints takes and the logs print.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

func parseFingerprint(s string) ([]byte, error) {
	h := strings.NewReplacer(":", "", " ", "", "-", "").Replace(s)
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("%q is not a SHA-256 fingerprint (64 hex digits, colons optional)", s)
	}
	return b, nil
}

// readCert reads a certificate from a PEM or DER file and returns its DER bytes (the first certificate).
func readCert(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: PEM block %q, want CERTIFICATE", path, blk.Type)
		}
		b = blk.Bytes
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// readKey reads an RSA private key from a PEM (PKCS#1 or PKCS#8) or DER file.
func readKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if k, err := x509.ParsePKCS1PrivateKey(b); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: not an RSA private key: %w", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: key is %T, OPC UA needs RSA", path, k)
	}
	return rk, nil
}

// clientIdentity is the application instance certificate of the client.
type clientIdentity struct {
	cert []byte // DER
	key  *rsa.PrivateKey
	uri  string // application URI, from the certificate
}

// loadClientIdentity loads the configured certificate, or the one generated earlier into stateDir, or generates
// one there (logging its fingerprint so that it can be trusted on the server).
func loadClientIdentity(sec Security, name string, log *slog.Logger) (clientIdentity, error) {
	if sec.CertFile != "" {
		cert, err := readCert(sec.CertFile)
		if err != nil {
			return clientIdentity{}, fmt.Errorf("client certificate: %w", err)
		}
		key, err := readKey(sec.KeyFile)
		if err != nil {
			return clientIdentity{}, fmt.Errorf("client key: %w", err)
		}
		return clientIdentity{cert: cert, key: key, uri: certURI(cert, sec.ApplicationURI)}, nil
	}
	if sec.StateDir == "" {
		return clientIdentity{}, errors.New("client certificate: set security.cert_file/key_file, or security.state_dir to generate one")
	}
	certPath := filepath.Join(sec.StateDir, safeFileName(name)+".cert.pem")
	keyPath := filepath.Join(sec.StateDir, safeFileName(name)+".key.pem")
	if _, err := os.Stat(certPath); err == nil {
		cert, err := readCert(certPath)
		if err != nil {
			return clientIdentity{}, fmt.Errorf("generated client certificate: %w", err)
		}
		key, err := readKey(keyPath)
		if err != nil {
			return clientIdentity{}, fmt.Errorf("generated client key: %w", err)
		}
		log.Info("opcua: client certificate", "file", certPath, "sha256", Fingerprint(cert))
		return clientIdentity{cert: cert, key: key, uri: certURI(cert, sec.ApplicationURI)}, nil
	}
	cert, key, err := generateCert(sec.ApplicationURI, "fieldgate "+name, 2048)
	if err != nil {
		return clientIdentity{}, err
	}
	if err := os.MkdirAll(sec.StateDir, 0o700); err != nil {
		return clientIdentity{}, fmt.Errorf("client certificate: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return clientIdentity{}, fmt.Errorf("client key: %w", err)
	}
	if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}), 0o644); err != nil {
		return clientIdentity{}, fmt.Errorf("client certificate: %w", err)
	}
	log.Warn("opcua: generated a client certificate; trust it on the server",
		"file", certPath, "sha256", Fingerprint(cert), "application_uri", sec.ApplicationURI)
	return clientIdentity{cert: cert, key: key, uri: sec.ApplicationURI}, nil
}

func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == ':' {
			return '_'
		}
		return r
	}, s)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func certURI(der []byte, fallback string) string {
	c, err := x509.ParseCertificate(der)
	if err == nil && len(c.URIs) > 0 {
		return c.URIs[0].String()
	}
	return fallback
}

// generateCert makes a self-signed application instance certificate as OPC UA Part 6 asks for one: the
// application URI in the subjectAltName, key usages for signing and key encipherment, valid for 10 years.
func generateCert(appURI, commonName string, bits int) ([]byte, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(appURI)
	if err != nil {
		return nil, nil, fmt.Errorf("application uri %q: %w", appURI, err)
	}
	host, _ := os.Hostname()
	tmpl := x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"fieldgate"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment |
			x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              []string{"localhost"},
	}
	if host != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	return der, key, nil
}

// ErrUntrustedServer is returned (wrapped) when the server's certificate matches no pinned fingerprint and no
// configured CA. The message shows the fingerprint to pin after checking it on the server.
var ErrUntrustedServer = errors.New("server certificate not trusted")

// trust decides whether a server certificate (DER, possibly a chain) is trusted.
type trust struct {
	fingerprints [][]byte
	roots        *x509.CertPool
}

func loadTrust(sec Security) (trust, error) {
	var t trust
	for _, f := range sec.ServerFingerprints {
		b, err := parseFingerprint(f)
		if err != nil {
			return t, err
		}
		t.fingerprints = append(t.fingerprints, b)
	}
	if sec.ServerCAFile != "" {
		pemBytes, err := os.ReadFile(sec.ServerCAFile)
		if err != nil {
			return t, fmt.Errorf("server_ca_file: %w", err)
		}
		t.roots = x509.NewCertPool()
		if !t.roots.AppendCertsFromPEM(pemBytes) {
			// DER also accepted
			c, err := x509.ParseCertificate(pemBytes)
			if err != nil {
				return t, fmt.Errorf("server_ca_file %s: no certificate found", sec.ServerCAFile)
			}
			t.roots.AddCert(c)
		}
	}
	return t, nil
}

// check returns the leaf certificate (DER) when trusted, else an error wrapping ErrUntrustedServer.
func (t trust) check(chain []byte) ([]byte, error) {
	certs, err := x509.ParseCertificates(chain)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("%w: the server sent no valid certificate: %v", ErrUntrustedServer, err)
	}
	leaf := certs[0]
	sum := sha256.Sum256(leaf.Raw)
	for _, f := range t.fingerprints {
		if string(f) == string(sum[:]) {
			return leaf.Raw, nil
		}
	}
	var verr error
	if t.roots != nil {
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, verr = leaf.Verify(x509.VerifyOptions{Roots: t.roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if verr == nil {
			return leaf.Raw, nil
		}
		verr = fmt.Errorf(" (not signed by server_ca_file: %v)", verr)
	} else {
		verr = errors.New("")
	}
	return nil, fmt.Errorf("%w: %q, SHA-256 %s%v; check this fingerprint on the server and add it to "+
		"security.server_fingerprints", ErrUntrustedServer, leaf.Subject.String(), Fingerprint(leaf.Raw), verr)
}

func policyURI(p string) string { return ua.SecurityPolicyURIPrefix + p }

func policyName(uri string) string { return strings.TrimPrefix(uri, ua.SecurityPolicyURIPrefix) }

func modeOf(s string) ua.MessageSecurityMode {
	switch s {
	case ModeNone:
		return ua.MessageSecurityModeNone
	case ModeSign:
		return ua.MessageSecurityModeSign
	}
	return ua.MessageSecurityModeSignAndEncrypt
}

func modeName(m ua.MessageSecurityMode) string {
	switch m {
	case ua.MessageSecurityModeNone:
		return ModeNone
	case ua.MessageSecurityModeSign:
		return ModeSign
	case ua.MessageSecurityModeSignAndEncrypt:
		return ModeSignAndEncrypt
	}
	return m.String()
}

// selectEndpoint picks the endpoint to use: the configured mode (default SignAndEncrypt) and the configured policy,
// or the strongest secure policy the server offers. It never picks None, Basic128Rsa15 or Basic256 unless the
// config names them.
func selectEndpoint(eps []*ua.EndpointDescription, sec Security) (*ua.EndpointDescription, error) {
	mode := modeOf(sec.Mode)
	var policies []string
	switch {
	case sec.Mode == ModeNone:
		policies = []string{PolicyNone}
	case sec.Policy != "":
		policies = []string{sec.Policy}
	default:
		policies = securePolicies
	}
	for _, p := range policies {
		for _, ep := range eps {
			if ep.SecurityMode == mode && ep.SecurityPolicyURI == policyURI(p) &&
				(ep.TransportProfileURI == "" || strings.HasSuffix(ep.TransportProfileURI, "uatcp-uasc-uabinary")) {
				return ep, nil
			}
		}
	}
	var offered []string
	for _, ep := range eps {
		offered = append(offered, policyName(ep.SecurityPolicyURI)+"/"+modeName(ep.SecurityMode))
	}
	return nil, fmt.Errorf("the server offers no endpoint with mode %s and policy %s (it offers %s)",
		modeName(mode), strings.Join(policies, " or "), strings.Join(offered, ", "))
}

// publishTimeout is the client-side timeout of a Publish request: the request timeout plus six times the longest
// keep-alive time (up to five Publish requests are in flight, each answered at the latest by a keep-alive).
func publishTimeout(cfg Config) time.Duration {
	var ka time.Duration
	for _, g := range cfg.Groups {
		if g.Mode == GroupSubscribe {
			ka = max(ka, g.PublishingInterval*time.Duration(g.KeepAliveCount))
		}
	}
	return cfg.RequestTimeout + 6*ka
}

// userTokenType maps the auth method.
func userTokenType(method string) ua.UserTokenType {
	switch method {
	case AuthUsername:
		return ua.UserTokenTypeUserName
	case AuthCertificate:
		return ua.UserTokenTypeCertificate
	}
	return ua.UserTokenTypeAnonymous
}

// clientOptions builds the gopcua options for one connection to ep. AutoReconnect is off: the Source owns
// reconnecting, because gopcua v0.8.0's own reconnect can leave subscriptions dead while reporting Connected.
func clientOptions(cfg Config, ep *ua.EndpointDescription, serverCert []byte, id clientIdentity) ([]opcua.Option, error) {
	opts := []opcua.Option{
		opcua.AutoReconnect(false),
		// Publish requests wait at the server for up to a keep-alive time per request in flight; every other
		// call is bounded by cfg.RequestTimeout through its context.
		opcua.RequestTimeout(publishTimeout(cfg)),
		opcua.SessionTimeout(cfg.SessionTimeout),
		opcua.DialTimeout(cfg.RequestTimeout),
		opcua.ApplicationName("fieldgate"),
		opcua.SessionName("fieldgate " + cfg.Name),
		opcua.ProductURI("urn:fieldgate"),
		// announced in the Hello and enforced by the patched gopcua on every response (third_party/gopcua)
		opcua.MaxMessageSize(uint32(cfg.Limits.MaxMessageSize)),
	}
	if id.cert != nil {
		opts = append(opts, opcua.ApplicationURI(id.uri), opcua.Certificate(id.cert), opcua.PrivateKey(id.key))
	}
	tokType := userTokenType(cfg.Auth.Method)
	found := false
	var offered []string
	for _, t := range ep.UserIdentityTokens {
		offered = append(offered, strings.TrimPrefix(t.TokenType.String(), "UserTokenType"))
		if t.TokenType == tokType {
			found = true
		}
	}
	if !found && len(ep.UserIdentityTokens) > 0 {
		return nil, fmt.Errorf("the server's endpoint %s/%s does not accept %s authentication (it accepts %s)",
			policyName(ep.SecurityPolicyURI), modeName(ep.SecurityMode), cfg.Auth.Method, strings.Join(offered, ", "))
	}
	switch cfg.Auth.Method {
	case AuthUsername:
		opts = append(opts, opcua.AuthUsername(cfg.Auth.Username, cfg.Auth.Password.Reveal()))
	case AuthCertificate:
		cert, err := readCert(cfg.Auth.CertFile)
		if err != nil {
			return nil, fmt.Errorf("user certificate: %w", err)
		}
		key, err := readKey(cfg.Auth.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("user key: %w", err)
		}
		opts = append(opts, opcua.AuthCertificate(cert), opcua.AuthPrivateKey(key))
	default:
		opts = append(opts, opcua.AuthAnonymous())
	}
	// The endpoint's certificate is replaced by the trusted leaf, so the channel is opened against exactly the
	// certificate that was checked.
	pinned := *ep
	if serverCert != nil {
		pinned.ServerCertificate = serverCert
	}
	opts = append(opts, opcua.SecurityFromEndpoint(&pinned, tokType))
	return opts, nil
}
