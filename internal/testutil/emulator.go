package testutil

import (
	"os"
	"os/exec"
	"strings"
)

// EmulatorEnv names the emulator the tests run under, when they run under one: `go test -exec` starts each test
// binary through it (scripts/gotest.sh runs the gateway's tests for arm64 and ARMv7 under qemu-user, with
// "qemu-aarch64-static" or "qemu-arm-static -cpu cortex-a7" here).
const EmulatorEnv = "FIELDGATE_TEST_EMULATOR"

// TargetCommand is exec.Command for a program built for the architecture the tests run as: the test binary
// itself (os.Args[0]) or a binary it built with `go build`. Under an emulator the program runs through the same
// emulator, because this kernel cannot execute foreign binaries by itself (no binfmt_misc). Signals sent to the
// command reach the program: qemu-user passes them on, and SIGKILL ends both.
func TargetCommand(name string, args ...string) *exec.Cmd {
	emulator := strings.Fields(os.Getenv(EmulatorEnv))
	if len(emulator) == 0 {
		return exec.Command(name, args...)
	}
	return exec.Command(emulator[0], append(append(emulator[1:], name), args...)...)
}
