package modbus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/simonvetter/modbus"
)

// Source polls the devices of one Config through one client. It implements fieldgate.Source.
type Source struct {
	cfg     Config // defaults applied
	log     *slog.Logger
	devices []*device
	groups  []*group
	plan    []PlannedRequest

	connected   atomic.Bool
	connects    atomic.Uint64
	connectErrs atomic.Uint64
	queueErrs   atomic.Uint64

	// Used by the Run goroutine only.
	client      *modbus.ModbusClient
	open        bool
	reconnectAt time.Time
	connBackoff time.Duration
	connTimeout int // consecutive timeouts on the connection, any unit

	// noFlush turns the RTU flush after a timeout off, for the test that shows why it is needed.
	noFlush bool
	// onPoll, when set by a test or benchmark, is called with each group poll's scheduled and actual start.
	onPoll func(scheduled, started time.Time)
}

type device struct {
	name  string
	unit  uint8
	stats deviceCounters

	// Used by the Run goroutine only.
	timeouts  int // consecutive timeouts, any request
	holdUntil time.Time
	backoff   time.Duration
}

type group struct {
	dev      *device
	name     string
	interval time.Duration
	requests []readRequest
	ranges   []rangeState // per request
	order    []int        // scratch: the order of this poll's requests
	tags     int
	next     time.Time
}

// rangeState is the backoff of one request's range of addresses. A device may answer some ranges and ignore
// another (registers it does not have, where others answer exception 2): that range is then asked only once per
// backoff, and the device's other ranges are read as usual.
type rangeState struct {
	timeouts  int // consecutive timeouts while the device answered other requests
	holdUntil time.Time
	backoff   time.Duration
}

type deviceCounters struct {
	polls, skipped, held, requests               atomic.Uint64
	timeouts, exceptions, connErrs, protocolErrs atomic.Uint64
	overflows, notPolled                         atomic.Uint64
	silentRanges                                 atomic.Int64
	requestNanos                                 atomic.Int64
	byCode                                       [256]atomic.Uint64
	responding                                   atomic.Bool
}

// Stats is a snapshot of a Source's counters, for cmd/gateway to export. Counters only grow.
type Stats struct {
	Connection      string
	Connected       bool   // the client is open
	Connects        uint64 // successful opens, the first included
	ConnectFailures uint64
	// QueueErrors counts polls whose readings the buffer refused to queue (it is closed); the gateway counts
	// the polls whose commit failed (input_emit_errors_total).
	QueueErrors uint64
	Devices     []DeviceStats
}

// DeviceStats are one device's counters.
type DeviceStats struct {
	Device string
	UnitID uint8
	// Polls counts group polls that asked the device (successful or not).
	Polls uint64
	// SkippedTicks counts scheduled polls dropped because the previous work ran late (the schedule does not
	// bunch); HeldTicks those dropped because the device or the connection was backed off.
	SkippedTicks, HeldTicks uint64
	// Requests counts read requests sent; RequestSeconds is their summed latency (divide by Requests).
	Requests       uint64
	RequestSeconds float64
	// Errors by kind. ExceptionsByCode counts Modbus exception replies by code (Exceptions is their total).
	Timeouts, Exceptions, ConnectionErrors, ProtocolErrors uint64
	ExceptionsByCode                                       map[uint8]uint64
	// Overflows counts uint64 values that did not fit an int reading.
	Overflows uint64
	// NotPolled counts tag readings reported with StatusNotPolled: their request was not sent.
	NotPolled uint64
	// Responding is false while the device is backed off after it stopped answering.
	Responding bool
	// SilentRanges is the number of request ranges backed off now because the device ignores them while it
	// answers others.
	SilentRanges int64
}

var _ fieldgate.Source = (*Source)(nil)

