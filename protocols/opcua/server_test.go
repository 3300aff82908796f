package opcua

import (
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
)

// testServer is an in-process gopcua server with a namespace "urn:fieldgate:test" holding one variable per
// built-in type (s=<Type>), arrays (s=<Type>Array), a counter that changes on every Tick (s=Counter), bulk
// variables (s=Bulk.<i>) and bad/stale nodes.
type testServer struct {
	t        *testing.T
	port     int
	endpoint string
	cert     []byte
	key      *rsa.PrivateKey
	srv      *server.Server
	ns       *server.NodeNameSpace
	bulk     int

	mu      sync.Mutex
	counter int64
	paused  atomic.Bool // stops the ticker
}

var (
	serverKeyOnce sync.Once
	serverCert    []byte
	serverKey     *rsa.PrivateKey
)

func testServerIdentity(t testing.TB) ([]byte, *rsa.PrivateKey) {
	serverKeyOnce.Do(func() {
		var err error
		serverCert, serverKey, err = generateCert("urn:fieldgate:testserver", "fieldgate test server", 2048)
		if err != nil {
			panic(err)
		}
	})
	return serverCert, serverKey
}

// fixedTime is the value of the DateTime node and the source time of the stale node.
var fixedTime = time.Date(2024, 3, 1, 12, 30, 45, 123456700, time.UTC)

// builtinCases: the value each scalar node holds and the reading it must give.
func builtinCases() []struct {
	name string
	val  any
	want fieldgate.Value
} {
	guid := ua.NewGUID("72962B91-FA75-4AE6-8D28-B404DC7DAF63")
	return []struct {
		name string
		val  any
		want fieldgate.Value
	}{
		{"Boolean", true, fieldgate.Bool(true)},
		{"SByte", int8(-128), fieldgate.Int(-128)},
		{"Byte", uint8(255), fieldgate.Int(255)},
		{"Int16", int16(-32768), fieldgate.Int(-32768)},
		{"UInt16", uint16(65535), fieldgate.Int(65535)},
		{"Int32", int32(-2147483648), fieldgate.Int(-2147483648)},
		{"UInt32", uint32(4294967295), fieldgate.Int(4294967295)},
		{"Int64", int64(-9223372036854775808), fieldgate.Int(-9223372036854775808)},
		{"UInt64", uint64(9223372036854775807), fieldgate.Int(9223372036854775807)},
		{"UInt64Max", uint64(18446744073709551615), fieldgate.String("18446744073709551615")},
		{"Float", float32(3.14159), fieldgate.Float(float64(float32(3.14159)))},
		{"Double", 2.718281828459045, fieldgate.Float(2.718281828459045)},
		{"String", "héllo, wörld", fieldgate.String("héllo, wörld")},
		{"DateTime", fixedTime, fieldgate.String("2024-03-01T12:30:45.1234567Z")},
		{"Guid", guid, fieldgate.String("72962B91-FA75-4AE6-8D28-B404DC7DAF63")},
		{"ByteString", []byte{0, 1, 2, 0xfe, 0xff}, fieldgate.String("AAEC/v8=")},
		{"XmlElement", ua.XMLElement("<a>1</a>"), fieldgate.String("<a>1</a>")},
		{"NodeId", ua.NewStringNodeID(3, "x"), fieldgate.String("ns=3;s=x")},
		{"ExpandedNodeId", ua.NewNumericExpandedNodeID(2, 42), fieldgate.String("ns=2;i=42")},
		{"StatusCode", ua.StatusBadNodeIDUnknown, fieldgate.Int(int64(uint32(ua.StatusBadNodeIDUnknown)))},
		{"QualifiedName", &ua.QualifiedName{NamespaceIndex: 2, Name: "Q"}, fieldgate.String("2:Q")},
		{"LocalizedText", ua.NewLocalizedText("text"), fieldgate.String("text")},
		{"ExtensionObject", ua.NewExtensionObject(&ua.Range{Low: 1.5, High: 9}), fieldgate.String(`{"Low":1.5,"High":9}`)},
		{"DataValue", &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(int32(7))}, fieldgate.Int(7)},
		{"Variant", ua.MustVariant(int32(8)), fieldgate.Int(8)},
	}
}

