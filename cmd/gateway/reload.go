package main

// Reloading: a configuration pushed as a file (or a SIGHUP) is loaded and validated completely before anything
// changes, then applied as a difference. An input whose effective configuration is unchanged keeps its
// connection, session and poll schedule; the buffer stays open; a new configuration hash, or new Kafka settings,
// replace the forwarder between two rounds; a new HTTP address is bound before the old one is let go. What cannot
// change while the gateway runs (the state dir, the buffer) is refused, and the running configuration stays.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/fieldgate/fieldgate/forward"
	"github.com/fieldgate/fieldgate/internal/webserve"
)

// Reload results, as counted in fieldgate_config_reloads_total{result} and shown in /api/status.
const (
	resultApplied   = "applied"   // the new configuration runs
	resultUnchanged = "unchanged" // valid, and its hash is the running one's: nothing to do
	resultRefused   = "refused"   // invalid, or it needs a restart: nothing changed
	resultFailed    = "failed"    // valid, but the files could not be read or the HTTP address bound: nothing changed
)

// reloadResult is the outcome of the last reload.
type reloadResult struct {
	Time    time.Time `json:"time"`
	Trigger string    `json:"trigger"` // "SIGHUP" or "file change"
	Result  string    `json:"result"`
	Hash    string    `json:"hash,omitempty"` // of the configuration read, when it loaded
	Error   string    `json:"error,omitempty"`
	Changes []string  `json:"changes,omitempty"`
}

type reloadCounters struct {
	applied, unchanged, refused, failed atomic.Uint64
}

func (c *reloadCounters) count(result string) {
	map[string]*atomic.Uint64{resultApplied: &c.applied, resultUnchanged: &c.unchanged, resultRefused: &c.refused,
		resultFailed: &c.failed}[result].Add(1)
}

// refusal is a reload that cannot be applied while the gateway runs.
type refusal struct{ error }

// reload reads the configuration files again and applies them if they differ from what runs.
func (g *gateway) reload(trigger string) {
	res := &reloadResult{Time: time.Now(), Trigger: trigger}
	defer func() {
		g.reloads.count(res.Result)
		g.lastLoad.Store(res)
	}()
	files, err := readFiles(g.paths.file, g.paths.confdir)
	if err != nil {
		res.Result, res.Error = resultFailed, err.Error()
		g.log.Error("configuration reload failed: cannot read the files; the running configuration stays", "trigger", trigger, "err", err)
		return
	}
	l, err := load(files, false)
	if err != nil {
		res.Result, res.Error = resultRefused, err.Error()
		g.log.Error("configuration reload refused: invalid; the running configuration stays", "trigger", trigger,
			"running_hash", g.running.Load().loaded.hash, "err", err.Error())
		return
	}
	res.Hash = l.hash
	cur := g.running.Load()
	if l.hash == cur.loaded.hash {
		res.Result = resultUnchanged
		if cur.fallback != "" {
			// The files are valid again, and say what the last good configuration says.
			g.running.Store(&runState{loaded: cur.loaded, appliedAt: cur.appliedAt})
			g.log.Info("the configuration files are valid again", "hash", l.hash)
		} else {
			g.log.Debug("configuration reloaded: unchanged", "trigger", trigger, "hash", l.hash)
		}
		return
	}
	changes, err := g.apply(cur.loaded, l)
	var ref refusal
	switch {
	case errors.As(err, &ref):
		res.Result, res.Error = resultRefused, err.Error()
		g.log.Error("configuration reload refused; the running configuration stays", "trigger", trigger, "hash", l.hash, "err", err)
		return
	case err != nil:
		res.Result, res.Error = resultFailed, err.Error()
		g.log.Error("configuration reload failed; the running configuration stays", "trigger", trigger, "hash", l.hash, "err", err)
		return
	}
	res.Result, res.Changes = resultApplied, changes
	g.running.Store(&runState{loaded: l, appliedAt: res.Time})
	g.keep(l)
	g.log.Info("configuration applied", "trigger", trigger, "hash", l.hash, "previous_hash", cur.loaded.hash,
		"files", fileList(l.files), "changes", strings.Join(changes, "; "))
	for _, w := range l.cfg.warnings(false) {
		g.log.Warn(w)
	}
}

// keep saves l as the newest last good configuration.
func (g *gateway) keep(l *loaded) {
	if err := saveSnapshot(historyDir(l.cfg.StateDir), l.cfg.Reload.Keep, l, time.Now()); err != nil {
		g.log.Error("cannot keep the applied configuration as the last good one", "dir", historyDir(l.cfg.StateDir), "err", err)
	}
}

