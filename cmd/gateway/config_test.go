package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden .err files of testdata/bad")

// validateFile runs `gateway validate -config path` in process and returns its exit code, stdout and stderr.
func validateFile(t *testing.T, path string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := realMain(append([]string{"validate"}, append(args, "-config", path)...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// Every bad configuration is refused before anything starts, with the message in its golden file: the file, the
// line and the field, then what is wrong.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			code, out, errOut := validateFile(t, f)
			if code != exitUsage {
				t.Fatalf("exit code %d, want %d; stdout:\n%s\nstderr:\n%s", code, exitUsage, out, errOut)
			}
			if out != "" {
				t.Errorf("stdout of a refused config: %q", out)
			}
			checkGolden(t, strings.TrimSuffix(f, ".yaml")+".err", errOut)
		})
	}
}

// checkGolden compares what a refused configuration printed with its golden file (-update writes it).
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("stderr:\n%s\nwant (%s):\n%s", got, golden, want)
	}
}

var refPattern = regexp.MustCompile("\\$\\{(file:)?([^}\\s`]+)\\}")

// envName is what ${NAME} accepts as NAME (see yamlconf.Decode).
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Every example in configs/ (but the central service's) loads, validates and builds, so that the examples
// cannot drift from the code. Each is copied beside stand-ins for the secrets it references.
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		base := filepath.Base(f)
		if strings.HasPrefix(base, "central") {
			continue
		}
		n++
		t.Run(base, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			const secret = `s3cr3t: with "yaml" #specials`
			for _, m := range refPattern.FindAllStringSubmatch(string(raw), -1) {
				if m[1] == "" {
					if envName.MatchString(m[2]) {
						t.Setenv(m[2], secret)
					}
					continue
				}
				if filepath.IsAbs(m[2]) {
					continue // in a comment; a real one would fail the load below
				}
				p := filepath.Join(dir, m[2])
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			raw = withTestPEMs(t, dir, raw)
			path := filepath.Join(dir, base)
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := validateFile(t, path, "-v")
			if code != exitOK {
				t.Fatalf("validate %s: exit %d\n%s", base, code, errOut)
			}
			if strings.Contains(out, "s3cr3t") || strings.Contains(errOut, "s3cr3t") {
				t.Errorf("validate printed a secret:\n%s", out)
			}
			if !strings.Contains(out, "configuration ok") {
				t.Errorf("validate output:\n%s", out)
			}
			l, err := loadPath(path, "", false)
			if err != nil {
				t.Fatal(err)
			}
			if s := fmt.Sprintf("%+v %#v", l.cfg, l.cfg); strings.Contains(s, "s3cr3t") {
				t.Errorf("printing the loaded config shows a secret")
			}
		})
	}
	if n < 2 {
		t.Fatalf("found %d gateway examples in configs/, want gateway.yaml and demo.yaml at least", n)
	}
}

func TestCLI(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string // substring of stdout+stderr
	}{
		{nil, exitUsage, "Usage:"},
		{[]string{"bogus"}, exitUsage, `unknown command "bogus"`},
		{[]string{"help"}, exitOK, "Exit codes:"},
		{[]string{"version"}, exitOK, "fieldgate gateway "},
		{[]string{"--version"}, exitOK, "go1."},
		{[]string{"run", "-nope"}, exitUsage, "flag provided but not defined"},
		{[]string{"validate", "-config", "testdata/does-not-exist.yaml"}, exitUsage, "no such file"},
		{[]string{"validate", "-config", "x.yaml", "extra"}, exitUsage, `unexpected argument "extra"`},
	} {
		var out, errOut bytes.Buffer
		code := realMain(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.out) {
			t.Errorf("gateway %v: exit %d, output %q; want exit %d and %q", tc.args, code, out.String()+errOut.String(), tc.code, tc.out)
		}
	}
}

// The gateway links no PostgreSQL driver (DESIGN.md: dependencies point inward; the central service owns pgx).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "jackc/pgx") || strings.Contains(dep, "fieldgate/cratedb") || strings.Contains(dep, "fieldgate/window") {
			t.Errorf("cmd/gateway links %s", dep)
		}
	}
}

// A substituted value (perhaps a secret in the wrong field) is not echoed in a type error.
func TestSubstitutedValueNotEchoed(t *testing.T) {
	t.Setenv("FG_TEST_SECRET", "hunter2")
	path := filepath.Join(t.TempDir(), "gw.yaml")
	cfg := "gateway_id: gw1\nkafka:\n  brokers: [127.0.0.1:9092]\n  batch_size: ${FG_TEST_SECRET}\nmqtt:\n  - {name: a, broker: \"tcp://127.0.0.1:1883\", subscriptions: [{topic: a/b}]}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadPath(path, "", false)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), ":4: kafka.batch_size: the substituted value is a string, want a whole number") {
		t.Errorf("got %v", err)
	}
}

