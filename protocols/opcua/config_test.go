package opcua

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/gopcua/opcua/ua"
)

func validConfig() Config {
	return Config{Name: "plc", Endpoint: "opc.tcp://plc:4840",
		Security: Security{ServerFingerprints: []string{strings.Repeat("ab:", 31) + "ab"}},
		Groups:   []Group{{Name: "g", Nodes: []Node{{ID: "ns=2;s=x"}}}}}
}

// fieldsOf returns the field paths of the FieldErrors in err.
func fieldsOf(err error) []string {
	var out []string
	for _, e := range fieldgate.Flatten(err) {
		var fe *fieldgate.FieldError
		if errors.As(e, &fe) {
			out = append(out, fe.Field)
		}
	}
	return out
}

func TestValidateNamesTheField(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		field  string
		modify func(*Config)
	}{
		{"name", func(c *Config) { c.Name = "" }},
		{"endpoint", func(c *Config) { c.Endpoint = "http://x" }},
		{"security.mode", func(c *Config) { c.Security.Mode = "Encrypt" }},
		{"security.policy", func(c *Config) { c.Security.Policy = "Basic999" }},
		{"security.mode", func(c *Config) { c.Security.Policy = PolicyNone }},
		{"security.server_fingerprints", func(c *Config) { c.Security.ServerFingerprints = nil }},
		{"security.server_fingerprints[0]", func(c *Config) { c.Security.ServerFingerprints = []string{"abc"} }},
		{"security.cert_file", func(c *Config) { c.Security.CertFile = "c.pem" }},
		{"auth.method", func(c *Config) { c.Auth.Method = "kerberos" }},
		{"auth.username", func(c *Config) { c.Auth.Method = AuthUsername }},
		{"auth.method", func(c *Config) {
			c.Security = Security{Mode: ModeNone}
			c.Auth = Auth{Method: AuthUsername, Username: "u"}
		}},
		{"auth.cert_file", func(c *Config) { c.Auth.Method = AuthCertificate }},
		{"groups", func(c *Config) { c.Groups = nil }},
		{"groups[0].name", func(c *Config) { c.Groups[0].Name = "" }},
		{"groups[1].name", func(c *Config) { c.Groups = append(c.Groups, c.Groups[0]) }},
		{"groups[0].mode", func(c *Config) { c.Groups[0].Mode = "stream" }},
		{"groups[0].trigger", func(c *Config) { c.Groups[0].Trigger = "value" }},
		{"groups[0].deadband", func(c *Config) { c.Groups[0].Deadband = "relative" }},
		{"groups[0].deadband_value", func(c *Config) { c.Groups[0].Deadband = "percent"; c.Groups[0].DeadbandValue = 150 }},
		{"groups[0].deadband_value", func(c *Config) { c.Groups[0].DeadbandValue = 1 }},
		{"groups[0].arrays", func(c *Config) { c.Groups[0].Arrays = "json" }},
		{"groups[0].nodes", func(c *Config) { c.Groups[0].Nodes = nil }},
		{"groups[0].nodes[0].id", func(c *Config) { c.Groups[0].Nodes[0].ID = "ns=2;q=1" }},
		{"groups[0].nodes[1]", func(c *Config) {
			c.Groups[0].Nodes = append(c.Groups[0].Nodes, Node{ID: "ns=2;i=1", Metric: "ns=2;s=x"})
		}},
		{"groups[0].publishing_interval", func(c *Config) { c.Groups[0].PublishingInterval = time.Microsecond }},
		{"limits.max_nodes_per_read", func(c *Config) { c.Limits.MaxNodesPerRead = -1 }},
		{"limits.max_message_size", func(c *Config) { c.Limits.MaxMessageSize = 8192 }},
	}
	for _, c := range cases {
		cfg := validConfig()
		c.modify(&cfg)
		err := cfg.Validate()
		found := false
		for _, f := range fieldsOf(err) {
			found = found || f == c.field
		}
		if !found {
			t.Errorf("want a FieldError at %s, got %v", c.field, err)
		}
	}
	// None, nsu= ids, and every node id form validate.
	cfg := validConfig()
	cfg.Security = Security{Mode: ModeNone}
	cfg.Groups[0].Nodes = []Node{{ID: "i=2258"}, {ID: "ns=2;i=42"}, {ID: "ns=3;g=5b6f7e2c-1d3a-4c8b-9e0f-7a6b5c4d3e2f"},
		{ID: "ns=2;b=T3Zlbg=="}, {ID: "nsu=urn:x;s=a.b"}, {ID: "ns=2;s=with;semicolon"}}
	if err := cfg.Validate(); err != nil {
		t.Errorf("node id forms: %v", err)
	}
}

