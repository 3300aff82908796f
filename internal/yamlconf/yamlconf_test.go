package yamlconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
)

// testConfig mirrors a slice of the gateway's configuration: enough nesting, lists, secrets and typed values to
// exercise the loader without depending on a command.
type testConfig struct {
	GatewayID string    `yaml:"gateway_id"`
	Kafka     testKafka `yaml:"kafka"`
	MQTT      []testIn  `yaml:"mqtt"`
	Log       struct {
		Level string `yaml:"level"`
	} `yaml:"log"`
}

type testKafka struct {
	Brokers   []string      `yaml:"brokers"`
	BatchSize int           `yaml:"batch_size"`
	Linger    time.Duration `yaml:"linger"`
	TLS       struct {
		Enabled bool   `yaml:"enabled"`
		CAFile  string `yaml:"ca_file"`
	} `yaml:"tls"`
	SASL struct {
		Mechanism string           `yaml:"mechanism"`
		Username  string           `yaml:"username"`
		Password  fieldgate.Secret `yaml:"password"`
	} `yaml:"sasl"`
}

type testIn struct {
	Name          string           `yaml:"name"`
	Broker        string           `yaml:"broker"`
	Username      string           `yaml:"username"`
	Password      fieldgate.Secret `yaml:"password"`
	Subscriptions []struct {
		Topic  string `yaml:"topic"`
		QoS    int    `yaml:"qos"`
		Device string `yaml:"device"`
	} `yaml:"subscriptions"`
}

func decodeFile(t *testing.T, path string) (*testConfig, *Index, error) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg testConfig
	idx, err := Decode(path, raw, &cfg, "gateway_id: …, mqtt: …")
	if err != nil {
		return nil, nil, err
	}
	return &cfg, idx, nil
}

