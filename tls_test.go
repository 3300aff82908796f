package fieldgate

import (
	"bytes"
	"encoding/json"
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
