package logging

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/fieldgate/fieldgate"
)

func TestDefaultsAndValidate(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	if c != (Config{Level: "info", Format: "text"}) {
		t.Errorf("defaults = %+v", c)
	}
	if err := (Config{Level: "WARNING", Format: "json"}).Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
	err := fieldgate.WithField("log", Config{Level: "loud", Format: "xml"}.Validate())
	if got, want := err.Error(), "log.level: \"loud\": want debug, info, warn or error\nlog.format: \"xml\": want text or json"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNew(t *testing.T) {
	var out bytes.Buffer
	log := New(Config{Level: "warn", Format: "json"}, &out)
	if log.Enabled(context.Background(), slog.LevelInfo) || !log.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("level warn not applied")
	}
	log.Warn("x")
	if !strings.HasPrefix(out.String(), "{") {
		t.Errorf("not JSON: %q", out.String())
	}
	out.Reset()
	New(Config{Level: "debug", Format: "text"}, &out).Debug("y")
	if !strings.Contains(out.String(), "level=DEBUG msg=y") {
		t.Errorf("text output %q", out.String())
	}
}

// A Switch changes the level and format of every logger derived from it, attributes and groups kept.
func TestSwitch(t *testing.T) {
	var b strings.Builder
	sw, log := NewSwitch(Config{Level: "info", Format: "text"}, &b)
	child := log.With("input", "mqtt:a").WithGroup("g")
	child.Debug("hidden")
	child.Info("one", "k", 1)
	sw.Set(Config{Level: "debug", Format: "json"})
	child.Debug("two", "k", 2)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "msg=one input=mqtt:a g.k=1") ||
		!strings.Contains(lines[1], `"msg":"two","input":"mqtt:a","g":{"k":2}`) {
		t.Errorf("output:\n%s", b.String())
	}
}
