package window

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		fields []string // the FieldError paths expected, in order
	}{
		{"zero takes the defaults", Config{}, nil},
		{"typical", Config{Sizes: []time.Duration{time.Minute, time.Hour, 24 * time.Hour}, OutOfOrderness: time.Second}, nil},
		{"sub-second sizes", Config{Sizes: []time.Duration{500 * time.Millisecond, time.Second}}, nil},
		{"negative size", Config{Sizes: []time.Duration{-time.Minute}}, []string{"sizes[0]"}},
		{"not whole ms", Config{Sizes: []time.Duration{time.Minute, 1500 * time.Microsecond}}, []string{"sizes[1]"}},
		{"does not divide a day", Config{Sizes: []time.Duration{7 * time.Minute}}, []string{"sizes[0]"}},
		{"longer than a day", Config{Sizes: []time.Duration{48 * time.Hour}}, []string{"sizes[0]"}},
		{"repeated", Config{Sizes: []time.Duration{time.Minute, time.Minute}}, []string{"sizes[1]"}},
		{"not nested", Config{Sizes: []time.Duration{2 * time.Minute, 3 * time.Minute}}, []string{"sizes[1]"}},
		{"too many", Config{Sizes: []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9}}, []string{"sizes", "sizes[0]", "sizes[1]", "sizes[2]",
			"sizes[3]", "sizes[4]", "sizes[5]", "sizes[6]", "sizes[7]", "sizes[8]"}},
		{"negative delays", Config{OutOfOrderness: -1, AllowedLateness: -time.Second, IdleTimeout: -time.Minute},
			[]string{"out_of_orderness", "allowed_lateness", "idle_timeout"}},
		{"delays too long or not whole ms", Config{OutOfOrderness: 400 * 24 * time.Hour, IdleTimeout: time.Microsecond},
			[]string{"out_of_orderness", "idle_timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var got []string
			for _, e := range fieldgate.Flatten(err) {
				var fe *fieldgate.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%v is not a FieldError", e)
				}
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("Validate() = %v, fields %q, want fields %q", err, got, tc.fields)
			}
			if _, nerr := New(tc.cfg); (nerr == nil) != (err == nil) {
				t.Fatalf("New error %v, Validate error %v", nerr, err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	w, err := New(Config{Sizes: []time.Duration{time.Hour, time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Sizes: []time.Duration{time.Minute, time.Hour}, OutOfOrderness: DefaultOutOfOrderness,
		AllowedLateness: DefaultAllowedLateness, IdleTimeout: DefaultIdleTimeout}
	if got := w.Config(); !slices.Equal(got.Sizes, want.Sizes) || got.OutOfOrderness != want.OutOfOrderness ||
		got.AllowedLateness != want.AllowedLateness || got.IdleTimeout != want.IdleTimeout {
		t.Fatalf("Config() = %+v, want %+v", got, want)
	}
}

func TestBounds(t *testing.T) {
	for _, tc := range []struct {
		t          string
		size       time.Duration
		start, end string
	}{
		{"2026-11-25T13:16:10.123Z", time.Minute, "2026-11-25T13:16:00Z", "2026-11-25T13:17:00Z"},
		{"2026-11-25T13:17:00Z", time.Minute, "2026-11-25T13:17:00Z", "2026-11-25T13:18:00Z"},
		{"2026-11-25T13:16:59.999999999Z", time.Minute, "2026-11-25T13:16:00Z", "2026-11-25T13:17:00Z"},
		{"2026-11-25T13:16:10.123+01:00", time.Hour, "2026-11-25T12:00:00Z", "2026-11-25T13:00:00Z"},
		{"1969-12-31T23:59:59.500Z", time.Second, "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z"}, // floor, not toward zero
		{"1969-12-31T23:59:59.9999Z", time.Minute, "1969-12-31T23:59:00Z", "1970-01-01T00:00:00Z"},
		{"0001-01-01T00:00:00.001Z", 24 * time.Hour, "0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"},
	} {
		ts, _ := time.Parse(time.RFC3339Nano, tc.t)
		st, en := Bounds(ts, tc.size)
		if st.Format(time.RFC3339Nano) != tc.start || en.Format(time.RFC3339Nano) != tc.end {
			t.Errorf("Bounds(%s, %s) = %s, %s; want %s, %s", tc.t, tc.size, st.Format(time.RFC3339Nano),
				en.Format(time.RFC3339Nano), tc.start, tc.end)
		}
	}
}

// Event times are truncated to the millisecond: readings that differ below it are one identity (the raw table
// stores milliseconds), and a SourceTime wins over the GatewayTime.
func TestMillisecondIdentity(t *testing.T) {
	w, _ := New(Config{Sizes: []time.Duration{time.Minute}, OutOfOrderness: time.Second})
	t0 := base.Add(10*time.Second + 123*time.Millisecond)
	r := fieldgate.Reading{Device: "d", Metric: "m", Value: fieldgate.Float(1), SourceTime: t0.Add(100 * time.Microsecond), GatewayTime: base}
	if got := w.Add(r, Position{}, base); got != Added {
		t.Fatalf("first: %s", got)
	}
	r.SourceTime = t0.Add(999 * time.Microsecond)
	r.Value = fieldgate.Float(2)
	if got := w.Add(r, Position{Offset: 1}, base); got != Duplicate {
		t.Fatalf("same millisecond: %s, want duplicate", got)
	}
	r.SourceTime = time.Time{}
	r.GatewayTime = t0 // no source time: the gateway time is the event time
	if got := w.Add(r, Position{Offset: 2}, base); got != Duplicate {
		t.Fatalf("gateway time in the same millisecond: %s, want duplicate", got)
	}
	aggs := w.Fire(base.Add(time.Hour)) // idle
	if len(aggs) != 1 || aggs[0].Count != 1 || aggs[0].Sum != 1 || !aggs[0].FirstTime.Equal(t0) {
		t.Fatalf("Fire = %+v", aggs)
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Added: "added", Duplicate: "duplicate", Late: "late", 7: "outcome(7)"} {
		if o.String() != want {
			t.Errorf("%d: %q, want %q", o, o.String(), want)
		}
	}
}

// The checkpoint is persisted by the loader and read back by the next version of it: its JSON is pinned.
func TestCheckpointGolden(t *testing.T) {
	w, _ := New(Config{Sizes: []time.Duration{time.Minute, time.Hour}, OutOfOrderness: 5 * time.Second, IdleTimeout: 2 * time.Minute})
	add := func(dev string, sec int, off int64, now time.Time) {
		w.Add(fieldgate.Reading{Device: dev, Metric: "m", Value: fieldgate.Float(1), SourceTime: base.Add(time.Duration(sec) * time.Second),
			GatewayTime: now}, Position{Partition: 3, Offset: off}, now)
	}
	add("plant1/press-07", 10, 40, base)
	add("plant1/oven", 70, 41, base.Add(3*time.Minute))
	add("plant1/oven", 7200, 42, base.Add(3*time.Minute)) // from a clock two hours ahead
	w.Fire(base.Add(3 * time.Minute))                     // the press is idle: released, tainted
	got, err := json.MarshalIndent(w.Checkpoint(3), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	const file = "testdata/checkpoint_v1.json"
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(file, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(want)) != string(got) {
		t.Fatalf("checkpoint JSON changed:\n%s\nwant\n%s", got, want)
	}
	var back Checkpoint
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	w2, _ := New(w.Config())
	w2.Restore(back)
	c2 := w2.Checkpoint(3)
	if c2.Through != back.Offset {
		t.Fatalf("restored checkpoint: Through %d, want the restored offset %d (only what this Windows processed)", c2.Through, back.Offset)
	}
	c2.Through = back.Through
	if again, _ := json.MarshalIndent(c2, "", "  "); string(again) != string(got) {
		t.Fatalf("restored checkpoint differs:\n%s\nwant\n%s", again, got)
	}
	if c := w2.Checkpoint(9); c.Offset != -1 || c.Devices != nil {
		t.Fatalf("unknown partition: %+v", c)
	}
}

// FuzzAdd drives Windows with an arbitrary sequence of operations and checks that nothing panics and the
// invariants hold: Fire's output is sorted and consistent, the counters add up, and a final idle flush releases
// everything.
func FuzzAdd(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte("\x00\x10\x20\x30\x40\x50\xff\xfe\x81\x92\x13\x14\x15\x16\x17\x18"))
	f.Add([]byte(strings.Repeat("\x05\x83\x01\x7f", 40)))
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 4000 {
			return
		}
		sizes := [][]time.Duration{{time.Second, 10 * time.Second}, {time.Minute}, {100 * time.Millisecond, time.Second, time.Minute}}
		cfg := Config{Sizes: sizes[len(ops)%3], OutOfOrderness: time.Second, AllowedLateness: 2 * time.Second, IdleTimeout: 30 * time.Second}
		w, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		now := base
		next := map[int32]int64{}
		var saved []Checkpoint
		var outcomes [3]uint64
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			switch op % 16 {
			case 12:
				checkFire(t, w.Fire(now), now)
			case 13:
				now = now.Add(time.Duration(arg) * 250 * time.Millisecond)
			case 14:
				p := int32(arg % 3)
				saved = append(saved, w.Checkpoint(p))
				if c := saved[len(saved)-1]; c.Offset > next[p] {
					t.Fatalf("checkpoint offset %d beyond the next offset %d", c.Offset, next[p])
				}
			case 15:
				p := int32(arg % 3)
				w.Forget(p)
				for _, c := range saved {
					if c.Partition == p {
						w.Restore(c)
					}
				}
			default:
				p := int32(op % 3)
				q := fieldgate.Quality(arg % 3)
				var v fieldgate.Value
				switch arg % 5 {
				case 0:
					v = fieldgate.Bool(arg&8 != 0)
				case 1:
					v = fieldgate.String(string(rune('a' + arg%7)))
				case 2:
					v = fieldgate.Float(math.NaN())
				default:
					v = fieldgate.Float(float64(int8(arg)))
				}
				ev := now.Add(time.Duration(int8(op)) * 97 * time.Millisecond)
				if arg >= 250 { // a clock running ahead
					ev = ev.Add(time.Duration(arg-249) * time.Hour)
				}
				r := fieldgate.Reading{Device: "d" + string(rune('0'+op%5)), Metric: "m" + string(rune('0'+arg%2)),
					Value: v, Quality: q, SourceTime: ev, GatewayTime: now}
				o := w.Add(r, Position{Partition: p, Offset: next[p]}, now)
				if o > Late {
					t.Fatalf("outcome %d", o)
				}
				outcomes[o]++
				next[p]++
			}
		}
		checkFire(t, w.Fire(now), now)
		st := w.Stats()
		if st.Added != outcomes[Added] || st.Duplicates != outcomes[Duplicate] || st.Late != outcomes[Late] {
			t.Fatalf("stats %+v, outcomes %v", st, outcomes)
		}
		checkFire(t, w.Fire(now.Add(24*time.Hour)), now)
		if st := w.Stats(); st.OpenWindows != 0 || st.TaintedWindows != 0 || st.OpenWindows < 0 {
			t.Fatalf("after an idle flush: %+v", st)
		}
	})
}

func checkFire(t *testing.T, aggs []Firing, now time.Time) {
	t.Helper()
	for i, a := range aggs {
		if i > 0 {
			p := aggs[i-1]
			if p.Device > a.Device || (p.Device == a.Device && (p.Metric > a.Metric || (p.Metric == a.Metric &&
				(p.Size > a.Size || (p.Size == a.Size && !p.Start.Before(a.Start)))))) {
				t.Fatalf("not sorted or repeated: %s then %s", format(p), format(a))
			}
		}
		if !a.Start.Add(a.Size).Equal(a.End) || a.Start.UnixMilli()%a.Size.Milliseconds() != 0 {
			t.Fatalf("bad bounds: %s", format(a))
		}
		if a.Recompute {
			if a.Count != 0 || !a.FirstTime.IsZero() {
				t.Fatalf("recompute with values: %+v", a)
			}
			continue
		}
		if a.Count < 1 || a.BadCount > a.Count || a.NumericCount > a.Count-a.BadCount || (a.NumericCount > 0 && a.Min > a.Max) {
			t.Fatalf("inconsistent: %s", format(a))
		}
		if (a.Count > a.BadCount) == a.FirstTime.IsZero() || a.FirstTime.After(a.LastTime) ||
			(!a.FirstTime.IsZero() && (a.FirstTime.Before(a.Start) || !a.LastTime.Before(a.End))) {
			t.Fatalf("first/last: %s", format(a))
		}
	}
}

// Stats may be read by the metrics handler while the loader loop adds and fires (run with -race).
func TestStatsConcurrent(t *testing.T) {
	w, _ := New(Config{Sizes: []time.Duration{time.Second}, OutOfOrderness: time.Millisecond, AllowedLateness: time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2000 {
			_ = w.Stats()
		}
	}()
	for i := range 5000 {
		ts := base.Add(time.Duration(i) * 100 * time.Millisecond)
		w.Add(fieldgate.Reading{Device: "d", Metric: "m", Value: fieldgate.Int(int64(i)), SourceTime: ts, GatewayTime: ts},
			Position{Offset: int64(i)}, ts)
		if i%10 == 9 {
			w.Fire(ts)
		}
	}
	<-done
	if st := w.Stats(); st.Added != 5000 || st.Fired < 490 || st.OpenWindows > 2 {
		t.Fatalf("%+v", st)
	}
}
