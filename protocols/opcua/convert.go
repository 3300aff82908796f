package opcua

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/gopcua/opcua/ua"
)

var errNeedNamespaces = errors.New("nsu= node id needs the server's namespace array")

// parseNodeID parses a node id in any of the OPC UA string forms. An nsu= id is resolved against namespaces, the
// server's NamespaceArray; with namespaces nil it returns errNeedNamespaces after checking the rest of the syntax.
func parseNodeID(s string, namespaces []string) (*ua.NodeID, error) {
	ident := s
	if i := strings.Index(s, ";"); i >= 0 && (strings.HasPrefix(s, "ns=") || strings.HasPrefix(s, "nsu=")) {
		ident = s[i+1:]
	}
	if len(ident) < 2 || !strings.Contains("isgb", ident[:1]) || ident[1] != '=' {
		return nil, fmt.Errorf("node id %q: want [ns=<index>;|nsu=<uri>;] followed by i=, s=, g= or b=", s)
	}
	if strings.HasPrefix(s, "nsu=") {
		semi := strings.Index(s, ";")
		if semi < 0 {
			return nil, fmt.Errorf("node id %q: nsu=<uri> must be followed by ;i=, ;s=, ;g= or ;b=", s)
		}
		uri, rest := s[4:semi], s[semi+1:]
		if _, err := ua.ParseNodeID("ns=1;" + rest); err != nil {
			return nil, fmt.Errorf("node id %q: %v", s, err)
		}
		if namespaces == nil {
			return nil, errNeedNamespaces
		}
		for i, u := range namespaces {
			if u == uri {
				return ua.ParseNodeID("ns=" + strconv.Itoa(i) + ";" + rest)
			}
		}
		return nil, fmt.Errorf("node id %q: namespace %q is not in the server's namespace array", s, uri)
	}
	id, err := ua.ParseNodeID(s)
	if err != nil {
		return nil, fmt.Errorf("node id %q: %v", s, err)
	}
	return id, nil
}

// qualityOf maps a StatusCode to a Quality by its two severity bits: 00 Good, 01 Uncertain, 10 and 11 Bad.
func qualityOf(code ua.StatusCode) fieldgate.Quality {
	switch uint32(code) >> 30 {
	case 0:
		return fieldgate.Good
	case 1:
		return fieldgate.Uncertain
	}
	return fieldgate.Bad
}

// target says where the readings of one node go.
type target struct {
	device, metric string
	arraysAsString bool
}

// bad is the reading of a node that has no value: the server refused it (unknown node, no access) or its id
// cannot be resolved.
func (t target) bad(status ua.StatusCode, now time.Time) fieldgate.Reading {
	return fieldgate.Reading{Device: t.device, Metric: t.metric, Quality: fieldgate.Bad, Status: uint32(status), GatewayTime: now}
}

// appendReadings converts one DataValue into readings: one for a scalar, one per element for an array (or one
// string when arraysAsString). now is the gateway time. The SourceTime is the source timestamp, else the server
// timestamp. A missing DataValue gives a Bad reading (BadNoData); a Good one without a value (a Null variant) an
// Uncertain reading. An empty array gives no reading in elements mode (and "[]" as a string).
func appendReadings(rs []fieldgate.Reading, t target, dv *ua.DataValue, now time.Time) []fieldgate.Reading {
	base := fieldgate.Reading{Device: t.device, Metric: t.metric, GatewayTime: now}
	if dv == nil {
		base.Quality, base.Status = fieldgate.Bad, uint32(ua.StatusBadNoData)
		return append(rs, base)
	}
	base.Status = uint32(dv.Status)
	base.Quality = qualityOf(dv.Status)
	base.SourceTime = dv.SourceTimestamp
	if base.SourceTime.IsZero() {
		base.SourceTime = dv.ServerTimestamp
	}
	if base.SourceTime.Before(minTime) {
		base.SourceTime = time.Time{}
	}
	if dv.Value == nil || dv.Value.Value() == nil {
		if base.Quality == fieldgate.Good {
			// A Good status without a value is a Null variant: nothing to store as a number.
			base.Quality = fieldgate.Uncertain
		}
		return append(rs, base)
	}
	v := dv.Value
	isArray := v.Has(0x80) || v.ArrayLength() > 0 || v.ArrayDimensions() != nil
	if !isArray {
		base.Value = scalarValue(v.Type(), v.Value())
		return append(rs, base)
	}
	elems := flatten(reflect.ValueOf(v.Value()), nil)
	if t.arraysAsString {
		base.Value = fieldgate.String(arrayJSON(v.Type(), elems))
		return append(rs, base)
	}
	for i, e := range elems {
		r := base
		r.Metric = t.metric + "[" + strconv.Itoa(i) + "]"
		r.Value = scalarValue(v.Type(), e.Interface())
		rs = append(rs, r)
	}
	return rs
}

