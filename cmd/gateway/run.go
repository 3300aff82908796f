package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/buffer"
	"github.com/fieldgate/fieldgate/forward"
	"github.com/fieldgate/fieldgate/internal/logging"
	"github.com/fieldgate/fieldgate/protocols/modbus"
	"github.com/fieldgate/fieldgate/protocols/mqtt"
	"github.com/fieldgate/fieldgate/protocols/opcua"
)

// stopTimeout bounds shutdown after SIGINT/SIGTERM. Nothing committed is at risk if it runs out (the buffer is
// durable after every commit), so the gateway then exits with code 1 rather than hang a service manager.
const stopTimeout = 15 * time.Second

// gateway is one configured daemon: every component built (New, no I/O) and waiting for run.
type gateway struct {
	cfg     *Config
	log     *slog.Logger
	build   buildInfo
	started time.Time

	buf     *buffer.Buffer // set by run before any input or the forwarder starts
	history history        // the buffer's write counters over the last hour
	fwd     *forward.Forwarder
	inputs  []*input
	modbus  []*modbus.Source // also in inputs; kept for their read plans (validate -v)
	devices *deviceTracker
}

// input is one configured source with the counters the daemon keeps for it. It is the source's fieldgate.Sink:
// what the source queues goes to the buffer through here, so readings, dead letters and the devices seen are
// counted the same way for every protocol.
type input struct {
	g     *gateway
	name  string // unique across all inputs
	kind  string // "mqtt", "modbus", "opcua"
	field string // its place in the config file, e.g. "mqtt[0]"

	run       func(ctx context.Context, sink fieldgate.Sink) error
	stats     func() any                // the component's own Stats(), for /api/status
	connected func() (bool, bool)       // (connected, known); known is false for inputs with no connection state
	times     fieldgate.SourceTimeBound // checked in Queue; zero (Modbus: no source times) is the default

	// pending is what the input queued whose commit has not been counted yet; it is settled at every Queue and
	// before the counters are read.
	pending     *fieldgate.Pending[queued]
	settleMu    sync.Mutex        // one settle at a time, so lastCommit is counted once
	lastCommit  *fieldgate.Commit // the last commit counted in batches
	readings    atomic.Uint64     // committed to the buffer
	implausible atomic.Uint64     // committed with their source time replaced (outside the bound)
	timeWarned  atomic.Int64      // unix nanoseconds of the last log line about implausible source times
	batches     atomic.Uint64     // commits that carried readings of the input
	emitErrors  atomic.Uint64     // Queue calls refused, or whose commit failed (the input did not acknowledge upstream)
	deadLetters atomic.Uint64     // dead letters committed
	lastReading atomic.Int64      // unix nanoseconds of the last reading queued
	state       atomic.Value      // string: "starting", "running", "failed", "stopped"
	lastError   atomic.Value      // string
}

// queued is one Queue call of an input, waiting for its commit to be counted.
type queued struct {
	c                           *fieldgate.Commit
	readings, dead, implausible int
}

var _ fieldgate.Sink = (*input)(nil)

func newInput(g *gateway, name, kind, field string, times fieldgate.SourceTimeBound) *input {
	return &input{g: g, name: name, kind: kind, field: field, times: times, pending: fieldgate.NewPending[queued]()}
}

// Queue is the buffer's Queue, counted. Source times outside the input's bound are replaced first
// (fieldgate.SourceTimeBound.Check), here, so that every input is checked the same way.
func (in *input) Queue(rs []fieldgate.Reading, dead []fieldgate.DeadLetter) (*fieldgate.Commit, error) {
	rs, implausible := in.checkSourceTimes(rs)
	c, err := in.g.buf.Queue(rs, dead)
	if err != nil {
		in.emitErrors.Add(1)
		return nil, err
	}
	if len(rs) > 0 {
		in.lastReading.Store(time.Now().UnixNano())
		in.g.devices.seen(in.name, rs)
	}
	in.pending.Add(c, queued{c: c, readings: len(rs), dead: len(dead), implausible: implausible})
	in.settle()
	return c, nil
}

// Flush is the buffer's Flush.
func (in *input) Flush() { in.g.buf.Flush() }

