package fieldgate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2")
	cfg := struct{ Password Secret }{s}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "password", s, "cfg", cfg)
	js, _ := json.Marshal(cfg)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, s), string(js), logged.String()} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret leaked: %s", out)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Error("Reveal lost the value")
	}
}

func TestTLSConfig(t *testing.T) {
	if c, err := (TLSConfig{}).Build(); c != nil || err != nil {
		t.Errorf("off: got %v, %v", c, err)
	}
	if err := (TLSConfig{CertFile: "c.pem"}).Validate(); err == nil || !strings.Contains(err.Error(), "cert_file") {
		t.Errorf("cert without key: %v", err)
	}
	if _, err := (TLSConfig{CAFile: "/nonexistent/ca.pem"}).Build(); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("missing CA file: %v", err)
	}
}

func TestSASLConfigValidate(t *testing.T) {
	cases := []struct {
		s     SASLConfig
		tls   bool
		field string // "" for valid
	}{
		{SASLConfig{}, false, ""},
		{SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"}, false, ""},
		{SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p"}, true, ""},
		{SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p"}, false, "mechanism"},
		{SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "p"}, true, "mechanism"},
		{SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "u"}, false, "password"},
		{SASLConfig{Username: "u", Password: "p"}, false, "mechanism"},
	}
	for _, c := range cases {
		err := c.s.Validate(c.tls)
		var fe *FieldError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", c.s, err)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
			t.Errorf("%+v (tls %v): got %v, want an error at %q", c.s, c.tls, err, c.field)
		}
	}
}