// apply makes the gateway run next instead of old (nil at start), changing only what differs, and returns what
// it changed. Everything that can fail is done before anything changes: an error means nothing did (a refusal
// when next cannot be applied while the gateway runs).
func (g *gateway) apply(old, next *loaded) ([]string, error) {
	cfg := next.cfg
	var changes []string
	if old != nil {
		var why []string
		if old.cfg.StateDir != cfg.StateDir {
			why = append(why, fmt.Sprintf("state_dir %s → %s", old.cfg.StateDir, cfg.StateDir))
		}
		if !reflect.DeepEqual(old.cfg.Buffer, cfg.Buffer) {
			why = append(why, "buffer: "+fieldDiff(old.cfg.Buffer, cfg.Buffer))
		}
		if len(why) > 0 {
			return nil, refusal{fmt.Errorf("%s: the buffer stays open while the gateway runs, so this needs a restart (systemctl restart fieldgate-gateway); until then the running configuration stays",
				strings.Join(why, "; "))}
		}
		if old.cfg.HTTP.TLS != cfg.HTTP.TLS {
			return nil, refusal{fmt.Errorf("http.tls: the listener keeps its certificate while the gateway runs, so this needs a restart (systemctl restart fieldgate-gateway); until then the running configuration stays")}
		}
	}

	// Build what starts: the forwarder when the hash changes (the record header names the configuration), the
	// inputs that are new or whose configuration changed.
	type start struct {
		in   *input
		cfg  inputConfig
		src  *source
		prev *input // the input it replaces, stopped first
	}
	var (
		starts []start
		stops  []*input
		order  []*input
	)
	g.mu.Lock()
	byName := map[string]*input{}
	for _, in := range g.inputs {
		byName[in.name] = in
	}
	g.mu.Unlock()
	seen := map[string]bool{}
	for _, ic := range cfg.inputs() {
		seen[ic.name] = true
		prev := byName[ic.name]
		if prev != nil && prev.kind == ic.kind && reflect.DeepEqual(prev.cur.Load().cfg.cfg, ic.cfg) {
			order = append(order, prev)
			continue
		}
		src, err := ic.build(g.log)
		if err != nil {
			return nil, refusal{err} // load built it already; not expected
		}
		in := prev
		switch {
		case prev == nil:
			in = newInput(g, ic.name, ic.kind)
			if old != nil {
				changes = append(changes, "input "+ic.kind+":"+ic.name+" added")
			}
		case prev.kind != ic.kind:
			in = newInput(g, ic.name, ic.kind)
			stops = append(stops, prev)
			changes = append(changes, "input "+prev.kind+":"+ic.name+" replaced by "+ic.kind+":"+ic.name)
		default:
			stops = append(stops, prev)
			changes = append(changes, "input "+ic.kind+":"+ic.name+" restarted ("+fieldDiff(prev.cur.Load().cfg.cfg, ic.cfg)+")")
		}
		starts = append(starts, start{in: in, cfg: ic, src: src, prev: prev})
		order = append(order, in)
	}
	for name, in := range byName {
		if !seen[name] {
			stops = append(stops, in)
			changes = append(changes, "input "+in.kind+":"+name+" removed")
		}
	}
	var fwd *forward.Forwarder
	if old == nil || old.hash != next.hash {
		var err error
		if fwd, err = forward.New(cfg.Kafka, cfg.GatewayID, g.log, configHeader(next.hash)); err != nil {
			return nil, refusal{err} // load built it already; not expected
		}
		if old != nil && !reflect.DeepEqual(old.cfg.Kafka, cfg.Kafka) {
			changes = append(changes, "kafka forwarder restarted ("+fieldDiff(old.cfg.Kafka, cfg.Kafka)+")")
		}
	}

	// The new HTTP listener is bound last of what can fail: a busy address fails the whole reload.
	var ln net.Listener
	if old == nil || old.cfg.HTTP.Listen != cfg.HTTP.Listen {
		var err error
		if ln, err = webserve.Listen(cfg.HTTP.Listen, cfg.HTTP.TLS); err != nil {
			return nil, fmt.Errorf("http.listen: %w", err)
		}
		if old != nil {
			changes = append(changes, "http listens on "+cfg.HTTP.Listen)
		}
	}

	// Nothing can fail from here on. Inputs stop (in parallel, each waited for, so that an MQTT session or a
	// device connection is let go before its replacement opens one), then start.
	var wg sync.WaitGroup
	for _, in := range stops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !in.stop(stopTimeout) {
				g.log.Warn("input is slow to stop; its replacement starts once it has", "input", in.kind+":"+in.name)
			}
		}()
	}
	wg.Wait()
	g.mu.Lock()
	g.inputs = order
	g.mu.Unlock()
	for _, s := range starts {
		if it := prevInstance(s.prev); it != nil {
			select {
			case <-it.done:
			default: // stuck past stopTimeout: its replacement waits for it
				go func() { <-it.done; s.in.start(g.ctx, s.cfg, s.src) }()
				continue
			}
		}
		s.in.start(g.ctx, s.cfg, s.src)
	}
	if ln != nil {
		srv := g.serveHTTP(ln)
		g.mu.Lock()
		prev := g.srv
		g.srv = srv
		g.mu.Unlock()
		if prev != nil {
			prev.close()
		}
	}
	if fwd != nil {
		g.mu.Lock()
		prev := g.fwd
		g.mu.Unlock()
		if prev != nil {
			prev.stop(old.cfg.Kafka.ProduceTimeout + 5*time.Second)
		}
		run := g.startForwarder(g.ctx, fwd)
		g.mu.Lock()
		if prev != nil {
			g.kafkaBase = addStats(g.kafkaBase, prev.f.Stats())
		}
		g.fwd = run
		g.mu.Unlock()
	}
	if g.logs != nil && (old == nil || old.cfg.Log != cfg.Log) {
		g.logs.Set(cfg.Log)
		if old != nil {
			changes = append(changes, fmt.Sprintf("log %s, %s", cfg.Log.Level, cfg.Log.Format))
		}
	}
	if old != nil && len(changes) == 0 {
		changes = append(changes, "no input, Kafka, HTTP or log setting changed")
	}
	return changes, nil
}

