// Package modbus is fieldgate's Modbus input: it polls register maps over Modbus TCP, TCP with TLS, RTU on a
// serial line and RTU over TCP, with simonvetter/modbus.
//
// One Config is one connection (a TCP endpoint or a serial port) and becomes one Source with one client and one
// goroutine: every device (unit id) on it is asked one request at a time, so devices that accept a single TCP
// connection and multi-drop RS-485 buses both work. Devices on different connections are different Sources and
// never wait for each other.
//
// Each group of tags is read with the fewest requests its device allows (the planner is optimal for the gap and size
// limits, never touching forbidden addresses) on a fixed schedule. Every tick emits one reading per tag:
// Good with the decoded value, or Bad with Status set to the Modbus exception code the device answered, to
// StatusTimeout, StatusConnection, StatusProtocol or StatusOverflow for a request that failed, or to
// StatusNotPolled for a tag whose request was not sent. A failed request marks only its own tags Bad; the rest
// of the poll goes on.
//
// Backoff works on two levels. A device that ignores one range of registers (many do, for registers they do not
// have, instead of answering exception 2) while it answers the others has that range backed off alone: after
// two timeouts in a row, each right after an answer of the device, the range is asked only once per backoff,
// doubling from BackoffMin to BackoffMax, and reported not polled in between; the ranges that answered are asked
// first in every poll, so they are read whatever the silent ones cost. A device that stops answering altogether
// (two timeouts in a row with no answer between, or a gateway's exception 10 or 11) has the rest of its poll
// reported not polled and is backed off as a whole, so it costs the other devices on the connection at most
// one timeout per backoff. A broken connection is reopened at once and the request asked again; if that fails
// too, the connection is retried with the same backoff. After a timeout on RTU, the line is flushed (see
// Config.RTUFlushDelay) so a late reply is not taken as the next answer; over TCP, transaction ids do that, and
// the socket is reopened when three requests in a row get no reply from any unit.
package modbus

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldgate/fieldgate"
)

// Transport is how the gateway reaches the devices of one Config.
type Transport string

const (
	TransportTCP        Transport = "tcp"          // Modbus TCP (MBAP), Address host:port
	TransportTLS        Transport = "tcp+tls"      // Modbus/TCP Security (MBAPS), mutual TLS, Address host:port
	TransportRTU        Transport = "rtu"          // RTU on a serial port, Address /dev/ttyUSB0
	TransportRTUOverTCP Transport = "rtu_over_tcp" // RTU frames through a TCP serial server, Address host:port
)

// Defaults applied by New.
const (
	DefaultTimeoutTCP     = time.Second
	DefaultTimeoutRTU     = 300 * time.Millisecond
	DefaultRTUFlushDelay  = 100 * time.Millisecond
	DefaultBackoffMin     = time.Second
	DefaultBackoffMax     = 30 * time.Second
	DefaultMaxRegisters   = 125  // the protocol's limit for function codes 3 and 4
	DefaultMaxBits        = 2000 // the protocol's limit for function codes 1 and 2
	DefaultGapFill        = 10   // registers; see Device.GapFill
	DefaultGapFillBits    = 160  // bits; the same 20 bytes as DefaultGapFill
	DefaultInterval       = time.Second
	DefaultBaudRate       = 19200
	DefaultUnitID         = 1
	maxFailuresBeforeHold = 2 // consecutive timeouts of one device, or of one range, before it is backed off
)

