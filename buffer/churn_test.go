package buffer

import (
	"context"
	"testing"
)

// TestFileSizeBoundedUnderChurn appends 20 times the cap through a drop_oldest buffer and checks that the file
// stops growing: bbolt reuses the pages the dropped readings freed.
func TestFileSizeBoundedUnderChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	b := openT(t, Config{MaxBytes: 4 * MiB})
	rs := benchBatch(1000)
	ctx := context.Background()
	var sizes []int64
	for i := range 400 {
		if err := b.Append(ctx, rs); err != nil {
			t.Fatal(err)
		}
		if i%40 == 39 {
			sizes = append(sizes, b.Stats().FileBytes)
		}
	}
	st := b.Stats()
	t.Logf("file sizes every 40 appends: %v; stored %d bytes; dropped %d", sizes, st.Bytes, st.DroppedOldest)
	if st.Bytes > int64(4*MiB) || st.DroppedOldest == 0 {
		t.Fatalf("stats %+v", st)
	}
	if last := sizes[len(sizes)-1]; last != sizes[len(sizes)/2] || last > 3*int64(4*MiB) {
		t.Fatalf("file kept growing: %v", sizes)
	}
}
