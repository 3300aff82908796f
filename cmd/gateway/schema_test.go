package main

// The JSON Schema of the configuration (configs/gateway.schema.json, printed by `gateway schema`) is written from
// the Go config structs and their doc comments by TestSchema (-update rewrites it), so it cannot drift from them.

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/configs"
)

// The packages whose structs make up Config, by import path, and their folders here.
var schemaPackages = map[string]string{
	"github.com/fieldgate/fieldgate":                  "../..",
	"github.com/fieldgate/fieldgate/buffer":           "../../buffer",
	"github.com/fieldgate/fieldgate/forward":          "../../forward",
	"github.com/fieldgate/fieldgate/internal/logging": "../../internal/logging",
	"github.com/fieldgate/fieldgate/protocols/mqtt":   "../../protocols/mqtt",
	"github.com/fieldgate/fieldgate/protocols/modbus": "../../protocols/modbus",
	"github.com/fieldgate/fieldgate/protocols/opcua":  "../../protocols/opcua",
	"github.com/fieldgate/fieldgate/cmd/gateway":      ".",
}

// schemaEnums lists the values Validate accepts for fields that take one of a few words (TestSchemaEnums checks
// each against Validate). Keyed by Go type and field.
var schemaEnums = map[string][]string{
	"logging.Config.Level":           {"debug", "info", "warn", "error"},
	"logging.Config.Format":          {"text", "json"},
	"buffer.Config.WhenFull":         {"drop_oldest", "drop_newest"},
	"forward.Config.Compression":     {"none", "snappy", "lz4", "zstd", "gzip"},
	"fieldgate.SASLConfig.Mechanism": {"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"},
	"mqtt.Subscription.Format":       {"json", "value"},
	"mqtt.Timestamp.Format":          {"unix_s", "unix_ms", "unix_us", "unix_ns", "rfc3339"},
	"modbus.Config.Transport":        {"tcp", "tcp+tls", "rtu", "rtu_over_tcp"},
	"modbus.Tag.Register":            {"holding", "input", "coil", "discrete"},
	"modbus.AddressRange.Register":   {"holding", "input", "coil", "discrete"},
	"modbus.Tag.Type":                {"bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"},
	"modbus.Device.ByteOrder":        {"ABCD", "DCBA", "BADC", "CDAB"},
	"modbus.Tag.ByteOrder":           {"ABCD", "DCBA", "BADC", "CDAB"},
	"modbus.Serial.Parity":           {"none", "even", "odd"},
	"opcua.Security.Mode":            {"SignAndEncrypt", "Sign", "None"},
	"opcua.Security.Policy":          {"Aes256_Sha256_RsaPss", "Aes128_Sha256_RsaOaep", "Basic256Sha256", "Basic256", "Basic128Rsa15", "None"},
	"opcua.Auth.Method":              {"anonymous", "username", "certificate"},
	"opcua.Group.Mode":               {"subscribe", "poll"},
	"opcua.Group.Trigger":            {"status", "status_value", "status_value_timestamp"},
	"opcua.Group.Deadband":           {"none", "absolute", "percent"},
	"opcua.Group.Arrays":             {"elements", "string"},
	"opcua.Node.Arrays":              {"elements", "string"},
}

var updateSchema = update // -update rewrites configs/gateway.schema.json too

// TestSchema writes the schema from the structs and their doc comments and compares it with
// configs/gateway.schema.json, which `gateway schema` prints.
func TestSchema(t *testing.T) {
	got := buildSchema(t)
	const path = "../../configs/gateway.schema.json"
	if *updateSchema {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, configs.GatewaySchema) {
		t.Errorf("%s is not what the config structs give: run go test ./cmd/gateway -run TestSchema -update", path)
	}
}

