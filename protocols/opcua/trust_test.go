package opcua

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pinnedFingerprints returns the fingerprints of the config lines Trust printed.
func pinnedFingerprints(out string) []string {
	var fps []string
	for _, m := range regexp.MustCompile(`(?m)^\s+- "([0-9A-F:]{95})"`).FindAllStringSubmatch(out, -1) {
		fps = append(fps, m[1])
	}
	return fps
}

func TestTrust(t *testing.T) {
	ts := sharedTestServer(t)
	var out bytes.Buffer
	if err := Trust(context.Background(), ts.endpoint, 10*time.Second, &out); err != nil {
		t.Fatal(err)
	}
	o := out.String()
	t.Log(o)
	for _, want := range []string{"subject      CN=fieldgate test server", "issuer       self-signed", "SHA-256      " + ts.fingerprint(),
		"application  urn:fieldgate:testserver", "RSA 2048 bits", "Aes256_Sha256_RsaPss/SignAndEncrypt", "<- the gateway's default",
		"None/None", "server_fingerprints:"} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if fps := pinnedFingerprints(o); len(fps) != 1 || fps[0] != ts.fingerprint() {
		t.Errorf("config lines pin %v, want [%s]", fps, ts.fingerprint())
	}
	// The lines make a config that validate accepts.
	cfg := baseConfig(t, ts, Group{Name: "g", Nodes: []Node{{ID: "i=2258"}}})
	cfg.Security = Security{ServerFingerprints: pinnedFingerprints(o)}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	if err := Trust(context.Background(), "http://x", time.Second, &out); err == nil {
		t.Error("trust of a non-opc.tcp URL")
	}
}

// validate explains how to learn the fingerprint when a secure input has none.
func TestValidateExplainsTrust(t *testing.T) {
	cfg := Config{Name: "plc", Endpoint: "opc.tcp://10.0.0.7:4840", Groups: []Group{{Name: "g", Nodes: []Node{{ID: "i=2258"}}}}}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "gateway opcua trust -endpoint opc.tcp://10.0.0.7:4840") {
		t.Fatalf("validate: %v, want it to name the trust command with the endpoint", err)
	}
}
