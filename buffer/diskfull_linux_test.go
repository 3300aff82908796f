package buffer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
)

// TestDiskFull fills a small real file system: Append must fail (so the source does not acknowledge), Stats must
// turn unhealthy with the error, the buffer must keep exactly what was acknowledged, and once space is freed
// the next Append must succeed and the buffer turn healthy again, without a restart.
func TestDiskFull(t *testing.T) {
	dir := testutil.MountTmpfs(t, "8m")
	// Ballast that the test deletes to free space later.
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "buffer.db")
	b := openT(t, Config{Path: path, MaxBytes: 64 * MiB})
	ctx := context.Background()

	var want []fieldgate.Reading
	var failed error
	for i := 0; i < 10000 && failed == nil; i++ {
		rs := readings("dev", len(want), 500)
		if err := b.Append(ctx, rs); err != nil {
			failed = err
			break
		}
		want = append(want, rs...)
	}
	if failed == nil {
		t.Fatal("Append never failed on a full file system")
	}
	t.Logf("Append failed after %d readings: %v", len(want), failed)
	st := b.Stats()
	if st.Healthy || st.LastError == "" || st.AppendErrors != 500 || st.CommitErrors == 0 {
		t.Fatalf("after the failure: %+v", st)
	}
	if !strings.Contains(st.LastError, "no space") {
		t.Errorf("LastError %q does not say the disk is full", st.LastError)
	}
	// It keeps failing while the disk is full, and the process keeps running.
	if err := b.Append(ctx, readings("dev", len(want), 500)); err == nil {
		t.Fatal("second Append on a full disk succeeded")
	}
	checkEntries(t, scanAll(t, b), want)

	// Free space: the next Append succeeds and the buffer is healthy again.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	rs := readings("dev", len(want), 500)
	if err := b.Append(ctx, rs); err != nil {
		t.Fatalf("Append after space was freed: %v", err)
	}
	want = append(want, rs...)
	if st := b.Stats(); !st.Healthy || st.LastError != "" || st.Entries != int64(len(want)) {
		t.Fatalf("after recovery: %+v", st)
	}
	checkEntries(t, scanAll(t, b), want)

	// And what it stored survives a restart, in a file that passes the checks.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := openT(t, Config{Path: path, MaxBytes: 64 * MiB})
	if st := b2.Stats(); st.CorruptFilesMovedAside != 0 || st.Entries != int64(len(want)) {
		t.Fatalf("after reopen: %+v", st)
	}
	checkEntries(t, scanAll(t, b2), want)
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFullAtOpen: a buffer that cannot even be created on a full disk fails Open with the error instead of
// hanging or panicking.
func TestDiskFullAtOpen(t *testing.T) {
	dir := testutil.MountTmpfs(t, "64k")
	_ = os.WriteFile(filepath.Join(dir, "ballast"), make([]byte, 64<<10), 0o600)
	start := time.Now()
	b, err := Open(Config{Path: filepath.Join(dir, "buffer.db")}, nil)
	if err == nil {
		b.Close()
		t.Fatal("Open on a full disk succeeded")
	}
	if errors.Is(err, ErrLocked) || time.Since(start) > 5*time.Second {
		t.Fatalf("Open on a full disk: %v after %s", err, time.Since(start))
	}
	t.Logf("Open on a full disk: %v", err)
}
