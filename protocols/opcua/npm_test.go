package opcua

// Integration tests against a third-party server: node-opcua (scripts/npm/opcua-server.js).
//
//   FIELDGATE_TEST_OPCUA_NPM=opc.tcp://127.0.0.1:PORT  a running opcua-server.js started with -auto-accept
//   FIELDGATE_TEST_NPM_DIR=/path/to/scripts/npm          node_modules installed: tests start, kill -9 and restart
//                                                        their own servers (restart, limits, untrusted client)
//
// Each test skips only when its variable is unset; when set and the server is down, it fails.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/opcuatest"
	"github.com/fieldgate/fieldgate/internal/testutil"
	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// npmServer is a node-opcua server, either the running one or one this package started.
type npmServer struct {
	endpoint    string
	fingerprint string
	ns          int // index of urn:fieldgate:npm
	port        int
	pki         string
	args        []string
	cmd         *exec.Cmd
}

var (
	sharedNPMOnce sync.Once
	sharedNPM     *npmServer
	sharedNPMErr  error
)

// npmShared returns the server for tests that need no restart: FIELDGATE_TEST_OPCUA_NPM, else one started from
// FIELDGATE_TEST_NPM_DIR and shared by the package (killed in TestMain).
func npmShared(t *testing.T) *npmServer {
	t.Helper()
	if ep := os.Getenv("FIELDGATE_TEST_OPCUA_NPM"); ep != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		eps, err := opcua.GetEndpoints(ctx, ep)
		if err != nil {
			t.Fatalf("FIELDGATE_TEST_OPCUA_NPM=%s: %v", ep, err)
		}
		fp := ""
		for _, e := range eps {
			if len(e.ServerCertificate) > 0 {
				c, err := x509.ParseCertificates(e.ServerCertificate)
				if err == nil && len(c) > 0 {
					fp = Fingerprint(c[0].Raw)
				}
			}
		}
		return &npmServer{endpoint: ep, fingerprint: fp}
	}
	if os.Getenv("FIELDGATE_TEST_NPM_DIR") == "" {
		t.Skip("FIELDGATE_TEST_OPCUA_NPM and FIELDGATE_TEST_NPM_DIR unset")
	}
	sharedNPMOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fieldgate-opcua-npm")
		if err != nil {
			sharedNPMErr = err
			return
		}
		sharedNPM, sharedNPMErr = startNPM(testutil.FreePort(t), filepath.Join(dir, "pki"), "-auto-accept")
	})
	if sharedNPMErr != nil {
		t.Fatalf("start node-opcua: %v", sharedNPMErr)
	}
	return sharedNPM
}

// npmOwn starts a private server for a test that restarts it or needs special flags.
func npmOwn(t *testing.T, args ...string) *npmServer {
	t.Helper()
	if os.Getenv("FIELDGATE_TEST_NPM_DIR") == "" {
		t.Skip("FIELDGATE_TEST_NPM_DIR unset")
	}
	s, err := startNPM(testutil.FreePort(t), filepath.Join(t.TempDir(), "pki"), args...)
	if err != nil {
		t.Fatalf("start node-opcua: %v", err)
	}
	t.Cleanup(s.kill)
	return s
}

// startNPM starts a server with its PKI in pki. node-opcua's first start spends many seconds making its server
// certificate, so the "own" certificate is kept in a template beside the system's temp dir and copied into every
// new PKI (trust lists are not copied: each server starts with its own).
func startNPM(port int, pki string, args ...string) (*npmServer, error) {
	tmpl := filepath.Join(os.TempDir(), "fieldgate-opcua-npm-pki-template")
	haveTmpl := fileExists(filepath.Join(tmpl, "server", "own", "private", "private_key.pem"))
	if haveTmpl {
		for _, sub := range []string{"server/own", "user/own"} {
			copyDir(filepath.Join(tmpl, sub), filepath.Join(pki, sub))
		}
	}
	s := &npmServer{port: port, pki: pki, args: args}
	if err := s.start(); err != nil {
		return nil, err
	}
	if !haveTmpl {
		for _, sub := range []string{"server/own", "user/own"} {
			copyDir(filepath.Join(pki, sub), filepath.Join(tmpl, sub))
		}
	}
	return s, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// copyDir copies a directory tree of regular files, best effort (a failure only costs start-up time).
func copyDir(from, to string) {
	filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil || strings.HasSuffix(p, ".mutex") {
			return nil
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		if b, err := os.ReadFile(p); err == nil {
			os.WriteFile(dst, b, 0o600)
		}
		return nil
	})
}

