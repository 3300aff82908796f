package opcua

// Fuzz tests of the decoding that a server's bytes reach: gopcua's decoders (the patched copy in
// third_party/gopcua) of a Variant, a DataValue and the service responses this input receives, then the input's
// own conversion into readings. The invariants: nothing panics, and decoding allocates at most
// maxAmplification times the input's size (plus 1 MiB), so limits.max_message_size bounds a response's memory.
//
//	go test -run '^$' -fuzz FuzzDecodeResponse -fuzztime 60s ./protocols/opcua   (make fuzz runs each for 30s)

import (
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate/internal/opcuatest"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// maxAmplification: a response built of one-byte DataValues takes about 170 times its size once decoded (a
// pointer, a DataValue and an empty Variant per byte); no input may take more than this.
const maxAmplification = 256

// checkAlloc runs decode and fails when it allocated more than maxAmplification times n bytes (plus 1 MiB).
func checkAlloc(t *testing.T, n int, decode func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	decode()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(maxAmplification*n+1<<20) {
		t.Fatalf("decoding %d bytes allocated %d bytes", n, got)
	}
}

func mustEncode(v any) []byte {
	b, err := ua.Encode(v)
	if err != nil {
		panic(err)
	}
	return b
}

// seedVariants: every built-in type, arrays, a matrix, and the hostile values.
func seedVariants() [][]byte {
	var out [][]byte
	for _, c := range builtinCases() {
		out = append(out, mustEncode(ua.MustVariant(c.val)))
	}
	for _, c := range arrayCases() {
		out = append(out, mustEncode(ua.MustVariant(c.val)))
	}
	out = append(out, mustEncode(ua.MustVariant([][]float64{{1, 2}, {3, 4}, {5, 6}})))
	for _, h := range opcuatest.HostileValues() {
		out = append(out, h.Variant)
	}
	return out
}

// dataValue wraps a Variant's encoding in a DataValue with a status (BadNodeIdUnknown) and a source time.
func dataValue(v []byte) []byte {
	b := []byte{ua.DataValueValue | ua.DataValueStatusCode | ua.DataValueSourceTimestamp}
	b = append(b, v...)
	b = append(b, 0, 0, 0x34, 0x80)
	return append(b, mustEncode(fixedTime)...)
}

func header() *ua.ResponseHeader {
	return &ua.ResponseHeader{Timestamp: fixedTime, RequestHandle: 7, ServiceDiagnostics: &ua.DiagnosticInfo{},
		StringTable: []string{}, AdditionalHeader: ua.NewExtensionObject(nil)}
}

// service encodes a response as it travels: its type id, then its fields.
func service(typeID uint16, v any) []byte {
	return append(mustEncode(ua.NewFourByteExpandedNodeID(0, typeID)), mustEncode(v)...)
}

// seedResponses: one of each response the input receives, valid, and Read and Publish responses carrying each
// hostile value.
func seedResponses() [][]byte {
	dv := &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp, Value: ua.MustVariant(2.5), SourceTimestamp: fixedTime}
	publish := func(dvs ...*ua.DataValue) *ua.PublishResponse {
		var items []*ua.MonitoredItemNotification
		for i, dv := range dvs {
			items = append(items, &ua.MonitoredItemNotification{ClientHandle: uint32(i%2 + 1), Value: dv})
		}
		return &ua.PublishResponse{ResponseHeader: header(), SubscriptionID: 1, AvailableSequenceNumbers: []uint32{3},
			NotificationMessage: &ua.NotificationMessage{SequenceNumber: 3, PublishTime: fixedTime, NotificationData: []*ua.ExtensionObject{
				ua.NewExtensionObject(&ua.DataChangeNotification{MonitoredItems: items, DiagnosticInfos: []*ua.DiagnosticInfo{}}),
				ua.NewExtensionObject(&ua.StatusChangeNotification{Status: ua.StatusBadTimeout, DiagnosticInfo: &ua.DiagnosticInfo{}}),
			}}, Results: []ua.StatusCode{ua.StatusOK}, DiagnosticInfos: []*ua.DiagnosticInfo{}}
	}
	out := [][]byte{
		service(id.ReadResponse_Encoding_DefaultBinary, &ua.ReadResponse{ResponseHeader: header(), DiagnosticInfos: []*ua.DiagnosticInfo{},
			Results: []*ua.DataValue{dv, {EncodingMask: ua.DataValueStatusCode, Status: ua.StatusBadNodeIDUnknown}, {}}}),
		service(id.PublishResponse_Encoding_DefaultBinary, publish(dv, dv)),
		service(id.CreateSubscriptionResponse_Encoding_DefaultBinary, &ua.CreateSubscriptionResponse{ResponseHeader: header(),
			SubscriptionID: 1, RevisedPublishingInterval: 100, RevisedLifetimeCount: 60, RevisedMaxKeepAliveCount: 10}),
		service(id.CreateMonitoredItemsResponse_Encoding_DefaultBinary, &ua.CreateMonitoredItemsResponse{ResponseHeader: header(),
			Results:         []*ua.MonitoredItemCreateResult{{StatusCode: ua.StatusBadNodeIDUnknown, FilterResult: ua.NewExtensionObject(nil)}},
			DiagnosticInfos: []*ua.DiagnosticInfo{}}),
		service(id.DeleteSubscriptionsResponse_Encoding_DefaultBinary, &ua.DeleteSubscriptionsResponse{ResponseHeader: header(),
			Results: []ua.StatusCode{ua.StatusOK}, DiagnosticInfos: []*ua.DiagnosticInfo{}}),
		service(id.ServiceFault_Encoding_DefaultBinary, &ua.ServiceFault{ResponseHeader: header()}),
		service(id.GetEndpointsResponse_Encoding_DefaultBinary, &ua.GetEndpointsResponse{ResponseHeader: header(),
			Endpoints: []*ua.EndpointDescription{{EndpointURL: "opc.tcp://plc:4840", SecurityMode: ua.MessageSecurityModeSignAndEncrypt,
				SecurityPolicyURI: ua.SecurityPolicyURIBasic256Sha256, Server: &ua.ApplicationDescription{ApplicationName: ua.NewLocalizedText("plc")},
				ServerCertificate: serverCert, UserIdentityTokens: []*ua.UserTokenPolicy{{PolicyID: "anon", TokenType: ua.UserTokenTypeAnonymous}}}}}),
		service(id.BrowseResponse_Encoding_DefaultBinary, &ua.BrowseResponse{ResponseHeader: header(), DiagnosticInfos: []*ua.DiagnosticInfo{},
			Results: []*ua.BrowseResult{{References: []*ua.ReferenceDescription{{ReferenceTypeID: ua.NewNumericNodeID(0, id.HasComponent),
				NodeID: ua.NewNumericExpandedNodeID(2, 5), BrowseName: &ua.QualifiedName{Name: "x"}, DisplayName: ua.NewLocalizedText("x"),
				TypeDefinition: ua.NewNumericExpandedNodeID(0, id.BaseDataVariableType)}}}}}),
	}
	marker := &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(opcuatest.Marker())}
	read := service(id.ReadResponse_Encoding_DefaultBinary, &ua.ReadResponse{ResponseHeader: header(), Results: []*ua.DataValue{dv, marker},
		DiagnosticInfos: []*ua.DiagnosticInfo{}})
	pub := service(id.PublishResponse_Encoding_DefaultBinary, publish(dv, marker))
	for _, h := range opcuatest.HostileValues() {
		out = append(out, opcuatest.Splice(read, h.Variant), opcuatest.Splice(pub, h.Variant))
	}
	return out
}

