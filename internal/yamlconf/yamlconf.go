// Package yamlconf loads a YAML configuration file into a Go struct the way both fieldgate commands want it:
//
//   - every key must be known: a key the struct has no field for is an error at its line, with a "did you mean"
//     suggestion (or the list of keys known there);
//   - ${NAME}, ${file:PATH} and $${ are substituted in scalar values, one node at a time after parsing (see
//     Decode), so a secret cannot change the document's shape or its line numbers;
//   - every problem is reported as "file:line: field: message", where field is the YAML path
//     ("mqtt[0].subscriptions[1].qos"); Index.Locate maps the paths of fieldgate.FieldError (from Validate) to
//     lines.
//
// Defaults and validation belong to the caller: Decode only parses, substitutes, checks keys and decodes.
package yamlconf

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

// Error lists every problem found in a configuration file, each located at a line and field where known.
type Error struct {
	File     string
	Problems []Problem
}

// Problem is one configuration error: Line is 0 when the field does not appear in the file (a missing required
// field on the top level, say).
type Problem struct {
	File  string // the file at fault when it is not Error.File (a configuration read from several files)
	Line  int    // 1-based line in the file; 0 when unknown
	Field string // YAML path, e.g. "mqtt[0].subscriptions[1].qos"; "" for the document as a whole
	Msg   string
}

func (p Problem) format(file string) string {
	if p.File != "" {
		file = p.File
	}
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

// Error prints one line per problem, in order: "file:line: field: message", without ":line" when Line is 0 and
// without "field: " when Field is empty.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.format(e.File)
	}
	return strings.Join(lines, "\n")
}

// Decode parses raw (the contents of file) and decodes it into out, which must be a non-nil pointer to a struct.
// It returns the Index of the document's lines, for Index.Locate after validation. Decode applies no defaults
// and does not validate.
//
// Every problem is returned together as an *Error naming file: an empty file, a YAML syntax error, a second
// document (---), a top level that is not a mapping (the message shows example, say "kafka: …, database: …"),
// failed substitutions, unknown keys, and type errors. A type error on a line whose value was substituted does
// not echo the value, which may be a secret put in the wrong field.
//
// Substitution applies to scalar values, never to keys:
//
//	${NAME}        the environment variable NAME; an unset variable is an error (set it empty if you mean empty)
//	${file:PATH}   the contents of the file PATH (relative to file's folder), one trailing newline removed; PATH
//	               must be a regular file of at most 1 MiB (see ReadSecretFile)
//	$${            a literal "${"
//
// A substituted plain (unquoted) scalar resolves as if its text had been written there, so ${PORT} can fill an
// integer; it never resolves to null, so a password reading "null" or "~" stays that string. Values are never
// logged.
func Decode(file string, raw []byte, out any, example string) (*Index, error) {
	return decode(file, raw, out, example, false)
}

// DecodeOffline is Decode for a machine other than the one the file is for (a fleet's CI, a laptop): ${NAME} and
// ${file:PATH} are checked for their syntax but not read. A value holding one is left as written, so a type error
// or a Validate error at its field is not the file's fault; Index.Unresolved tells such fields.
func DecodeOffline(file string, raw []byte, out any, example string) (*Index, error) {
	return decode(file, raw, out, example, true)
}

// ErrEmpty is the message of the one Problem of a file that holds no document (nothing, or only comments).
const ErrEmpty = "empty configuration"

func decode(file string, raw []byte, out any, example string, offline bool) (*Index, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) || len(bytes.TrimSpace(raw)) == 0 {
			return nil, &Error{File: file, Problems: []Problem{{Msg: ErrEmpty}}}
		}
		p := yamlProblem(err.Error(), nil)
		p.Line = faultLine(raw, err.Error(), p.Line)
		return nil, &Error{File: file, Problems: []Problem{p}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: file, Problems: []Problem{{Line: extra.Line, Msg: "a second YAML document (---) is not allowed; put everything in one"}}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Problems: []Problem{{Line: root.Line, Msg: "the configuration must be a mapping of keys (" + example + ")"}}}
	}
	idx := newIndex(root)
	s := substituter{dir: filepath.Dir(file), offline: offline, seen: map[*yaml.Node]bool{}, substituted: map[int]bool{}}
	s.walk(root, "")
	idx.unresolved = s.unresolved
	kc := keyChecker{aliases: map[*yaml.Node]bool{}}
	kc.check(root, reflect.TypeOf(out), "")
	s.problems = append(s.problems, kc.problems...)
	if len(s.problems) > 0 {
		return nil, &Error{File: file, Problems: s.problems}
	}
	if err := root.Decode(out); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var ps []Problem
			for _, m := range te.Errors {
				p := yamlProblem(m, idx)
				switch {
				case offline && s.substituted[p.Line]:
					continue // a reference left as written, in a field that is not a string
				case s.substituted[p.Line]:
					// The value may be a secret put in the wrong field: do not echo it.
					p.Msg = hideValue(p.Msg)
				}
				ps = append(ps, p)
			}
			if len(ps) == 0 {
				return idx, nil
			}
			return nil, &Error{File: file, Problems: ps}
		}
		return nil, &Error{File: file, Problems: []Problem{{Msg: err.Error()}}}
	}
	return idx, nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlProblem turns one of yaml.v3's messages ("line 7: cannot unmarshal …") into a Problem at that line, naming