// start runs the script and waits (bounded: node-opcua's first start makes its certificate) for its ready line.
func (s *npmServer) start() error {
	dir := os.Getenv("FIELDGATE_TEST_NPM_DIR")
	args := append([]string{filepath.Join(dir, "opcua-server.js"), "-port", strconv.Itoa(s.port), "-pki", s.pki}, s.args...)
	cmd := exec.Command("node", args...)
	cmd.Dir = dir
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var msg struct {
				Ready       bool
				Endpoint    string
				Fingerprint string
				NS          int
			}
			if json.Unmarshal(sc.Bytes(), &msg) == nil && msg.Ready {
				s.endpoint, s.fingerprint, s.ns = msg.Endpoint, msg.Fingerprint, msg.NS
				ready <- nil
				break
			}
		}
		ready <- sc.Err()
		for sc.Scan() {
		}
	}()
	select {
	case err := <-ready:
		if err != nil || s.endpoint == "" {
			cmd.Process.Kill()
			cmd.Wait()
			return errorf("node-opcua exited before it was ready: %v", err)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return errorf("node-opcua not ready within 60s")
	}
	s.cmd = cmd
	return nil
}

// kill stops the server with SIGKILL, as a crash would.
func (s *npmServer) kill() {
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
		s.cmd.Wait()
		s.cmd = nil
	}
}

var errorf = fmt.Errorf

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedNPM != nil {
		sharedNPM.kill()
	}
	if sharedServer != nil {
		sharedServer.stop()
	}
	os.Exit(code)
}

func npmConfig(t *testing.T, s *npmServer, groups ...Group) Config {
	return Config{
		Name:     "npm",
		Endpoint: s.endpoint,
		Security: Security{StateDir: t.TempDir(), ServerFingerprints: []string{s.fingerprint}},
		Groups:   groups, ReconnectInterval: 300 * time.Millisecond, MaxReconnectInterval: 300 * time.Millisecond,
		RequestTimeout: 5 * time.Second,
	}
}

const npmNS = "nsu=urn:fieldgate:npm;s="

// npmExpected: what each scalar node of opcua-server.js must read back as.
var npmExpected = map[string]fieldgate.Value{
	"Boolean": fieldgate.Bool(true), "SByte": fieldgate.Int(-128), "Byte": fieldgate.Int(255),
	"Int16": fieldgate.Int(-32768), "UInt16": fieldgate.Int(65535), "Int32": fieldgate.Int(-2147483648),
	"UInt32": fieldgate.Int(4294967295), "Int64": fieldgate.Int(-9223372036854775808),
	"UInt64": fieldgate.Int(9223372036854775807), "UInt64Max": fieldgate.String("18446744073709551615"),
	"Float": fieldgate.Float(float64(float32(3.14159))), "Double": fieldgate.Float(2.718281828459045),
	"String": fieldgate.String("héllo, wörld"), "DateTime": fieldgate.String("2024-03-01T12:30:45.123Z"),
	"Guid": fieldgate.String("72962B91-FA75-4AE6-8D28-B404DC7DAF63"), "ByteString": fieldgate.String("AAEC/v8="),
	"XmlElement": fieldgate.String("<a>1</a>"), "NodeId": fieldgate.String("ns=3;s=x"),
	"ExpandedNodeId": fieldgate.String("ns=2;i=42"), "StatusCode": fieldgate.Int(int64(uint32(ua.StatusBadNodeIDUnknown))),
	"QualifiedName": fieldgate.String("2:Q"), "LocalizedText": fieldgate.String("text"),
}

func npmAllNodes() []Node {
	var nodes []Node
	for name := range npmExpected {
		nodes = append(nodes, Node{ID: npmNS + name, Metric: name})
	}
	for _, c := range arrayCases() {
		nodes = append(nodes, Node{ID: npmNS + c.name, Metric: c.name}, Node{ID: npmNS + c.name, Metric: c.name + "_str", Arrays: "string"})
	}
	return nodes
}

