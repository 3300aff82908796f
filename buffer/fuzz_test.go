package buffer

import (
	"encoding/binary"
	"testing"
)

// FuzzDecodeEntry: a stored value of any content is refused with an error or split within its bounds, never a
// panic (Open's walk and Scan decode every stored value).
func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte{entrySingle, 0, 0, 0, 0, 0, 0, 0, 1, 3, 'd', 'e', 'v', '{', '}'})
	f.Add([]byte{entrySingle, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{entryPacked, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 1, 'd', 2, '{', '}', 1, 'e', 1, '1'})
	f.Add([]byte{entryPacked, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 1, 'd', 2, '{', '}'})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, v []byte) {
		k := binary.BigEndian.AppendUint64(nil, 42)
		var total, n int
		last := uint64(41)
		err := eachReading(k, v, func(seq uint64, dev, wire []byte) bool {
			if seq != last+1 {
				t.Fatalf("seq %d after %d", seq, last)
			}
			last = seq
			total += len(dev) + len(wire)
			n++
			return true
		})
		if err != nil {
			return
		}
		if total > len(v) || int64(n) != entryCount(v) || lastSeq(k, v) != last {
			t.Fatalf("eachReading(%x): %d readings of %d bytes, count %d, last seq %d (%d)", v, n, total, entryCount(v), last, lastSeq(k, v))
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