func prevInstance(in *input) *instance {
	if in == nil {
		return nil
	}
	return in.cur.Load()
}

// fieldDiff names the YAML fields that differ between two values of one struct type ("batch_size,
// compression"), for the log; "settings" when it cannot tell.
func fieldDiff(a, b any) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() != reflect.Struct || va.Type() != vb.Type() {
		return "settings"
	}
	var names []string
	for i := 0; i < va.NumField(); i++ {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			names = append(names, yamlKey(va.Type().Field(i)))
		}
	}
	if len(names) == 0 {
		return "settings"
	}
	return strings.Join(names, ", ")
}

// ---- watching the files -------------------------------------------------------------------------------------------

// debounce is how long the files must be quiet before a change is loaded: an editor's save or a config tool's
// push is several events (a temporary file, a rename, a chmod), and a fleet tool may push several drop-ins.
const debounce = 500 * time.Millisecond

// watch reports changes of the configuration file and of the drop-in files on the returned channel (cap 1, so
// that changes arriving during a reload are one more reload). It watches the directories, not the files: a
// config tool or an editor replaces a file by renaming another over it, which a watch on the file itself loses.
// It returns a nil channel (never ready) when the files cannot be watched; SIGHUP still reloads.
func (g *gateway) watch(ctx context.Context) <-chan struct{} {
	if g.paths.file == "" {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		g.log.Warn("cannot watch the configuration files; reload with SIGHUP", "err", err)
		return nil
	}
	file := filepath.Clean(g.paths.file)
	confdir := filepath.Clean(g.paths.confdir)
	dirs := []string{filepath.Dir(file)}
	if g.paths.confdir != "" {
		dirs = append(dirs, filepath.Dir(confdir), confdir)
	}
	for _, d := range dirs {
		if err := w.Add(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			g.log.Warn("cannot watch a configuration directory; reload with SIGHUP", "dir", d, "err", err)
		}
	}
	out := make(chan struct{}, 1)
	go func() {
		defer w.Close()
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				name := filepath.Clean(ev.Name)
				switch {
				case name == confdir && g.paths.confdir != "":
					if ev.Has(fsnotify.Create) {
						_ = w.Add(confdir) // a drop-in directory made after the start
					}
				case name == file, strings.HasPrefix(filepath.Base(name), ".."): // "..data": a Kubernetes ConfigMap swap
				case filepath.Dir(name) == confdir && isDropIn(filepath.Base(name)):
				default:
					continue
				}
				fire = time.After(debounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				g.log.Warn("watching the configuration files", "err", err)
			case <-fire:
				fire = nil
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}