func checkNPMValues(t *testing.T, rs []fieldgate.Reading) {
	t.Helper()
	m := latest(rs)
	for name, want := range npmExpected {
		if r, ok := m[name]; !ok || !r.Value.Equal(want) || r.Quality != fieldgate.Good {
			t.Errorf("%s: got %v (%v, %s, present %v), want %v", name, r.Value, r.Value.Kind(), r.Quality, ok, want)
		}
	}
	for _, c := range arrayCases() {
		for i, w := range c.want {
			if r := m[c.name+"["+strconv.Itoa(i)+"]"]; !r.Value.Equal(w) {
				t.Errorf("%s[%d]: got %v, want %v", c.name, i, r.Value, w)
			}
		}
		if r := m[c.name+"_str"]; !r.Value.Equal(fieldgate.String(c.str)) {
			t.Errorf("%s as string: got %v, want %s", c.name, r.Value, c.str)
		}
	}
}

func runAndWait(t *testing.T, cfg Config, what string, cond func([]fieldgate.Reading) bool) (*Source, *collector) {
	t.Helper()
	src, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	runSource(t, src, col.emit)
	waitFor(t, 20*time.Second, what, func() bool {
		return cond(col.snapshot())
	})
	return src, col
}

// TestNPMBuiltinTypes: every built-in scalar type and arrays read back exactly, by subscription and by polling,
// over the default security (SignAndEncrypt with the strongest policy).
func TestNPMBuiltinTypes(t *testing.T) {
	s := npmShared(t)
	want := len(npmExpected) + len(arrayCases()) + countElems()
	for _, mode := range []string{GroupSubscribe, GroupPoll} {
		t.Run(mode, func(t *testing.T) {
			cfg := npmConfig(t, s, Group{Name: "all", Mode: mode, PublishingInterval: 100 * time.Millisecond,
				PollInterval: 200 * time.Millisecond, Nodes: npmAllNodes()})
			src, col := runAndWait(t, cfg, "every node", func(rs []fieldgate.Reading) bool { return len(latest(rs)) >= want })
			checkNPMValues(t, col.snapshot())
			if st := src.Stats(); st.Security != "Aes256_Sha256_RsaPss/SignAndEncrypt" {
				t.Errorf("security %q, want the strongest policy with SignAndEncrypt", st.Security)
			}
		})
	}
}

func TestNPMSecurityPoliciesAndModes(t *testing.T) {
	s := npmShared(t)
	for _, mode := range []string{ModeSignAndEncrypt, ModeSign} {
		for _, policy := range securePolicies {
			t.Run(policy+"/"+mode, func(t *testing.T) {
				cfg := npmConfig(t, s, Group{Name: "g", PublishingInterval: 100 * time.Millisecond,
					Nodes: []Node{{ID: npmNS + "Double", Metric: "d"}, {ID: npmNS + "Counter", Metric: "c"}}})
				cfg.Security.Mode, cfg.Security.Policy = mode, policy
				src, col := runAndWait(t, cfg, "readings", func(rs []fieldgate.Reading) bool { return len(latest(rs)) == 2 })
				if got := src.Stats().Security; got != policy+"/"+mode {
					t.Errorf("security %s", got)
				}
				if r := latest(col.snapshot())["d"]; !r.Value.Equal(fieldgate.Float(2.718281828459045)) {
					t.Errorf("value %v", r.Value)
				}
			})
		}
	}
	t.Run("None explicitly", func(t *testing.T) {
		cfg := npmConfig(t, s, Group{Name: "g", Nodes: []Node{{ID: npmNS + "Double", Metric: "d"}}})
		cfg.Security = Security{Mode: ModeNone}
		src, _ := runAndWait(t, cfg, "a reading", func(rs []fieldgate.Reading) bool { return len(rs) > 0 })
		if got := src.Stats().Security; got != "None/None" {
			t.Errorf("security %s", got)
		}
	})
}

func writeUserCert(t *testing.T) (certFile, keyFile string) {
	cert, key, err := generateCert("urn:fieldgate:user:operator", "operator", 2048)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "user.pem"), filepath.Join(dir, "user.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	return certFile, keyFile
}

