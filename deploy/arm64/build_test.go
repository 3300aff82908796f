// Package arm64 holds the deployment files for ARM boards; its test proves the gateway cross-compiles for them
// as a pure-Go binary.
package arm64

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestGatewayCrossCompilesWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling takes a while; skipped with -short")
	}
	for _, target := range []struct{ arch, arm string }{{"arm64", ""}, {"arm", "7"}} {
		t.Run(target.arch+target.arm, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "gateway")
			cmd := exec.Command("go", "build", "-o", out, "../../cmd/gateway")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+target.arch, "GOARM="+target.arm)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("CGO_ENABLED=0 GOARCH=%s go build ./cmd/gateway: %v\n%s", target.arch, err, b)
			}
			if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
				t.Fatalf("no binary: %v", err)
			}
		})
	}
}
