package main

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/buffer"
	"github.com/fieldgate/fieldgate/forward"
	"github.com/fieldgate/fieldgate/protocols/modbus"
	"github.com/fieldgate/fieldgate/protocols/mqtt"
	"github.com/fieldgate/fieldgate/protocols/opcua"
)

// Config is the gateway's configuration file. Every scalar value may use ${ENV_VAR} and ${file:PATH} (see
// substitute); every key must be known.
type Config struct {
	// GatewayID names this gateway; it is required, and sent with every record as a Kafka header.
	GatewayID string `yaml:"gateway_id"`
	// StateDir holds the buffer file (and the OPC UA certificates). Default /var/lib/fieldgate; a relative path is
	// taken from the working directory.
	StateDir string     `yaml:"state_dir"`
	Log      LogConfig  `yaml:"log"`
	HTTP     HTTPConfig `yaml:"http"`
	// Buffer is the durable store every reading passes through. Its path defaults to <state_dir>/buffer.db.
	Buffer buffer.Config   `yaml:"buffer"`
	Kafka  forward.Config  `yaml:"kafka"`
	MQTT   []mqtt.Config   `yaml:"mqtt"`
	Modbus []modbus.Config `yaml:"modbus"`
	// OPCUA inputs. Their generated client certificates go to <state_dir>/opcua unless security.state_dir says
	// otherwise.
	OPCUA []opcua.Config `yaml:"opcua"`
}

// LogConfig sets the daemon's log output (always standard error).
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn or error
	Format string `yaml:"format"` // text (default) or json
}

// HTTPConfig is the one HTTP listener serving /metrics, /healthz, /readyz and /api/status.
type HTTPConfig struct {
	// Listen is host:port; default 127.0.0.1:9100 (loopback only). Listening on another address exposes the
	// metrics and status, unauthenticated, to that network.
	Listen string `yaml:"listen"`
}

const (
	defaultStateDir = "/var/lib/fieldgate"
	defaultListen   = "127.0.0.1:9100"
)

// applyDefaults fills the gateway-level defaults; each component applies its own in New.
func (c *Config) applyDefaults() {
	if c.StateDir == "" {
		c.StateDir = defaultStateDir
	}
	if c.Buffer.Path == "" {
		c.Buffer.Path = filepath.Join(c.StateDir, "buffer.db")
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = defaultListen
	}
	for i := range c.MQTT {
		if c.MQTT[i].ClientID == "" && c.MQTT[i].Name != "" {
			// A fixed client id is what makes the broker keep the session (and queue messages) across restarts.
			c.MQTT[i].ClientID = "fieldgate-" + c.GatewayID + "-" + c.MQTT[i].Name
		}
	}
	for i := range c.OPCUA {
		if c.OPCUA[i].Security.StateDir == "" {
			c.OPCUA[i].Security.StateDir = filepath.Join(c.StateDir, "opcua")
		}
	}
}

var gatewayIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

// Validate checks the gateway's own fields and every component's Validate, and returns every problem found
// (joined FieldErrors).
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.GatewayID == "":
		errs = append(errs, fieldgate.FieldErrorf("gateway_id", "required: a name for this gateway, sent with every record"))
	case len(c.GatewayID) > 128 || !gatewayIDPattern.MatchString(c.GatewayID):
		errs = append(errs, fieldgate.FieldErrorf("gateway_id", "%q: use letters, digits and . _ : - (at most 128)", c.GatewayID))
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "warning", "error":
	default:
		errs = append(errs, fieldgate.FieldErrorf("log.level", "%q: want debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fieldgate.FieldErrorf("log.format", "%q: want text or json", c.Log.Format))
	}
	if _, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		errs = append(errs, fieldgate.FieldErrorf("http.listen", "%q: want host:port, e.g. 127.0.0.1:9100", c.HTTP.Listen))
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		errs = append(errs, fieldgate.FieldErrorf("http.listen", "%q: bad port", c.HTTP.Listen))
	}
	errs = append(errs, fieldgate.WithField("buffer", c.Buffer.Validate()))
	errs = append(errs, fieldgate.WithField("kafka", c.Kafka.Validate()))

	names := map[string]string{} // input name → field path of its first use
	useName := func(path, name string) {
		if name == "" {
			return // the component's Validate reports a missing name
		}
		if first, ok := names[name]; ok {
			errs = append(errs, fieldgate.FieldErrorf(path+".name", "duplicate input name %q (also used by %s); names must be unique across all inputs", name, first))
			return
		}
		names[name] = path
	}
	for i, m := range c.MQTT {
		path := fmt.Sprintf("mqtt[%d]", i)
		errs = append(errs, fieldgate.WithField(path, m.Validate()))
		useName(path, m.Name)
	}
	for i, m := range c.Modbus {
		path := fmt.Sprintf("modbus[%d]", i)
		errs = append(errs, fieldgate.WithField(path, m.Validate()))
		useName(path, m.Name)
	}
	for i, o := range c.OPCUA {
		path := fmt.Sprintf("opcua[%d]", i)
		errs = append(errs, fieldgate.WithField(path, o.Validate()))
		useName(path, o.Name)
	}
	if c.inputCount() == 0 {
		errs = append(errs, fieldgate.FieldErrorf("", "no input configured: add at least one entry under mqtt, modbus or opcua"))
	}
	return errors.Join(errs...)
}