// New validates cfg, applies its defaults and builds the read plan. It does no I/O. log is used as it is: the
// caller names the input in it.
func New(cfg Config, log *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.WithDefaults()
	s := &Source{cfg: cfg, log: log}
	for _, dc := range cfg.Devices {
		d := &device{name: dc.Name, unit: uint8(*dc.UnitID)}
		d.stats.responding.Store(true)
		s.devices = append(s.devices, d)
		order := ABCD
		if dc.ByteOrder != "" {
			order, _ = ParseByteOrder(dc.ByteOrder)
		}
		var forbidden [4][]span
		for _, r := range dc.Forbidden {
			k, _ := ParseRegisterKind(r.Register)
			end := r.End
			if end == 0 {
				end = r.Start
			}
			forbidden[k] = append(forbidden[k], span{r.Start, end + 1})
		}
		regs := planLimits{maxLen: dc.MaxRegisters, gap: *dc.GapFill}
		bits := planLimits{maxLen: dc.MaxBits, gap: *dc.GapFillBits}
		for gi, gc := range dc.Groups {
			g := &group{dev: d, name: gc.Name, interval: gc.Interval, tags: len(gc.Tags)}
			if g.name == "" {
				g.name = fmt.Sprintf("group%d", gi)
			}
			var tags []compiledTag
			for _, t := range gc.Tags {
				ct, err := t.compile(order)
				if err != nil { // Validate passed, so this cannot happen
					return nil, err
				}
				tags = append(tags, ct)
			}
			g.requests = planGroup(tags, regs, bits, forbidden)
			g.ranges = make([]rangeState, len(g.requests))
			s.groups = append(s.groups, g)
			for _, r := range g.requests {
				p := PlannedRequest{Connection: cfg.Name, Device: d.name, UnitID: d.unit, Group: g.name, Interval: g.interval,
					Register: r.kind, Address: uint16(r.addr), Count: uint16(r.count), Filled: r.count}
				for _, t := range r.tags {
					p.Tags = append(p.Tags, t.name)
					if !t.isRegisterBit() || t == firstAt(r.tags, t.addr) {
						p.Filled -= t.width
					}
				}
				s.plan = append(s.plan, p)
			}
		}
	}
	return s, nil
}

func firstAt(tags []compiledTag, addr int) compiledTag {
	for _, t := range tags {
		if t.addr == addr {
			return t
		}
	}
	return compiledTag{}
}

// Plan returns the read requests of every device and group, in polling order.
func (s *Source) Plan() []PlannedRequest { return slices.Clone(s.plan) }

// Stats returns a snapshot of the counters. It is safe to call at any time from any goroutine.
func (s *Source) Stats() Stats {
	st := Stats{Connection: s.cfg.Name, Connected: s.connected.Load(), Connects: s.connects.Load(), ConnectFailures: s.connectErrs.Load(),
		QueueErrors: s.queueErrs.Load()}
	for _, d := range s.devices {
		c := &d.stats
		ds := DeviceStats{
			Device: d.name, UnitID: d.unit,
			Polls: c.polls.Load(), SkippedTicks: c.skipped.Load(), HeldTicks: c.held.Load(),
			Requests: c.requests.Load(), RequestSeconds: time.Duration(c.requestNanos.Load()).Seconds(),
			Timeouts: c.timeouts.Load(), Exceptions: c.exceptions.Load(), ConnectionErrors: c.connErrs.Load(),
			ProtocolErrors: c.protocolErrs.Load(), Overflows: c.overflows.Load(), NotPolled: c.notPolled.Load(),
			Responding: c.responding.Load(), SilentRanges: c.silentRanges.Load(), ExceptionsByCode: map[uint8]uint64{},
		}
		for code := range c.byCode {
			if n := c.byCode[code].Load(); n > 0 {
				ds.ExceptionsByCode[uint8(code)] = n
			}
		}
		st.Devices = append(st.Devices, ds)
	}
	return st
}

