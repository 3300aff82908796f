//go:build linux && (amd64 || arm64)

package lossyfs

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestCutForgetsWhatWasNotSynced: data and sizes written before a sync survive a cut, what came after does not;
// until the cut, reads (plain and through mmap, as bbolt reads) see everything written. (The test reads the
// mount from the serving process, which the package doc warns against; it allocates little and maps one page,
// so a garbage collection stopping the world in the middle of a fault is unlikely, not impossible.)
func TestCutForgetsWhatWasNotSynced(t *testing.T) {
	fsys := Mount(t)
	path := filepath.Join(fsys.Dir, "f")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	synced := bytes.Repeat([]byte("s"), 6000) // one page and a half
	if _, err := f.WriteAt(synced, 0); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Fdatasync(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	// Unsynced: overwrite inside the synced range, extend the file, then grow it by truncation.
	if _, err := f.WriteAt([]byte("UU"), 100); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("u"), 5000), 6000); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 10); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte(nil), synced...), bytes.Repeat([]byte("u"), 5000)...)
	copy(want[100:], "UU")
	want = append(want, make([]byte, 64<<10-len(want))...)
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("before the cut: read %d bytes (%v), want %d with every write", len(got), err, len(want))
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, 64<<10, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m, want) {
		t.Fatal("before the cut: mmap does not show every write")
	}
	_ = syscall.Munmap(m)
	f.Close()

	fsys.CutPower()
	fsys.PowerOn()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, synced) {
		t.Fatalf("after the cut: %d bytes, want the %d synced ones", len(got), len(synced))
	}
	if fsys.Synced() != int64(len(synced)) {
		t.Errorf("Synced() = %d, want %d", fsys.Synced(), len(synced))
	}

	// Shrinking is forgotten too, and a sync after it is kept.
	f, err = os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(10); err != nil {
		t.Fatal(err)
	}
	if fi, _ := f.Stat(); fi.Size() != 10 {
		t.Fatalf("size after truncate = %d, want 10", fi.Size())
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("lost"), 10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fsys.CutPower()
	if got, _ := os.ReadFile(filepath.Join(fsys.Backing, "f")); !bytes.Equal(got, synced[:10]) {
		t.Fatalf("after the second cut: %q, want %q", got, synced[:10])
	}
}
