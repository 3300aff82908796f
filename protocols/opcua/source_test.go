package opcua

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

// baseConfig is a SignAndEncrypt config against ts with the given groups.
func baseConfig(t *testing.T, ts *testServer, groups ...Group) Config {
	return Config{
		Name:     "plc",
		Endpoint: ts.endpoint,
		// gopcua v0.8.0's server cannot open a secured channel (its channel stays in mode None and never decrypts
		// the OpenSecureChannel request), so the in-process tier runs with None; security is tested against
		// node-opcua (npm_test.go).
		Security:          Security{Mode: ModeNone},
		Groups:            groups,
		ReconnectInterval: 200 * time.Millisecond, MaxReconnectInterval: 500 * time.Millisecond,
		RequestTimeout: 3 * time.Second,
	}
}

func builtinNodes(ts *testServer) []Node {
	var nodes []Node
	for _, c := range builtinCases() {
		nodes = append(nodes, Node{ID: "ns=" + ts.nsID() + ";s=" + c.name, Metric: c.name})
	}
	for _, c := range arrayCases() {
		nodes = append(nodes, Node{ID: "nsu=urn:fieldgate:test;s=" + c.name, Metric: c.name})
		nodes = append(nodes, Node{ID: "ns=" + ts.nsID() + ";s=" + c.name, Metric: c.name + "_str", Arrays: "string"})
	}
	return nodes
}

// latest returns the last reading per metric.
func latest(rs []fieldgate.Reading) map[string]fieldgate.Reading {
	m := map[string]fieldgate.Reading{}
	for _, r := range rs {
		m[r.Metric] = r
	}
	return m
}

func checkBuiltins(t *testing.T, rs []fieldgate.Reading) {
	t.Helper()
	m := latest(rs)
	for _, c := range builtinCases() {
		r, ok := m[c.name]
		if !ok {
			t.Errorf("%s: no reading", c.name)
			continue
		}
		if !r.Value.Equal(c.want) || r.Quality != fieldgate.Good || r.Device != "plc" {
			t.Errorf("%s: got %v (%v, %s, device %q), want %v good", c.name, r.Value, r.Value.Kind(), r.Quality, r.Device, c.want)
		}
	}
	for _, c := range arrayCases() {
		for i, w := range c.want {
			name := c.name + "[" + itoa(i) + "]"
			if r, ok := m[name]; !ok || !r.Value.Equal(w) {
				t.Errorf("%s: got %v (present %v), want %v", name, r.Value, ok, w)
			}
		}
		if _, ok := m[c.name+"["+itoa(len(c.want))+"]"]; ok {
			t.Errorf("%s: more elements than the array has", c.name)
		}
		if r := m[c.name+"_str"]; !r.Value.Equal(fieldgate.String(c.str)) {
			t.Errorf("%s as string: got %v, want %s", c.name, r.Value, c.str)
		}
	}
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i)) }