// minTime: OPC UA's DateTime 0 (1601) means "no time".
var minTime = time.Date(1601, 1, 2, 0, 0, 0, 0, time.UTC)

// flatten returns the leaves of a (possibly multi-dimensional) array in row-major order.
func flatten(rv reflect.Value, out []reflect.Value) []reflect.Value {
	if rv.Kind() != reflect.Slice {
		return append(out, rv)
	}
	if rv.Type().Elem().Kind() == reflect.Slice && rv.Type().Elem().Elem().Kind() != reflect.Uint8 {
		for i := 0; i < rv.Len(); i++ {
			out = flatten(rv.Index(i), out)
		}
		return out
	}
	// a slice of leaves (a [][]byte is a slice of ByteStrings)
	if rv.Type().Elem().Kind() == reflect.Slice {
		for i := 0; i < rv.Len(); i++ {
			out = append(out, rv.Index(i))
		}
		return out
	}
	for i := 0; i < rv.Len(); i++ {
		out = append(out, rv.Index(i))
	}
	return out
}

// scalarValue converts one decoded OPC UA built-in value. Integers become Int (UInt64 above 2^63-1 becomes its
// decimal string, to stay exact), Float and Double Float, Boolean Bool; everything else a string: DateTime as
// RFC 3339 with nanoseconds, Guid in its canonical form, ByteString base64, NodeId/ExpandedNodeId in their string
// form, StatusCode as its number (Int), QualifiedName as "ns:name", LocalizedText its text, ExtensionObject
// its JSON.
func scalarValue(typ ua.TypeID, x any) fieldgate.Value {
	switch v := x.(type) {
	case bool:
		return fieldgate.Bool(v)
	case int8:
		return fieldgate.Int(int64(v))
	case uint8:
		return fieldgate.Int(int64(v))
	case int16:
		return fieldgate.Int(int64(v))
	case uint16:
		return fieldgate.Int(int64(v))
	case int32:
		return fieldgate.Int(int64(v))
	case uint32:
		return fieldgate.Int(int64(v))
	case int64:
		return fieldgate.Int(v)
	case uint64:
		if v > math.MaxInt64 {
			return fieldgate.String(strconv.FormatUint(v, 10))
		}
		return fieldgate.Int(int64(v))
	case float32:
		return fieldgate.Float(float64(v))
	case float64:
		return fieldgate.Float(v)
	case string:
		return fieldgate.String(v)
	case time.Time:
		return fieldgate.String(v.UTC().Format(time.RFC3339Nano))
	case *ua.GUID:
		return fieldgate.String(v.String())
	case []byte:
		return fieldgate.String(base64.StdEncoding.EncodeToString(v))
	case ua.XMLElement:
		return fieldgate.String(string(v))
	case *ua.NodeID:
		return fieldgate.String(v.String())
	case *ua.ExpandedNodeID:
		return fieldgate.String(v.String())
	case ua.StatusCode:
		return fieldgate.Int(int64(uint32(v)))
	case *ua.QualifiedName:
		if v.NamespaceIndex == 0 {
			return fieldgate.String(v.Name)
		}
		return fieldgate.String(strconv.Itoa(int(v.NamespaceIndex)) + ":" + v.Name)
	case *ua.LocalizedText:
		return fieldgate.String(v.Text)
	case *ua.Variant:
		if v == nil || v.Value() == nil {
			return fieldgate.String("")
		}
		return scalarValue(v.Type(), v.Value())
	case *ua.DataValue:
		if v == nil || v.Value == nil {
			return fieldgate.String("")
		}
		return scalarValue(v.Value.Type(), v.Value.Value())
	case *ua.ExtensionObject:
		if v == nil || v.Value == nil {
			return fieldgate.String("")
		}
		b, err := json.Marshal(v.Value)
		if err != nil {
			return fieldgate.String(fmt.Sprintf("%v", v.Value))
		}
		return fieldgate.String(string(b))
	case *ua.DiagnosticInfo:
		b, _ := json.Marshal(v)
		return fieldgate.String(string(b))
	}
	return fieldgate.String(fmt.Sprintf("%v", x))
}

// arrayJSON formats array elements as a JSON array: numbers and booleans bare, everything else a string.
func arrayJSON(typ ua.TypeID, elems []reflect.Value) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		v := scalarValue(typ, e.Interface())
		switch v.Kind() {
		case fieldgate.KindString:
			q, _ := json.Marshal(v.Str())
			b.Write(q)
		case fieldgate.KindFloat:
			f := v.Float()
			if math.IsNaN(f) || math.IsInf(f, 0) {
				q, _ := json.Marshal(v.String())
				b.Write(q)
			} else {
				b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
			}
		default:
			b.WriteString(v.String())
		}
	}
	b.WriteByte(']')
	return b.String()
}
