package modbus

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"gopkg.in/yaml.v3"
)

func ptr[T any](v T) *T { return &v }

func validConfig() Config {
	return Config{Name: "plc", Address: "127.0.0.1:502", Devices: []Device{{
		Name: "plant1/plc-1",
		Groups: []Group{{Name: "fast", Interval: 100 * time.Millisecond, Tags: []Tag{
			{Name: "temp", Address: 0, Type: "float32"},
		}}},
	}}}
}

// TestValidateErrors: each bad map gives an error naming the field path and the cause.
func TestValidateErrors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(c *Config)
		field  string
		msg    string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "name", "required"},
		{"bad transport", func(c *Config) { c.Transport = "udp" }, "transport", "unknown transport"},
		{"url address", func(c *Config) { c.Address = "tcp://plc:502" }, "address", "host:port"},
		{"port out of range", func(c *Config) { c.Address = "127.0.0.1:70000" }, "address", "port must be a number from 1 to 65535"},
		{"port zero", func(c *Config) { c.Address = "plc:0" }, "address", "port must be a number from 1 to 65535"},
		{"rtu over tcp port out of range", func(c *Config) { c.Transport = TransportRTUOverTCP; c.Address = "gw:65536" }, "address", "port must be"},
		{"rtu unit 0", func(c *Config) { c.Transport = TransportRTU; c.Address = "/dev/ttyUSB0"; c.Devices[0].UnitID = ptr(0) }, "devices[0].unit_id", "1 to 247"},
		{"tcp unit 256", func(c *Config) { c.Devices[0].UnitID = ptr(256) }, "devices[0].unit_id", "0 to 255"},
		{"parity", func(c *Config) { c.Transport = TransportRTU; c.Address = "/dev/ttyS0"; c.Serial.Parity = "mark" }, "serial.parity", "none, even or odd"},
		{"tls without files", func(c *Config) { c.Transport = TransportTLS }, "tls", "ca_file, cert_file and key_file"},
		{"tls on tcp", func(c *Config) { c.TLS.CAFile = "ca.pem" }, "tls", "tcp+tls"},
		{"no devices", func(c *Config) { c.Devices = nil }, "devices", "at least one"},
		{"duplicate unit", func(c *Config) {
			d := c.Devices[0]
			d.Name = "other"
			c.Devices = append(c.Devices, d)
		}, "devices[1].unit_id", "unit 1 is also devices[0]"},
		{"device limit", func(c *Config) { c.Devices[0].MaxRegisters = 126 }, "devices[0].max_registers_per_request", "1 to 125"},
		{"bad order", func(c *Config) { c.Devices[0].ByteOrder = "ABDC" }, "devices[0].byte_order", "unknown byte order"},
		{"unknown type", func(c *Config) { c.Devices[0].Groups[0].Tags[0].Type = "real" }, "devices[0].groups[0].tags[0].type", "unknown type"},
		{"type does not fit coil", func(c *Config) { c.Devices[0].Groups[0].Tags[0].Register = "coil" }, "devices[0].groups[0].tags[0].type", "must be bool"},
		{"bool without bit", func(c *Config) { c.Devices[0].Groups[0].Tags[0].Type = "bool" }, "devices[0].groups[0].tags[0].bit", "needs bit"},
		{"bit 16", func(c *Config) { t := &c.Devices[0].Groups[0].Tags[0]; t.Type = "bool"; t.Bit = ptr(16) }, "devices[0].groups[0].tags[0].bit", "0 to 15"},
		{"wrong length", func(c *Config) { c.Devices[0].Groups[0].Tags[0].Length = 4 }, "devices[0].groups[0].tags[0].length", "float32 takes 2 registers, not 4"},
		{"string without length", func(c *Config) { c.Devices[0].Groups[0].Tags[0].Type = "string" }, "devices[0].groups[0].tags[0].length", "needs length"},
		{"string longer than device limit", func(c *Config) {
			c.Devices[0].MaxRegisters = 8
			t := &c.Devices[0].Groups[0].Tags[0]
			t.Type, t.Length = "string", 10
		}, "devices[0].groups[0].tags[0].length", "more than one request may read on this device (8)"},
		{"scaled string", func(c *Config) {
			t := &c.Devices[0].Groups[0].Tags[0]
			t.Type, t.Length, t.Scale = "string", 2, ptr(2.0)
		}, "devices[0].groups[0].tags[0].scale", "do not apply"},
		{"address range", func(c *Config) { c.Devices[0].Groups[0].Tags[0].Address = 70000 }, "devices[0].groups[0].tags[0].address", "0 to 65535"},
		{"past the end", func(c *Config) { c.Devices[0].Groups[0].Tags[0].Address = 65535 }, "devices[0].groups[0].tags[0].address", "runs past address 65535"},
		{"overlap", func(c *Config) {
			g := &c.Devices[0].Groups[0]
			g.Tags = append(g.Tags, Tag{Name: "low", Address: 1})
		}, "devices[0].groups[0].tags[1].address", `holding 1 overlaps "temp" (groups[0].tags[0])`},
		{"overlap across groups", func(c *Config) {
			d := &c.Devices[0]
			d.Groups = append(d.Groups, Group{Tags: []Tag{{Name: "x", Address: 1, Type: "int32"}}})
		}, "devices[0].groups[1].tags[0].address", "overlaps"},
		{"same bit twice", func(c *Config) {
			g := &c.Devices[0].Groups[0]
			g.Tags = append(g.Tags, Tag{Name: "a", Address: 9, Type: "bool", Bit: ptr(2)}, Tag{Name: "b", Address: 9, Type: "bool", Bit: ptr(2)})
		}, "devices[0].groups[0].tags[2].bit", "bit 2 of holding 9 is also read"},
		{"duplicate metric", func(c *Config) {
			g := &c.Devices[0].Groups[0]
			g.Tags = append(g.Tags, Tag{Name: "temp", Address: 10})
		}, "devices[0].groups[0].tags[1].name", `"temp" is also`},
		{"forbidden tag", func(c *Config) {
			c.Devices[0].Forbidden = []AddressRange{{Register: "holding", Start: 1, End: 3}}
		}, "devices[0].groups[0].tags[0].address", "forbidden range (1-3)"},
		{"forbidden bad range", func(c *Config) {
			c.Devices[0].Forbidden = []AddressRange{{Register: "input", Start: 10, End: 5}}
		}, "devices[0].forbidden[0].end", "want start"},
		{"interval too short", func(c *Config) { c.Devices[0].Groups[0].Interval = time.Millisecond }, "devices[0].groups[0].interval", "10ms minimum"},
		{"empty group", func(c *Config) { c.Devices[0].Groups[0].Tags = nil }, "devices[0].groups[0].tags", "at least one tag"},
		{"gap fill", func(c *Config) { c.Devices[0].GapFill = ptr(-2) }, "devices[0].gap_fill", "want -1"},
		{"metric not utf8", func(c *Config) { c.Devices[0].Groups[0].Tags[0].Name = "temp\xff" }, "devices[0].groups[0].tags[0].name", "UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := validConfig()
			c.mutate(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted the config")
			}
			var fe *fieldgate.FieldError
			found := false
			for _, e := range fieldgate.Flatten(err) {
				if errors.As(e, &fe) && fe.Field == c.field && strings.Contains(fe.Err.Error(), c.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("no error at %s containing %q; got:\n%v", c.field, c.msg, err)
			}
			if _, err := New(cfg, nil); err == nil {
				t.Error("New accepted a config that does not validate")
			}
		})
	}
}