// the field that stands there when idx knows it.
func yamlProblem(msg string, idx *Index) Problem {
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

// faultLine returns the line where yaml.v3 found the syntax error msg in raw. yaml.v3 names the start of the
// enclosing block instead (its "context mark", counted from 0 for parser errors), so an unclosed bracket deep in
// a list is reported at the list's parent key, and a tab one line early. The line at fault is where the error
// first appears: the shortest prefix of whole lines that fails with the same message is found by bisection. It
// returns reported when no prefix does.
func faultLine(raw []byte, msg string, reported int) int {
	var ends []int // ends[i]: the length of the first i+1 lines
	for i, c := range raw {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(raw) {
		ends = append(ends, len(raw))
	}
	same := func(n int) bool { // the first n lines fail as the whole file does
		var doc yaml.Node
		err := yaml.NewDecoder(bytes.NewReader(raw[:ends[n-1]])).Decode(&doc)
		return err != nil && err.Error() == msg
	}
	lo, hi := 1, len(ends)
	if !same(hi) {
		return reported
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if same(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
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

// Index maps the YAML path of every key and sequence item ("mqtt[0].subscriptions[1].qos") to its line.
type Index struct {
	byPath     map[string]int
	byLine     map[int]string // the deepest path whose key or item starts on a line
	unresolved []string       // DecodeOffline: the fields whose values hold a reference that was not read
}

func newIndex(root *yaml.Node) *Index {
	idx := &Index{byPath: map[string]int{}, byLine: map[int]string{}}
	idx.add(root, "")
	return idx
}

func (idx *Index) set(path string, line int) {
	idx.byPath[path] = line
	if old, ok := idx.byLine[line]; !ok || len(path) > len(old) {
		idx.byLine[line] = path
	}
}

func (idx *Index) add(n *yaml.Node, path string) {
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

// Has reports whether path (a key or a sequence item) is written in the file.
func (idx *Index) Has(path string) bool {
	_, ok := idx.byPath[path]
	return ok
}

// Unresolved reports whether path, or a field that holds it, has a value with a ${…} reference that
// DecodeOffline did not read.
func (idx *Index) Unresolved(path string) bool {
	for _, u := range idx.unresolved {
		if path == u || strings.HasPrefix(path, u+".") || strings.HasPrefix(path, u+"[") {
			return true
		}
	}
	return false
}

// Line returns the line of path, or of its nearest ancestor present in the file; 0 when none is.
func (idx *Index) Line(path string) int {
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

// Locate turns err (FieldErrors joined with errors.Join, from Validate or New) into a *Error naming file: each
// fieldgate.FieldError becomes a Problem at the line of its field (or of the field's nearest ancestor in the
// file), any other error a Problem without line or field. Problems are sorted by line, stably.
func (idx *Index) Locate(file string, err error) *Error {
	ce := &Error{File: file}
	for _, e := range fieldgate.Flatten(err) {
		var fe *fieldgate.FieldError
		if errors.As(e, &fe) {
			ce.Problems = append(ce.Problems, Problem{Line: idx.Line(fe.Field), Field: fe.Field, Msg: fe.Err.Error()})
		} else {
			ce.Problems = append(ce.Problems, Problem{Msg: e.Error()})
		}
	}
	sort.SliceStable(ce.Problems, func(i, j int) bool { return ce.Problems[i].Line < ce.Problems[j].Line })
	return ce
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
	offline     bool     // check references without reading them (DecodeOffline)
	unresolved  []string // offline: the paths of the values holding one
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
		v, err := expand(n.Value, s.dir, s.offline)
		if err != nil {
			s.problems = append(s.problems, Problem{Line: n.Line, Field: path, Msg: err.Error()})
			return
		}
		s.substituted[n.Line] = true
		if s.offline {
			s.unresolved = append(s.unresolved, path)
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

// expand substitutes every reference in v; with syntaxOnly it checks them and reads nothing.
func expand(v, dir string, syntaxOnly bool) (string, error) {
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
			if syntaxOnly {
				continue
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			data, err := ReadSecretFile(p)
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
		if syntaxOnly {
			continue
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

// ReadSecretFile reads a secret the way ${file:PATH} does: path must be a regular file of at most 1 MiB (a
// secret or a certificate, never a device or a FIFO). The contents are returned as they are.
func ReadSecretFile(path string) ([]byte, error) {
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