func TestParseNodeIDResolvesNamespaceURIs(t *testing.T) {
	ns := []string{"http://opcfoundation.org/UA/", "urn:a", "urn:b"}
	for in, want := range map[string]string{
		"nsu=urn:b;s=x": "ns=2;s=x", "nsu=urn:a;i=7": "ns=1;i=7", "ns=2;s=x": "ns=2;s=x", "i=2258": "i=2258",
		"nsu=urn:a;g=5B6F7E2C-1D3A-4C8B-9E0F-7A6B5C4D3E2F": "ns=1;g=5B6F7E2C-1D3A-4C8B-9E0F-7A6B5C4D3E2F",
		"ns=3;b=T3Zlbg==": "ns=3;b=T3Zlbg==",
	} {
		id, err := parseNodeID(in, ns)
		if err != nil || id.String() != want {
			t.Errorf("%s: %v %v, want %s", in, id, err, want)
		}
	}
	if _, err := parseNodeID("nsu=urn:c;s=x", ns); err == nil || !strings.Contains(err.Error(), "not in the server's namespace array") {
		t.Errorf("unknown namespace: %v", err)
	}
}

func FuzzParseNodeID(f *testing.F) {
	for _, s := range []string{"i=1", "ns=2;s=x", "nsu=urn:a;i=3", "ns=1;g=5B6F7E2C-1D3A-4C8B-9E0F-7A6B5C4D3E2F", "ns=2;b=AAE=", "nsu=;", "ns=70000;i=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseNodeID(s, []string{"http://opcfoundation.org/UA/", "urn:a"})
		if err == nil && id == nil {
			t.Fatal("nil id without error")
		}
	})
}

func TestQualityFromSeverityBits(t *testing.T) {
	for code, want := range map[ua.StatusCode]fieldgate.Quality{
		ua.StatusOK: fieldgate.Good, ua.StatusGoodMoreData: fieldgate.Good,
		ua.StatusUncertainLastUsableValue: fieldgate.Uncertain, ua.StatusUncertainSensorNotAccurate: fieldgate.Uncertain,
		ua.StatusBadSensorFailure: fieldgate.Bad, ua.StatusBadNodeIDUnknown: fieldgate.Bad, 0xC0000000: fieldgate.Bad,
	} {
		if got := qualityOf(code); got != want {
			t.Errorf("%08X: %v, want %v", uint32(code), got, want)
		}
	}
}