// Config is one Modbus connection and the devices polled through it.
type Config struct {
	// Name identifies the connection in logs, metrics and `gateway validate -v`. Required, unique among the
	// gateway's Modbus connections.
	Name string `yaml:"name"`
	// Transport is tcp (default), tcp+tls, rtu or rtu_over_tcp.
	Transport Transport `yaml:"transport"`
	// Address is host:port for tcp, tcp+tls and rtu_over_tcp (port 502 when left out; 802 for tcp+tls), or the
	// serial device for rtu, e.g. /dev/ttyUSB0.
	Address string `yaml:"address"`
	// Serial sets the line for rtu. Ignored by the other transports.
	Serial Serial `yaml:"serial"`
	// TLS for tcp+tls: ca_file (the CA or the server's own certificate, pinned), cert_file and key_file (the
	// client certificate; Modbus/TCP Security requires mutual TLS) are all required. server_name and
	// insecure_skip_verify are not supported by the Modbus library and are refused.
	TLS fieldgate.TLSConfig `yaml:"tls"`
	// Timeout is how long to wait for each reply. Default 1s for TCP transports, 300ms for rtu. Sub-second values
	// are fine; the dial timeout is the library's (5s, 15s for the TLS handshake).
	Timeout time.Duration `yaml:"timeout"`
	// RTUFlushDelay (rtu, rtu_over_tcp): after a request timed out, wait this long for a late reply to arrive,
	// then reopen the line and discard whatever came, so that it is not taken as the answer to the next request
	// (RTU replies carry no transaction id). Default 100ms.
	RTUFlushDelay time.Duration `yaml:"rtu_flush_delay"`
	// BackoffMin and BackoffMax bound the wait before reconnecting a connection that failed, and before asking a
	// device again that stopped answering, or a range of registers it ignores (it doubles from min to max).
	// Defaults 1s and 30s.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// Devices are the unit ids polled through this connection. At least one.
	Devices []Device `yaml:"devices"`
}

// Serial is the serial line of an rtu connection.
type Serial struct {
	BaudRate int    `yaml:"baud_rate"` // default 19200
	DataBits int    `yaml:"data_bits"` // 7 or 8, default 8
	Parity   string `yaml:"parity"`    // none, even or odd; default even (the Modbus serial line default)
	StopBits int    `yaml:"stop_bits"` // 1 or 2; default 1, or 2 with parity none, as the standard asks
}

// Device is one unit id and its register map.
type Device struct {
	// Name is the Reading.Device of every reading, e.g. "plant1/press-07". Required, unique in the Config.
	Name string `yaml:"name"`
	// UnitID is the Modbus unit (slave) id: 1 to 247 on a serial line, 0 to 255 over TCP. Default 1.
	UnitID *int `yaml:"unit_id"`
	// ByteOrder is the default order of the device's multi-register values: ABCD (default), DCBA, BADC or CDAB.
	// A tag may override it.
	ByteOrder string `yaml:"byte_order"`
	// MaxRegisters caps registers per read request (function codes 3 and 4): 1 to 125, default 125. Some
	// devices allow fewer and answer exception 2 or 3 beyond their limit.
	MaxRegisters int `yaml:"max_registers_per_request"`
	// MaxBits caps coils or discrete inputs per read request (function codes 1 and 2): 1 to 2000, default 2000.
	MaxBits int `yaml:"max_bits_per_request"`
	// GapFill is the largest run of unmapped registers read to join two tags into one request. Default 10: on the
	// slowest common line (RTU at 9600 baud) ten registers cost 20 characters, about the overhead of one extra
	// request (8 request bytes, 5 reply header and CRC bytes, two 3.5-character silences) before the device's
	// turnaround time, so filling up to ten is never slower than asking twice; over TCP the break-even is far
	// higher and a larger value is fine. It stays small by default because strict devices answer exception 2 to
	// a range that touches an unmapped address; list those in Forbidden. 0 reads only adjacent tags together;
	// -1 never joins tags (one request per tag).
	GapFill *int `yaml:"gap_fill"`
	// GapFillBits is the same for coils and discrete inputs, in bits. Default 160.
	GapFillBits *int `yaml:"gap_fill_bits"`
	// Forbidden lists addresses that must never be read, not even to fill a gap.
	Forbidden []AddressRange `yaml:"forbidden"`
	// Groups are sets of tags polled together at one interval. At least one.
	Groups []Group `yaml:"groups"`
}

