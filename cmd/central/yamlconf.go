// Code in this file is copied from cmd/gateway/config.go (package main there, so it cannot be imported): the
// YAML loading that reports file, line and field, unknown keys with suggestions, and ${ENV}/${file:PATH}
// substitution. TODO(lead): move both copies into one shared internal package.

package main

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fieldgate/fieldgate"
)

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
	return cfg, idx, nil
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
		return nil, nil, &ConfigError{File: file, Problems: []Problem{{Line: root.Line, Msg: "the configuration must be a mapping of keys (kafka: …, database: …)"}}}
	}
	idx := newLineIndex(root)
	s := substituter{dir: filepath.Dir(file), seen: map[*yaml.Node]bool{}}
	s.walk(root, "")
	checkKeys(root, reflect.TypeFor[Config](), "", &s.problems)
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

// checkKeys walks n beside the Go type t and reports every mapping key that t has no field for, with its line
// and a suggestion. Values of types with their own unmarshaler are decoded here, so that their errors, which
// yaml.v3 would return without a line, get one.
func checkKeys(n *yaml.Node, t reflect.Type, path string, problems *[]Problem) {
	if n.Kind == yaml.AliasNode {
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
			checkKeys(v, ft, joinPath(path, k.Value), problems)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for i, v := range n.Content {
				checkKeys(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), problems)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				checkKeys(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value), problems)
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
	dir      string
	seen     map[*yaml.Node]bool
	problems []Problem
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
			data, err := os.ReadFile(p)
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