// TestSequenceGaps: a missing notification message is counted once; a late one (overtaken on another Publish
// request) takes its count back; a keep-alive that skips numbers counts them.
func TestSequenceGaps(t *testing.T) {
	src, err := New(validConfig(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	g := src.groups[0]
	ss := &session{src: src, subs: map[uint32]*sub{7: {g: g, id: 7, nextSeq: 1}}}
	data := func(seq uint32) *ua.PublishResponse {
		return &ua.PublishResponse{SubscriptionID: 7, NotificationMessage: &ua.NotificationMessage{SequenceNumber: seq,
			NotificationData: []*ua.ExtensionObject{ua.NewExtensionObject(&ua.DataChangeNotification{})}}}
	}
	keepAlive := func(seq uint32) *ua.PublishResponse {
		return &ua.PublishResponse{SubscriptionID: 7, NotificationMessage: &ua.NotificationMessage{SequenceNumber: seq}}
	}
	for _, step := range []struct {
		r    *ua.PublishResponse
		gaps uint64
	}{
		{data(1), 0}, {data(2), 0}, {data(4), 1}, {data(3), 0}, {keepAlive(5), 0}, {data(5), 0},
		{data(8), 2}, {keepAlive(9), 2}, {keepAlive(11), 4}, {data(11), 4},
	} {
		ss.handlePublish(step.r)
		if got := src.Stats().SequenceGaps; got != step.gaps {
			t.Fatalf("after seq %d: %d gaps, want %d", step.r.NotificationMessage.SequenceNumber, got, step.gaps)
		}
	}
	if n := len(ss.acks); n != 7 {
		t.Errorf("%d acknowledgements pending, want one per data message (7)", n)
	}
}

// TestSlowBufferNeverStallsPublishing: Emit takes a second per call; the publish loop keeps acknowledging and
// the bounded queue drops (and counts) the oldest readings instead of stalling.
func TestSlowBufferNeverStallsPublishing(t *testing.T) {
	ts := sharedTestServer(t)
	ts.ticker(t, 50*time.Millisecond, true)
	var nodes []Node
	for i := range 200 {
		nodes = append(nodes, Node{ID: "ns=" + ts.nsID() + ";s=Bulk." + strconv.Itoa(i), Metric: "b" + strconv.Itoa(i)})
	}
	cfg := baseConfig(t, ts, Group{Name: "bulk", PublishingInterval: 100 * time.Millisecond, Nodes: nodes})
	cfg.QueueSize, cfg.BatchSize = 500, 100
	src, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	slow := func(ctx context.Context, rs []fieldgate.Reading) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
			return nil
		}
	}
	runSource(t, src, slow)
	waitFor(t, 10*time.Second, "drops", func() bool { return src.Stats().Dropped > 0 })
	p0 := src.Stats().PublishResponses
	time.Sleep(time.Second)
	st := src.Stats()
	if st.PublishResponses-p0 < 3 || st.Queued > 500 || st.SequenceGaps != 0 || st.Reconnects != 0 {
		t.Errorf("publishing stalled or lost messages: %d responses in 1s, queued %d, gaps %d, reconnects %d",
			st.PublishResponses-p0, st.Queued, st.SequenceGaps, st.Reconnects)
	}
}

// FuzzAppendReadings: any DataValue a server can send (decoded from the wire) converts without panicking, and
// always to at least one reading (an empty array to none, in elements mode).
func FuzzAppendReadings(f *testing.F) {
	for _, c := range builtinCases() {
		dv := &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueStatusCode, Value: ua.MustVariant(c.val), Status: ua.StatusUncertain}
		if b, err := dv.Encode(); err == nil {
			f.Add(b)
		}
	}
	for _, c := range arrayCases() {
		if b, err := (&ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(c.val)}).Encode(); err == nil {
			f.Add(b)
		}
	}
	if b, err := (&ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant([][]int32{{1, 2}, {3, 4}})}).Encode(); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dv := new(ua.DataValue)
		if !decodes(dv, b) {
			return
		}
		for _, asString := range []bool{false, true} {
			rs := appendReadings(nil, target{device: "d", metric: "m", arraysAsString: asString}, dv, time.Now())
			if len(rs) == 0 && (asString || dv.Value == nil || dv.Value.ArrayLength() > 0) {
				t.Fatal("no reading")
			}
		}
	})
}

// decodes runs gopcua's decoder, which itself panics on some malformed input (negative array dimensions:
// reflect.MakeSlice in ua.Variant.Decode, gopcua v0.8.0); that is the library's bug, not the conversion's.
func decodes(dv *ua.DataValue, b []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_, err := dv.Decode(b)
	return err == nil
}