// AddressRange is an inclusive range of addresses of one register kind.
type AddressRange struct {
	Register string `yaml:"register"` // holding, input, coil or discrete
	Start    int    `yaml:"start"`    // first address, 0 to 65535
	End      int    `yaml:"end"`      // last address, inclusive; default Start
}

// Group is a set of tags read at one interval.
type Group struct {
	// Name shows in `gateway validate -v` and logs. Default "group<i>".
	Name string `yaml:"name"`
	// Interval is the poll period. The group is polled once at start, then on a fixed schedule aligned to
	// multiples of Interval since the Unix epoch: a tick that cannot start within half an interval (the previous
	// poll ran long) is skipped and counted rather than run late, so polls never bunch. Default 1s.
	Interval time.Duration `yaml:"interval"`
	Tags     []Tag         `yaml:"tags"`
}

// Tag maps registers to one metric.
type Tag struct {
	// Name is the Reading.Metric. Required, unique within the device across all its groups.
	Name string `yaml:"name"`
	// Register is the kind: holding (default), input, coil or discrete.
	Register string `yaml:"register"`
	// Address is the 0-based protocol address (the number on the wire), 0 to 65535. Documentation that says
	// 40001 for the first holding register means address 0.
	Address int `yaml:"address"`
	// Type is bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string. Coils and discrete
	// inputs are bool (the default there); registers default to uint16.
	Type string `yaml:"type"`
	// Bit picks one bit (0 = least significant, after byte order) of a register for type bool.
	Bit *int `yaml:"bit"`
	// Length is the number of registers of a string (1 to 125). For other types leave it out or give the type's
	// own width.
	Length int `yaml:"length"`
	// ByteOrder overrides the device's byte order for this tag.
	ByteOrder string `yaml:"byte_order"`
	// Scale and Offset make the reading raw*scale + offset, as a float. Without them integers stay integers.
	Scale  *float64 `yaml:"scale"`
	Offset *float64 `yaml:"offset"`
	// Unit documents the engineering unit (shown by `gateway validate -v` and `gateway modbus read`); the wire
	// format carries no unit.
	Unit string `yaml:"unit"`
}

// RegisterKind is one of the four Modbus data tables.
type RegisterKind uint8

const (
	Holding  RegisterKind = iota // function code 3
	Input                        // function code 4
	Coil                         // function code 1
	Discrete                     // function code 2
)

var kindNames = [...]string{"holding", "input", "coil", "discrete"}