// settle counts the input's queued work whose commit has finished.
func (in *input) settle() {
	in.settleMu.Lock()
	defer in.settleMu.Unlock()
	in.pending.Settle(func(q queued, err error) {
		if err != nil {
			in.emitErrors.Add(1)
			return
		}
		in.readings.Add(uint64(q.readings))
		in.implausible.Add(uint64(q.implausible))
		in.deadLetters.Add(uint64(q.dead))
		if q.readings > 0 && q.c != in.lastCommit {
			in.lastCommit = q.c
			in.batches.Add(1)
		}
	})
}

// checkSourceTimes returns rs with every implausible source time replaced, and how many were. rs itself is not
// changed (it is the input's): the first replacement works on a copy. At most one line a minute is logged.
func (in *input) checkSourceTimes(rs []fieldgate.Reading) ([]fieldgate.Reading, int) {
	n := 0
	for i := range rs {
		r := rs[i]
		if in.times.Check(&r) {
			continue
		}
		if n == 0 {
			rs = slices.Clone(rs)
		}
		n++
		if now := time.Now().UnixNano(); now-in.timeWarned.Load() >= int64(time.Minute) {
			in.timeWarned.Store(now)
			in.g.log.Warn("source time outside the plausible range; the reading is kept at its gateway time, marked uncertain (logged at most once a minute)",
				"input", in.kind+":"+in.name, "device", r.Device, "metric", r.Metric, "source_time", rs[i].SourceTime,
				"gateway_time", r.GatewayTime, "max_past", in.times.MaxPast, "max_future", in.times.MaxFuture)
		}
		rs[i] = r
	}
	return rs, n
}

func (in *input) getState() string {
	s, _ := in.state.Load().(string)
	return s
}

func (in *input) getLastError() string {
	s, _ := in.lastError.Load().(string)
	return s
}

// newGateway builds every component from a validated cfg. It does no I/O; its errors are FieldErrors naming the
// config field of the component that refused.
func newGateway(cfg *Config, log *slog.Logger) (*gateway, error) {
	g := &gateway{cfg: cfg, log: log, build: getBuildInfo(), devices: newDeviceTracker(maxTrackedDevices)}
	var errs []error
	fwd, err := forward.New(cfg.Kafka, cfg.GatewayID, log) // it names itself in its log lines
	if err != nil {
		errs = append(errs, fieldgate.WithField("kafka", err))
	}
	g.fwd = fwd
	for i, mc := range cfg.MQTT {
		in := newInput(g, mc.Name, "mqtt", fmt.Sprintf("mqtt[%d]", i), mc.SourceTimeBound())
		src, err := mqtt.New(mc, log) // it adds input=mqtt:<name> to its log lines
		if err != nil {
			errs = append(errs, fieldgate.WithField(in.field, err))
			continue
		}
		in.run = src.Run
		in.stats = func() any { return src.Stats() }
		in.connected = func() (bool, bool) { return mqttConnected(src.Stats()), true }
		g.inputs = append(g.inputs, in)
	}
	for i, mc := range cfg.Modbus {
		in := newInput(g, mc.Name, "modbus", fmt.Sprintf("modbus[%d]", i), fieldgate.SourceTimeBound{})
		src, err := modbus.New(mc, log.With("input", "modbus:"+mc.Name))
		if err != nil {
			errs = append(errs, fieldgate.WithField(in.field, err))
			continue
		}
		in.run = src.Run
		in.stats = func() any { return src.Stats() }
		in.connected = func() (bool, bool) { return src.Stats().Connected, true }
		g.inputs = append(g.inputs, in)
		g.modbus = append(g.modbus, src)
	}
	for i, oc := range cfg.OPCUA {
		in := newInput(g, oc.Name, "opcua", fmt.Sprintf("opcua[%d]", i), oc.SourceTime.WithDefaults(opcua.DefaultSourceTimeBound))
		src, err := opcua.New(oc, log) // it adds input=opcua:<name>
		if err != nil {
			errs = append(errs, fieldgate.WithField(in.field, err))
			continue
		}
		in.run = src.Run
		in.stats = func() any { return src.Stats() }
		in.connected = func() (bool, bool) { return src.Stats().Connected, true }
		g.inputs = append(g.inputs, in)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return g, nil
}

// warnings are valid but unwise settings, logged at start and printed by validate.
func (g *gateway) warnings() []string {
	var w []string
	if host, _, err := net.SplitHostPort(g.cfg.HTTP.Listen); err == nil {
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			w = append(w, fmt.Sprintf("http.listen %s is not a loopback address: /metrics and /api/status are served without authentication to that network", g.cfg.HTTP.Listen))
		}
	}
	if g.cfg.Kafka.TLS.InsecureSkipVerify {
		w = append(w, "kafka.tls.insecure_skip_verify: the brokers' certificates are not verified")
	}
	if !g.cfg.Kafka.TLS.On() && g.cfg.Kafka.SASL.Mechanism != "" {
		w = append(w, fmt.Sprintf("kafka.sasl %s without TLS: the exchange is protected, the records are not", g.cfg.Kafka.SASL.Mechanism))
	}
	for _, mc := range g.cfg.MQTT {
		w = append(w, mc.Warnings()...)
	}
	for _, oc := range g.cfg.OPCUA {
		if oc.Security.Mode == "None" {
			w = append(w, fmt.Sprintf("opcua input %q uses security mode None: everything in clear text, any server accepted", oc.Name))
		}
	}
	return w
}

