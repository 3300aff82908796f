//go:build linux && (amd64 || arm64)

// The power-loss tests need FUSE (go-fuse builds on 64-bit Linux only: its splice code does not compile for
// 32-bit ARM).

package buffer

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fieldgate/fieldgate/internal/lossyfs"
)

// TestPowerLoss runs the child on a file system that forgets every write not yet synced and cuts the power at
// random points, again and again on the same file: each time, every reading whose commit returned nil is there
// and the file passes bbolt's check. A kill -9 keeps the page cache; this shows the fsyncs are where they must be.
func TestPowerLoss(t *testing.T) {
	fsys := lossyfs.Mount(t)
	rounds := 12
	if testing.Short() {
		rounds = 3
	}
	for round := range rounds {
		if !t.Run(strconv.Itoa(round), func(t *testing.T) {
			crashRound(t, filepath.Join(fsys.Dir, "buffer.db"), filepath.Join(fsys.Backing, "buffer.db"), (round+1)*1_000_000,
				func() func() { fsys.CutPower(); return fsys.PowerOn })
		}) {
			break
		}
	}
	t.Logf("%d power cuts; %d MB synced to the disk", rounds, fsys.Synced()>>20)
}