// Secrets are substituted per value after parsing: YAML's special characters in a secret stay in the string,
// an integer can come from the environment, a password reading "null" is not emptied, and $${ is a literal.
func TestSubstitution(t *testing.T) {
	dir := t.TempDir()
	nasty := "p: #a'\"\n  - x: [y]"
	if err := os.WriteFile(filepath.Join(dir, "mqtt.pass"), []byte(nasty+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FG_TEST_KAFKA_PASS", "null")
	t.Setenv("FG_TEST_BATCH", "500")
	t.Setenv("FG_TEST_USER", "gw-7")
	cfgText := `gateway_id: gw1
kafka:
  brokers: [127.0.0.1:9092]
  batch_size: ${FG_TEST_BATCH}
  tls: {enabled: true}
  sasl:
    mechanism: SCRAM-SHA-256
    username: "${FG_TEST_USER}"
    password: ${FG_TEST_KAFKA_PASS}
mqtt:
  - name: sensors
    broker: tcp://127.0.0.1:1883
    username: u-${FG_TEST_USER}-$${NOT_SUBSTITUTED}
    password: ${file:mqtt.pass}
    subscriptions:
      - topic: a/{device}
`
	path := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := decodeFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.MQTT[0].Password.Reveal(); got != nasty {
		t.Errorf("file secret = %q, want %q", got, nasty)
	}
	if got := cfg.Kafka.SASL.Password.Reveal(); got != "null" {
		t.Errorf(`password "null" became %q`, got)
	}
	if cfg.Kafka.BatchSize != 500 {
		t.Errorf("batch_size from env = %d", cfg.Kafka.BatchSize)
	}
	if got, want := cfg.MQTT[0].Username, "u-gw-7-${NOT_SUBSTITUTED}"; got != want {
		t.Errorf("username = %q, want %q", got, want)
	}
	if cfg.Kafka.SASL.Username != "gw-7" {
		t.Errorf("quoted substitution = %q", cfg.Kafka.SASL.Username)
	}
}

// A Problem points at the line of the field, or of its nearest ancestor when the field is absent.
func TestLineIndexLocate(t *testing.T) {
	raw := []byte(`gateway_id: gw1
kafka:
  brokers: [a:1]
mqtt:
  - name: x
    subscriptions:
      - topic: t
      - topic: u
        qos: 5
`)
	var cfg testConfig
	idx, err := Decode("f.yaml", raw, &cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{
		"mqtt[0].subscriptions[1].qos":    9,
		"mqtt[0].subscriptions[1].device": 8,
		"mqtt[0].broker":                  5,
		"kafka.brokers[0]":                3,
		"kafka.tls.ca_file":               2,
		"log.level":                       0,
	} {
		if got := idx.Line(path); got != want {
			t.Errorf("Line(%s) = %d, want %d", path, got, want)
		}
	}
	ce := idx.Locate("f.yaml", fieldgate.WithField("mqtt[0]", fieldgate.FieldErrorf("subscriptions[1].qos", "bad")))
	if got, want := ce.Error(), "f.yaml:9: mqtt[0].subscriptions[1].qos: bad"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Sorted by line; an error that is no FieldError has neither line nor field.
	ce = idx.Locate("f.yaml", errors.Join(fieldgate.FieldErrorf("mqtt[0].name", "b"), errors.New("c"), fieldgate.FieldErrorf("kafka", "a")))
	if got, want := ce.Error(), "f.yaml: c\nf.yaml:2: kafka: a\nf.yaml:5: mqtt[0].name: b"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Problems found before decoding come together, each with its line, field and message.
func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"empty", "  \n", "c.yaml: empty configuration"},
		{"second document", "gateway_id: a\n---\ngateway_id: b\n", "c.yaml:2: a second YAML document (---) is not allowed; put everything in one"},
		{"not a mapping", "- a\n", "c.yaml:1: the configuration must be a mapping of keys (gateway_id: …, mqtt: …)"},
		{"syntax", "a: [b\n", "c.yaml:"},
		{"suggestion", "kafka:\n  batchsize: 3\n", `c.yaml:2: kafka.batchsize: unknown field (did you mean "batch_size"?)`},
		{"known here", "log:\n  verbosity: 3\n", "c.yaml:2: log.verbosity: unknown field; known here: level"},
		{"unset and unknown", "gateway_id: ${FG_NO_SUCH_VAR}\nmqtt:\n  - nam: x\n",
			"c.yaml:1: gateway_id: environment variable FG_NO_SUCH_VAR is not set\nc.yaml:3: mqtt[0].nam: unknown field (did you mean \"name\"?)"},
		{"bad reference", "gateway_id: ${a b}\n", "c.yaml:1: gateway_id: ${a b}: not an environment variable name; use ${NAME} or ${file:PATH}"},
		{"unclosed", "gateway_id: ${X\n", "c.yaml:1: gateway_id: unclosed ${ in value (write $${ for a literal ${)"},
		{"type", "kafka:\n  batch_size: many\n", `c.yaml:2: kafka.batch_size: "many" is a string, want a whole number`},
		{"duration", "kafka:\n  linger: soon\n", `c.yaml:2: kafka.linger: "soon" is a string, want a duration such as 500ms, 5s or 2m`},
		{"list", "kafka:\n  brokers: a:1\n", `c.yaml:2: kafka.brokers: "a:1" is a string, want a list, e.g. [a, b] or one item per line under the key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg testConfig
			idx, err := Decode("c.yaml", []byte(tc.yaml), &cfg, "gateway_id: …, mqtt: …")
			if err == nil || idx != nil {
				t.Fatalf("accepted: %v", idx)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%T is not an *Error", err)
			}
			if got := err.Error(); got != tc.want && !(strings.HasSuffix(tc.want, ":") && strings.HasPrefix(got, tc.want)) {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// A substituted value (perhaps a secret in the wrong field) is not echoed in a type error.
func TestSubstitutedValueNotEchoed(t *testing.T) {
	t.Setenv("FG_TEST_SECRET", "hunter2")
	var cfg testConfig
	_, err := Decode("c.yaml", []byte("gateway_id: gw1\nkafka:\n  brokers: [a:1]\n  batch_size: ${FG_TEST_SECRET}\n"), &cfg, "")
	if err == nil || strings.Contains(err.Error(), "hunter2") || err.Error() != "c.yaml:4: kafka.batch_size: the substituted value is a string, want a whole number" {
		t.Errorf("got %v", err)
	}
}

// ${file:PATH} is relative to the file's folder and reads regular files of at most 1 MiB only.
func TestFileSubstitution(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big"), make([]byte, maxSecretFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "crlf"), []byte("pw\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "c.yaml")
	for ref, want := range map[string]string{
		"crlf":    "",
		"missing": "cannot read the file: no such file or directory",
		".":       "cannot read the file: not a regular file",
		"big":     "cannot read the file: larger than 1048576 bytes",
		"":        "${file:} needs a path",
	} {
		var cfg testConfig
		_, err := Decode(file, []byte("gateway_id: ${file:"+ref+"}\n"), &cfg, "")
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", ref, err)
		case want == "" && cfg.GatewayID != "pw":
			t.Errorf("%s: got %q", ref, cfg.GatewayID)
		case want != "" && (err == nil || !strings.HasSuffix(err.Error(), want)):
			t.Errorf("%s: got %v, want …%s", ref, err, want)
		}
	}
}

// FuzzDecode: no input makes the loader panic or hang; an error names the file, a success yields an index.
func FuzzDecode(f *testing.F) {
	for _, p := range []string{"../../configs/gateway.yaml", "../../configs/demo.yaml", "../../configs/central.yaml",
		"../../cmd/gateway/testdata/good/all_inputs.yaml", "../../cmd/gateway/testdata/bad/many_errors.yaml",
		"../../cmd/gateway/testdata/bad/unknown_key.yaml", "../../cmd/gateway/testdata/bad/wrong_type.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("gateway_id: ${X}\nkafka: {brokers: [\"${file:}\"]}\n"))
	f.Add([]byte("mqtt:\n  - <<: {name: x}\n    broker: ${UNSET_FUZZ}\n"))
	f.Add([]byte("mqtt: &m [{name: x, subscriptions: [{topic: t, qos: x}]}]\nlog: {level: *m}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var cfg testConfig
		idx, err := Decode("fuzz.yaml", raw, &cfg, "")
		if err == nil && idx == nil {
			t.Fatal("nil index without an error")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
		if err == nil {
			_ = idx.Locate("fuzz.yaml", fieldgate.FieldErrorf("mqtt[0].subscriptions[0].qos", "x"))
		}
	})
}

// A syntax error is reported at the line at fault, not at the start of the enclosing block (yaml.v3's context
// mark, which it counts from 0 for parser errors): an unclosed bracket deep in a list, a tab, a key indented one
// space too little, an unclosed quote.
func TestSyntaxErrorLine(t *testing.T) {
	head := "gateway_id: gw\nkafka:\n  brokers: [a:1]\nmqtt:\n  - name: a\n    broker: tcp://x:1\n    subscriptions:\n      - topic: a/b\n"
	for _, tc := range []struct {
		name, tail, want string
	}{
		{"unclosed bracket", "        qos: [1\n      - topic: c\n", "f.yaml:9: did not find expected ',' or ']'"},
		{"tab", "\tqos: 1\n", "f.yaml:9: found a tab character that violates indentation"},
		{"indent", "        qos: 1\n       device: x\n", "f.yaml:10: did not find expected '-' indicator"},
		{"unclosed quote", "        device: \"x\n      - topic: c\n", "f.yaml:9: found unexpected end of stream"},
		{"no newline at the end", "        qos: [1", "f.yaml:9: did not find expected ',' or ']'"},
	} {
		var c testConfig
		_, err := Decode("f.yaml", []byte(head+tc.tail), &c, "")
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// DecodeOffline checks the references' syntax, reads nothing, leaves the values as written, ignores the type
// errors they cause, and tells which fields hold them.
func TestDecodeOffline(t *testing.T) {
	raw := "gateway_id: gw\nkafka:\n  brokers: [\"${BROKER}\"]\n  batch_size: ${BATCH}\n  sasl:\n    password: ${file:/nonexistent/pw}\n" +
		"mqtt:\n  - name: a\n    broker: tcp://${HOST}:1883\n"
	var c testConfig
	idx, err := DecodeOffline("f.yaml", []byte(raw), &c, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.Brokers[0] != "${BROKER}" || c.Kafka.BatchSize != 0 || c.Kafka.SASL.Password != "${file:/nonexistent/pw}" || c.MQTT[0].Broker != "tcp://${HOST}:1883" {
		t.Errorf("decoded %+v", c)
	}
	for _, p := range []string{"kafka.brokers[0]", "kafka.batch_size", "kafka.sasl.password", "mqtt[0].broker"} {
		if !idx.Unresolved(p) {
			t.Errorf("%s is not unresolved", p)
		}
	}
	if idx.Unresolved("kafka.brokers") || idx.Unresolved("gateway_id") || idx.Unresolved("mqtt[0].name") {
		t.Error("a field without a reference is unresolved")
	}
	// Syntax is still checked, and a type error without a reference is still one.
	for raw, want := range map[string]string{
		"gateway_id: ${not a name}\n":    "f.yaml:1: gateway_id: ${not a name}: not an environment variable name",
		"gateway_id: ${file:}\n":         "f.yaml:1: gateway_id: ${file:} needs a path",
		"kafka: {batch_size: \"${X\"}\n": "f.yaml:1: kafka.batch_size: unclosed ${",
		"kafka:\n  batch_size: many\n":   `f.yaml:2: kafka.batch_size: "many" is a string, want a whole number`,
	} {
		var c testConfig
		if _, err := DecodeOffline("f.yaml", []byte(raw), &c, ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", raw, err, want)
		}
	}
}

// A problem of another file names that file.
func TestProblemFile(t *testing.T) {
	e := &Error{File: "main.yaml", Problems: []Problem{{Line: 2, Field: "a", Msg: "x"}, {File: "conf.d/b.yaml", Line: 3, Field: "b", Msg: "y"}}}
	if got, want := e.Error(), "main.yaml:2: a: x\nconf.d/b.yaml:3: b: y"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