var pemKeyPattern = regexp.MustCompile(`(?m)^([^#\n]*\b(ca_file|cert_file|key_file|server_ca_file):\s*)(\S+)`)

// withTestPEMs rewrites the certificate and key files an example names (outside comments) to files in dir
// holding one generated self-signed certificate and its key, so that the example's TLS settings load.
func withTestPEMs(t *testing.T, dir string, raw []byte) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fieldgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return pemKeyPattern.ReplaceAllFunc(raw, func(m []byte) []byte {
		sub := pemKeyPattern.FindSubmatch(m)
		p := filepath.Join(dir, "pem", filepath.Base(string(sub[3])))
		content := certPEM
		if string(sub[2]) == "key_file" {
			content = keyPEM
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return append(append([]byte(nil), sub[1]...), p...)
	})
}

// FuzzParseConfig: no input makes the loader panic or hang; an accepted document yields a config.
func FuzzParseConfig(f *testing.F) {
	for _, p := range []string{"../../configs/gateway.yaml", "../../configs/demo.yaml", "testdata/good/all_inputs.yaml",
		"testdata/bad/many_errors.yaml", "testdata/bad/unknown_key.yaml", "testdata/bad/wrong_type.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("gateway_id: ${X}\nkafka: {brokers: [\"${file:}\"]}\n"))
	f.Add([]byte("mqtt:\n  - <<: {name: x}\n    broker: ${UNSET_FUZZ}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := load([]sourceFile{{Path: "fuzz.yaml", Data: string(raw)}}, false)
		if err == nil && (l == nil || l.hash == "") {
			t.Fatal("no configuration without an error")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// The commissioning commands' argument handling (the protocol packages test the reads and browses themselves).
func TestCommissioningCLI(t *testing.T) {
	closed := testutil.FreePort(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gw.yaml")
	raw, err := os.ReadFile("testdata/good/all_inputs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.ReplaceAll(raw, []byte("opc.tcp://127.0.0.1:4840"), fmt.Appendf(nil, "opc.tcp://127.0.0.1:%d", closed))
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"modbus"}, exitUsage, "gateway modbus read"},
		{[]string{"modbus", "read"}, exitUsage, "-address is required"},
		{[]string{"modbus", "read", "-address", fmt.Sprintf("127.0.0.1:%d", closed), "-timeout", "200ms"}, exitFailure, "connection refused"},
		{[]string{"opcua"}, exitUsage, "gateway opcua browse"},
		{[]string{"opcua", "trust"}, exitUsage, "want -endpoint"},
		{[]string{"opcua", "trust", "-endpoint", fmt.Sprintf("opc.tcp://127.0.0.1:%d", closed), "-timeout", "2s"}, exitFailure, "gateway opcua trust: get endpoints"},
		{[]string{"opcua", "browse"}, exitUsage, "-endpoint (or -config) is required"},
		{[]string{"opcua", "browse", "-config", "testdata/good/all_inputs.yaml", "-input", "nope"}, exitUsage, `no opcua input "nope" (it has oven)`},
		{[]string{"opcua", "browse", "-config", "testdata/good/mqtt_only.yaml"}, exitUsage, "has no opcua input"},
		{[]string{"opcua", "browse", "-config", cfgPath, "-timeout", "2s"}, exitFailure, "gateway opcua browse: "},
		{[]string{"opcua", "browse", "-endpoint", fmt.Sprintf("opc.tcp://127.0.0.1:%d", closed), "-mode", "None", "-timeout", "2s"}, exitFailure, "gateway opcua browse: "},
	} {
		var out, errOut bytes.Buffer
		code := realMain(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.out) {
			t.Errorf("gateway %v: exit %d, output %q; want exit %d and %q", tc.args, code, out.String()+errOut.String(), tc.code, tc.out)
		}
	}
}

// A configuration with drop-ins: every file's problems are reported with its own name and line and the path as
// written in it, in file order; a top-level key set in two files is refused naming both; files that are not
// *.yaml are not read. testdata/dropins/<case>/{gateway.yaml,conf.d/}, and want.err for a bad case.
func TestDropIns(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/dropins/*")
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			code, out, errOut := validateFile(t, filepath.Join(dir, "gateway.yaml"))
			golden := filepath.Join(dir, "want.err")
			if filepath.Base(dir) == "good" {
				if code != exitOK || !strings.Contains(out, "drop-in     "+filepath.Join(dir, "conf.d", "20-line2.yaml")) ||
					!strings.Contains(out, "inputs      3") || !strings.Contains(out, "modbus line2") {
					t.Errorf("exit %d\n%s%s", code, out, errOut)
				}
				return
			}
			if code != exitUsage {
				t.Fatalf("exit %d, want %d\n%s", code, exitUsage, out)
			}
			checkGolden(t, golden, errOut)
		})
	}
}