func TestNPMUserAuthentication(t *testing.T) {
	s := npmShared(t)
	group := Group{Name: "g", Nodes: []Node{{ID: npmNS + "Double", Metric: "d"}}}
	t.Run("username", func(t *testing.T) {
		cfg := npmConfig(t, s, group)
		cfg.Auth = Auth{Method: AuthUsername, Username: "operator", Password: "s3cret"}
		runAndWait(t, cfg, "a reading", func(rs []fieldgate.Reading) bool { return len(rs) > 0 })
	})
	t.Run("wrong password", func(t *testing.T) {
		cfg := npmConfig(t, s, group)
		cfg.Auth = Auth{Method: AuthUsername, Username: "operator", Password: "wrong"}
		src, err := New(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		runSource(t, src, newCollector().emit)
		waitFor(t, 20*time.Second, "a refused connect", func() bool { return src.Stats().ConnectFailures > 0 })
		st := src.Stats()
		if st.Connected || !strings.Contains(st.LastError, "wrong user name or password") || strings.Contains(st.LastError, "wrong\"") {
			t.Errorf("last error %q: want a clear wrong-password message", st.LastError)
		}
	})
	t.Run("certificate", func(t *testing.T) {
		cfg := npmConfig(t, s, group)
		certFile, keyFile := writeUserCert(t)
		cfg.Auth = Auth{Method: AuthCertificate, CertFile: certFile, KeyFile: keyFile}
		runAndWait(t, cfg, "a reading", func(rs []fieldgate.Reading) bool { return len(rs) > 0 })
	})
}

// TestNPMUntrustedClientCertificate: a server that does not auto-accept refuses the generated client
// certificate; the error says so.
func TestNPMUntrustedClientCertificate(t *testing.T) {
	s := npmOwn(t)
	cfg := npmConfig(t, s, Group{Name: "g", Nodes: []Node{{ID: npmNS + "Double"}}})
	src, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runSource(t, src, newCollector().emit)
	waitFor(t, 20*time.Second, "a refused connect", func() bool { return src.Stats().ConnectFailures > 0 })
	if st := src.Stats(); !strings.Contains(st.LastError, "does not trust the gateway's client certificate") {
		t.Errorf("last error %q: want a clear untrusted-certificate message", st.LastError)
	}
}

func TestNPMQualityAndTimestamps(t *testing.T) {
	s := npmShared(t)
	cfg := npmConfig(t, s, Group{Name: "g", PublishingInterval: 100 * time.Millisecond, Nodes: []Node{
		{ID: npmNS + "Bad", Metric: "bad"}, {ID: npmNS + "Uncertain", Metric: "unc"}, {ID: npmNS + "Stale", Metric: "stale"}}})
	_, col := runAndWait(t, cfg, "three readings", func(rs []fieldgate.Reading) bool { return len(latest(rs)) == 3 })
	m := latest(col.snapshot())
	ms := time.Date(2024, 3, 1, 12, 30, 45, 123000000, time.UTC)
	if r := m["bad"]; r.Quality != fieldgate.Bad || r.Status != uint32(ua.StatusBadSensorFailure) {
		t.Errorf("bad: %+v", r)
	}
	if r := m["unc"]; r.Quality != fieldgate.Uncertain || r.Status != uint32(ua.StatusUncertainLastUsableValue) || !r.SourceTime.Equal(ms) {
		t.Errorf("uncertain: %+v", r)
	}
	if r := m["stale"]; r.Quality != fieldgate.Good || !r.SourceTime.Equal(ms) {
		t.Errorf("stale: %+v, want source time %v", r, ms)
	}
}

// TestNPMRestartResumes: kill -9 the server during a subscription (SignAndEncrypt) and restart it on the same
// port with the same PKI; data resumes within the reconnect interval plus a few publishing intervals of the
// server being back, without restarting the source.
func TestNPMRestartResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	s := npmOwn(t, "-auto-accept", "-bulk", "10")
	cfg := npmConfig(t, s, Group{Name: "g", PublishingInterval: 100 * time.Millisecond,
		Nodes: []Node{{ID: npmNS + "Counter", Metric: "counter"}}})
	src, col := runAndWait(t, cfg, "counter readings", func(rs []fieldgate.Reading) bool { return len(rs) >= 5 })
	for round := range 1 {
		s.kill()
		waitFor(t, 5*time.Second, "the source to notice", func() bool { return !src.Stats().Connected })
		down := time.Now()
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		for _, r := range col.snapshot() {
			if r.GatewayTime.After(down) && r.GatewayTime.Before(back.Add(-100*time.Millisecond)) {
				t.Fatalf("reading %+v while the server was down", r)
			}
		}
		// reconnect interval 300ms + a few 100ms publishing intervals (+ the secure handshake)
		waitFor(t, 4*time.Second, "data after the restart", func() bool { return counterAfter(col.snapshot(), back) >= 3 })
		t.Logf("round %d: data resumed %v after the server was back", round, time.Since(back).Round(10*time.Millisecond))
	}
	if st := src.Stats(); st.Reconnects < 1 || st.Security != "Aes256_Sha256_RsaPss/SignAndEncrypt" {
		t.Errorf("stats %+v", st)
	}
}