type arrayCase struct {
	name string
	val  any
	want []fieldgate.Value
	str  string
}

func arrayCases() []arrayCase {
	return []arrayCase{
		{"Int32Array", []int32{1, -2, 3}, []fieldgate.Value{fieldgate.Int(1), fieldgate.Int(-2), fieldgate.Int(3)}, "[1,-2,3]"},
		{"DoubleArray", []float64{0.5, 1.25}, []fieldgate.Value{fieldgate.Float(0.5), fieldgate.Float(1.25)}, "[0.5,1.25]"},
		{"BooleanArray", []bool{true, false}, []fieldgate.Value{fieldgate.Bool(true), fieldgate.Bool(false)}, "[true,false]"},
		{"StringArray", []string{"a", "b\"c"}, []fieldgate.Value{fieldgate.String("a"), fieldgate.String("b\"c")}, `["a","b\"c"]`},
		{"UInt16Array", []uint16{0, 65535}, []fieldgate.Value{fieldgate.Int(0), fieldgate.Int(65535)}, "[0,65535]"},
		{"FloatArray", []float32{1.5}, []fieldgate.Value{fieldgate.Float(1.5)}, "[1.5]"},
	}
}

type serverOpts struct {
	port     int
	bulk     int  // number of Bulk.<i> nodes
	insecure bool // offer None only
}

func startTestServer(t *testing.T, o serverOpts) *testServer {
	t.Helper()
	cert, key := testServerIdentity(t)
	if o.port == 0 {
		o.port = testutil.FreePort(t)
	}
	ts := &testServer{t: t, port: o.port, cert: cert, key: key, bulk: o.bulk,
		endpoint: "opc.tcp://127.0.0.1:" + strconv.Itoa(o.port)}
	ts.start(o)
	t.Cleanup(func() { ts.stop() })
	return ts
}

var (
	sharedServerOnce sync.Once
	sharedServer     *testServer
)

// sharedTestServer is one server (200 bulk nodes) for the tests that do not stop or restart it: each start of
// gopcua's server parses the whole standard nodeset, seconds under -race.
func sharedTestServer(t *testing.T) *testServer {
	sharedServerOnce.Do(func() {
		cert, key := testServerIdentity(t)
		port := testutil.FreePort(t)
		sharedServer = &testServer{t: t, port: port, cert: cert, key: key, bulk: 200,
			endpoint: "opc.tcp://127.0.0.1:" + strconv.Itoa(port)}
		sharedServer.start(serverOpts{port: port, bulk: 200})
	})
	sharedServer.t = t
	return sharedServer
}

