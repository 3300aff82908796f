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
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/buffer"
	"github.com/fieldgate/fieldgate/forward"
	"github.com/fieldgate/fieldgate/internal/logging"
	"github.com/fieldgate/fieldgate/internal/webserve"
)

// stopTimeout bounds shutdown after SIGINT/SIGTERM, and how long a reload waits for an input it stops. Nothing
// committed is at risk if it runs out (the buffer is durable after every commit), so the gateway then exits with
// code 1 rather than hang a service manager.
const stopTimeout = 15 * time.Second

// gateway is the daemon: the buffer, opened once, and what a configuration runs over it (the inputs, the
// forwarder, the HTTP listener), which apply changes as a difference when the configuration does.
type gateway struct {
	log     *slog.Logger
	logs    *logging.Switch // nil in tests: the log block is then not applied
	build   buildInfo
	started time.Time
	paths   configPaths

	buf     *buffer.Buffer // opened by run before anything starts
	rates   bufferHistory  // the buffer's write counters over the last hour
	live    liveRates      // the inputs' conditions and rates, and Kafka's, over the last seconds
	devices *deviceTracker

	ctx   context.Context // run's: inputs and the forwarder run under it
	fatal chan error      // cap 1: what stops the gateway (the forwarder failed, every input failed)

	mu        sync.Mutex // guards inputs, fwd, kafkaBase, srv
	inputs    []*input   // in configuration order
	fwd       *forwarderRun
	kafkaBase forward.Stats // counters of the forwarders replaced
	srv       *httpServer

	running  atomic.Pointer[runState]
	reloads  reloadCounters
	lastLoad atomic.Pointer[reloadResult]

	replayMu sync.Mutex // one dead-letter replay at a time
}

// configPaths is where the configuration is read from.
type configPaths struct {
	file, confdir string
}

// runState is the configuration running, and where it came from.
type runState struct {
	loaded    *loaded
	appliedAt time.Time
	// fallback is set while the gateway runs on a last good configuration because its files were invalid at
	// start: why, for /readyz and /api/status.
	fallback string
}

func (g *gateway) config() *Config { return g.running.Load().loaded.cfg }

func newGateway(log *slog.Logger, paths configPaths) *gateway {
	return &gateway{log: log, build: getBuildInfo(), devices: newDeviceTracker(maxTrackedDevices), paths: paths,
		fatal: make(chan error, 1)}
}

// fail stops the gateway with err (the first one wins).
func (g *gateway) fail(err error) {
	select {
	case g.fatal <- err:
	default:
	}
}

// inputFailed is called when an input's Run returned while it should run: it is marked failed and the others go
// on; once no input runs any more, the gateway stops (exit code 1, so that a service manager restarts it).
func (g *gateway) inputFailed(in *input, err error) {
	g.log.Error("input failed; it stays stopped until its configuration changes or the gateway restarts", "input", in.kind+":"+in.name, "err", err)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, other := range g.inputs {
		if other.getState() == "running" {
			return
		}
	}
	g.fail(errors.New("every input has failed"))
}

// runCmd is `gateway run`.
func runCmd(paths configPaths, strict bool, hup <-chan os.Signal, stderr io.Writer) int {
	files, err := readFiles(paths.file, paths.confdir)
	var l *loaded
	if err == nil {
		l, err = load(files, false)
	}
	fallback := ""
	if err != nil {
		fmt.Fprintf(stderr, "gateway: invalid configuration:\n%v\n", err)
		if strict {
			return exitUsage
		}
		stateDir := guessStateDir(files)
		last, snap, at, lerr := loadLastGood(stateDir)
		if lerr != nil {
			fmt.Fprintf(stderr, "gateway: no last good configuration to start on instead: %v\n", lerr)
			return exitUsage
		}
		l = last
		fallback = fmt.Sprintf("running on the last good configuration %s (applied %s, kept in %s): the configuration files are invalid: %s",
			short(l.hash), at.Format(time.RFC3339), snap, firstLine(err.Error()))
	}
	logs, log := logging.NewSwitch(l.cfg.Log, stderr)
	if fallback != "" {
		log.Error("CONFIGURATION INVALID: "+fallback+"; fix the files (the gateway watches them) or run with -strict to refuse instead",
			"config", paths.file, "err", err.Error())
	}
	g := newGateway(log, paths)
	g.logs = logs
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := g.run(ctx, l, fallback, hup, stop); err != nil {
		var se startError
		if errors.As(err, &se) {
			log.Error("cannot start: "+se.Error(), "config", paths.file)
		} else {
			log.Error("gateway stopped with an error", "err", err)
		}
		return exitFailure
	}
	return exitOK
}