func (c *Config) inputCount() int { return len(c.MQTT) + len(c.Modbus) + len(c.OPCUA) }

// ---- loading ----------------------------------------------------------------------------------------------------

// ConfigError lists every problem found in a configuration file, each located at a line and field where known.
type ConfigError struct {
	File     string
	Problems []Problem
}

// Problem is one configuration error: Line is 0 when the field does not appear in the file (a missing required
// field on the top level, say).
type Problem struct {
	Line  int
	Field string
	Msg   string
}

func (p Problem) format(file string) string {
	var b strings.Builder
	b.WriteString(file)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.format(e.File)
	}
	return strings.Join(lines, "\n")
}

// loadConfig reads, substitutes, decodes and validates the file at path, with defaults applied. Any problem comes
// back as a *ConfigError naming the file, line and field.
func loadConfig(path string) (*Config, *lineIndex, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	cfg, idx, err := parseConfig(path, raw)
	if err != nil {
		return nil, nil, err
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, nil, idx.locate(path, err)
	}
	if err := cfg.checkTLSFiles(); err != nil {
		return nil, nil, idx.locate(path, err)
	}
	return cfg, idx, nil
}

// checkTLSFiles reads the certificate and key files of every TLS setting that is on, so that a missing or bad
// file is reported with its line before anything starts, rather than by an input failing at run time.
func (c *Config) checkTLSFiles() error {
	var errs []error
	check := func(field string, t fieldgate.TLSConfig) {
		if _, err := t.Build(); err != nil {
			errs = append(errs, fieldgate.FieldErrorf(field, "%v", err))
		}
	}
	check("kafka.tls", c.Kafka.TLS)
	for i, m := range c.MQTT {
		check(fmt.Sprintf("mqtt[%d].tls", i), m.TLS)
	}
	for i, m := range c.Modbus {
		check(fmt.Sprintf("modbus[%d].tls", i), m.TLS)
	}
	return errors.Join(errs...)
}

// parseConfig decodes raw (the contents of file) into a Config: unknown keys, type errors and failed
// substitutions are reported with their lines. It applies no defaults and does not validate.
func parseConfig(file string, raw []byte) (*Config, *lineIndex, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) || len(bytes.TrimSpace(raw)) == 0 {
			return nil, nil, &ConfigError{File: file, Problems: []Problem{{Msg: "empty configuration"}}}
		}
		return nil, nil, &ConfigError{File: file, Problems: []Problem{yamlProblem(err.Error(), nil)}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, nil, &ConfigError{File: file, Problems: []Problem{{Line: extra.Line, Msg: "a second YAML document (---) is not allowed; put everything in one"}}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, &ConfigError{File: file, Problems: []Problem{{Line: root.Line, Msg: "the configuration must be a mapping of keys (gateway_id: …, mqtt: …)"}}}
	}
	idx := newLineIndex(root)
	s := substituter{dir: filepath.Dir(file), seen: map[*yaml.Node]bool{}, substituted: map[int]bool{}}
	s.walk(root, "")
	kc := keyChecker{aliases: map[*yaml.Node]bool{}}
	kc.check(root, reflect.TypeFor[Config](), "")
	s.problems = append(s.problems, kc.problems...)
	if len(s.problems) > 0 {
		return nil, nil, &ConfigError{File: file, Problems: s.problems}
	}
	var cfg Config
	if err := root.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			ps := make([]Problem, len(te.Errors))
			for i, m := range te.Errors {
				ps[i] = yamlProblem(m, idx)
				if s.substituted[ps[i].Line] {
					// The value may be a secret put in the wrong field: do not echo it.
					ps[i].Msg = hideValue(ps[i].Msg)
				}
			}
			return nil, nil, &ConfigError{File: file, Problems: ps}
		}
		return nil, nil, &ConfigError{File: file, Problems: []Problem{{Msg: err.Error()}}}
	}
	return &cfg, idx, nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlProblem turns one of yaml.v3's messages ("line 7: cannot unmarshal …") into a Problem at that line, naming
