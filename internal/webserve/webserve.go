// Package webserve is the security of the gateway's and the central service's HTTP listeners, one way for both:
// credentials (a bearer token, or a bcrypt hash of a password for HTTP Basic), TLS with a configured
// certificate, strict response headers, and the rule that a listener on anything but loopback has a credential.
//
// In YAML, under http:
//
//	listen: 0.0.0.0:9100
//	auth:
//	  token: ${FIELDGATE_HTTP_TOKEN}        # Authorization: Bearer <token> (tools, the CLI, Prometheus)
//	  user: fieldgate                       # HTTP Basic user; default fieldgate
//	  password_bcrypt: $2a$10$...           # HTTP Basic password (people, in a browser), from
//	                                        # `gateway hash-password`
//	  metrics_open: false                   # true: /metrics without a credential (a scraper on a trusted net)
//	tls: {cert_file: /etc/fieldgate/http.crt, key_file: /etc/fieldgate/http.key}
//
// No credential exists by default and none is compiled in. /healthz is always open (liveness probes; it says
// only "ok"); /metrics needs the credential unless metrics_open is true; everything else (pages, APIs) needs it
// whenever one is configured.
package webserve

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/fieldgate/fieldgate"
)

// DefaultUser is the HTTP Basic user name when auth.user is not set.
const DefaultUser = "fieldgate"

// Auth is the credential a listener requires. With neither Token nor PasswordBcrypt set, it requires none
// (allowed on loopback only, see Validate).
type Auth struct {
	// Token is accepted as "Authorization: Bearer <token>"; at least 16 characters. Compared in constant time.
	Token fieldgate.Secret `yaml:"token"`
	// User is the HTTP Basic user name for PasswordBcrypt. Default "fieldgate".
	User string `yaml:"user"`
	// PasswordBcrypt is a bcrypt hash ($2a$, $2b$ or $2y$) of the HTTP Basic password.
	PasswordBcrypt fieldgate.Secret `yaml:"password_bcrypt"`
	// MetricsOpen serves /metrics without a credential. Default false.
	MetricsOpen bool `yaml:"metrics_open"`
}

// TLS serves HTTPS with a certificate and its key (PEM files). Both or neither.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether a credential is configured.
func (a Auth) Enabled() bool { return a.Token != "" || a.PasswordBcrypt != "" }

// On reports whether TLS is configured.
func (t TLS) On() bool { return t.CertFile != "" || t.KeyFile != "" }

// Validate checks the listener's security; field names are relative to the http section ("auth.token", ...), for
// fieldgate.WithField("http", ...). A listen address that is not loopback without a credential is refused: the
// pages and APIs would be open to the network. The certificate files are read.
func Validate(listen string, a Auth, t TLS) error {
	var errs []error
	if a.Token != "" && len(a.Token) < 16 {
		errs = append(errs, fieldgate.FieldErrorf("auth.token", "too short (%d characters): use at least 16 random characters, e.g. from `openssl rand -hex 16`", len(a.Token)))
	}
	if a.PasswordBcrypt != "" {
		if _, err := bcrypt.Cost([]byte(a.PasswordBcrypt)); err != nil {
			errs = append(errs, fieldgate.FieldErrorf("auth.password_bcrypt", "not a bcrypt hash ($2a$..., e.g. from `gateway hash-password`): %v", err))
		}
	}
	if a.User != "" && strings.ContainsAny(a.User, ":") {
		errs = append(errs, fieldgate.FieldErrorf("auth.user", "%q: HTTP Basic user names cannot contain ':'", a.User))
	}
	if a.User != "" && a.PasswordBcrypt == "" {
		errs = append(errs, fieldgate.FieldErrorf("auth.user", "set without auth.password_bcrypt"))
	}
	if host, _, err := net.SplitHostPort(listen); err == nil && !Loopback(host) && !a.Enabled() {
		errs = append(errs, fieldgate.FieldErrorf("auth", "required: listen %q is not a loopback address, so the pages and APIs would be open to the network; set auth.token or auth.password_bcrypt, or listen on 127.0.0.1", listen))
	}
	if t.On() {
		switch {
		case t.CertFile == "":
			errs = append(errs, fieldgate.FieldErrorf("tls.cert_file", "required with tls.key_file"))
		case t.KeyFile == "":
			errs = append(errs, fieldgate.FieldErrorf("tls.key_file", "required with tls.cert_file"))
		default:
			if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
				errs = append(errs, fieldgate.FieldErrorf("tls.cert_file", "%v", err))
			}
		}
	}
	return errors.Join(errs...)
}

// Loopback reports whether host (of a listen address) reaches only this machine: localhost or a loopback IP.
// An empty host (all interfaces) and any other name are not loopback.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Listen binds addr, serving TLS on it when t is on.
func Listen(addr string, t TLS) (net.Listener, error) {
	var cfg *tls.Config
	if t.On() {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		cfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return ln, nil
}

// ContentSecurityPolicy is sent with every response: resources only from the listener itself, no inline script
// or style, no plugins, never inside a frame.
const ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Protect wraps h: every response carries the security headers (ContentSecurityPolicy, nosniff, no referrer, no
// framing), and every request but /healthz (and /metrics with metrics_open) must carry the credential of
// auth() — called per request, so a reloaded configuration takes effect at once — or gets 401 with
// WWW-Authenticate. A password checked once is remembered (its SHA-256) so that a page polling every second does
// not cost a bcrypt each time.
func Protect(h http.Handler, auth func() Auth) http.Handler {
	var (
		mu       sync.Mutex
		verified [sha256.Size]byte // sha256(hash NUL user NUL password) of the last password bcrypt accepted
	)
	checkPassword := func(a Auth, user, password string) bool {
		want := a.User
		if want == "" {
			want = DefaultUser
		}
		if subtle.ConstantTimeCompare([]byte(user), []byte(want)) != 1 {
			return false
		}
		sum := sha256.Sum256([]byte(string(a.PasswordBcrypt) + "\x00" + user + "\x00" + password))
		mu.Lock()
		known := subtle.ConstantTimeCompare(sum[:], verified[:]) == 1
		mu.Unlock()
		if known {
			return true
		}
		if bcrypt.CompareHashAndPassword([]byte(a.PasswordBcrypt), []byte(password)) != nil {
			return false
		}
		mu.Lock()
		verified = sum
		mu.Unlock()
		return true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		a := auth()
		if !a.Enabled() || r.URL.Path == "/healthz" || (r.URL.Path == "/metrics" && a.MetricsOpen) {
			h.ServeHTTP(w, r)
			return
		}
		authz := r.Header.Get("Authorization")
		if tok, ok := cutPrefixFold(authz, "Bearer "); ok && a.Token != "" {
			got, want := sha256.Sum256([]byte(strings.TrimSpace(tok))), sha256.Sum256([]byte(a.Token))
			if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
				h.ServeHTTP(w, r)
				return
			}
		}
		if user, password, ok := r.BasicAuth(); ok && a.PasswordBcrypt != "" && checkPassword(a, user, password) {
			h.ServeHTTP(w, r)
			return
		}
		if a.PasswordBcrypt != "" {
			hd.Add("WWW-Authenticate", `Basic realm="fieldgate", charset="UTF-8"`)
		}
		if a.Token != "" {
			hd.Add("WWW-Authenticate", `Bearer realm="fieldgate"`)
		}
		hd.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("401 unauthorized: this listener requires the credential set in its configuration (http.auth)\n"))
	})
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}