// TestNPMOperationLimits: the server allows 50 nodes per Read and 100 monitored items per call; 2000 nodes are
// still read and monitored, in calls that fit.
func TestNPMOperationLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	s := npmOwn(t, "-auto-accept", "-max-nodes-per-read", "50", "-max-monitored-items-per-call", "100", "-bulk", "2000")
	var nodes []Node
	for i := range 2000 {
		nodes = append(nodes, Node{ID: npmNS + "Bulk." + strconv.Itoa(i), Metric: "b" + strconv.Itoa(i)})
	}
	cfg := npmConfig(t, s,
		Group{Name: "poll", Mode: GroupPoll, PollInterval: time.Hour, Device: "p", Nodes: nodes},
		Group{Name: "subs", PublishingInterval: 200 * time.Millisecond, Device: "s", Nodes: nodes})
	src, col := runAndWait(t, cfg, "4000 readings", func(rs []fieldgate.Reading) bool { return len(rs) >= 4000 })
	st := src.Stats()
	if st.Limits.MaxNodesPerRead != 50 || st.Limits.MaxMonitoredItemsPerCall != 100 {
		t.Errorf("limits %+v, want the server's 50 and 100", st.Limits)
	}
	if st.Reads < 40 || st.MonitoredItemCalls < 20 || st.ItemErrors != 0 || st.Groups[1].Items != 2000 {
		t.Errorf("reads %d, item calls %d, item errors %d, items %d", st.Reads, st.MonitoredItemCalls, st.ItemErrors, st.Groups[1].Items)
	}
	m := latest(col.snapshot())
	for _, i := range []int{0, 999, 1999} {
		if r := m["b"+strconv.Itoa(i)]; !r.Value.Equal(fieldgate.Float(float64(i))) {
			t.Errorf("b%d = %v", i, r.Value)
		}
	}
}

// TestNPMWatchdogRebuild: the subscription goes silent while the connection stays up (no data, no keep-alive
// reaches the source); the watchdog rebuilds it within twice the keep-alive time and data flows again.
func TestNPMWatchdogRebuild(t *testing.T) {
	s := npmShared(t)
	cfg := npmConfig(t, s, Group{Name: "g", PublishingInterval: 100 * time.Millisecond, KeepAliveCount: 3,
		Nodes: []Node{{ID: npmNS + "Counter", Metric: "counter"}}})
	src, col := runAndWait(t, cfg, "counter readings", func(rs []fieldgate.Reading) bool { return len(rs) >= 3 })
	src.testDropPublish.Store(true)
	waitFor(t, 5*time.Second, "a watchdog rebuild", func() bool { return src.Stats().WatchdogRebuilds >= 1 })
	src.testDropPublish.Store(false)
	rebuilt := time.Now()
	waitFor(t, 5*time.Second, "data after the rebuild", func() bool { return counterAfter(col.snapshot(), rebuilt) >= 3 })
	if st := src.Stats(); st.Reconnects != 0 {
		t.Errorf("reconnected %d times; want the subscription rebuilt in place", st.Reconnects)
	}
}

// sessionCounter reads a server's CurrentSessionCount, on a session of its own that the count includes.
type sessionCounter struct{ c *opcua.Client }

func newSessionCounter(t *testing.T, endpoint string) *sessionCounter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := opcua.NewClient(endpoint, opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
	if err == nil {
		err = c.Connect(ctx)
	}
	if err != nil {
		t.Fatalf("session counter: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return &sessionCounter{c: c}
}

func (sc *sessionCounter) count(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := sc.c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{AttributeID: ua.AttributeIDValue,
		NodeID: ua.NewNumericNodeID(0, id.Server_ServerDiagnostics_ServerDiagnosticsSummary_CurrentSessionCount)}}})
	if err != nil || len(res.Results) != 1 || res.Results[0].Status != ua.StatusOK {
		t.Fatalf("read the session count: %v %+v", err, res)
	}
	return int(res.Results[0].Value.Uint())
}

