package main

import (
	"os"
	"strings"
	"testing"
)

// The unit restarts the gateway whatever its exit code, reloads with SIGHUP, reads the drop-ins, and does not
// validate before the start (an invalid file must not keep the gateway from starting on its last good one).
func TestServiceUnit(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/fieldgate-gateway.service")
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