func fmtInt(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestBuiltinTypesSubscribeAndPoll(t *testing.T) {
	ts := sharedTestServer(t)
	for _, mode := range []string{GroupSubscribe, GroupPoll} {
		t.Run(mode, func(t *testing.T) {
			cfg := baseConfig(t, ts, Group{Name: "all", Mode: mode, PublishingInterval: 100 * time.Millisecond,
				PollInterval: 100 * time.Millisecond, Nodes: builtinNodes(ts)})
			src, err := New(cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			col := newCollector()
			runSource(t, src, col.emit)
			want := len(builtinCases()) + 2*len(arrayCases())
			waitFor(t, 10*time.Second, "a reading of every node", func() bool {
				return len(latest(col.snapshot())) >= want-len(arrayCases())+countElems()
			})
			checkBuiltins(t, col.snapshot())
			st := src.Stats()
			if !st.Connected || st.Security != "None/None" {
				t.Errorf("stats: connected %v security %q, want connected with None", st.Connected, st.Security)
			}
		})
	}
}

func countElems() int {
	n := 0
	for _, c := range arrayCases() {
		n += len(c.want)
	}
	return n
}

// TestEndpointSelection: the strongest secure policy the server offers, SignAndEncrypt unless told otherwise, and
// the deprecated ones only when named.
func TestEndpointSelection(t *testing.T) {
	ts := sharedTestServer(t)
	eps, err := opcua.GetEndpoints(context.Background(), ts.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ mode, policy, want string }{
		{"", "", "Aes256_Sha256_RsaPss/SignAndEncrypt"},
		{ModeSignAndEncrypt, "", "Aes256_Sha256_RsaPss/SignAndEncrypt"},
		{ModeSign, "", "Aes256_Sha256_RsaPss/Sign"},
		{ModeSignAndEncrypt, PolicyBasic256Sha256, "Basic256Sha256/SignAndEncrypt"},
		{ModeSign, PolicyAes128Sha256RsaOaep, "Aes128_Sha256_RsaOaep/Sign"},
		{ModeSignAndEncrypt, PolicyBasic128Rsa15, "Basic128Rsa15/SignAndEncrypt"},
		{ModeNone, "", "None/None"},
	}
	for _, c := range cases {
		sec := Security{Mode: c.mode, Policy: c.policy}
		if sec.Mode == "" {
			sec.Mode = ModeSignAndEncrypt
		}
		ep, err := selectEndpoint(eps, sec)
		if err != nil {
			t.Errorf("%+v: %v", c, err)
			continue
		}
		if got := policyName(ep.SecurityPolicyURI) + "/" + modeName(ep.SecurityMode); got != c.want {
			t.Errorf("%s/%s: selected %s, want %s", c.mode, c.policy, got, c.want)
		}
	}
	// Only secure policies are candidates by default: with only Basic256 on offer, nothing is selected.
	var old []*ua.EndpointDescription
	for _, ep := range eps {
		if ep.SecurityPolicyURI == policyURI(PolicyBasic256) || ep.SecurityPolicyURI == policyURI(PolicyNone) {
			old = append(old, ep)
		}
	}
	if ep, err := selectEndpoint(old, Security{Mode: ModeSignAndEncrypt}); err == nil {
		t.Errorf("selected %s from deprecated and None endpoints without being told to", ep.SecurityPolicyURI)
	}
}

func TestNoneRefusedUnlessExplicit(t *testing.T) {
	ts := startTestServer(t, serverOpts{insecure: true})
	cfg := baseConfig(t, ts, Group{Name: "g", Nodes: []Node{{ID: "ns=2;s=Double"}}})
	cfg.Security = Security{ServerFingerprints: []string{ts.fingerprint()}, StateDir: t.TempDir()}
	src, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = src.connect(context.Background(), clientIdentity{})
	if err == nil || !strings.Contains(err.Error(), "offers no endpoint with mode SignAndEncrypt") ||
		!strings.Contains(err.Error(), "None/None") {
		t.Fatalf("connect to a None-only server: %v, want a refusal naming what the server offers", err)
	}
}

func TestUntrustedServerCertificate(t *testing.T) {
	ts := sharedTestServer(t)
	cfg := baseConfig(t, ts, Group{Name: "g", Nodes: []Node{{ID: "ns=2;s=Double"}}})
	cfg.Security = Security{ServerFingerprints: []string{strings.Repeat("ab", 32)}, StateDir: t.TempDir()}
	src, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	runSource(t, src, col.emit)
	waitFor(t, 10*time.Second, "a connect failure", func() bool { return src.Stats().ConnectFailures > 0 })
	st := src.Stats()
	if st.Connected || !strings.Contains(st.LastError, ts.fingerprint()) || !strings.Contains(st.LastError, "not trusted") {
		t.Fatalf("last error %q: want a refusal that shows the fingerprint %s", st.LastError, ts.fingerprint())
	}
	if len(col.snapshot()) != 0 {
		t.Fatal("readings from an untrusted server")
	}
	// The sentinel is visible to callers.
	_, _, _, err = src.connect(context.Background(), clientIdentity{})
	if !errors.Is(err, ErrUntrustedServer) {
		t.Fatalf("connect: %v, want ErrUntrustedServer", err)
	}
}

func TestQualityAndTimestamps(t *testing.T) {
	ts := sharedTestServer(t)
	ns := "ns=" + ts.nsID() + ";s="
	for _, mode := range []string{GroupSubscribe, GroupPoll} {
		t.Run(mode, func(t *testing.T) {
			cfg := baseConfig(t, ts, Group{Name: "g", Mode: mode, Device: "press", PollInterval: 100 * time.Millisecond,
				PublishingInterval: 100 * time.Millisecond, Nodes: []Node{
					{ID: ns + "Bad", Metric: "bad"}, {ID: ns + "Uncertain", Metric: "unc"}, {ID: ns + "Stale", Metric: "stale", Device: "other"},
					{ID: ns + "ServerTimeOnly", Metric: "srv"}, {ID: ns + "NoSuchNode", Metric: "missing"},
				}})
			src, err := New(cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			col := newCollector()
			runSource(t, src, col.emit)
			waitFor(t, 10*time.Second, "readings", func() bool { return len(latest(col.snapshot())) >= 4 })
			m := latest(col.snapshot())
			if r := m["bad"]; r.Quality != fieldgate.Bad || r.Status != uint32(ua.StatusBadSensorFailure) {
				t.Errorf("bad: %+v", r)
			}
			if r := m["unc"]; r.Quality != fieldgate.Uncertain || r.Status != uint32(ua.StatusUncertainLastUsableValue) || !r.SourceTime.Equal(fixedTime) {
				t.Errorf("uncertain: %+v", r)
			}
			if r := m["stale"]; r.Quality != fieldgate.Good || !r.SourceTime.Equal(fixedTime) || r.Device != "other" || r.GatewayTime.Sub(fixedTime) < time.Hour {
				t.Errorf("stale: %+v, want the old source time kept", r)
			}
			if r := m["srv"]; !r.SourceTime.Equal(fixedTime) || r.Device != "press" {
				t.Errorf("server time only: %+v, want the server timestamp as source time", r)
			}
			if mode == GroupPoll {
				if r := m["missing"]; r.Quality != fieldgate.Bad || r.Status != uint32(ua.StatusBadNodeIDUnknown) {
					t.Errorf("missing node polled: %+v", r)
				}
			}
		})
	}
}

// TestUnknownNodeIsBadReading: a node the server does not have, or whose namespace URI it does not know, gives
// a Bad reading with the status, by subscription as by polling, and the other nodes keep reporting. (gopcua's
// server accepts monitoring an unknown node and notifies its bad status; node-opcua refuses to create the item:
// TestNPMUnknownNode.)
func TestUnknownNodeIsBadReading(t *testing.T) {
	ts := sharedTestServer(t)
	nodes := []Node{
		{ID: "ns=" + ts.nsID() + ";s=Double", Metric: "ok"},
		{ID: "ns=" + ts.nsID() + ";s=NoSuchNode", Metric: "missing"},
		{ID: "nsu=urn:nowhere;s=Double", Metric: "unknown_namespace"},
	}
	for _, mode := range []string{GroupSubscribe, GroupPoll} {
		t.Run(mode, func(t *testing.T) {
			cfg := baseConfig(t, ts, Group{Name: "g", Mode: mode, PublishingInterval: 100 * time.Millisecond,
				PollInterval: 100 * time.Millisecond, Nodes: nodes})
			src, err := New(cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			col := newCollector()
			runSource(t, src, col.emit)
			waitFor(t, 10*time.Second, "a reading of each node", func() bool { return len(latest(col.snapshot())) == 3 })
			m := latest(col.snapshot())
			if r := m["ok"]; r.Quality != fieldgate.Good || !r.Value.Equal(fieldgate.Float(2.718281828459045)) {
				t.Errorf("ok: %+v", r)
			}
			for _, name := range []string{"missing", "unknown_namespace"} {
				if r := m[name]; r.Quality != fieldgate.Bad || r.Status != uint32(ua.StatusBadNodeIDUnknown) || r.Device != "plc" {
					t.Errorf("%s: %+v, want Bad with BadNodeIdUnknown", name, r)
				}
			}
			if st := src.Stats(); st.ItemErrors < 1 || st.Reconnects != 0 {
				t.Errorf("item errors %d, reconnects %d: want the unknown namespace counted, no reconnect", st.ItemErrors, st.Reconnects)
			}
		})
	}
}