// readingsAfter counts the readings of device dev that arrived after t.
func readingsAfter(rs []fieldgate.Reading, dev string, t time.Time) int {
	n := 0
	for _, r := range rs {
		if r.Device == dev && r.GatewayTime.After(t) {
			n++
		}
	}
	return n
}

// TestNPMUnadvertisedLimit: node-opcua refuses calls of more than 100 monitored items or 50 read nodes
// (BadTooManyOperations) and advertises no limit, as some PLC firmware does. The refused calls are retried in
// halves on the same session and all 500 monitored and 500 polled nodes report; the lowered limits are kept, so
// the sessions after ten connection cuts (a proxy drops every connection) are refused nothing; and the server
// holds one session for the input all along, since each session a cut left open is closed on the next
// connection (before, every refusal cost a session, left open until it timed out: 2 -> 20 sessions in 32 s).
func TestNPMUnadvertisedLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const n = 500
	s := npmOwn(t, "-auto-accept", "-bulk", strconv.Itoa(n), "-bulk-change-ms", "500",
		"-enforce-max-nodes-per-read", "50", "-enforce-max-monitored-items-per-call", "100")
	proxy := opcuatest.StartProxy(t, strings.TrimPrefix(s.endpoint, "opc.tcp://"))
	counter := newSessionCounter(t, s.endpoint)
	var polled, monitored []Node
	for i := range n {
		polled = append(polled, Node{ID: npmNS + "Bulk." + strconv.Itoa(i), Metric: "p" + strconv.Itoa(i)})
		monitored = append(monitored, Node{ID: npmNS + "Bulk." + strconv.Itoa(i), Metric: "s" + strconv.Itoa(i)})
	}
	cfg := npmConfig(t, s,
		Group{Name: "poll", Mode: GroupPoll, PollInterval: 500 * time.Millisecond, Device: "p", Nodes: polled},
		Group{Name: "subs", PublishingInterval: 200 * time.Millisecond, Device: "s", Nodes: monitored})
	cfg.Endpoint = "opc.tcp://" + proxy.Addr
	src, col := runAndWait(t, cfg, "every node", func(rs []fieldgate.Reading) bool { return len(latest(rs)) == 2*n })
	st := src.Stats()
	t.Logf("first session: %d split retries, limits %+v", st.SplitRetries, st.Limits)
	if st.SplitRetries == 0 || st.Limits.MaxNodesPerRead > 50 || st.Limits.MaxMonitoredItemsPerCall > 100 {
		t.Errorf("split retries %d, limits %+v: want the refusals to lower the limits to the server's", st.SplitRetries, st.Limits)
	}
	if st.Reconnects != 0 || st.ItemErrors != 0 || st.Groups[1].Items != n {
		t.Errorf("reconnects %d, item errors %d, items %d: want the refusals to cost no session", st.Reconnects, st.ItemErrors, st.Groups[1].Items)
	}
	for _, r := range latest(col.snapshot()) {
		if r.Quality != fieldgate.Good {
			t.Fatalf("reading %+v", r)
		}
	}
	retries := st.SplitRetries
	sessions := []int{counter.count(t)}
	for round := range 10 {
		before := src.Stats().Connects
		proxy.Cut()
		cut := time.Now()
		waitFor(t, 30*time.Second, "a new session", func() bool { st := src.Stats(); return st.Connected && st.Connects > before })
		waitFor(t, 30*time.Second, "readings of both groups after the cut", func() bool {
			rs := col.snapshot()
			return readingsAfter(rs, "p", cut) >= n && readingsAfter(rs, "s", cut) >= n
		})
		sessions = append(sessions, counter.count(t))
		t.Logf("round %d: readings again %v after the cut, the server holds %d sessions", round, time.Since(cut).Round(time.Millisecond), sessions[len(sessions)-1])
	}
	t.Logf("sessions on the server (the input's and the counter's) at the start and after each of 10 cuts: %v", sessions)
	for i, c := range sessions {
		if c != 2 {
			t.Errorf("after cut %d the server holds %d sessions, want 2 (the input's and the counter's)", i, c)
		}
	}
	if st := src.Stats(); st.SplitRetries != retries || st.Reconnects != 10 {
		t.Errorf("split retries %d (first session %d), reconnects %d: want the learned limits kept and 10 reconnects", st.SplitRetries, retries, st.Reconnects)
	}
}

