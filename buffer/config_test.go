package buffer

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"500000": 500000, "0": 0, "256MiB": 256 << 20, "1GB": 1e9, "1gb": 1e9, "64 KiB": 64 << 10,
		"1.5GiB": 3 << 29, "2TiB": 2 << 40, "10B": 10, "7kb": 7000, " 3MB ": 3e6,
	} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "12 parsecs", "1M", "1.2.3GB", "99999999999TiB", "1e3"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for in, want := range map[ByteSize]string{0: "0", 256 * MiB: "256MiB", GB: "1000000000", 1536 * KiB: "1536KiB", 3: "3", 2 * TiB: "2TiB"} {
		if got := in.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(in), got, want)
		}
		if back, err := ParseByteSize(in.String()); err != nil || back != in {
			t.Errorf("round trip of %d: %d, %v", int64(in), back, err)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
path: /var/lib/fieldgate/buffer.db
max_bytes: 128MiB
when_full: drop_newest
max_dead_letters: 500
max_dead_letter_bytes: 2000000
lock_timeout: 2s
check_timeout: 1m
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := Config{Path: "/var/lib/fieldgate/buffer.db", MaxBytes: 128 * MiB, WhenFull: DropNewest, MaxDeadLetters: 500,
		MaxDeadLetterBytes: 2000000, LockTimeout: 2 * time.Second, CheckTimeout: time.Minute}
	if c != want {
		t.Fatalf("decoded %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var bad Config
	err := yaml.Unmarshal([]byte("max_bytes: 12 parsecs\n"), &bad)
	if err == nil || !strings.Contains(err.Error(), "12 parsecs") {
		t.Fatalf("bad max_bytes: %v", err)
	}
	out, err := yaml.Marshal(want)
	if err != nil || !strings.Contains(string(out), "max_bytes: 128MiB") {
		t.Fatalf("marshal: %s, %v", out, err)
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Path: "x"}.WithDefaults()
	if c.MaxBytes != 256*MiB || c.WhenFull != DropOldest || c.MaxDeadLetters != 10000 || c.MaxDeadLetterBytes != 16*MiB ||
		c.LockTimeout != 500*time.Millisecond || c.CheckTimeout != 30*time.Second {
		t.Fatalf("defaults %+v", c)
	}
}
