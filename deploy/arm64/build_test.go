// Package arm64 holds the deployment files for ARM boards; its test proves the gateway cross-compiles for them
// as a pure-Go binary.
package arm64

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// The unit restarts the gateway whatever its exit code, reloads with SIGHUP, reads the drop-ins, and does not
// validate before the start (an invalid file must not keep the gateway from starting on its last good one).
func TestServiceUnit(t *testing.T) {
	raw, err := os.ReadFile("fieldgate-gateway.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{"\nRestart=always\n", "\nExecReload=/bin/kill -HUP $MAINPID\n", "-confdir /etc/fieldgate/conf.d\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(unit, "\nExecStartPre=") {
		t.Error("the unit validates before the start, which keeps an invalid file from starting on the last good configuration")
	}
}