func (k RegisterKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// IsBit reports whether the kind holds single bits (coils, discrete inputs) rather than 16-bit registers.
func (k RegisterKind) IsBit() bool { return k == Coil || k == Discrete }

// ParseRegisterKind is the inverse of RegisterKind.String; "" is holding.
func ParseRegisterKind(s string) (RegisterKind, error) {
	switch strings.ToLower(s) {
	case "", "holding":
		return Holding, nil
	case "input":
		return Input, nil
	case "coil":
		return Coil, nil
	case "discrete":
		return Discrete, nil
	}
	return 0, fmt.Errorf("unknown register kind %q (want holding, input, coil or discrete)", s)
}

func (c Config) isRTU() bool {
	return c.Transport == TransportRTU || c.Transport == TransportRTUOverTCP
}

// Validate checks the configuration without any I/O. Every error is a fieldgate.FieldError naming the YAML path,
// e.g. "devices[1].groups[0].tags[3].type", joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, a ...any) { errs = append(errs, fieldgate.FieldErrorf(field, format, a...)) }
	if c.Name == "" {
		add("name", "required")
	}
	switch c.Transport {
	case "", TransportTCP, TransportRTU, TransportRTUOverTCP:
	case TransportTLS:
		if c.TLS.CAFile == "" || c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
			add("tls", "tcp+tls needs ca_file, cert_file and key_file (Modbus/TCP Security is mutual TLS)")
		}
		if c.TLS.ServerName != "" || c.TLS.InsecureSkipVerify {
			add("tls", "server_name and insecure_skip_verify are not supported for Modbus; pin the server certificate with ca_file")
		}
		if err := c.TLS.Validate(); err != nil {
			errs = append(errs, fieldgate.WithField("tls", err))
		}
	default:
		add("transport", "unknown transport %q (want tcp, tcp+tls, rtu or rtu_over_tcp)", c.Transport)
	}
	if c.Transport != TransportTLS && c.TLS.On() {
		add("tls", "tls is set but transport is %q; use transport: tcp+tls", c.transport())
	}
	switch {
	case c.Address == "":
		add("address", "required: host:port, or the serial device for rtu")
	case c.Transport == TransportRTU:
		if strings.Contains(c.Address, "://") {
			add("address", "give the serial device path, e.g. /dev/ttyUSB0, without a scheme")
		}
	default:
		_, port, err := net.SplitHostPort(withDefaultPort(c.Address, 502))
		switch {
		case err != nil || strings.Contains(c.Address, "://"):
			add("address", "want host:port, got %q", c.Address)
		case !validPort(port):
			add("address", "%q: the port must be a number from 1 to 65535", c.Address)
		}
	}
	if c.Transport == TransportRTU {
		s := c.Serial
		if s.BaudRate < 0 || s.BaudRate > 4000000 {
			add("serial.baud_rate", "%d is out of range", s.BaudRate)
		}
		if s.DataBits != 0 && s.DataBits != 7 && s.DataBits != 8 {
			add("serial.data_bits", "want 7 or 8, got %d", s.DataBits)
		}
		switch strings.ToLower(s.Parity) {
		case "", "none", "even", "odd":
		default:
			add("serial.parity", "want none, even or odd, got %q", s.Parity)
		}
		if s.StopBits != 0 && s.StopBits != 1 && s.StopBits != 2 {
			add("serial.stop_bits", "want 1 or 2, got %d", s.StopBits)
		}
	}
	for field, d := range map[string]time.Duration{"timeout": c.Timeout, "rtu_flush_delay": c.RTUFlushDelay, "backoff_min": c.BackoffMin, "backoff_max": c.BackoffMax} {
		if d < 0 {
			add(field, "must not be negative")
		}
	}
	if c.BackoffMin > 0 && c.BackoffMax > 0 && c.BackoffMax < c.BackoffMin {
		add("backoff_max", "is below backoff_min")
	}
	if len(c.Devices) == 0 {
		add("devices", "at least one device is required")
	}
	names := map[string]int{}
	units := map[int]int{}
	for i, d := range c.Devices {
		p := fmt.Sprintf("devices[%d]", i)
		if j, dup := names[d.Name]; dup && d.Name != "" {
			add(p+".name", "%q is also devices[%d]", d.Name, j)
		}
		names[d.Name] = i
		unit := DefaultUnitID
		if d.UnitID != nil {
			unit = *d.UnitID
		}
		if j, dup := units[unit]; dup {
			add(p+".unit_id", "unit %d is also devices[%d]; put all of a unit's tags in one device (use groups for different intervals)", unit, j)
		}
		units[unit] = i
		if err := d.validate(c.isRTU()); err != nil {
			errs = append(errs, fieldgate.WithField(p, err))
		}
	}
	return errors.Join(errs...)
}

