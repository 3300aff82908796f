// Package logging holds the {level, format} log block both fieldgate commands read from their configuration, and
// builds the slog.Logger it describes.
package logging

import (
	"errors"
	"io"
	"log/slog"
	"strings"

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