// Every example configuration is valid under the schema, and the schema refuses what the loader refuses most
// often: a misspelt key, a word not in an enum, a string where a number goes.
func TestSchemaValidatesExamples(t *testing.T) {
	var schema map[string]any
	if err := json.Unmarshal(configs.GatewaySchema, &schema); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../configs/*.yaml")
	files = append(files, "testdata/good/all_inputs.yaml")
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "central") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(filepath.Base(f), "all_inputs") && !strings.Contains(string(raw), "# yaml-language-server: $schema=gateway.schema.json") {
			t.Errorf("%s lacks the yaml-language-server $schema line", f)
		}
		var doc any
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if errs := schemaCheck(schema, schema, doc, ""); len(errs) > 0 {
			t.Errorf("%s against the schema:\n%s", f, strings.Join(errs, "\n"))
		}
	}
	for doc, want := range map[string]string{
		"gateway_id: a\nkafka: {brokerz: [a:1]}\n":                       "kafka.brokerz: unknown key brokerz",
		"kafka: {compression: brotli}\n":                                 "kafka.compression: brotli is not one of",
		"kafka: {batch_size: many}\n":                                    "kafka.batch_size: want integer",
		"kafka: {batch_size: \"${BATCH}\"}\nbuffer: {max_bytes: 1GiB}\n": "",
		"buffer: {commit_interval: soon}\n":                              "buffer.commit_interval: soon is not a duration",
	} {
		var d any
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatal(err)
		}
		errs := strings.Join(schemaCheck(schema, schema, d, ""), "\n")
		if (want == "") != (errs == "") || !strings.Contains(errs, want) {
			t.Errorf("%q: %q, want %q", doc, errs, want)
		}
	}
}

// Every enum value of the schema is one Validate accepts.
func TestSchemaEnums(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.yaml")
	raw, err := os.ReadFile("testdata/good/all_inputs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Every struct an enum lives in must be there: a timestamp, a forbidden range, TLS (for SASL PLAIN).
	raw = bytes.Replace(raw, []byte("        device: \"{line}/{device}\"\n"), []byte("        device: \"{line}/{device}\"\n        timestamp: {path: ts}\n"), 1)
	raw = bytes.Replace(raw, []byte("        unit_id: 3\n"), []byte("        unit_id: 3\n        forbidden: [{register: holding, start: 100}]\n"), 1)
	raw = bytes.Replace(raw, []byte("  brokers: [127.0.0.1:9092]\n"), []byte("  brokers: [127.0.0.1:9092]\n  tls: {enabled: true}\n"), 1)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := loadPath(path, "", false)
	if err != nil {
		t.Fatal(err)
	}
	base := l.cfg
	for key, values := range schemaEnums {
		for _, v := range values {
			c := *base
			c.MQTT = append(c.MQTT[:0:0], base.MQTT...)
			c.Modbus = append(c.Modbus[:0:0], base.Modbus...)
			c.OPCUA = append(c.OPCUA[:0:0], base.OPCUA...)
			path, ok := setEnum(&c, key, v)
			if !ok {
				t.Errorf("%s: no field of the configuration", key)
				break
			}
			for _, e := range flattenFieldErrors(c.Validate()) {
				if strings.HasPrefix(e, path+":") {
					t.Errorf("%s = %q is refused: %s", key, v, e)
				}
			}
		}
	}
}

// ---- writing the schema -------------------------------------------------------------------------------------------

func buildSchema(t *testing.T) []byte {
	t.Helper()
	docs := fieldDocs(t)
	s := schemaOf(reflect.TypeFor[Config](), docs, map[reflect.Type]bool{})
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://github.com/fieldgate/fieldgate/configs/gateway.schema.json"
	s["title"] = "fieldgate gateway configuration"
	s["description"] = "The gateway's configuration file, or one of its drop-in files (conf.d/*.yaml). Any value may be ${ENV_VAR} or ${file:PATH}. Written by cmd/gateway's TestSchema from the Go config structs; `gateway schema` prints it."
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

const schemaRef = `\$\{`

var (
	durationPattern = `^(` + schemaRef + `.*|[-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+|0)$`
	sizePattern     = `^(` + schemaRef + `.*|[0-9.]+ ?([KMGT]i?)?[Bb]?)$`
)

func schemaOf(t reflect.Type, docs map[string]string, seen map[reflect.Type]bool) map[string]any {
	switch {
	case t == durationType:
		return map[string]any{"type": "string", "pattern": durationPattern}
	case t == byteSizeType:
		return map[string]any{"anyOf": []any{map[string]any{"type": "integer", "minimum": 0}, map[string]any{"type": "string", "pattern": sizePattern}}}
	case t == secretType:
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem(), docs, seen)
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return withRef("boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return withRef("integer")
	case reflect.Float32, reflect.Float64:
		return withRef("number")
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), docs, seen)}
	case reflect.Struct:
		props := map[string]any{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			key := yamlKey(f)
			if !f.IsExported() || key == "-" {
				continue
			}
			p := schemaOf(f.Type, docs, seen)
			id := typeKey(t) + "." + f.Name
			if d := docs[id]; d != "" {
				p["description"] = d
			}
			if vs, ok := schemaEnums[id]; ok {
				p["anyOf"] = []any{map[string]any{"type": "string", "enum": vs}, map[string]any{"type": "string", "pattern": schemaRef}}
				delete(p, "type")
			}
			props[key] = p
		}
		return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	}
	panic("schema: no rule for " + t.String())
}

// withRef is a scalar type that may also be a ${…} reference (a string in YAML).
func withRef(typ string) map[string]any {
	return map[string]any{"anyOf": []any{map[string]any{"type": typ}, map[string]any{"type": "string", "pattern": schemaRef}}}
}

// typeKey is "package.Type" for a struct type, the key of fieldDocs and schemaEnums.
func typeKey(t reflect.Type) string {
	pkg := t.PkgPath()
	if pkg == "main" {
		pkg = "github.com/fieldgate/fieldgate/cmd/gateway"
	}
	return filepath.Base(pkg) + "." + t.Name()
}

// fieldDocs reads the doc comments of every struct field of the schema's packages, keyed "package.Type.Field",
// as one paragraph. A field without one takes the comment of the field before it when that names it ("MinBackoff
// and MaxBackoff bound …").
func fieldDocs(t *testing.T) map[string]string {
	t.Helper()
	docs := map[string]string{}
	for path, dir := range schemaPackages {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, pkg := range pkgs {
			ast.Inspect(pkg, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok {
					return true
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					return true
				}
				prev := ""
				for _, f := range st.Fields.List {
					text := ""
					if f.Doc != nil {
						text = f.Doc.Text()
					}
					if f.Comment != nil {
						text += " " + f.Comment.Text()
					}
					text = strings.Join(strings.Fields(text), " ")
					for _, name := range f.Names {
						d := text
						if d == "" && strings.Contains(prev, name.Name) {
							d = prev
						}
						if d != "" {
							docs[filepath.Base(path)+"."+ts.Name.Name+"."+name.Name] = d
						}
					}
					if text != "" {
						prev = text
					}
				}
				return true
			})
		}
	}
	return docs
}

// ---- checking a document against the schema (the subset buildSchema writes) ----------------------------------------

func schemaCheck(root, s map[string]any, v any, path string) []string {
	if alts, ok := s["anyOf"].([]any); ok {
		var first []string
		for i, a := range alts {
			errs := schemaCheck(root, a.(map[string]any), v, path)
			if len(errs) == 0 {
				return nil
			}
			if i == 0 {
				first = errs
			}
		}
		return first
	}
	var errs []string
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return []string{path + ": want an object"}
		}
		props := s["properties"].(map[string]any)
		for k, val := range m {
			p, ok := props[k]
			if !ok {
				errs = append(errs, joinKey(path, k)+": unknown key "+k)
				continue
			}
			errs = append(errs, schemaCheck(root, p.(map[string]any), val, joinKey(path, k))...)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return []string{path + ": want an array"}
		}
		for i, e := range a {
			errs = append(errs, schemaCheck(root, s["items"].(map[string]any), e, path+"["+itoa(i)+"]")...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return []string{path + ": want string"}
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			kind := "does not match " + p
			if p == durationPattern {
				kind = "is not a duration"
			}
			return []string{path + ": " + str + " " + kind}
		}
	case "integer":
		switch v.(type) {
		case int, int64, uint64:
		default:
			return []string{path + ": want integer"}
		}
	case "number":
		switch v.(type) {
		case int, int64, uint64, float64:
		default:
			return []string{path + ": want number"}
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return []string{path + ": want boolean"}
		}
	}
	if e, ok := s["enum"].([]string); ok {
		if str, _ := v.(string); !contains(e, str) {
			errs = append(errs, path+": "+str+" is not one of "+strings.Join(e, ", "))
		}
	} else if e, ok := s["enum"].([]any); ok {
		found := false
		for _, x := range e {
			found = found || x == v
		}
		if !found {
			errs = append(errs, path+": "+toStr(v)+" is not one of the enum")
		}
	}
	return errs
}

func joinKey(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func itoa(i int) string  { return strings.TrimSpace(toStr(i)) }
func toStr(v any) string { b, _ := json.Marshal(v); return strings.Trim(string(b), `"`) }

// ---- setting an enum field on a config --------------------------------------------------------------------------

// setEnum sets the first field of c (or of its first input of that kind, its first group, tag, …) that key names to
// v, and returns its YAML path.
func setEnum(c *Config, key, v string) (string, bool) {
	return setIn(reflect.ValueOf(c).Elem(), key, v, "")
}

func setIn(rv reflect.Value, key, v, path string) (string, bool) {
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return "", false
		}
		return setIn(rv.Elem(), key, v, path)
	case reflect.Slice:
		if rv.Len() == 0 {
			return "", false
		}
		// Copy the slice so that the base config is not changed.
		cp := reflect.MakeSlice(rv.Type(), rv.Len(), rv.Len())
		reflect.Copy(cp, rv)
		rv.Set(cp)
		return setIn(rv.Index(0), key, v, path+"[0]")
	case reflect.Struct:
		if rv.Type() == reflect.TypeFor[time.Time]() {
			return "", false
		}
		for i := 0; i < rv.NumField(); i++ {
			f := rv.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			p := joinKey(path, yamlKey(f))
			if typeKey(rv.Type())+"."+f.Name == key {
				rv.Field(i).SetString(v)
				return p, true
			}
			if p, ok := setIn(rv.Field(i), key, v, p); ok {
				return p, true
			}
		}
	}
	return "", false
}

func flattenFieldErrors(err error) []string {
	var out []string
	for _, e := range fieldgate.Flatten(err) {
		out = append(out, e.Error())
	}
	return out
}