// WithDefaults returns c with every zero field set to its default (the Defaults above; the port of a TCP
// address). It is what New runs with, and applying it twice changes nothing.
func (c Config) WithDefaults() Config {
	if c.Transport == "" {
		c.Transport = TransportTCP
	}
	switch c.Transport {
	case TransportTCP, TransportRTUOverTCP:
		c.Address = withDefaultPort(c.Address, 502)
	case TransportTLS:
		c.Address = withDefaultPort(c.Address, 802)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeoutTCP
		if c.Transport == TransportRTU {
			c.Timeout = DefaultTimeoutRTU
		}
	}
	if c.RTUFlushDelay == 0 {
		c.RTUFlushDelay = DefaultRTUFlushDelay
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	s := &c.Serial
	if s.BaudRate == 0 {
		s.BaudRate = DefaultBaudRate
	}
	if s.DataBits == 0 {
		s.DataBits = 8
	}
	if s.Parity == "" {
		s.Parity = "even"
	}
	if s.StopBits == 0 {
		s.StopBits = 1
		if strings.EqualFold(s.Parity, "none") {
			s.StopBits = 2
		}
	}
	devs := make([]Device, len(c.Devices))
	for i, d := range c.Devices {
		if d.UnitID == nil {
			u := DefaultUnitID
			d.UnitID = &u
		}
		if d.MaxRegisters == 0 {
			d.MaxRegisters = DefaultMaxRegisters
		}
		if d.MaxBits == 0 {
			d.MaxBits = DefaultMaxBits
		}
		if d.GapFill == nil {
			g := DefaultGapFill
			d.GapFill = &g
		}
		if d.GapFillBits == nil {
			g := DefaultGapFillBits
			d.GapFillBits = &g
		}
		groups := make([]Group, len(d.Groups))
		for j, g := range d.Groups {
			if g.Interval == 0 {
				g.Interval = DefaultInterval
			}
			groups[j] = g
		}
		d.Groups = groups
		devs[i] = d
	}
	c.Devices = devs
	return c
}

func (c Config) transport() Transport {
	if c.Transport == "" {
		return TransportTCP
	}
	return c.Transport
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

func withDefaultPort(addr string, port int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), fmt.Sprint(port))
}

