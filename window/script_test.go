package window

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
)

// The script tests in testdata/*.txt, one case per file, in the style of Prometheus' promqltest. Commands, one a
// line ("#" starts a comment):
//
//	config sizes=1m,1h ooo=5s lateness=1m idle=5m   (before anything else; omitted fields take the defaults)
//	now 00:01:30                                    processing time for the following commands
//	add DEV METRIC TIME VALUE [QUALITY] [@pP:OFF] [=> OUTCOME]
//	                                                VALUE: 12.5, NaN, +Inf, 42i (int), true, false, "text";
//	                                                QUALITY good (default), uncertain, bad; @p0:17 Kafka position
//	                                                (default: partition 0, next offset); OUTCOME added (default),
//	                                                duplicate or late
//	fire                                            Fire(now); followed by one "expect" line per aggregate, in
//	expect DEV METRIC SIZE START ...                output order; a fire with no expect lines expects nothing.
//	                                                The expect text is the aggregate as formatted by format below.
//	offsets p0=17 p1=3                              SafeOffsets, exactly (all partitions listed)
//	checkpoint                                      save Checkpoint of every partition (through JSON)
//	crash                                           a new Windows, restored from the saved checkpoints
//	forget 0                                        Forget(partition 0)
//	restore 0                                       Restore(saved checkpoint of partition 0)
//	stats added=3 duplicates=1 late=0 open=2 ...    check Stats fields (names as in stats below)
//
// TIME is hh:mm:ss[.mmm] after 2026-01-01T00:00:00Z (hours may exceed 23).
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 12 {
		t.Fatalf("found %d script files in testdata, want the full set", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func parseTime(s string) (time.Time, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return time.Time{}, fmt.Errorf("time %q: want hh:mm:ss[.mmm]", s)
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return time.Time{}, fmt.Errorf("time %q: want hh:mm:ss[.mmm]", s)
	}
	ms := int64(math.Round(sec * 1000))
	return base.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(ms)*time.Millisecond), nil
}

func formatTime(t time.Time) string {
	d := t.Sub(base)
	neg := ""
	if d < 0 {
		neg, d = "-", -d
	}
	h := d / time.Hour
	m := (d % time.Hour) / time.Minute
	s := (d % time.Minute) / time.Second
	ms := (d % time.Second) / time.Millisecond
	out := fmt.Sprintf("%s%02d:%02d:%02d", neg, h, m, s)
	if ms != 0 {
		out += fmt.Sprintf(".%03d", ms)
	}
	return out
}

func parseValue(s string) (fieldgate.Value, error) {
	switch {
	case s == "true" || s == "false":
		return fieldgate.Bool(s == "true"), nil
	case strings.HasPrefix(s, `"`):
		u, err := strconv.Unquote(s)
		return fieldgate.String(u), err
	case strings.HasSuffix(s, "i"):
		i, err := strconv.ParseInt(strings.TrimSuffix(s, "i"), 10, 64)
		return fieldgate.Int(i), err
	}
	f, err := strconv.ParseFloat(s, 64)
	return fieldgate.Float(f), err
}

func formatValue(v fieldgate.Value) string {
	if v.Kind() == fieldgate.KindInt {
		return v.String() + "i"
	}
	return v.String()
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// format is the text of an aggregate in expect lines.
func format(a Firing) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %s", a.Device, a.Metric, shortDur(a.Size), formatTime(a.Start))
	if a.Recompute {
		b.WriteString(" recompute")
	} else {
		fmt.Fprintf(&b, " count=%d bad=%d", a.Count, a.BadCount)
		if a.NumericCount > 0 {
			fmt.Fprintf(&b, " num=%d min=%s max=%s sum=%s mean=%s", a.NumericCount, num(a.Min), num(a.Max), num(a.Sum), num(a.Mean))
		}
		if !a.FirstTime.IsZero() {
			fmt.Fprintf(&b, " first=%s@%s last=%s@%s", formatValue(a.First), formatTime(a.FirstTime), formatValue(a.Last), formatTime(a.LastTime))
		}
	}
	if a.Final {
		b.WriteString(" final")
	}
	return b.String()
}

