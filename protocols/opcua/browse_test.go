package opcua

import (
	"context"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestBrowseSnippet: browse the test server's namespace and check that the snippet is valid YAML that decodes
// into a Config that validates, lists the variables with their data types, and collects what it lists.
func TestBrowseSnippet(t *testing.T) {
	ts := sharedTestServer(t)
	var out strings.Builder
	err := Browse(context.Background(), BrowseOptions{Endpoint: ts.endpoint, Node: "ns=" + ts.nsID() + ";i=85",
		Depth: 2, Security: Security{Mode: ModeNone}, Log: testLogger(t)}, &out)
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{`{id: "ns=2;s=Double", metric: "Double"} # Double`, `{id: "ns=2;s=Int32Array", metric: "Int32Array"} # Int32[]`,
		`{id: "ns=2;s=Bulk.2", metric: "Bulk.2"}`, "mode: None"} {
		if !strings.Contains(s, strings.ReplaceAll(want, "ns=2", "ns="+ts.nsID())) {
			t.Errorf("snippet lacks %s:\n%s", want, s)
		}
	}
	var cfgs []Config
	if err := yaml.Unmarshal([]byte(s), &cfgs); err != nil || len(cfgs) != 1 {
		t.Fatalf("snippet is not a YAML list of one config: %v\n%s", err, s)
	}
	if err := cfgs[0].Validate(); err != nil {
		t.Fatalf("snippet config: %v", err)
	}
	if n := len(cfgs[0].Groups[0].Nodes); n < len(builtinCases())+len(arrayCases())+3 {
		t.Errorf("%d nodes browsed", n)
	}
}

func TestBrowseUntrustedServerShowsFingerprint(t *testing.T) {
	ts := sharedTestServer(t)
	err := Browse(context.Background(), BrowseOptions{Endpoint: ts.endpoint, Security: Security{StateDir: t.TempDir(),
		ServerFingerprints: []string{strings.Repeat("00", 32)}}, Log: testLogger(t)}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), ts.fingerprint()) {
		t.Fatalf("browse of an untrusted server: %v, want the fingerprint %s", err, ts.fingerprint())
	}
}