func TestValidConfigAndDefaults(t *testing.T) {
	cfg := validConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Timeout != DefaultTimeoutTCP || *s.cfg.Devices[0].UnitID != 1 || s.cfg.Devices[0].MaxRegisters != 125 || *s.cfg.Devices[0].GapFill != DefaultGapFill {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
	if s.cfg.Address != "127.0.0.1:502" {
		t.Errorf("address %q", s.cfg.Address)
	}
	c2 := validConfig()
	c2.Address = "plc.local"
	s2, err := New(c2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s2.cfg.Address != "plc.local:502" {
		t.Errorf("default port: %q", s2.cfg.Address)
	}
}

func TestConfigYAML(t *testing.T) {
	var c Config
	err := yaml.Unmarshal([]byte(`
name: line1
transport: rtu
address: /dev/ttyUSB0
serial: {baud_rate: 9600, parity: none}
timeout: 250ms
devices:
  - name: meter-3
    unit_id: 3
    byte_order: CDAB
    max_registers_per_request: 60
    gap_fill: 4
    forbidden: [{register: input, start: 100, end: 109}]
    groups:
      - name: energy
        interval: 5s
        tags:
          - {name: energy_kwh, register: input, address: 0, type: uint32, scale: 0.01, unit: kWh}
          - {name: serial_no, register: input, address: 110, type: string, length: 8}
          - {name: relay, register: coil, address: 3}
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d := c.Devices[0]
	if *d.UnitID != 3 || d.MaxRegisters != 60 || *d.GapFill != 4 || d.Groups[0].Interval != 5*time.Second || *d.Groups[0].Tags[0].Scale != 0.01 {
		t.Errorf("decoded %+v", d)
	}
	s, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Serial.StopBits != 2 {
		t.Errorf("parity none must default to 2 stop bits, got %d", s.cfg.Serial.StopBits)
	}
}
