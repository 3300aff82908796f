package modbus

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*/expected.out")

// TestGolden runs the cases in testdata/golden/<case>/, one per bug that peers shipped or behaviour worth
// pinning: config.yaml (a Config; its address is replaced by an in-process server's), registers.txt (the device's
// image: "<register> <address>: <values...>", hex words or 0/1 bits), and either expected.err (the exact
// validation error) or expected.out (the read plan, then one poll's readings). go test -run TestGolden -update
// rewrites expected.out.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var cfg Config
			dec := yaml.NewDecoder(strings.NewReader(string(raw)))
			dec.KnownFields(true)
			if err := dec.Decode(&cfg); err != nil {
				t.Fatal(err)
			}
			if want, err := os.ReadFile(filepath.Join(dir, "expected.err")); err == nil {
				got := cfg.Validate()
				if got == nil || got.Error() != strings.TrimSpace(string(want)) {
					t.Errorf("Validate() = %v\nwant %s", got, want)
				}
				return
			}
			im := &image{}
			loadImage(t, filepath.Join(dir, "registers.txt"), im)
			cfg.Address = startImageServer(t, im)
			for i := range cfg.Devices {
				for j := range cfg.Devices[i].Groups {
					cfg.Devices[i].Groups[j].Interval = time.Minute
				}
			}
			s, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, p := range s.Plan() {
				fmt.Fprintln(&b, p)
			}
			b.WriteString("--\n")
			for _, r := range run(t, s, 1, 10*time.Second)[0] {
				fmt.Fprintf(&b, "%s %s = %s (%v) %v status %d\n", r.Device, r.Metric, valueString(r.Value), r.Value.Kind(), r.Quality, r.Status)
			}
			path := filepath.Join(dir, "expected.out")
			if *update {
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if b.String() != string(want) {
				t.Errorf("got\n%s\nwant\n%s", b.String(), want)
			}
		})
	}
}

func valueString(v fieldgate.Value) string {
	switch v.Kind() {
	case fieldgate.KindFloat:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case fieldgate.KindInt:
		return strconv.FormatInt(v.Int(), 10)
	case fieldgate.KindBool:
		return strconv.FormatBool(v.Bool())
	}
	return strconv.Quote(v.Str())
}

func loadImage(t *testing.T, path string, im *image) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		head, vals, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var kind string
		var addr int
		if _, err := fmt.Sscanf(head, "%s %d", &kind, &addr); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		for i, v := range strings.Fields(vals) {
			n, err := strconv.ParseUint(v, 0, 16)
			if err != nil {
				t.Fatalf("%s: %q: %v", path, v, err)
			}
			switch kind {
			case "holding":
				im.holding[addr+i] = uint16(n)
			case "input":
				im.input[addr+i] = uint16(n)
			case "coil":
				im.coils[addr+i] = n != 0
			case "discrete":
				im.discrete[addr+i] = n != 0
			default:
				t.Fatalf("%s: unknown register %q", path, kind)
			}
		}
	}
}
