package main

// Loading a configuration: the main file and its drop-ins, merged, validated completely (the same checks for
// `validate`, the start and every reload), with every default applied and hashed.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/buffer"
	"github.com/fieldgate/fieldgate/forward"
	"github.com/fieldgate/fieldgate/internal/yamlconf"
)

// sourceFile is one file a configuration is read from, as read.
type sourceFile struct {
	Path string `json:"path"`
	Data string `json:"data"`
}

// loaded is a configuration that passed every check: what the gateway runs.
type loaded struct {
	cfg   *Config // every default applied (Config.effective)
	hash  string  // configHash of cfg; empty for a configuration loaded offline
	files []sourceFile
}

// defaultConfDir is the drop-in directory of a configuration file: conf.d beside it.
func defaultConfDir(path string) string { return filepath.Join(filepath.Dir(path), "conf.d") }

// readFiles reads the configuration file at path, then the drop-in files of confdir: every regular file whose
// name ends in .yaml and does not start with a dot, in name order. A confdir that does not exist has none.
func readFiles(path, confdir string) ([]sourceFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	files := []sourceFile{{Path: path, Data: string(raw)}}
	if confdir == "" {
		return files, nil
	}
	entries, err := os.ReadDir(confdir)
	if errors.Is(err, fs.ErrNotExist) {
		return files, nil
	}
	if err != nil {
		return nil, fmt.Errorf("drop-in directory: %w", err)
	}
	for _, e := range entries { // sorted by name
		if !isDropIn(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(confdir, e.Name())
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		files = append(files, sourceFile{Path: p, Data: string(raw)})
	}
	return files, nil
}

func isDropIn(name string) bool {
	return strings.HasSuffix(name, ".yaml") && !strings.HasPrefix(name, ".")
}

// loadPath reads and loads the configuration at path with the drop-ins of confdir.
func loadPath(path, confdir string, offline bool) (*loaded, error) {
	files, err := readFiles(path, confdir)
	if err != nil {
		return nil, err
	}
	return load(files, offline)
}

// load parses every file, merges them, validates the result completely (every component's Validate, what spans
// inputs, every component built with New, and online the certificate and key files read), and applies every
// default. Every problem comes back together as a *yamlconf.Error naming each one's file, line and field.
//
// offline is for a machine other than the gateway (a fleet's CI, a laptop): ${…} references are checked for
// their syntax only (a problem of a field holding one is not reported), files that exist on the gateway only
// (certificates, keys, serial devices) are not opened, and no hash is computed (the secrets are not known).
func load(files []sourceFile, offline bool) (*loaded, error) {
	m, err := merge(files, offline)
	if err != nil {
		return nil, err
	}
	cfg := m.cfg
	cfg.applyDefaults()
	if err := m.locate(cfg.Validate()); err != nil {
		return nil, err
	}
	eff := cfg.effective()
	if err := m.locate(eff.build()); err != nil {
		return nil, err
	}
	l := &loaded{cfg: eff, files: files}
	if !offline {
		if err := m.locate(eff.checkFiles()); err != nil {
			return nil, err
		}
		l.hash = configHash(eff)
	}
	return l, nil
}

// build constructs every component of c (New: no I/O) and returns their refusals as FieldErrors.
func (c *Config) build() error {
	var errs []error
	if _, err := forward.New(c.Kafka, c.GatewayID, nil); err != nil {
		errs = append(errs, fieldgate.WithField("kafka", err))
	}
	for _, in := range c.inputs() {
		if _, err := in.build(slog.New(slog.DiscardHandler)); err != nil {
			errs = append(errs, fieldgate.WithField(in.field, err))
		}
	}
	return errors.Join(errs...)
}

// checkFiles reads the certificate and key files of every TLS setting that is on and checks that the OPC UA
// inputs' files are there, so that a missing or bad file is reported with its line before anything starts,
// rather than by an input failing at run time.
func (c *Config) checkFiles() error {
	var errs []error
	tlsFiles := func(field string, t fieldgate.TLSConfig) {
		if _, err := t.Build(); err != nil {
			errs = append(errs, fieldgate.FieldErrorf(field, "%v", err))
		}
	}
	tlsFiles("kafka.tls", c.Kafka.TLS)
	for i, m := range c.MQTT {
		tlsFiles(fmt.Sprintf("mqtt[%d].tls", i), m.TLS)
	}
	for i, m := range c.Modbus {
		tlsFiles(fmt.Sprintf("modbus[%d].tls", i), m.TLS)
	}
	for i, o := range c.OPCUA {
		for field, p := range map[string]string{"security.cert_file": o.Security.CertFile, "security.key_file": o.Security.KeyFile,
			"security.server_ca_file": o.Security.ServerCAFile, "auth.cert_file": o.Auth.CertFile, "auth.key_file": o.Auth.KeyFile} {
			if p == "" {
				continue
			}
			if _, err := yamlconf.ReadSecretFile(p); err != nil {
				errs = append(errs, fieldgate.FieldErrorf(fmt.Sprintf("opcua[%d].%s", i, field), "%s: %v", p, err))
			}
		}
	}
	return errors.Join(errs...)
}

// ---- merging the files --------------------------------------------------------------------------------------------

// listKeys are the top-level keys whose lists every file adds to; any other top-level key is set in one file.
var listKeys = map[string]bool{"mqtt": true, "modbus": true, "opcua": true}

// merged is the configuration of several files, and where each of its parts came from.
type merged struct {
	cfg     *Config
	files   []parsedFile
	owner   map[string]int      // top-level key → the file that sets it
	items   map[string][][2]int // list key → per merged item: {file, its index in that file}
	offline bool
}

type parsedFile struct {
	path string
	idx  *yamlconf.Index // nil for an empty drop-in
}

// merge decodes each file and merges them: the main file first, then the drop-ins. The lists of inputs (mqtt,
// modbus, opcua) are joined in that order; every other top-level key may be set in one file only, so that what
// runs never depends on which file wins.
func merge(files []sourceFile, offline bool) (*merged, error) {
	m := &merged{cfg: &Config{}, owner: map[string]int{}, items: map[string][][2]int{}, offline: offline}
	var problems []yamlconf.Problem
	fail := func(err error, file string) {
		var ce *yamlconf.Error
		if !errors.As(err, &ce) {
			problems = append(problems, yamlconf.Problem{File: file, Msg: err.Error()})
			return
		}
		for _, p := range ce.Problems {
			p.File = ce.File
			problems = append(problems, p)
		}
	}
	dst := reflect.ValueOf(m.cfg).Elem()
	for fi, f := range files {
		var c Config
		decode := yamlconf.Decode
		if offline {
			decode = yamlconf.DecodeOffline
		}
		idx, err := decode(f.Path, []byte(f.Data), &c, "gateway_id: …, mqtt: …")
		m.files = append(m.files, parsedFile{path: f.Path, idx: idx})
		if err != nil {
			var ce *yamlconf.Error
			if fi > 0 && errors.As(err, &ce) && len(ce.Problems) == 1 && ce.Problems[0].Msg == yamlconf.ErrEmpty {
				continue // an empty drop-in adds nothing
			}
			fail(err, f.Path)
			continue
		}
		src := reflect.ValueOf(c)
		for i := 0; i < dst.NumField(); i++ {
			key := yamlKey(dst.Type().Field(i))
			if listKeys[key] {
				for j := 0; j < src.Field(i).Len(); j++ {
					dst.Field(i).Set(reflect.Append(dst.Field(i), src.Field(i).Index(j)))
					m.items[key] = append(m.items[key], [2]int{fi, j})
				}
				continue
			}
			if !idx.Has(key) {
				continue
			}
			if first, ok := m.owner[key]; ok {
				problems = append(problems, yamlconf.Problem{File: f.Path, Line: idx.Line(key), Field: key,
					Msg: fmt.Sprintf("also set in %s:%d; every top-level key but mqtt, modbus and opcua is set in one file only",
						files[first].Path, m.files[first].idx.Line(key))})
				continue
			}
			m.owner[key] = fi
			dst.Field(i).Set(src.Field(i))
		}
	}
	if len(problems) > 0 {
		return nil, &yamlconf.Error{File: files[0].Path, Problems: problems}
	}
	return m, nil
}

func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

// place returns the file (its index) and the path within it of a merged path such as "mqtt[3].broker".
func (m *merged) place(path string) (int, string) {
	cut := strings.IndexAny(path, ".[")
	top := path
	if cut >= 0 {
		top = path[:cut]
	}
	if listKeys[top] && cut >= 0 && path[cut] == '[' {
		end := strings.IndexByte(path, ']')
		if k, err := strconv.Atoi(path[cut+1 : end]); err == nil && k < len(m.items[top]) {
			it := m.items[top][k]
			return it[0], fmt.Sprintf("%s[%d]%s", top, it[1], path[end+1:])
		}
	}
	return m.owner[top], path // a key no file sets belongs to the main file
}

// where writes a merged path as file:line.
func (m *merged) where(path string) string {
	fi, local := m.place(path)
	f := m.files[fi]
	if line := f.idx.Line(local); line > 0 {
		return fmt.Sprintf("%s:%d", f.path, line)
	}
	return f.path
}

// locate turns err (FieldErrors from Validate or New, joined) into a *yamlconf.Error: each problem at its file,
// line and field as written there. Offline, a problem at a field whose value holds an unread reference is
// dropped. It returns nil when no problem is left.
func (m *merged) locate(err error) error {
	var problems []yamlconf.Problem
	for _, e := range fieldgate.Flatten(err) {
		var fe *fieldgate.FieldError
		if !errors.As(e, &fe) {
			problems = append(problems, yamlconf.Problem{Msg: e.Error()})
			continue
		}
		fi, local := m.place(fe.Field)
		f := m.files[fi]
		if m.offline && f.idx.Unresolved(local) {
			continue
		}
		msg := fe.Err.Error()
		var also alsoAt
		if errors.As(fe.Err, &also) {
			msg = also.withPlace(m.where(also.other))
		}
		p := yamlconf.Problem{Line: f.idx.Line(local), Field: local, Msg: msg}
		if fi > 0 {
			p.File = f.path
		}
		problems = append(problems, p)
	}
	if len(problems) == 0 {
		return nil
	}
	order := func(p yamlconf.Problem) int {
		for i, f := range m.files {
			if f.path == p.File {
				return i
			}
		}
		return 0
	}
	slices.SortStableFunc(problems, func(a, b yamlconf.Problem) int {
		if d := order(a) - order(b); d != 0 {
			return d
		}
		return a.Line - b.Line
	})
	return &yamlconf.Error{File: m.files[0].path, Problems: problems}
}

// ---- the hash -----------------------------------------------------------------------------------------------------

// configHash is the SHA-256 (hex) of c written canonically: every field by its YAML name in declaration order,
// durations and sizes as they are written in YAML, and every fieldgate.Secret as the SHA-256 of its value, so that
// the hash changes when a password does without the password being in anything that is hashed. Two files that
// differ only in comments, order, references or defaults written out have the same hash.
func configHash(c *Config) string {
	var b bytes.Buffer
	canonical(&b, reflect.ValueOf(*c))
	sum := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(sum[:])
}

var (
	secretType   = reflect.TypeFor[fieldgate.Secret]()
	byteSizeType = reflect.TypeFor[buffer.ByteSize]()
)

func canonical(b *bytes.Buffer, v reflect.Value) {
	switch {
	case v.Type() == secretType:
		sum := sha256.Sum256([]byte(v.Interface().(fieldgate.Secret).Reveal()))
		fmt.Fprintf(b, "%q", "sha256:"+hex.EncodeToString(sum[:]))
		return
	case v.Type() == durationType:
		fmt.Fprintf(b, "%q", v.Interface().(time.Duration).String())
		return
	case v.Type() == byteSizeType:
		fmt.Fprintf(b, "%d", v.Int())
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			b.WriteString("null")
			return
		}
		canonical(b, v.Elem())
	case reflect.Struct:
		b.WriteByte('{')
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			key := yamlKey(f)
			if !f.IsExported() || key == "-" {
				continue
			}
			if key == "" {
				key = strings.ToLower(f.Name)
			}
			fmt.Fprintf(b, "%q:", key)
			canonical(b, v.Field(i))
			b.WriteByte(',')
		}
		b.WriteByte('}')
	case reflect.Slice, reflect.Array:
		b.WriteByte('[')
		for i := 0; i < v.Len(); i++ {
			canonical(b, v.Index(i))
			b.WriteByte(',')
		}
		b.WriteByte(']')
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		b.WriteByte('{')
		for _, k := range keys {
			fmt.Fprintf(b, "%q:", fmt.Sprint(k))
			canonical(b, v.MapIndex(k))
			b.WriteByte(',')
		}
		b.WriteByte('}')
	case reflect.String:
		fmt.Fprintf(b, "%q", v.String())
	default:
		fmt.Fprintf(b, "%v", v.Interface())
	}
}