func (ts *testServer) start(o serverOpts) {
	opts := []server.Option{
		server.EndPoint("127.0.0.1", ts.port),
		server.PrivateKey(ts.key), server.Certificate(ts.cert),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous), server.SetLogger(testLogger(ts.t)),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
	}
	if !o.insecure {
		for _, p := range []string{"Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss", "Basic256", "Basic128Rsa15"} {
			opts = append(opts, server.EnableSecurity(p, ua.MessageSecurityModeSign),
				server.EnableSecurity(p, ua.MessageSecurityModeSignAndEncrypt))
		}
	}
	srv := server.New(opts...)
	ns := server.NewNodeNameSpace(srv, "urn:fieldgate:test")
	obj := ns.Objects()
	add := func(name string, v any) {
		n := server.NewVariableNode(ua.NewStringNodeID(ns.ID(), name), name, v)
		ns.AddNode(n)
		obj.AddRef(n, server.RefTypeIDHasComponent, true)
	}
	for _, c := range builtinCases() {
		add(c.name, c.val)
	}
	for _, c := range arrayCases() {
		add(c.name, c.val)
	}
	add("Counter", func() *ua.DataValue {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
			Value: ua.MustVariant(ts.counter), SourceTimestamp: time.Now(), ServerTimestamp: time.Now()}
	})
	add("Bad", &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueStatusCode | ua.DataValueServerTimestamp,
		Value: ua.MustVariant(float64(0)), Status: ua.StatusBadSensorFailure, ServerTimestamp: time.Now()})
	add("Uncertain", &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueStatusCode | ua.DataValueSourceTimestamp,
		Value: ua.MustVariant(float64(1.5)), Status: ua.StatusUncertainLastUsableValue, SourceTimestamp: fixedTime})
	add("Stale", &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
		Value: ua.MustVariant(float64(42)), SourceTimestamp: fixedTime, ServerTimestamp: time.Now()})
	add("ServerTimeOnly", &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueServerTimestamp,
		Value: ua.MustVariant(int32(5)), ServerTimestamp: fixedTime})
	for i := range o.bulk {
		add("Bulk."+strconv.Itoa(i), func() *ua.DataValue {
			ts.mu.Lock()
			defer ts.mu.Unlock()
			return &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp,
				Value: ua.MustVariant(float64(ts.counter*100000 + int64(i))), SourceTimestamp: time.Now()}
		})
	}
	// The previous server on this port may still be releasing it (gopcua's Close does not wait).
	var err error
	for try := 0; try < 40; try++ {
		if err = srv.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		ts.t.Fatalf("start server: %v", err)
	}
	ts.mu.Lock()
	ts.srv, ts.ns = srv, ns
	ts.mu.Unlock()
}

func (ts *testServer) stop() {
	ts.mu.Lock()
	srv := ts.srv
	ts.srv = nil
	ts.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// restart stops the server and starts a new one on the same port (all sessions and subscriptions are gone).
func (ts *testServer) restart(downFor time.Duration) {
	ts.stop()
	time.Sleep(downFor)
	ts.start(serverOpts{port: ts.port, bulk: ts.bulk})
}

// tick increments the counter and notifies subscribers of Counter (and of every Bulk node when bulk).
func (ts *testServer) tick(bulk bool) {
	ts.mu.Lock()
	ts.counter++
	srv, ns := ts.srv, ts.ns
	ts.mu.Unlock()
	if srv == nil {
		return
	}
	srv.ChangeNotification(ua.NewStringNodeID(ns.ID(), "Counter"))
	if bulk {
		for i := range ts.bulk {
			srv.ChangeNotification(ua.NewStringNodeID(ns.ID(), "Bulk."+strconv.Itoa(i)))
		}
	}
}

// ticker ticks every d until the test ends.
func (ts *testServer) ticker(t *testing.T, d time.Duration, bulk bool) {
	testutil.Every(t, d, func() {
		if !ts.paused.Load() {
			ts.tick(bulk)
		}
	})
}

func (ts *testServer) nsID() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return strconv.Itoa(int(ts.ns.ID()))
}

// collector keeps every reading a source queues.
type collector struct {
	mu sync.Mutex
	rs []fieldgate.Reading
	ch chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1)} }

func (c *collector) emit(ctx context.Context, rs []fieldgate.Reading) error {
	c.mu.Lock()
	c.rs = append(c.rs, rs...)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) snapshot() []fieldgate.Reading {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]fieldgate.Reading(nil), c.rs...)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("FIELDGATE_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// runSource starts src.Run in the background and stops it at the end of the test, checking that Run returns.
func runSource(t *testing.T, src *Source, emit testutil.EmitFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, emit) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of cancel")
		}
	})
}

func (ts *testServer) fingerprint() string { return Fingerprint(ts.cert) }

func (ts *testServer) String() string { return fmt.Sprintf("gopcua server at %s", ts.endpoint) }
