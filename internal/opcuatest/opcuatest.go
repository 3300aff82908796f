// Package opcuatest serves the tests of the OPC UA input: the encodings a misbehaving server can send, and a
// TCP proxy between a client and a server that can cut every connection and replace a marker value in what the
// server sends with one of those encodings. gopcua's own server encodes every response; the proxy makes it
// hostile. Tests only.
package opcuatest

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// Hostile is one malformed value: the binary encoding of a Variant that gopcua v0.8.0 could not decode without
// crashing the process or allocating without bound (third_party/gopcua/PATCHES.md).
type Hostile struct {
	Name    string
	Variant []byte
	Err     string // in the decoding error the patched gopcua returns
}

// le concatenates bytes and little-endian int32s.
func le(parts ...any) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		switch v := p.(type) {
		case byte:
			b.WriteByte(v)
		case int:
			binary.Write(&b, binary.LittleEndian, int32(v))
		case []byte:
			b.Write(v)
		default:
			panic(v)
		}
	}
	return b.Bytes()
}

const (
	int32Array  = byte(ua.TypeIDInt32) | ua.VariantArrayValues
	int32Matrix = int32Array | ua.VariantArrayDimensions
)

// HostileValues returns the malformed values, each at most MarkerSize bytes.
func HostileValues() []Hostile {
	// Argument is a structure with a slice field (ArrayDimensions []uint32), decoded by gopcua's generic decoder.
	argument := binary.LittleEndian.AppendUint16([]byte{1, 0}, id.Argument_Encoding_DefaultBinary) // four-byte NodeId
	argBody := le(-1, byte(0), byte(id.Double), -1, 0x7fffffff)                                    // Name null, DataType i=11, ValueRank -1, 2^31-1 dims
	deep := bytes.Repeat([]byte{byte(ua.TypeIDDataValue), ua.DataValueValue}, 400)
	return []Hostile{
		{"negative array length", le(int32Array, -2), "variant array of -2 elements"},
		{"2^31-1 array dimensions", le(int32Matrix, 1, 7, 0x7fffffff), "variant with 2147483647 array dimensions"},
		{"dimensions whose product overflows int32", le(int32Matrix, 0, 4, 256, 256, 256, 256), "unbalanced multi-dimensional array"},
		{"structure field of 2^31-1 elements", le(byte(ua.TypeIDExtensionObject), argument, byte(ua.ExtensionObjectBinary), len(argBody), argBody),
			"array of 2147483647 elements"},
		{"DataValues nested 400 deep (more than MaxNestingDepth)", append(deep, 0), "nested more than 100 levels deep"},
		{"string of 2^32-16 bytes", le(byte(ua.TypeIDString), -16), "unexpected EOF"},
	}
}

// MarkerSize is the length of the marker's encoding, and so the most a hostile value may take.
const MarkerSize = 1024

// Marker returns the value a server node holds for the proxy to replace: a ByteString whose Variant encoding is
// MarkerSize bytes, unique enough never to occur by chance.
func Marker() []byte {
	return bytes.Repeat([]byte("fieldgate-opcuatest-marker-"), MarkerSize)[:MarkerSize-5]
}

// markerEncoding is the marker as it travels: a ByteString Variant.
func markerEncoding() []byte {
	m := Marker()
	return le(byte(ua.TypeIDByteString), len(m), m)
}

// Splice returns a copy of msg with the marker's encoding replaced by v, padded to the marker's length so that
// every length around it still holds, as the proxy does; msg itself when it holds no marker.
func Splice(msg, v []byte) []byte {
	i := bytes.Index(msg, markerEncoding())
	if i < 0 {
		return msg
	}
	out := append([]byte(nil), msg...)
	copy(out[i:i+MarkerSize], append(v, make([]byte, MarkerSize-len(v))...))
	return out
}

// Proxy forwards TCP connections from Addr to an upstream OPC UA server, one chunk at a time. While a hostile
// value is set, the server's marker in any chunk it sends is replaced by it (padded to the same length, so the
// chunk's framing holds; a channel with security mode None only, since signatures are not recomputed).
type Proxy struct {
	Addr     string
	upstream string
	ln       net.Listener

	hostile atomic.Pointer[[]byte]

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// StartProxy listens on a free port of 127.0.0.1 and forwards to upstream (host:port) until the test ends.
func StartProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), upstream: upstream, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// SetHostile makes the proxy replace the marker with v (at most MarkerSize bytes) from now on; nil stops it.
func (p *Proxy) SetHostile(v []byte) {
	if v == nil {
		p.hostile.Store(nil)
		return
	}
	p.hostile.Store(&v)
}

// Cut closes every open connection, as a network failure would; new ones are accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *Proxy) close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client)
		p.track(server)
		p.wg.Add(2)
		go p.pipe(server, client, false)
		go p.pipe(client, server, true)
	}
}

// pipe copies chunks from src to dst; fromServer chunks get the marker replaced. Either side closing closes both.
func (p *Proxy) pipe(dst, src net.Conn, fromServer bool) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(src, hdr); err != nil {
			return
		}
		size := binary.LittleEndian.Uint32(hdr[4:])
		if size < 8 || size > 16<<20 {
			return
		}
		chunk := make([]byte, size)
		copy(chunk, hdr)
		if _, err := io.ReadFull(src, chunk[8:]); err != nil {
			return
		}
		if h := p.hostile.Load(); fromServer && h != nil {
			chunk = Splice(chunk, *h)
		}
		if _, err := dst.Write(chunk); err != nil {
			return
		}
	}
}