var fuzzTargets = []target{{device: "d", metric: "m"}, {device: "d", metric: "a", arraysAsString: true}}

// convert runs the input's conversion of a decoded value, as a poll or a notification would.
func convert(dv *ua.DataValue) {
	for _, t := range fuzzTargets {
		appendReadings(nil, t, dv, time.Now())
	}
}

func FuzzDecodeVariant(f *testing.F) {
	for _, b := range seedVariants() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v := new(ua.Variant)
		var err error
		checkAlloc(t, len(b), func() { _, err = v.Decode(b) })
		if err == nil {
			convert(&ua.DataValue{EncodingMask: ua.DataValueValue, Value: v})
		}
	})
}

func FuzzDecodeDataValue(f *testing.F) {
	for _, b := range seedVariants() {
		f.Add(dataValue(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dv := new(ua.DataValue)
		var err error
		checkAlloc(t, len(b), func() { _, err = dv.Decode(b) })
		if err == nil {
			convert(dv)
		}
	})
}

// FuzzDecodeResponse decodes a service response as the secure channel does, then hands a Read response's
// values to the conversion and a Publish response to the session's own handler.
func FuzzDecodeResponse(f *testing.F) {
	for _, b := range seedResponses() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var body any
		var err error
		checkAlloc(t, len(b), func() { _, body, err = ua.DecodeService(b) })
		if err != nil {
			return
		}
		switch r := body.(type) {
		case *ua.ReadResponse:
			for _, dv := range r.Results {
				convert(dv)
			}
		case *ua.PublishResponse:
			publishSession().handlePublish(r)
		}
	})
}

// publishSession is a session with one subscription (id 1) of two items, as handlePublish needs it.
func publishSession() *session {
	g := &groupState{cfg: Group{Name: "g"}}
	s := &Source{log: slog.New(slog.DiscardHandler), q: newQueue(1000), groups: []*groupState{g}}
	ss := &session{src: s, subs: map[uint32]*sub{}}
	for _, t := range fuzzTargets {
		ss.items = append(ss.items, item{t: t, group: g})
	}
	ss.subs[1] = &sub{g: g, id: 1, handles: []uint32{1, 2}, nextSeq: 1}
	return ss
}

// The hostile values are refused, in a Read and in a Publish response alike (the last seeds).
func TestHostileResponsesRefused(t *testing.T) {
	seeds := seedResponses()
	hostile := seeds[len(seeds)-2*len(opcuatest.HostileValues()):]
	for i, msg := range hostile {
		var err error
		checkAlloc(t, len(msg), func() { _, _, err = ua.DecodeService(msg) })
		h := opcuatest.HostileValues()[i/2]
		if err == nil || !strings.Contains(err.Error(), h.Err) {
			t.Errorf("%s (in a %s response): %v, want an error with %q", h.Name, [2]string{"Read", "Publish"}[i%2], err, h.Err)
		}
	}
}
