package opcua

import (
	"context"
	"flag"
	"os"
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

func TestBrowseFlags(t *testing.T) {
	dir := t.TempDir()
	pw := dir + "/pw"
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	fs := flag.NewFlagSet("browse", flag.ContinueOnError)
	get := BrowseFlags(fs, "/var/lib/fieldgate/opcua")
	if err := fs.Parse([]string{"-endpoint", "opc.tcp://plc:4840", "-node", "ns=2;s=Line", "-depth", "5",
		"-server-fingerprint", "AB:CD", "-user", "op", "-password-file", pw}); err != nil {
		t.Fatal(err)
	}
	o, err := get()
	if err != nil {
		t.Fatal(err)
	}
	if o.Endpoint != "opc.tcp://plc:4840" || o.Node != "ns=2;s=Line" || o.Depth != 5 || o.Security.Mode != ModeSignAndEncrypt ||
		o.Security.ServerFingerprints[0] != "AB:CD" || o.Auth.Method != AuthUsername || o.Auth.Password.Reveal() != "s3cret" ||
		o.Security.StateDir != "/var/lib/fieldgate/opcua" {
		t.Errorf("options %+v", o)
	}
	fs = flag.NewFlagSet("browse", flag.ContinueOnError)
	get = BrowseFlags(fs, "")
	fs.Parse(nil)
	if _, err := get(); err == nil {
		t.Error("no -endpoint accepted")
	}
}