// Run polls until ctx ends, then closes the connection and returns nil. Each poll's readings are queued in
// sink's next group commit and counted as collected by the gateway once that commit is done; Run does not wait
// for it, so a commit interval never delays the schedule. A device that does not answer, refuses a request or
// drops the connection never makes Run return: its tags are queued Bad and it is retried with backoff. A commit
// that fails (disk full) loses that poll's readings, which the gateway counts; polling goes on.
//
// Every group is polled once at start, then on its schedule: the multiples of its interval since the Unix
// epoch, so that the readings of many gateways line up.
//
// Run returns within one request timeout or one dial (at most the library's 5s, 15s for a TLS handshake) after
// ctx ends, because the library's calls cannot be interrupted.
func (s *Source) Run(ctx context.Context, sink fieldgate.Sink) error {
	defer s.closeClient()
	now := time.Now()
	for _, g := range s.groups {
		g.next = now // the first poll at once, then on the grid
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch []fieldgate.Reading
	for {
		g := s.groups[0]
		for _, o := range s.groups[1:] {
			if o.next.Before(g.next) {
				g = o
			}
		}
		if wait := time.Until(g.next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		// A tick more than half an interval late is dropped, not run late: the schedule stays steady.
		if late := now.Sub(g.next); late >= g.interval/2 {
			n := (late + g.interval/2) / g.interval
			g.next = g.next.Add(n * g.interval)
			g.dev.stats.skipped.Add(uint64(n))
			continue
		}
		scheduled := g.next
		g.next = scheduled.Truncate(g.interval).Add(g.interval)
		if s.onPoll != nil {
			s.onPoll(scheduled, now)
		}
		batch = s.poll(ctx, g, batch[:0])
		if ctx.Err() != nil {
			return nil
		}
		if len(batch) > 0 {
			if _, err := sink.Queue(batch, nil); err != nil && ctx.Err() == nil {
				s.queueErrs.Add(1)
				s.log.Error("cannot queue readings; this poll is lost", "device", g.dev.name, "err", err)
			}
		}
	}
}

// poll reads one group and appends one reading per tag to out. A tag whose request was not sent is Bad with
// StatusNotPolled: the whole group while the device or the connection is backed off, a range backed off on its
// own, and the rest of a poll cut short because the connection broke or the device stopped answering (two
// timeouts in a row).
//
// The ranges that answered last time are asked first, so a device that ignores some ranges has every other
// range read before those are tried again, and a run of their timeouts cannot cut the others short. A timeout
// counts against its range when the device answered just before (earlier in the poll, or the request before):
// then it is the range that is silent, and after two such timeouts in a row the range is backed off, doubling
// from BackoffMin to BackoffMax. Timeouts with no answer between them are the device's: the poll stops and, if
// nothing answered in it, the device is backed off.
func (s *Source) poll(ctx context.Context, g *group, out []fieldgate.Reading) []fieldgate.Reading {
	d := g.dev
	now := time.Now()
	if now.Before(d.holdUntil) || (!s.open && now.Before(s.reconnectAt)) {
		d.stats.held.Add(1)
		for _, r := range g.requests {
			out = s.appendNotPolled(out, d, r, now)
		}
		return out
	}
	g.order = g.order[:0]
	for _, asked := range []bool{false, true} { // answered last time first, then those that timed out
		for i := range g.ranges {
			if (g.ranges[i].timeouts > 0) == asked {
				g.order = append(g.order, i)
			}
		}
	}
	var answered, stop, polled bool
	for _, i := range g.order {
		r, rs := g.requests[i], &g.ranges[i]
		if stop || now.Before(rs.holdUntil) || ctx.Err() != nil {
			out = s.appendNotPolled(out, d, r, now)
			continue
		}
		if !polled {
			polled = true
			d.stats.polls.Add(1)
		}
		deviceAnswering := answered || d.timeouts == 0
		status, regs, bits := s.do(ctx, d, r, true)
		if status == 0 {
			out = s.decode(out, d, r, regs, bits, now)
		} else {
			out = appendBad(out, d, r, status, now)
		}
		switch {
		case status == StatusConnection:
			stop = true // the connection is backed off: the rest is not asked
		case status == StatusProtocol:
		case noReply(status):
			if deviceAnswering {
				s.rangeTimedOut(d, r, rs, now)
			}
			stop = d.timeouts >= maxFailuresBeforeHold
		default: // the device answered this range
			answered = true
			s.rangeAnswered(d, r, rs)
		}
	}
	if stop && !answered && d.timeouts >= maxFailuresBeforeHold {
		s.hold(d, now)
	}
	return out
}

// noReply reports whether status means the device did not answer: a timeout, or a gateway's exception 10 or 11
// for the device behind it.
func noReply(status uint32) bool { return status == StatusTimeout || status == 0x0A || status == 0x0B }

func (s *Source) appendNotPolled(out []fieldgate.Reading, d *device, r readRequest, t time.Time) []fieldgate.Reading {
	d.stats.notPolled.Add(uint64(len(r.tags)))
	return appendBad(out, d, r, StatusNotPolled, t)
}

// rangeTimedOut counts a timeout against the range (the device answered other requests), and backs the range
// off after maxFailuresBeforeHold in a row.
func (s *Source) rangeTimedOut(d *device, r readRequest, rs *rangeState, now time.Time) {
	if rs.timeouts++; rs.timeouts < maxFailuresBeforeHold {
		return
	}
	if rs.backoff == 0 {
		rs.backoff = s.cfg.BackoffMin
		d.stats.silentRanges.Add(1)
		s.log.Warn("no reply for a range of registers while the device answers others; asking for it once per backoff",
			"device", d.name, "unit", d.unit, "register", r.kind, "address", r.addr, "count", r.count, "retry_in", rs.backoff)
	} else {
		rs.backoff = min(2*rs.backoff, s.cfg.BackoffMax)
	}
	rs.holdUntil = now.Add(rs.backoff)
}

func (s *Source) rangeAnswered(d *device, r readRequest, rs *rangeState) {
	if rs.backoff != 0 {
		d.stats.silentRanges.Add(-1)
		s.log.Info("a range of registers answers again", "device", d.name, "unit", d.unit, "register", r.kind, "address", r.addr)
	}
	*rs = rangeState{}
}

func (s *Source) hold(d *device, now time.Time) {
	if d.backoff == 0 {
		d.backoff = s.cfg.BackoffMin
	} else {
		d.backoff = min(2*d.backoff, s.cfg.BackoffMax)
	}
	d.holdUntil = now.Add(d.backoff)
	d.stats.responding.Store(false)
	s.log.Warn("device stopped answering; backing off", "device", d.name, "unit", d.unit, "retry_in", d.backoff)
}

// do sends one request, reconnecting first when needed, and classifies the outcome: status 0 on success, an
// exception code, or one of the Status constants.
func (s *Source) do(ctx context.Context, d *device, r readRequest, retry bool) (status uint32, regs []uint16, bits []bool) {
	if !s.open {
		if err := s.connect(); err != nil {
			d.stats.connErrs.Add(1)
			return StatusConnection, nil, nil
		}
	}
	_ = s.client.SetUnitId(d.unit) // only this goroutine uses the client, so unit id and read cannot interleave
	start := time.Now()
	var err error
	switch r.kind {
	case Holding:
		regs, err = s.client.ReadRegisters(uint16(r.addr), uint16(r.count), modbus.HOLDING_REGISTER)
	case Input:
		regs, err = s.client.ReadRegisters(uint16(r.addr), uint16(r.count), modbus.INPUT_REGISTER)
	case Coil:
		bits, err = s.client.ReadCoils(uint16(r.addr), uint16(r.count))
	case Discrete:
		bits, err = s.client.ReadDiscreteInputs(uint16(r.addr), uint16(r.count))
	}
	d.stats.requests.Add(1)
	d.stats.requestNanos.Add(int64(time.Since(start)))
	if err == nil {
		s.answered(d)
		return 0, regs, bits
	}
	kind, code := classify(err)
	switch kind {
	case errException:
		d.stats.exceptions.Add(1)
		d.stats.byCode[code].Add(1)
		if code == 0x0A || code == 0x0B { // a gateway says the device behind it is unreachable: like a timeout
			s.connTimeout = 0
			d.timeouts++
		} else {
			s.answered(d)
		}
		return uint32(code), nil, nil
	case errTimeout:
		d.stats.timeouts.Add(1)
		d.timeouts++
		s.connTimeout++
		if s.cfg.isRTU() {
			s.flush(ctx)
		} else if s.connTimeout >= 3 {
			// Nobody on this connection answers: the socket may be half dead. Reopen it before the next request.
			s.log.Info("no reply from any unit; reopening the connection", "address", s.cfg.Address)
			s.closeClient()
		}
		return StatusTimeout, nil, nil
	case errProtocol:
		d.stats.protocolErrs.Add(1)
		s.log.Warn("malformed reply; resynchronising", "device", d.name, "unit", d.unit, "register", r.kind, "address", r.addr, "err", err)
		if s.cfg.isRTU() {
			s.flush(ctx)
		} else {
			s.closeClient()
		}
		return StatusProtocol, nil, nil
	}
	// The connection broke (the server closed it, say). Reopen once at once and ask again: devices that close
	// idle connections then cost no Bad reading.
	s.log.Info("connection lost", "device", d.name, "unit", d.unit, "err", err)
	s.closeClient()
	if retry {
		return s.do(ctx, d, r, false)
	}
	d.stats.connErrs.Add(1)
	s.backoffConnection()
	return StatusConnection, nil, nil
}

func (s *Source) answered(d *device) {
	s.connTimeout = 0
	d.timeouts = 0
	if d.backoff != 0 {
		s.log.Info("device answers again", "device", d.name, "unit", d.unit)
	}
	d.backoff = 0
	d.stats.responding.Store(true)
}

// flush waits RTUFlushDelay for a late reply, then reopens the line; Open discards what arrived. Without it a
// late reply from the same unit would be taken as the answer to the next request.
func (s *Source) flush(ctx context.Context) {
	if s.noFlush {
		return
	}
	t := time.NewTimer(s.cfg.RTUFlushDelay)
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	t.Stop()
	s.closeClient()
	if err := s.connect(); err != nil {
		s.log.Warn("reopen after timeout failed", "err", err)
	}
}

func (s *Source) connect() error {
	if s.client == nil {
		c, err := newClient(s.cfg)
		if err != nil {
			s.connectErrs.Add(1)
			s.log.Error("cannot set up the client", "address", s.cfg.Address, "err", err, "retry_in", s.connBackoffNext())
			s.backoffConnection()
			return err
		}
		s.client = c
	}
	if err := s.client.Open(); err != nil {
		s.connectErrs.Add(1)
		s.log.Warn("connect failed", "address", s.cfg.Address, "err", err, "retry_in", s.connBackoffNext())
		s.backoffConnection()
		return fmt.Errorf("modbus %s: open %s: %w", s.cfg.Name, s.cfg.Address, err)
	}
	s.open = true
	s.connBackoff = 0
	s.connTimeout = 0
	s.connects.Add(1)
	s.connected.Store(true)
	return nil
}

func (s *Source) connBackoffNext() time.Duration {
	if s.connBackoff == 0 {
		return s.cfg.BackoffMin
	}
	return min(2*s.connBackoff, s.cfg.BackoffMax)
}

func (s *Source) backoffConnection() {
	s.connBackoff = s.connBackoffNext()
	s.reconnectAt = time.Now().Add(s.connBackoff)
}

func (s *Source) closeClient() {
	if s.client != nil && s.open {
		_ = s.client.Close()
	}
	s.open = false
	s.connected.Store(false)
}

func newClient(c Config) (*modbus.ModbusClient, error) {
	cc := &modbus.ClientConfiguration{Timeout: c.Timeout, Logger: quietLogger}
	switch c.Transport {
	case TransportTCP:
		cc.URL = "tcp://" + c.Address
	case TransportRTUOverTCP:
		cc.URL = "rtuovertcp://" + c.Address
		cc.Speed = uint(c.Serial.BaudRate)
	case TransportRTU:
		cc.URL = "rtu://" + c.Address
		cc.Speed = uint(c.Serial.BaudRate)
		cc.DataBits = uint(c.Serial.DataBits)
		cc.StopBits = uint(c.Serial.StopBits)
		switch strings.ToLower(c.Serial.Parity) {
		case "none":
			cc.Parity = modbus.PARITY_NONE
		case "odd":
			cc.Parity = modbus.PARITY_ODD
		default:
			cc.Parity = modbus.PARITY_EVEN
		}
	case TransportTLS:
		cc.URL = "tcp+tls://" + c.Address
		tc, err := c.TLS.Build()
		if err != nil {
			return nil, err
		}
		if tc == nil || len(tc.Certificates) == 0 || tc.RootCAs == nil {
			return nil, errors.New("tcp+tls needs tls.ca_file, tls.cert_file and tls.key_file")
		}
		cert := tc.Certificates[0]
		cc.TLSClientCert = &cert
		cc.TLSRootCAs = tc.RootCAs
		_ = tls.VersionTLS12 // the library requires TLS 1.2 or later itself
	}
	return modbus.NewClient(cc)
}

type errKind int

const (
	errConnection errKind = iota
	errTimeout
	errException
	errProtocol
)

// classify sorts an error of the library's read calls into timeout, exception (with its code), protocol error
// or connection error. The library returns its own errors as modbus.Error values, timeouts and the exception
// codes it names included. An exception code it does not name (7, or a vendor's code above 11) it reports only
// as the text "unknown exception code (N)": that one case is read from the text. Anything else is an I/O error
// of the connection (closed, reset). TestClassify pins every mapping against the library's client.
func classify(err error) (errKind, uint8) {
	var me modbus.Error
	if errors.As(err, &me) {
		switch me {
		case modbus.ErrRequestTimedOut:
			return errTimeout, 0
		case modbus.ErrIllegalFunction:
			return errException, 1
		case modbus.ErrIllegalDataAddress:
			return errException, 2
		case modbus.ErrIllegalDataValue:
			return errException, 3
		case modbus.ErrServerDeviceFailure:
			return errException, 4
		case modbus.ErrAcknowledge:
			return errException, 5
		case modbus.ErrServerDeviceBusy:
			return errException, 6
		case modbus.ErrMemoryParityError:
			return errException, 8
		case modbus.ErrGWPathUnavailable:
			return errException, 0x0A
		case modbus.ErrGWTargetFailedToRespond:
			return errException, 0x0B
		case modbus.ErrBadCRC, modbus.ErrShortFrame, modbus.ErrProtocolError, modbus.ErrBadUnitId,
			modbus.ErrBadTransactionId, modbus.ErrUnknownProtocolId, modbus.ErrUnexpectedParameters:
			return errProtocol, 0
		}
	}
	if code, ok := unnamedException(err); ok {
		if code == 0 { // not an exception code: a malformed reply
			return errProtocol, 0
		}
		return errException, code
	}
	return errConnection, 0
}

// unnamedException reads the code of an exception reply the library has no error value for from its error text,
// exactly as the library writes it (fmt.Errorf("unknown exception code (%v)", code) in its mapExceptionCodeToError).
func unnamedException(err error) (code uint8, ok bool) {
	s, ok := strings.CutPrefix(err.Error(), "unknown exception code (")
	if !ok {
		return 0, false
	}
	if s, ok = strings.CutSuffix(s, ")"); !ok {
		return 0, false
	}
	n, perr := strconv.ParseUint(s, 10, 8)
	return uint8(n), perr == nil
}

func appendBad(out []fieldgate.Reading, d *device, r readRequest, status uint32, t time.Time) []fieldgate.Reading {
	for _, tag := range r.tags {
		out = append(out, fieldgate.Reading{Device: d.name, Metric: tag.name, Value: fieldgate.Zero(tag.dec.Kind()), Quality: fieldgate.Bad, Status: status, GatewayTime: t})
	}
	return out
}

func (s *Source) decode(out []fieldgate.Reading, d *device, r readRequest, regs []uint16, bits []bool, t time.Time) []fieldgate.Reading {
	for _, tag := range r.tags {
		off := tag.addr - r.addr
		rd := fieldgate.Reading{Device: d.name, Metric: tag.name, GatewayTime: t}
		if r.kind.IsBit() {
			rd.Value = fieldgate.Bool(bits[off])
		} else {
			rd.Value, rd.Status = tag.dec.DecodeRegisters(regs[off : off+tag.width])
			if rd.Status != 0 {
				rd.Quality = fieldgate.Bad
				d.stats.overflows.Add(1)
			}
		}
		out = append(out, rd)
	}
	return out
}