// the field that stands there when idx knows it.
func yamlProblem(msg string, idx *lineIndex) Problem {
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return Problem{Msg: strings.TrimPrefix(msg, "yaml: ")}
	}
	line, _ := strconv.Atoi(m[1])
	p := Problem{Line: line, Msg: m[2]}
	if idx != nil {
		p.Field = idx.byLine[line]
	}
	p.Msg = friendlyTypeError(p.Msg)
	return p
}

var quotedRE = regexp.MustCompile(`^"(?:[^"\\]|\\.)*"`)

// hideValue replaces the quoted value at the start of a friendlyTypeError message.
func hideValue(msg string) string {
	return quotedRE.ReplaceAllLiteralString(msg, "the substituted value")
}

var typeErrRE = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (.*)$")

// friendlyTypeError rewrites yaml.v3's "cannot unmarshal !!str `x` into uint8" in the words of the file.
func friendlyTypeError(msg string) string {
	m := typeErrRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	kinds := map[string]string{"str": "a string", "int": "a number", "float": "a number", "bool": "a boolean",
		"seq": "a list", "map": "a mapping", "null": "empty", "timestamp": "a timestamp", "binary": "binary"}
	got := kinds[m[1]]
	if got == "" {
		got = m[1]
	}
	var want string
	switch t := m[3]; {
	case t == "time.Duration":
		want = "a duration such as 500ms, 5s or 2m"
	case strings.HasPrefix(t, "[]"):
		want = "a list, e.g. [a, b] or one item per line under the key"
	case strings.HasPrefix(t, "map["), strings.Contains(t, "."):
		want = "a mapping of keys"
	case t == "bool":
		want = "true or false"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		want = "a whole number"
	case strings.HasPrefix(t, "float"):
		want = "a number"
	case t == "string":
		want = "a string"
	default:
		want = t
	}
	if m[1] == "seq" || m[1] == "map" {
		return fmt.Sprintf("got %s, want %s", got, want)
	}
	return fmt.Sprintf("%q is %s, want %s", m[2], got, want)
}

// lineIndex maps the YAML path of every key and sequence item ("mqtt[0].subscriptions[1].qos") to its line.
type lineIndex struct {
	byPath map[string]int
	byLine map[int]string // the deepest path whose key or item starts on a line
}

func newLineIndex(root *yaml.Node) *lineIndex {
	idx := &lineIndex{byPath: map[string]int{}, byLine: map[int]string{}}
	idx.add(root, "")
	return idx
}

func (idx *lineIndex) set(path string, line int) {
	idx.byPath[path] = line
	if old, ok := idx.byLine[line]; !ok || len(path) > len(old) {
		idx.byLine[line] = path
	}
}

func (idx *lineIndex) add(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.AliasNode:
		// The alias's target was indexed where it was defined.
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			idx.set(p, k.Line)
			if v.Line != k.Line && v.Kind == yaml.ScalarNode {
				idx.byLine[v.Line] = p
			}
			idx.add(v, p)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			idx.set(p, v.Line)
			idx.add(v, p)
		}
	}
}

// line returns the line of path, or of its nearest ancestor present in the file; 0 when none is.
func (idx *lineIndex) line(path string) int {
	for path != "" {
		if l, ok := idx.byPath[path]; ok {
			return l
		}
		cut := strings.LastIndexAny(path, ".[")
		if cut < 0 {
			return 0
		}
		path = path[:cut]
	}
	return 0
}

// locate turns err (FieldErrors joined with errors.Join, from Validate or New) into a *ConfigError with lines.
func (idx *lineIndex) locate(file string, err error) *ConfigError {
	ce := &ConfigError{File: file}
	for _, e := range flatten(err) {
		var fe *fieldgate.FieldError
		if errors.As(e, &fe) {
			ce.Problems = append(ce.Problems, Problem{Line: idx.line(fe.Field), Field: fe.Field, Msg: fe.Err.Error()})
		} else {
			ce.Problems = append(ce.Problems, Problem{Msg: e.Error()})
		}
	}
	sort.SliceStable(ce.Problems, func(i, j int) bool { return ce.Problems[i].Line < ce.Problems[j].Line })
	return ce
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// ---- unknown keys -----------------------------------------------------------------------------------------------

var (
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// check walks n beside the Go type t and reports every mapping key that t has no field for, with its line
// and a suggestion. Values of types with their own unmarshaler are decoded here, so that their errors, which
// yaml.v3 would return without a line, get one.
type keyChecker struct {
	aliases  map[*yaml.Node]bool // alias targets checked once: an alias bomb must not make the walk explode
	problems []Problem
}

func (kc *keyChecker) check(n *yaml.Node, t reflect.Type, path string) {
	problems := &kc.problems
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil || kc.aliases[n.Alias] {
			return
		}
		kc.aliases[n.Alias] = true
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(yamlUnmarshaler) || (n.Kind == yaml.ScalarNode && reflect.PointerTo(t).Implements(textUnmarshaler)) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				for _, m := range te.Errors {
					p := yamlProblem(m, nil)
					p.Field = path
					*problems = append(*problems, p)
				}
			} else {
				*problems = append(*problems, Problem{Line: n.Line, Field: path, Msg: err.Error()})
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // a type error that Decode reports
		}
		fields, anyKey := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				if !anyKey {
					*problems = append(*problems, Problem{Line: k.Line, Field: joinPath(path, k.Value), Msg: unknownKeyMsg(k.Value, fields)})
				}
				continue
			}
			kc.check(v, ft, joinPath(path, k.Value))
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for i, v := range n.Content {
				kc.check(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				kc.check(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value))
			}
		}
	}
}

