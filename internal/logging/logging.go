// Package logging holds the {level, format} log block both fieldgate commands read from their configuration, and
// builds the slog.Logger it describes.
package logging

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/fieldgate/fieldgate"
)

// Config sets a daemon's log output (the commands write it to standard error).
type Config struct {
	Level  string `yaml:"level"`  // debug, info (default), warn or error
	Format string `yaml:"format"` // text (default) or json
}

// ApplyDefaults sets an empty Level to "info" and an empty Format to "text".
func (c *Config) ApplyDefaults() {
	if c.Level == "" {
		c.Level = "info"
	}
	if c.Format == "" {
		c.Format = "text"
	}
}

// Validate returns a FieldError at "level" for a level other than debug, info, warn (or warning) and error (in
// any case), and one at "format" for a format other than text and json; the caller prefixes its own path
// (fieldgate.WithField("log", …)). It expects defaults applied: empty values are refused.
func (c Config) Validate() error {
	var errs []error
	switch strings.ToLower(c.Level) {
	case "debug", "info", "warn", "warning", "error":
	default:
		errs = append(errs, fieldgate.FieldErrorf("level", "%q: want debug, info, warn or error", c.Level))
	}
	switch c.Format {
	case "text", "json":
	default:
		errs = append(errs, fieldgate.FieldErrorf("format", "%q: want text or json", c.Format))
	}
	return errors.Join(errs...)
}

// New returns a logger writing to w in c's format (JSON for "json", else text) at c's level (info for anything
// Validate would not accept).
func New(c Config, w io.Writer) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(c.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Switch is a logger whose level and format can be changed while it is in use, by every logger derived from it
// (With, WithGroup) alike: the gateway applies a reloaded log block without restarting.
type Switch struct {
	w    io.Writer
	root atomic.Pointer[switchRoot]
}

type switchRoot struct{ h slog.Handler }

// NewSwitch returns a Switch writing to w as c says, and its logger.
func NewSwitch(c Config, w io.Writer) (*Switch, *slog.Logger) {
	s := &Switch{w: w}
	s.Set(c)
	return s, slog.New(&switchHandler{s: s})
}

// Set makes every logger of s write as c says from now on.
func (s *Switch) Set(c Config) { s.root.Store(&switchRoot{h: New(c, s.w).Handler()}) }

// switchHandler is a handler of a Switch: the attributes and groups it was derived with, replayed on the current
// root handler (and cached until the root changes).
type switchHandler struct {
	s     *Switch
	ops   []func(slog.Handler) slog.Handler
	cache atomic.Pointer[switchCache]
}

type switchCache struct {
	root *switchRoot
	h    slog.Handler
}

func (h *switchHandler) current() slog.Handler {
	root := h.s.root.Load()
	if c := h.cache.Load(); c != nil && c.root == root {
		return c.h
	}
	hh := root.h
	for _, op := range h.ops {
		hh = op(hh)
	}
	h.cache.Store(&switchCache{root: root, h: hh})
	return hh
}

func (h *switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.current().Enabled(ctx, l)
}
func (h *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.current().Handle(ctx, r)
}

func (h *switchHandler) with(op func(slog.Handler) slog.Handler) slog.Handler {
	return &switchHandler{s: h.s, ops: append(slices.Clip(h.ops), op)}
}

func (h *switchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.with(func(hh slog.Handler) slog.Handler { return hh.WithAttrs(as) })
}

func (h *switchHandler) WithGroup(name string) slog.Handler {
	return h.with(func(hh slog.Handler) slog.Handler { return hh.WithGroup(name) })
}