// run opens the buffer, applies l (the HTTP listener, the forwarder, every input), then reloads on SIGHUP (hup)
// and, when reload.watch is on, on changes of the configuration files, until ctx ends or the gateway fails. It
// closes the buffer after every input and the forwarder have returned (so no commit is in flight). unsignal
// restores the default signal handling once shutdown starts, so a second signal kills.
func (g *gateway) run(ctx context.Context, l *loaded, fallback string, hup <-chan os.Signal, unsignal func()) error {
	log := g.log
	g.started = time.Now()
	g.ctx = ctx
	cfg := l.cfg
	if err := os.MkdirAll(filepath.Dir(cfg.Buffer.Path), 0o700); err != nil {
		return startError{fmt.Errorf("state dir: %w", err)}
	}
	buf, err := buffer.Open(cfg.Buffer, log.With("component", "buffer"))
	if errors.Is(err, buffer.ErrLocked) {
		return startError{fmt.Errorf("another gateway is already running on state dir %s (buffer %s is locked); stop it first, or give this gateway its own state_dir",
			cfg.StateDir, cfg.Buffer.Path)}
	}
	if err != nil {
		return startError{fmt.Errorf("open buffer %s: %w", cfg.Buffer.Path, err)}
	}
	g.buf = buf
	sampling, stopSampling := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		go g.live.run(sampling, g)
		g.rates.run(sampling, buf)
	}()
	defer func() {
		stopSampling()
		<-sampled
		if err := buf.Close(); err != nil {
			log.Error("close buffer", "path", cfg.Buffer.Path, "err", err)
		}
	}()
	g.running.Store(&runState{loaded: l, appliedAt: time.Now(), fallback: fallback})
	if _, err := g.apply(nil, l); err != nil {
		return startError{err}
	}
	if fallback == "" {
		g.keep(l)
	}
	st := buf.Stats()
	log.Info("gateway started", "gateway_id", cfg.GatewayID, "version", g.build.Version, "commit", g.build.Commit,
		"config_hash", l.hash, "config_files", fileList(l.files), "inputs", cfg.inputCount(), "http", g.httpAddr(),
		"buffer", cfg.Buffer.Path, "buffered", st.Entries, "kafka", strings.Join(cfg.Kafka.Brokers, ","))
	for _, w := range cfg.warnings(false) {
		log.Warn(w)
	}

	changed := g.watch(ctx)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case err := <-g.fatal:
			g.shutdown()
			return err
		case <-hup:
			g.reload("SIGHUP")
		case <-changed:
			if g.config().reloadWatch() {
				g.reload("file change")
			}
		}
	}
	unsignal()
	log.Info("stopping: inputs stop acknowledging, the buffer closes after the last commit", "timeout", stopTimeout.String())
	if running := g.shutdown(); len(running) > 0 {
		// Do not close the buffer under a running commit; exiting is safe, every commit is already durable.
		g.log.Error("shutdown timed out; exiting without waiting (committed readings are safe, unacknowledged input is redelivered)",
			"timeout", stopTimeout.String(), "inputs_still_running", strings.Join(running, ","))
		os.Exit(exitFailure)
	}
	log.Info("stopped", "buffered", buf.Stats().Entries)
	return nil
}

