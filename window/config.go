package window

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fieldgate/fieldgate"
)

// Config is the windowing part of the central service's configuration:
//
//	windows:
//	  sizes: [1m, 1h]
//	  out_of_orderness: 5s
//	  allowed_lateness: 1m
//	  idle_timeout: 5m
//	  max_future: 1h
//
// Durations are whole milliseconds (finer parts are rejected: CrateDB stores milliseconds).
type Config struct {
	// Sizes are the tumbling window sizes, computed at once. Each must divide 24h (1m, 5m, 15m, 1h, 1d, ...) and
	// be a multiple of the smallest, so windows nest; at most 8 sizes, no repeats. Default [1m, 1h].
	Sizes []time.Duration `yaml:"sizes"`
	// OutOfOrderness is the bounded out-of-orderness per device: W(device) = greatest event time seen for that
	// device − OutOfOrderness. A window fires when W passes its end. Default 5s; 0 means the default, so write
	// 1ms for "in order".
	OutOfOrderness time.Duration `yaml:"out_of_orderness"`
	// AllowedLateness keeps a fired window open for late readings until W passes end + AllowedLateness; each late
	// reading re-fires it (an upsert). Later readings are Late: their windows are recomputed from the raw table.
	// Default 1m; 0 means the default, so write 1ms for "none".
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// IdleTimeout: a device with no reading for this long (processing time) has its open windows fired as final
	// and released. Default 5m. Keep it above the longest normal gap between two readings of a device.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxFuture: a reading whose event time is more than this ahead of now (a device clock running ahead) does
	// not move its device's watermark; it is Late (its windows are recomputed from the raw table). Default 1h.
	MaxFuture time.Duration `yaml:"max_future"`
}

// Defaults of Config, applied by New to zero fields.
var (
	DefaultSizes           = []time.Duration{time.Minute, time.Hour}
	DefaultOutOfOrderness  = 5 * time.Second
	DefaultAllowedLateness = time.Minute
	DefaultIdleTimeout     = 5 * time.Minute
	DefaultMaxFuture       = time.Hour
)

const (
	maxSizes = 8
	maxDelay = 366 * 24 * time.Hour // bound on out_of_orderness, allowed_lateness, idle_timeout, max_future
	day      = 24 * time.Hour
)

// Validate reports every invalid field as a fieldgate.FieldError, joined with errors.Join. Zero fields are valid
// (they take the defaults).
func (c Config) Validate() error {
	var errs []error
	if len(c.Sizes) > maxSizes {
		errs = append(errs, fieldgate.FieldErrorf("sizes", "%d window sizes; at most %d", len(c.Sizes), maxSizes))
	}
	smallest := time.Duration(0)
	var valid []int // indexes of the sizes valid on their own
	for i, s := range c.Sizes {
		field := fmt.Sprintf("sizes[%d]", i)
		switch {
		case s <= 0:
			errs = append(errs, fieldgate.FieldErrorf(field, "window size %s is not positive", s))
			continue
		case s%time.Millisecond != 0:
			errs = append(errs, fieldgate.FieldErrorf(field, "window size %s is not a whole number of milliseconds", s))
			continue
		case day%s != 0:
			errs = append(errs, fieldgate.FieldErrorf(field, "window size %s does not divide 24h", s))
			continue
		case slices.Index(c.Sizes, s) != i:
			errs = append(errs, fieldgate.FieldErrorf(field, "window size %s given twice", s))
			continue
		}
		valid = append(valid, i)
		if smallest == 0 || s < smallest {
			smallest = s
		}
	}
	for _, i := range valid {
		if s := c.Sizes[i]; s%smallest != 0 {
			errs = append(errs, fieldgate.FieldErrorf(fmt.Sprintf("sizes[%d]", i),
				"window size %s is not a multiple of the smallest size %s (windows must nest)", s, smallest))
		}
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"out_of_orderness", c.OutOfOrderness}, {"allowed_lateness", c.AllowedLateness}, {"idle_timeout", c.IdleTimeout}, {"max_future", c.MaxFuture}} {
		switch {
		case d.v < 0:
			errs = append(errs, fieldgate.FieldErrorf(d.field, "%s is negative", d.v))
		case d.v > maxDelay:
			errs = append(errs, fieldgate.FieldErrorf(d.field, "%s is longer than %s", d.v, maxDelay))
		case d.v%time.Millisecond != 0:
			errs = append(errs, fieldgate.FieldErrorf(d.field, "%s is not a whole number of milliseconds", d.v))
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero fields set to the defaults and its sizes sorted ascending.
func (c Config) withDefaults() Config {
	if len(c.Sizes) == 0 {
		c.Sizes = DefaultSizes
	}
	c.Sizes = slices.Clone(c.Sizes)
	slices.Sort(c.Sizes)
	if c.OutOfOrderness == 0 {
		c.OutOfOrderness = DefaultOutOfOrderness
	}
	if c.AllowedLateness == 0 {
		c.AllowedLateness = DefaultAllowedLateness
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxFuture == 0 {
		c.MaxFuture = DefaultMaxFuture
	}
	return c
}