// yamlFields returns the keys a struct accepts, as yaml.v3 names them, and whether an inline map accepts any key.
func yamlFields(t reflect.Type) (map[string]reflect.Type, bool) {
	fields := map[string]reflect.Type{}
	anyKey := false
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Map {
				anyKey = true
				continue
			}
			inner, innerAny := yamlFields(ft)
			for k, v := range inner {
				fields[k] = v
			}
			anyKey = anyKey || innerAny
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields, anyKey
}

func unknownKeyMsg(key string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for k := range fields {
		if d := editDistance(strings.ToLower(key), k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown field (did you mean %q?)", best)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "unknown field; known here: " + strings.Join(keys, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ---- ${ENV} and ${file:PATH} --------------------------------------------------------------------------------------

// substituter replaces references in scalar values, one node at a time after parsing, so that a secret holding
// YAML's special characters (": ", "#", quotes, newlines) stays one string and cannot change the document's shape
// or its line numbers:
//
//	${NAME}        the environment variable NAME; an unset variable is an error (set it empty if you mean empty)
//	${file:PATH}   the contents of the file PATH (relative to the config file's folder), one trailing newline
//	               removed: for systemd credentials ($CREDENTIALS_DIRECTORY) and Docker/Kubernetes secrets
//	$${            a literal "${"
//
// Keys are never substituted. Values are never logged.
type substituter struct {
	dir         string
	seen        map[*yaml.Node]bool
	substituted map[int]bool // lines with a substituted value
	problems    []Problem
}

func (s *substituter) walk(n *yaml.Node, path string) {
	if s.seen[n] {
		return
	}
	s.seen[n] = true
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			s.walk(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			s.walk(n.Content[i+1], joinPath(path, n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			s.walk(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		v, err := expand(n.Value, s.dir)
		if err != nil {
			s.problems = append(s.problems, Problem{Line: n.Line, Field: path, Msg: err.Error()})
			return
		}
		n.Value = v
		s.substituted[n.Line] = true
		if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 && n.Tag == "!!str" {
			// A plain scalar: let the substituted text resolve as if written there, so that ${PORT} can fill an
			// integer, but never to null, which would silently empty a password that reads "null" or "~".
			if tag := resolvedTag(v); tag != "!!null" {
				n.Tag = ""
			}
		}
	}
}

func resolvedTag(v string) string {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(v), &n); err != nil || len(n.Content) != 1 || n.Content[0].Kind != yaml.ScalarNode {
		return "!!str"
	}
	if v == "" {
		return "!!null"
	}
	return n.Content[0].ShortTag()
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand substitutes every reference in v.
func expand(v, dir string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(v, "${")
		if i < 0 {
			b.WriteString(v)
			return b.String(), nil
		}
		if i > 0 && v[i-1] == '$' { // $${ → ${
			b.WriteString(v[:i])
			b.WriteString("{")
			v = v[i+2:]
			continue
		}
		b.WriteString(v[:i])
		end := strings.IndexByte(v[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unclosed ${ in value (write $${ for a literal ${)")
		}
		ref := v[i+2 : i+end]
		v = v[i+end+1:]
		if p, ok := strings.CutPrefix(ref, "file:"); ok {
			if p == "" {
				return "", fmt.Errorf("${file:} needs a path")
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			data, err := readSecretFile(p)
			if err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				return "", fmt.Errorf("${file:%s}: cannot read the file: %v", p, err)
			}
			s := strings.TrimSuffix(string(data), "\n")
			b.WriteString(strings.TrimSuffix(s, "\r"))
			continue
		}
		if !envName.MatchString(ref) {
			return "", fmt.Errorf("${%s}: not an environment variable name; use ${NAME} or ${file:PATH}", ref)
		}
		val, ok := os.LookupEnv(ref)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", ref)
		}
		b.WriteString(val)
	}
}

// maxSecretFile bounds what ${file:PATH} reads: a secret or a certificate, not /dev/zero.
const maxSecretFile = 1 << 20

func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSecretFile {
		return nil, fmt.Errorf("larger than %d bytes", maxSecretFile)
	}
	return data, nil
}