// TestNPMNamespacesRenumbered: node-opcua restarts with its namespace at another index and decoys (the same
// node names, other values) at the old one; nsu= node ids are resolved again, so the readings continue from the
// right nodes (Azure/Industrial-IoT#1306), while a node written with the old ns= index reads a decoy.
func TestNPMNamespacesRenumbered(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	s := npmOwn(t, "-auto-accept", "-bulk", "1")
	fixed := "ns=" + strconv.Itoa(s.ns) + ";s=Double"
	cfg := npmConfig(t, s, Group{Name: "g", PublishingInterval: 100 * time.Millisecond,
		Nodes: []Node{{ID: npmNS + "Double", Metric: "d"}, {ID: npmNS + "Counter", Metric: "counter"}, {ID: fixed, Metric: "fixed"}}})
	src, col := runAndWait(t, cfg, "every node", func(rs []fieldgate.Reading) bool { return len(latest(rs)) == 3 })
	s.kill()
	s.args = append(s.args, "-ns-shift", "3")
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitFor(t, 20*time.Second, "readings after the restart", func() bool {
		rs := col.snapshot()
		return counterAfter(rs, back) >= 3 && readingsAfter(rs, "npm", back) > counterAfter(rs, back)
	})
	for _, r := range col.snapshot() {
		if r.GatewayTime.After(back) && r.Metric == "d" && (r.Quality != fieldgate.Good || !r.Value.Equal(fieldgate.Float(2.718281828459045))) {
			t.Errorf("after the renumbering: %+v, want the value of urn:fieldgate:npm's Double", r)
		}
	}
	if r := latest(col.snapshot())["fixed"]; !r.Value.Equal(fieldgate.Float(-1)) {
		t.Errorf("%s after the renumbering: %+v, want the decoy's -1 (else the test does not renumber)", fixed, r)
	}
	if st := src.Stats(); st.Reconnects < 1 || st.ItemErrors != 0 {
		t.Errorf("reconnects %d, item errors %d", st.Reconnects, st.ItemErrors)
	}
}

// TestNPMUnknownNode: node-opcua refuses to monitor a node it does not have; the subscription gives the node a
// Bad reading with BadNodeIdUnknown, as a poll does, and the other node reports.
func TestNPMUnknownNode(t *testing.T) {
	s := npmShared(t)
	cfg := npmConfig(t, s, Group{Name: "g", PublishingInterval: 100 * time.Millisecond,
		Nodes: []Node{{ID: npmNS + "Double", Metric: "d"}, {ID: npmNS + "NoSuchNode", Metric: "missing"}}})
	src, col := runAndWait(t, cfg, "both nodes", func(rs []fieldgate.Reading) bool { return len(latest(rs)) == 2 })
	if r := latest(col.snapshot())["missing"]; r.Quality != fieldgate.Bad || r.Status != uint32(ua.StatusBadNodeIDUnknown) {
		t.Errorf("missing: %+v, want Bad with BadNodeIdUnknown", r)
	}
	if st := src.Stats(); st.ItemErrors != 1 || st.Groups[0].FailedItems != 1 {
		t.Errorf("item errors %d, failed items %d", st.ItemErrors, st.Groups[0].FailedItems)
	}
}

// TestNPMTrustThenConnect: what `gateway opcua trust` prints for node-opcua pins its certificate, and the input
// connects with it over the default SignAndEncrypt.
func TestNPMTrustThenConnect(t *testing.T) {
	s := npmShared(t)
	var out bytes.Buffer
	if err := Trust(context.Background(), s.endpoint, 10*time.Second, &out); err != nil {
		t.Fatal(err)
	}
	fps := pinnedFingerprints(out.String())
	if len(fps) != 1 || fps[0] != s.fingerprint {
		t.Fatalf("trust pins %v, the server's certificate is %s:\n%s", fps, s.fingerprint, out.String())
	}
	cfg := npmConfig(t, s, Group{Name: "g", Nodes: []Node{{ID: npmNS + "Double", Metric: "d"}}})
	cfg.Security.ServerFingerprints = fps
	runAndWait(t, cfg, "a reading", func(rs []fieldgate.Reading) bool { return len(rs) > 0 })
}
