package fieldgate

import (
	"errors"
	"time"
)

// SourceTimeBound is how far a device's timestamp may lie from the gateway's clock and still be taken as the
// time of a reading. A device clock that was never set (1970, 2000, year 1), a sensor that sends seconds where
// milliseconds were configured (January 1970), or milliseconds where seconds were (centuries ahead) would
// otherwise put readings where nobody looks for them, and open windows decades away in the central service.
//
// The gateway checks every reading of an input against the input's bound before it commits it (Check), the same
// way for every input that carries device timestamps: MQTT payload timestamps and OPC UA source timestamps
// (Modbus has none). A reading outside is kept, at its gateway time, marked Uncertain, and counted.
//
// In YAML: source_time: {max_past: 24h, max_future: 24h}. Zero fields take the input's default.
type SourceTimeBound struct {
	// MaxPast: a source time more than this before the gateway time is implausible. Raise it for devices that
	// send old data on purpose, e.g. a logger uploading what it stored while it was offline.
	MaxPast time.Duration `yaml:"max_past"`
	// MaxFuture: a source time more than this after the gateway time is implausible.
	MaxFuture time.Duration `yaml:"max_future"`
}

// DefaultSourceTimeBound is the default of MQTT inputs: one day either way.
var DefaultSourceTimeBound = SourceTimeBound{MaxPast: 24 * time.Hour, MaxFuture: 24 * time.Hour}

// StatusImplausibleTime is the Status of a reading that was Good but whose source time lay outside its input's
// SourceTimeBound: it is Uncertain, and its event time is its gateway time. It is fieldgate's own code, beside the
// protocols' (Modbus exceptions 1 to 255 and protocols/modbus's 256 to 260; no valid OPC UA StatusCode is 261).
const StatusImplausibleTime uint32 = 0x105

// minSourceTimeBound keeps a bound above ordinary clock drift and delivery delay.
const minSourceTimeBound = time.Minute

// Validate checks the fields: each 0 (the default) or at least a minute.
func (b SourceTimeBound) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"max_past", b.MaxPast}, {"max_future", b.MaxFuture}} {
		switch {
		case f.v < 0:
			errs = append(errs, FieldErrorf(f.name, "%s is negative", f.v))
		case f.v != 0 && f.v < minSourceTimeBound:
			errs = append(errs, FieldErrorf(f.name, "%s is below %s: ordinary clock drift and delivery delay would mark good readings", f.v, minSourceTimeBound))
		}
	}
	return errors.Join(errs...)
}

// WithDefaults returns b with its zero fields taken from def.
func (b SourceTimeBound) WithDefaults(def SourceTimeBound) SourceTimeBound {
	if b.MaxPast == 0 {
		b.MaxPast = def.MaxPast
	}
	if b.MaxFuture == 0 {
		b.MaxFuture = def.MaxFuture
	}
	return b
}

// Check reports whether r's source time is plausible: none, or within [GatewayTime − MaxPast, GatewayTime +
// MaxFuture] (b's zero fields count as DefaultSourceTimeBound's). If it is not, Check clears it, so the event
// time is the gateway time, and marks a Good reading Uncertain with StatusImplausibleTime; an Uncertain or Bad
// reading keeps its quality and status, which already say why it is not Good.
func (b SourceTimeBound) Check(r *Reading) bool {
	if r.SourceTime.IsZero() {
		return true
	}
	b = b.WithDefaults(DefaultSourceTimeBound)
	// Times, not a difference: a Duration saturates at 292 years, the widest bound.
	if !r.SourceTime.Before(r.GatewayTime.Add(-b.MaxPast)) && !r.SourceTime.After(r.GatewayTime.Add(b.MaxFuture)) {
		return true
	}
	r.SourceTime = time.Time{}
	if r.Quality == Good {
		r.Quality, r.Status = Uncertain, StatusImplausibleTime
	}
	return false
}

// DeviceTime returns the SourceTime a reading holds for the device timestamp t: t in UTC, except that a reading
// cannot hold Go's zero time, 0001-01-01T00:00:00Z (it means "no source time"), nor a time outside the years 1
// to 9999. Such a t becomes the nearest time a reading can hold (1 ns after the zero time, or the last
// nanosecond of 9999), which every SourceTimeBound finds implausible, so the reading is kept at its gateway
// time, Uncertain, rather than losing its time silently or being refused.
func DeviceTime(t time.Time) time.Time {
	switch t = t.UTC(); {
	case !t.After(minTime):
		return minTime.Add(time.Nanosecond)
	case t.After(maxTime):
		return maxTime
	}
	return t
}