func (d Device) validate(rtu bool) error {
	var errs []error
	add := func(field, format string, a ...any) { errs = append(errs, fieldgate.FieldErrorf(field, format, a...)) }
	if d.Name == "" {
		add("name", "required (it becomes the device of every reading)")
	} else if len(d.Name) > fieldgate.MaxNameBytes || !utf8.ValidString(d.Name) {
		add("name", "longer than %d bytes or not valid UTF-8", fieldgate.MaxNameBytes)
	}
	if d.UnitID != nil {
		u := *d.UnitID
		switch {
		case rtu && (u < 1 || u > 247):
			add("unit_id", "%d: on a serial line unit ids are 1 to 247 (0 is broadcast, which has no reply)", u)
		case !rtu && (u < 0 || u > 255):
			add("unit_id", "%d: unit ids are 0 to 255", u)
		}
	}
	order := ABCD
	if d.ByteOrder != "" {
		o, err := ParseByteOrder(d.ByteOrder)
		if err != nil {
			add("byte_order", "%v", err)
		} else {
			order = o
		}
	}
	maxRegs, maxBits := DefaultMaxRegisters, DefaultMaxBits
	if d.MaxRegisters != 0 {
		if d.MaxRegisters < 1 || d.MaxRegisters > DefaultMaxRegisters {
			add("max_registers_per_request", "%d: want 1 to %d", d.MaxRegisters, DefaultMaxRegisters)
		} else {
			maxRegs = d.MaxRegisters
		}
	}
	if d.MaxBits != 0 {
		if d.MaxBits < 1 || d.MaxBits > DefaultMaxBits {
			add("max_bits_per_request", "%d: want 1 to %d", d.MaxBits, DefaultMaxBits)
		} else {
			maxBits = d.MaxBits
		}
	}
	if d.GapFill != nil && *d.GapFill < -1 {
		add("gap_fill", "%d: want -1 (never join), 0 (join adjacent only) or more", *d.GapFill)
	}
	if d.GapFillBits != nil && *d.GapFillBits < -1 {
		add("gap_fill_bits", "%d: want -1, 0 or more", *d.GapFillBits)
	}
	forbidden := make([][]span, 4)
	for i, r := range d.Forbidden {
		p := fmt.Sprintf("forbidden[%d]", i)
		k, err := ParseRegisterKind(r.Register)
		if err != nil {
			add(p+".register", "%v", err)
			continue
		}
		end := r.End
		if end == 0 {
			end = r.Start
		}
		if r.Start < 0 || r.Start > 0xffff {
			add(p+".start", "%d: want 0 to 65535", r.Start)
			continue
		}
		if end < r.Start || end > 0xffff {
			add(p+".end", "%d: want start (%d) to 65535", end, r.Start)
			continue
		}
		forbidden[k] = append(forbidden[k], span{r.Start, end + 1})
	}
	if len(d.Groups) == 0 {
		add("groups", "at least one group of tags is required")
	}
	metrics := map[string]string{}
	type used struct {
		path string
		name string
		bits uint16 // for bool bits of a register: which bits are taken; 0xffff for a whole register
	}
	occupied := make([]map[int]used, 4)
	for k := range occupied {
		occupied[k] = map[int]used{}
	}
	for gi, g := range d.Groups {
		gp := fmt.Sprintf("groups[%d]", gi)
		if g.Interval < 0 {
			add(gp+".interval", "must not be negative")
		} else if g.Interval > 0 && g.Interval < 10*time.Millisecond {
			add(gp+".interval", "%v is below the 10ms minimum", g.Interval)
		}
		if len(g.Tags) == 0 {
			add(gp+".tags", "a group needs at least one tag")
		}
		for ti, t := range g.Tags {
			tp := fmt.Sprintf("%s.tags[%d]", gp, ti)
			if t.Name == "" {
				add(tp+".name", "required (it becomes the metric of the reading)")
			} else if len(t.Name) > fieldgate.MaxNameBytes || !utf8.ValidString(t.Name) {
				add(tp+".name", "longer than %d bytes or not valid UTF-8", fieldgate.MaxNameBytes)
			} else if prev, dup := metrics[t.Name]; dup {
				add(tp+".name", "%q is also %s of this device", t.Name, prev)
			} else {
				metrics[t.Name] = tp
			}
			ct, err := t.compile(order)
			if err != nil {
				errs = append(errs, fieldgate.WithField(tp, err))
				continue
			}
			limit := maxRegs
			if ct.kind.IsBit() {
				limit = maxBits
			}
			if ct.width > limit {
				add(tp+".length", "the tag takes %d registers, more than one request may read on this device (%d)", ct.width, limit)
			}
			if ct.addr+ct.width > 0x10000 {
				add(tp+".address", "%d plus %d registers runs past address 65535", ct.addr, ct.width)
				continue
			}
			for _, f := range forbidden[ct.kind] {
				if ct.addr < f.end && f.start < ct.addr+ct.width {
					add(tp+".address", "%s %d-%d is in a forbidden range (%d-%d)", ct.kind, ct.addr, ct.addr+ct.width-1, f.start, f.end-1)
				}
			}
			mask := uint16(0xffff)
			if ct.isRegisterBit() {
				mask = 1 << uint(ct.dec.Bit)
			}
			for a := ct.addr; a < ct.addr+ct.width; a++ {
				if u, taken := occupied[ct.kind][a]; taken && u.bits&mask != 0 {
					if mask != 0xffff && u.bits != 0xffff {
						add(tp+".bit", "bit %d of %s %d is also read by %q (%s)", ct.dec.Bit, ct.kind, a, u.name, u.path)
					} else {
						add(tp+".address", "%s %d overlaps %q (%s)", ct.kind, a, u.name, u.path)
					}
					break
				}
				u := occupied[ct.kind][a]
				occupied[ct.kind][a] = used{path: tp, name: t.Name, bits: u.bits | mask}
			}
		}
	}
	return errors.Join(errs...)
}

