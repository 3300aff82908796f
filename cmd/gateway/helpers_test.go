package main

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate/buffer"
)

// testGateway is a gateway on the configuration at path, with its buffer open in a temporary directory and every
// input built (not run): for the tests of what the gateway does with what its inputs queue.
func testGateway(t *testing.T, path string) *gateway {
	t.Helper()
	l, err := loadPath(path, "", false)
	if err != nil {
		t.Fatal(err)
	}
	l.cfg.Buffer.Path = filepath.Join(t.TempDir(), "buffer.db")
	log := slog.New(slog.DiscardHandler)
	g := newGateway(log, configPaths{})
	g.started = time.Now()
	g.ctx = t.Context()
	buf, err := buffer.Open(l.cfg.Buffer, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { buf.Close() })
	g.buf = buf
	g.running.Store(&runState{loaded: l, appliedAt: time.Now()})
	for _, ic := range l.cfg.inputs() {
		src, err := ic.build(log)
		if err != nil {
			t.Fatal(err)
		}
		in := newInput(g, ic.name, ic.kind)
		done := make(chan struct{})
		close(done)
		in.cur.Store(&instance{cfg: ic, src: src, cancel: func() {}, done: done})
		in.state.Store("running")
		g.inputs = append(g.inputs, in)
	}
	return g
}