func shortDur(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

func stats(s Stats) map[string]string {
	return map[string]string{
		"added": fmt.Sprint(s.Added), "duplicates": fmt.Sprint(s.Duplicates), "late": fmt.Sprint(s.Late),
		"fired": fmt.Sprint(s.Fired), "recomputes": fmt.Sprint(s.Recomputes), "finalized": fmt.Sprint(s.Finalized),
		"idle_flushes": fmt.Sprint(s.IdleFlushes), "moves": fmt.Sprint(s.Moves), "future": fmt.Sprint(s.Future), "open": fmt.Sprint(s.OpenWindows),
		"tainted": fmt.Sprint(s.TaintedWindows), "devices": fmt.Sprint(s.Devices), "partitions": fmt.Sprint(s.Partitions),
		"wm_delay": num(s.WatermarkDelaySeconds),
	}
}

func parseConfig(args []string) (Config, error) {
	var c Config
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return c, fmt.Errorf("config %q: want key=value", a)
		}
		if k == "sizes" {
			for _, s := range strings.Split(v, ",") {
				d, err := time.ParseDuration(s)
				if err != nil {
					return c, err
				}
				c.Sizes = append(c.Sizes, d)
			}
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, err
		}
		switch k {
		case "ooo":
			c.OutOfOrderness = d
		case "lateness":
			c.AllowedLateness = d
		case "idle":
			c.IdleTimeout = d
		case "max_future":
			c.MaxFuture = d
		default:
			return c, fmt.Errorf("config: unknown key %q", k)
		}
	}
	return c, nil
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var (
		cfg     Config
		w       *Windows
		now     = base
		nextOff = map[int32]int64{}
		saved   = map[int32][]byte{}
		lines   = strings.Split(string(data), "\n")
	)
	newW := func() {
		var err error
		if w, err = New(cfg); err != nil {
			t.Fatalf("New: %v", err)
		}
	}
	for n := 0; n < len(lines); n++ {
		line, _, _ := strings.Cut(lines[n], "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		at := fmt.Sprintf("%s:%d", file, n+1)
		fail := func(format string, a ...any) { t.Fatalf("%s: %s\n\t%s", at, fmt.Sprintf(format, a...), lines[n]) }
		if f[0] == "config" {
			if w != nil {
				fail("config must come first")
			}
			if cfg, err = parseConfig(f[1:]); err != nil {
				fail("%v", err)
			}
			continue
		}
		if w == nil {
			newW()
		}
		switch f[0] {
		case "now":
			if len(f) != 2 {
				fail("now TIME")
			}
			if now, err = parseTime(f[1]); err != nil {
				fail("%v", err)
			}
		case "add":
			if len(f) < 5 {
				fail("add DEV METRIC TIME VALUE [QUALITY] [@pP:OFF] [=> OUTCOME]")
			}
			ts, err := parseTime(f[3])
			if err != nil {
				fail("%v", err)
			}
			v, err := parseValue(f[4])
			if err != nil {
				fail("value: %v", err)
			}
			r := fieldgate.Reading{Device: f[1], Metric: f[2], Value: v, SourceTime: ts, GatewayTime: now}
			pos, explicit := Position{}, false
			want := Added
			rest := f[5:]
			for i := 0; i < len(rest); i++ {
				a := rest[i]
				switch {
				case strings.HasPrefix(a, "@p"):
					p, o, hasOff := strings.Cut(a[2:], ":")
					pi, err := strconv.Atoi(p)
					if err != nil {
						fail("position %q: want @pP or @pP:OFF", a)
					}
					pos.Partition = int32(pi)
					if hasOff {
						if pos.Offset, err = strconv.ParseInt(o, 10, 64); err != nil {
							fail("position %q: want @pP or @pP:OFF", a)
						}
						explicit = true
					}
				case a == "=>":
					if i+1 >= len(rest) {
						fail("=> needs an outcome")
					}
					i++
					switch rest[i] {
					case "added":
						want = Added
					case "duplicate":
						want = Duplicate
					case "late":
						want = Late
					default:
						fail("unknown outcome %q", rest[i])
					}
				default:
					q, err := fieldgate.ParseQuality(a)
					if err != nil {
						fail("%v", err)
					}
					r.Quality = q
				}
			}
			if !explicit {
				pos.Offset = nextOff[pos.Partition]
			}
			nextOff[pos.Partition] = pos.Offset + 1
			if got := w.Add(r, pos, now); got != want {
				fail("Add = %s, want %s", got, want)
			}
		case "fire":
			got := w.Fire(now)
			var want []string
			for n+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[n+1]), "expect ") {
				n++
				e, _, _ := strings.Cut(lines[n], "#")
				want = append(want, strings.Join(strings.Fields(e)[1:], " "))
			}
			var gotS []string
			for _, a := range got {
				gotS = append(gotS, format(a))
			}
			if !slices.Equal(gotS, want) {
				fail("Fire at %s returned\n\t\t%s\n\twant\n\t\t%s", formatTime(now), strings.Join(gotS, "\n\t\t"), strings.Join(want, "\n\t\t"))
			}
		case "expect":
			fail("expect without fire")
		case "offsets":
			want := map[int32]int64{}
			for _, a := range f[1:] {
				p, o, ok := strings.Cut(strings.TrimPrefix(a, "p"), "=")
				pi, err1 := strconv.Atoi(p)
				oi, err2 := strconv.ParseInt(o, 10, 64)
				if !ok || err1 != nil || err2 != nil {
					fail("offsets: %q: want pP=OFF", a)
				}
				want[int32(pi)] = oi
			}
			if got := w.SafeOffsets(); !mapsEqual(got, want) {
				fail("SafeOffsets = %v, want %v", got, want)
			}
		case "checkpoint":
			for p := range w.parts {
				b, err := json.Marshal(w.Checkpoint(p))
				if err != nil {
					fail("%v", err)
				}
				saved[p] = b
			}
		case "crash", "restore":
			var ps []int32
			if f[0] == "crash" {
				newW()
				for p := range saved {
					ps = append(ps, p)
				}
			} else {
				p, err := strconv.Atoi(f[1])
				if err != nil {
					fail("restore P")
				}
				ps = []int32{int32(p)}
			}
			for _, p := range ps {
				var c Checkpoint
				if err := json.Unmarshal(saved[p], &c); err != nil {
					fail("checkpoint of partition %d: %v", p, err)
				}
				w.Restore(c)
			}
		case "forget":
			p, err := strconv.Atoi(f[1])
			if err != nil {
				fail("forget P")
			}
			w.Forget(int32(p))
		case "stats":
			w.publish() // Stats shows the counters as of the last Fire; scripts look at them now
			got := stats(w.Stats())
			for _, a := range f[1:] {
				k, v, ok := strings.Cut(a, "=")
				if !ok {
					fail("stats: %q: want name=value", a)
				}
				g, known := got[k]
				if !known {
					fail("stats: unknown field %q", k)
				}
				if g != v {
					fail("stats %s = %s, want %s", k, g, v)
				}
			}
		default:
			fail("unknown command %q", f[0])
		}
	}
}

func mapsEqual(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