// compiledTag is a validated tag.
type compiledTag struct {
	name  string
	unit  string
	kind  RegisterKind
	addr  int
	width int // registers or bits
	dec   Decoding
}

func (t compiledTag) isRegisterBit() bool { return t.dec.Type == TypeBool && !t.kind.IsBit() }

func (t Tag) compile(deviceOrder ByteOrder) (compiledTag, error) {
	var errs []error
	add := func(field, format string, a ...any) { errs = append(errs, fieldgate.FieldErrorf(field, format, a...)) }
	ct := compiledTag{name: t.Name, unit: t.Unit, addr: t.Address}
	k, err := ParseRegisterKind(t.Register)
	if err != nil {
		return ct, fieldgate.FieldErrorf("register", "%v", err)
	}
	ct.kind = k
	if t.Address < 0 || t.Address > 0xffff {
		add("address", "%d: want 0 to 65535", t.Address)
	}
	typ := t.Type
	if typ == "" {
		typ = "uint16"
		if k.IsBit() {
			typ = "bool"
		}
	}
	dt, err := ParseDataType(typ)
	if err != nil {
		add("type", "%v", err)
		return ct, errors.Join(errs...)
	}
	ct.dec = Decoding{Type: dt, Order: deviceOrder}
	if t.ByteOrder != "" {
		o, err := ParseByteOrder(t.ByteOrder)
		if err != nil {
			add("byte_order", "%v", err)
		}
		ct.dec.Order = o
	}
	if k.IsBit() {
		if dt != TypeBool {
			add("type", "%s: a %s holds one bit, so the type must be bool", dt, k)
		}
		if t.Bit != nil {
			add("bit", "bit selects a bit of a register; a %s is a single bit already", k)
		}
		if t.Length != 0 && t.Length != 1 {
			add("length", "a %s is one bit; leave length out", k)
		}
		if t.Scale != nil || t.Offset != nil {
			add("scale", "scale and offset do not apply to a bool")
		}
		if t.ByteOrder != "" {
			add("byte_order", "byte order does not apply to a %s", k)
		}
		ct.width = 1
		return ct, errors.Join(errs...)
	}
	switch dt {
	case TypeBool:
		if t.Bit == nil {
			add("bit", "a bool in a %s register needs bit (0 to 15)", k)
		} else if *t.Bit < 0 || *t.Bit > 15 {
			add("bit", "%d: want 0 to 15", *t.Bit)
		} else {
			ct.dec.Bit = *t.Bit
		}
		if t.Length != 0 && t.Length != 1 {
			add("length", "a bit of a register takes 1 register, not %d", t.Length)
		}
		if t.Scale != nil || t.Offset != nil {
			add("scale", "scale and offset do not apply to a bool")
		}
		ct.width = 1
	case TypeString:
		if t.Length < 1 || t.Length > DefaultMaxRegisters {
			add("length", "a string needs length, its number of registers (1 to %d), got %d", DefaultMaxRegisters, t.Length)
		}
		if t.Scale != nil || t.Offset != nil {
			add("scale", "scale and offset do not apply to a string")
		}
		ct.width = t.Length
	default:
		if t.Bit != nil {
			add("bit", "bit applies to type bool only, not %s", dt)
		}
		ct.width = dt.Registers()
		if t.Length != 0 && t.Length != ct.width {
			add("length", "%s takes %d registers, not %d (leave length out)", dt, ct.width, t.Length)
		}
		if t.Scale != nil || t.Offset != nil {
			ct.dec.Scaled = true
			ct.dec.Scale = 1
			if t.Scale != nil {
				ct.dec.Scale = *t.Scale
			}
			if t.Offset != nil {
				ct.dec.Offset = *t.Offset
			}
		}
	}
	return ct, errors.Join(errs...)
}

// span is a half-open range of addresses [start, end).
type span struct{ start, end int }
