package buffer

import (
	"encoding/binary"
	"testing"
)

// FuzzDecodeEntry: a stored value of any content is refused with an error or split within its bounds, never a
// panic (Open's walk and Scan decode every stored value).
func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte{entryFormat, 0, 0, 0, 0, 0, 0, 0, 1, 3, 'd', 'e', 'v', '{', '}'})
	f.Add([]byte{entryFormat, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, v []byte) {
		k := binary.BigEndian.AppendUint64(nil, 42)
		seq, dev, wire, err := decodeEntry(k, v)
		if err != nil {
			return
		}
		if seq != 42 || len(dev)+len(wire) > len(v)-entryHeader-1 {
			t.Fatalf("decodeEntry(%x) = %d, %q, %q", v, seq, dev, wire)
		}
		_ = entryTime(v)
	})
}

// FuzzParseByteSize: whatever parses formats back to the same value.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"256MiB", "1GB", "500000", "1.5GiB", "0", "7 kb", "99999999999TiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("ParseByteSize(%q) = %d", s, v)
		}
		back, err := ParseByteSize(v.String())
		if err != nil || back != v {
			t.Fatalf("ParseByteSize(%q) = %d, String %q parses to %d, %v", s, v, v.String(), back, err)
		}
	})
}