// runCmd is `gateway run`.
func runCmd(path string, stderr io.Writer) int {
	cfg, idx, err := loadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: invalid configuration:\n%v\n", err)
		return exitUsage
	}
	log := logging.New(cfg.Log, stderr)
	g, err := newGateway(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: invalid configuration:\n%v\n", idx.Locate(path, err))
		return exitUsage
	}
	for _, w := range g.warnings() {
		log.Warn(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := g.run(ctx, stop); err != nil {
		var se startError
		if errors.As(err, &se) {
			log.Error("cannot start: "+se.Error(), "config", path)
		} else {
			log.Error("gateway stopped with an error", "err", err)
		}
		return exitFailure
	}
	return exitOK
}

// run opens the buffer and the HTTP listener, runs the forwarder and every input until ctx ends or the
// forwarder fails, and closes the buffer after every input and the forwarder have returned (so no Append is in
// flight). unsignal restores the default signal handling once shutdown starts, so a second signal kills.
func (g *gateway) run(ctx context.Context, unsignal func()) error {
	log := g.log
	g.started = time.Now()
	if err := os.MkdirAll(filepath.Dir(g.cfg.Buffer.Path), 0o700); err != nil {
		return startError{fmt.Errorf("state dir: %w", err)}
	}
	buf, err := buffer.Open(g.cfg.Buffer, log.With("component", "buffer"))
	if errors.Is(err, buffer.ErrLocked) {
		return startError{fmt.Errorf("another gateway is already running on state dir %s (buffer %s is locked); stop it first, or give this gateway its own state_dir",
			g.cfg.StateDir, g.cfg.Buffer.Path)}
	}
	if err != nil {
		return startError{fmt.Errorf("open buffer %s: %w", g.cfg.Buffer.Path, err)}
	}
	g.buf = buf
	defer func() {
		if err := buf.Close(); err != nil {
			log.Error("close buffer", "path", g.cfg.Buffer.Path, "err", err)
		}
	}()

	ln, err := net.Listen("tcp", g.cfg.HTTP.Listen)
	if err != nil {
		return startError{fmt.Errorf("http.listen: %w", err)}
	}
	srv := &http.Server{Handler: g.handler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	st := buf.Stats()
	log.Info("gateway started", "gateway_id", g.cfg.GatewayID, "version", g.build.Version, "commit", g.build.Commit,
		"inputs", len(g.inputs), "http", ln.Addr().String(), "buffer", g.cfg.Buffer.Path, "buffered", st.Entries,
		"kafka", strings.Join(g.cfg.Kafka.Brokers, ","))

	eg, gctx := errgroup.WithContext(ctx)
	eg.Go(func() error { g.history.run(gctx, buf); return nil })
	eg.Go(func() error {
		if err := g.fwd.Run(gctx, buf); err != nil && gctx.Err() == nil {
			return fmt.Errorf("kafka forwarder: %w", err)
		}
		return nil
	})
	var live atomic.Int64
	live.Store(int64(len(g.inputs)))
	for _, in := range g.inputs {
		in.state.Store("running")
		eg.Go(func() error {
			err := in.run(gctx, in)
			if gctx.Err() != nil {
				in.state.Store("stopped")
				return nil
			}
			// An input failed for good (its contract: a connection loss is retried inside Run). The others keep
			// running: one bad device must not stop the flow. It shows in /api/status, /metrics and /readyz.
			if err == nil {
				err = errors.New("returned before shutdown")
			}
			in.state.Store("failed")
			in.lastError.Store(err.Error())
			log.Error("input failed and is stopped until the gateway restarts", "input", in.kind+":"+in.name, "err", err)
			if live.Add(-1) == 0 {
				return errors.New("every input has failed")
			}
			return nil
		})
	}

	done := make(chan error, 1)
	go func() { done <- eg.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	unsignal()
	log.Info("stopping: inputs stop acknowledging, the buffer closes after the last commit", "timeout", stopTimeout.String())
	select {
	case err := <-done:
		log.Info("stopped", "buffered", buf.Stats().Entries)
		return err
	case <-time.After(stopTimeout):
		var running []string
		for _, in := range g.inputs {
			if in.getState() == "running" {
				running = append(running, in.name)
			}
		}
		// Do not close the buffer under a running Append; exiting is safe, every commit is already durable.
		os.Exit(g.stopTimedOut(running))
		return nil
	}
}

func (g *gateway) stopTimedOut(running []string) int {
	g.log.Error("shutdown timed out; exiting without waiting (committed readings are safe, unacknowledged input is redelivered)",
		"timeout", stopTimeout.String(), "inputs_still_running", strings.Join(running, ","))
	return exitFailure
}

// startError is a failure to start: nothing ran.
type startError struct{ error }

// validateCmd is `gateway validate`: everything `run` checks before opening anything, and a summary of what
// would run. It never prints a secret.
func validateCmd(path string, verbose bool, stdout, stderr io.Writer) int {
	cfg, idx, err := loadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitUsage
	}
	g, err := newGateway(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", idx.Locate(path, err))
		return exitUsage
	}
	g.describe(stdout, verbose)
	return exitOK
}

// ---- devices ----------------------------------------------------------------------------------------------------

// maxTrackedDevices bounds the device table of /api/status: a topic pattern with a {device} segment lets the
// publishers choose device names, and memory must stay bounded whatever they publish.
const maxTrackedDevices = 10000

type deviceInfo struct {
	Source      string    `json:"source"`
	LastReading time.Time `json:"last_reading"`    // gateway time of the last committed reading
	LastEvent   time.Time `json:"last_event_time"` // its event time (source time if the device sent one)
	Readings    uint64    `json:"readings"`
}

type deviceTracker struct {
	max       int
	mu        sync.Mutex
	devices   map[string]*deviceInfo
	untracked atomic.Uint64 // readings of devices beyond max
}

func newDeviceTracker(max int) *deviceTracker {
	return &deviceTracker{max: max, devices: map[string]*deviceInfo{}}
}

func (t *deviceTracker) seen(source string, rs []fieldgate.Reading) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var last *deviceInfo
	lastName := ""
	for i := range rs {
		r := &rs[i]
		d := last
		if d == nil || r.Device != lastName {
			d = t.devices[r.Device]
			if d == nil {
				if len(t.devices) >= t.max {
					t.untracked.Add(1)
					continue
				}
				d = &deviceInfo{}
				t.devices[r.Device] = d
			}
			last, lastName = d, r.Device
		}
		d.Source = source
		d.Readings++
		if r.GatewayTime.After(d.LastReading) {
			d.LastReading = r.GatewayTime
		}
		if et := r.EventTime(); et.After(d.LastEvent) {
			d.LastEvent = et
		}
	}
}

type deviceStatus struct {
	Device string `json:"device"`
	deviceInfo
}

func (t *deviceTracker) snapshot() []deviceStatus {
	t.mu.Lock()
	out := make([]deviceStatus, 0, len(t.devices))
	for name, d := range t.devices {
		out = append(out, deviceStatus{Device: name, deviceInfo: *d})
	}
	t.mu.Unlock()
	return out
}