// shutdown stops every input and the forwarder (each at most stopTimeout), then the HTTP listener. It returns
// the inputs that did not stop in time.
func (g *gateway) shutdown() []string {
	g.mu.Lock()
	inputs, fwd, srv := g.inputs, g.fwd, g.srv
	g.mu.Unlock()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		running []string
	)
	for _, in := range inputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !in.stop(stopTimeout) {
				mu.Lock()
				running = append(running, in.name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if fwd != nil {
		fwd.cancel() // shutting down: the forwarder acknowledges what Kafka answered and returns
		<-fwd.done
	}
	if srv != nil {
		srv.close()
	}
	return running
}

// startError is a failure to start: nothing ran.
type startError struct{ error }

// configHeader is the record header that names the configuration a reading was forwarded under.
func configHeader(hash string) kgo.RecordHeader {
	return kgo.RecordHeader{Key: fieldgate.HeaderConfig, Value: []byte(hash)}
}

// kafkaStats is the forwarder's Stats, its counters added to those of the forwarders it replaced.
func (g *gateway) kafkaStats() forward.Stats {
	g.mu.Lock()
	fwd, base := g.fwd, g.kafkaBase
	g.mu.Unlock()
	if fwd == nil {
		return base
	}
	s := fwd.f.Stats()
	cur := addStats(base, s)
	cur.InFlight, cur.Connected, cur.LastError, cur.LastErrorTime = s.InFlight, s.Connected, s.LastError, s.LastErrorTime
	return cur
}

// inputsSnapshot returns the inputs in configuration order.
func (g *gateway) inputsSnapshot() []*input {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inputs
}

// ---- the HTTP listener ----------------------------------------------------------------------------------------------

type httpServer struct {
	ln  net.Listener
	srv *http.Server
}

func (g *gateway) serveHTTP(ln net.Listener) *httpServer {
	h := webserve.Protect(g.handler(), func() webserve.Auth { return g.config().HTTP.Auth })
	s := &httpServer{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("http server", "err", err)
		}
	}()
	return s
}

func (s *httpServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

func (g *gateway) httpAddr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv == nil {
		return ""
	}
	return g.srv.ln.Addr().String()
}

// ---- helpers ------------------------------------------------------------------------------------------------------

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

func firstLine(s string) string {
	line, rest, _ := strings.Cut(s, "\n")
	if rest != "" {
		return line + " (and more)"
	}
	return line
}

func fileList(files []sourceFile) string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Path
	}
	return strings.Join(names, ",")
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

	metrics map[string]*series // by metric; bounded in total by deviceTracker.maxSeries
}

type deviceTracker struct {
	max, maxSeries int
	mu             sync.Mutex
	devices        map[string]*deviceInfo
	nSeries        int           // series across devices
	untracked      atomic.Uint64 // readings of devices beyond max
	untrackedSer   atomic.Uint64 // readings of metrics beyond maxSeries (counted, no value kept)
}

func newDeviceTracker(max int) *deviceTracker {
	return &deviceTracker{max: max, maxSeries: maxSeries, devices: map[string]*deviceInfo{}}
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
				d = &deviceInfo{metrics: map[string]*series{}}
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
		s := d.metrics[r.Metric]
		if s == nil {
			if t.nSeries >= t.maxSeries {
				t.untrackedSer.Add(1)
				continue
			}
			s = &series{}
			d.metrics[r.Metric] = s
			t.nSeries++
		}
		s.observe(r)
	}
}

type deviceStatus struct {
	Device string `json:"device"`
	deviceInfo
	// Quality is the worst quality among the metrics' last values.
	Quality string         `json:"quality,omitempty"`
	Metrics []metricStatus `json:"metrics"` // last values by metric name
}

func (t *deviceTracker) snapshot() []deviceStatus {
	t.mu.Lock()
	out := make([]deviceStatus, 0, len(t.devices))
	for name, d := range t.devices {
		ds := deviceStatus{Device: name, deviceInfo: *d, Metrics: make([]metricStatus, 0, len(d.metrics))}
		worst := fieldgate.Good
		for m, s := range d.metrics {
			ds.Metrics = append(ds.Metrics, s.status(m))
			worst = max(worst, s.last.Quality)
		}
		if len(d.metrics) > 0 {
			ds.Quality = worst.String()
		}
		sort.Slice(ds.Metrics, func(i, j int) bool { return ds.Metrics[i].Metric < ds.Metrics[j].Metric })
		out = append(out, ds)
	}
	t.mu.Unlock()
	return out
}
