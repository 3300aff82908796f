package mqtt

// Decoding Sparkplug metric values into readings, by the birth's datatype:
//
//   - Int8, Int16, Int32, UInt8 and UInt16 come from int_value, truncated to their width and sign-extended for the
//     signed ones: Int32 -12 travels as 4294967284 and is read -12; a sign-extended Int8 -1 (0xFFFFFFFF, as Tahu
//     sends it) is read -1. UInt32 comes from int_value (the 3.0 text) or long_value (Tahu's encoders). Int64
//     and UInt64 come from long_value; a UInt64 above 2^63-1 becomes its decimal string, to stay exact (as the
//     OPC UA input does). All integers are Int readings.
//   - Float and Double are Float readings (a Float widened, 21.53 reads 21.530000686645508), Boolean a Bool.
//   - String, Text and UUID are String readings; DateTime (milliseconds since the epoch) an RFC 3339 string in
//     UTC; Bytes and File base64 strings (within fieldgate.MaxStringBytes, else the message is a dead letter).
//   - Arrays (Int8Array ... DateTimeArray) are flattened as the JSON mapper flattens JSON arrays: one reading per
//     element, named <metric>.<index>.
//   - A DataSet gives one reading per cell, named <metric>.<row>.<column name>, decoded by its column's type;
//     a cell without a value is a null.
//   - A Template instance gives its members, named <metric>.<member>, nested templates likewise
//     (<metric>.<member>.<member>); each member is decoded by its own datatype, or the birth's, or its
//     definition's. Definitions (in the NBIRTH) and template parameters give no readings.
//   - is_null gives a Bad reading with status StatusNull (a zero value of the metric's kind).
//   - The Quality property maps to the reading's quality: 192 Good, 0 and 500 (STALE) Bad, other OPC-style
//     quality bytes by their two top bits (0xC0 good, 0x40 uncertain, else bad), anything else Uncertain; the
//     reading's Status is the property's value.
//   - A metric's timestamp is its reading's SourceTime, else the payload's; is_historical metrics are kept with
//     their own time like the others. is_transient metrics are not stored (the specification asks hosts not to
//     historize them).
//
// A value in another field than its datatype's is an error (the message becomes a dead letter and, for DATA,
// the edge node is asked for a rebirth: the birth the host knows is probably not the edge node's).

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/protocols/mqtt/sparkplugb"
)

// errDatatype marks a value that does not match its datatype.
var errDatatype = errors.New("value does not match the datatype")

type dt = sparkplugb.DataType

// metric appends the readings of one metric of the message, decoded as def says.
func (m *spMsg) metric(def *spMetric, mt *sparkplugb.Payload_Metric) error {
	h := m.h
	if mt.GetIsTransient() {
		h.c.transient++
		return nil
	}
	if mt.GetIsHistorical() {
		h.c.historical++
	}
	dev := m.n.name
	if def.dev != nil {
		dev = def.dev.name
	}
	start := len(m.out)
	base := fieldgate.Reading{Device: dev, SourceTime: m.ts, GatewayTime: m.now}
	if err := m.value(base, def.name, def.datatype, mt, def.members, 0); err != nil {
		return fmt.Errorf("metric %q: %w", def.name, err)
	}
	def.remember(m.out[start:])
	return nil
}

// remember adds the readings' names to the metric's leaves (what a death marks stale): a scalar's one name; every
// name a composite (array, data set, template) gave since its birth, a DATA instance with some members adding
// none and removing none.
func (def *spMetric) remember(rs []fieldgate.Reading) {
	composite := isArray(def.datatype) || def.datatype == uint32(sparkplugb.DataType_DataSet) || def.datatype == uint32(sparkplugb.DataType_Template)
	if !composite && len(rs) == 1 {
		if len(def.leaves) != 1 || def.leaves[0].name != def.name {
			def.leaves = append(def.leaves[:0], spLeaf{name: def.name, kind: rs[0].Value.Kind()})
		}
		return
	}
	if def.leafSet == nil {
		def.leafSet = make(map[string]struct{}, len(rs))
		for _, l := range def.leaves {
			def.leafSet[l.name] = struct{}{}
		}
	}
	for _, r := range rs {
		if _, ok := def.leafSet[r.Metric]; !ok && len(def.leafSet) < MaxSparkplugReadings {
			def.leafSet[r.Metric] = struct{}{}
			def.leaves = append(def.leaves, spLeaf{name: r.Metric, kind: r.Value.Kind()})
		}
	}
}

// add appends one reading, within MaxSparkplugReadings for the message.
func (m *spMsg) add(r fieldgate.Reading) error {
	if len(m.out)-m.start >= MaxSparkplugReadings {
		return fmt.Errorf("more than %d values in one message", MaxSparkplugReadings)
	}
	m.out = append(m.out, r)
	return nil
}

// room reports an error when n more readings would exceed MaxSparkplugReadings: checked before decoding an
// array or data set, so that their size in the payload never decides what is allocated.
func (m *spMsg) room(n uint64) error {
	if n > uint64(MaxSparkplugReadings-(len(m.out)-m.start)) {
		return fmt.Errorf("%d elements: more than %d values in one message", n, MaxSparkplugReadings)
	}
	return nil
}

// value appends the readings of a metric or template member named name, of datatype t.
func (m *spMsg) value(base fieldgate.Reading, name string, t uint32, mt *sparkplugb.Payload_Metric, mem *spMembers, depth int) error {
	if mt.HasTimestamp() {
		base.SourceTime = spTime(mt.GetTimestamp())
	}
	if q, code, ok := spQualityOf(mt.GetProperties()); ok {
		base.Quality, base.Status = q, code
	}
	base.Metric = name
	if mt.GetIsNull() {
		base.Quality, base.Status, base.Value = fieldgate.Bad, StatusNull, fieldgate.Zero(kindOf(t))
		return m.add(base)
	}
	switch dt(t) {
	case sparkplugb.DataType_Bytes, sparkplugb.DataType_File:
		if !mt.HasBytesValue() {
			return mismatch(mt, t)
		}
		base.Value = fieldgate.String(base64.StdEncoding.EncodeToString(mt.GetBytesValue()))
		return m.add(base)
	case sparkplugb.DataType_DataSet:
		return m.dataSet(base, mt.GetDatasetValue(), t, mt)
	case sparkplugb.DataType_Template:
		return m.template(base, mt.GetTemplateValue(), mem, depth, mt)
	}
	if isArray(t) {
		if !mt.HasBytesValue() {
			return mismatch(mt, t)
		}
		return m.array(base, t, mt.GetBytesValue())
	}
	v, set, err := spScalar(mt, t)
	switch {
	case err != nil:
		return err
	case !set:
		return fmt.Errorf("no value (and is_null not set; tck-id-operational-behavior-data-publish-nbirth-values)")
	}
	base.Value = v
	return m.add(base)
}

// spValue is what the oneof value fields of Metric, DataSetValue, PropertyValue and Parameter share.
type spValue interface {
	HasIntValue() bool
	GetIntValue() uint32
	HasLongValue() bool
	GetLongValue() uint64
	HasFloatValue() bool
	GetFloatValue() float32
	HasDoubleValue() bool
	GetDoubleValue() float64
	HasBooleanValue() bool
	GetBooleanValue() bool
	HasStringValue() bool
	GetStringValue() string
}

// spScalar decodes a scalar of datatype t. set is false when the value has none of the scalar fields; an error
// says the datatype is not a scalar or the value is in another field than t's.
func spScalar(v spValue, t uint32) (val fieldgate.Value, set bool, err error) {
	if !v.HasIntValue() && !v.HasLongValue() && !v.HasFloatValue() && !v.HasDoubleValue() && !v.HasBooleanValue() && !v.HasStringValue() {
		if !isScalar(t) {
			return val, false, unsupported(t)
		}
		return val, false, nil
	}
	switch dt(t) {
	case sparkplugb.DataType_Int8, sparkplugb.DataType_Int16, sparkplugb.DataType_Int32, sparkplugb.DataType_UInt8, sparkplugb.DataType_UInt16:
		if !v.HasIntValue() {
			break
		}
		u := v.GetIntValue()
		switch dt(t) {
		case sparkplugb.DataType_Int8:
			return fieldgate.Int(int64(int8(u))), true, nil
		case sparkplugb.DataType_Int16:
			return fieldgate.Int(int64(int16(u))), true, nil
		case sparkplugb.DataType_Int32:
			return fieldgate.Int(int64(int32(u))), true, nil
		case sparkplugb.DataType_UInt8:
			return fieldgate.Int(int64(uint8(u))), true, nil
		default:
			return fieldgate.Int(int64(uint16(u))), true, nil
		}
	case sparkplugb.DataType_UInt32:
		if v.HasIntValue() {
			return fieldgate.Int(int64(v.GetIntValue())), true, nil
		}
		if v.HasLongValue() {
			return fieldgate.Int(int64(uint32(v.GetLongValue()))), true, nil
		}
	case sparkplugb.DataType_Int64:
		if v.HasLongValue() {
			return fieldgate.Int(int64(v.GetLongValue())), true, nil
		}
	case sparkplugb.DataType_UInt64:
		if v.HasLongValue() {
			if u := v.GetLongValue(); u > math.MaxInt64 {
				return fieldgate.String(strconv.FormatUint(u, 10)), true, nil
			}
			return fieldgate.Int(int64(v.GetLongValue())), true, nil
		}
	case sparkplugb.DataType_DateTime:
		if v.HasLongValue() {
			return fieldgate.String(spTime(v.GetLongValue()).Format(time.RFC3339Nano)), true, nil
		}
	case sparkplugb.DataType_Float:
		if v.HasFloatValue() {
			return fieldgate.Float(float64(v.GetFloatValue())), true, nil
		}
	case sparkplugb.DataType_Double:
		if v.HasDoubleValue() {
			return fieldgate.Float(v.GetDoubleValue()), true, nil
		}
	case sparkplugb.DataType_Boolean:
		if v.HasBooleanValue() {
			return fieldgate.Bool(v.GetBooleanValue()), true, nil
		}
	case sparkplugb.DataType_String, sparkplugb.DataType_Text, sparkplugb.DataType_UUID:
		if v.HasStringValue() {
			return fieldgate.String(v.GetStringValue()), true, nil
		}
	default:
		return val, false, unsupported(t)
	}
	return val, false, mismatch(v, t)
}

func isScalar(t uint32) bool {
	return t >= uint32(sparkplugb.DataType_Int8) && t <= uint32(sparkplugb.DataType_UUID)
}

func isArray(t uint32) bool {
	return t >= uint32(sparkplugb.DataType_Int8Array) && t <= uint32(sparkplugb.DataType_DateTimeArray)
}

func unsupported(t uint32) error {
	return fmt.Errorf("datatype %s is not a metric datatype (tck-id-payloads-metric-datatype-value)", dtName(t))
}

func dtName(t uint32) string {
	if name, ok := sparkplugb.DataType_name[int32(t)]; ok && t <= math.MaxInt32 {
		return name
	}
	return strconv.FormatUint(uint64(t), 10)
}

// mismatch says which field a value of datatype t came in.
func mismatch(v spValue, t uint32) error {
	field := "no scalar field"
	switch {
	case v.HasIntValue():
		field = "int_value"
	case v.HasLongValue():
		field = "long_value"
	case v.HasFloatValue():
		field = "float_value"
	case v.HasDoubleValue():
		field = "double_value"
	case v.HasBooleanValue():
		field = "boolean_value"
	case v.HasStringValue():
		field = "string_value"
	}
	if mt, ok := v.(*sparkplugb.Payload_Metric); ok && field == "no scalar field" {
		switch {
		case mt.HasBytesValue():
			field = "bytes_value"
		case mt.HasDatasetValue():
			field = "dataset_value"
		case mt.HasTemplateValue():
			field = "template_value"
		case mt.HasExtensionValue():
			field = "extension_value"
		}
	}
	return fmt.Errorf("%w: datatype %s, value in %s", errDatatype, dtName(t), field)
}

// kindOf is the kind of reading a datatype gives (for the zero value of a null or stale reading).
func kindOf(t uint32) fieldgate.Kind {
	switch dt(t) {
	case sparkplugb.DataType_Float, sparkplugb.DataType_Double, sparkplugb.DataType_FloatArray, sparkplugb.DataType_DoubleArray:
		return fieldgate.KindFloat
	case sparkplugb.DataType_Boolean, sparkplugb.DataType_BooleanArray:
		return fieldgate.KindBool
	case sparkplugb.DataType_String, sparkplugb.DataType_Text, sparkplugb.DataType_UUID, sparkplugb.DataType_DateTime,
		sparkplugb.DataType_Bytes, sparkplugb.DataType_File, sparkplugb.DataType_StringArray, sparkplugb.DataType_DateTimeArray:
		return fieldgate.KindString
	}
	if isScalar(t) || isArray(t) {
		return fieldgate.KindInt
	}
	return fieldgate.KindFloat
}

// spQualityOf reads the Quality property (tck-id-payloads-propertyset-quality-value-type: Int32).
func spQualityOf(ps *sparkplugb.Payload_PropertySet) (fieldgate.Quality, uint32, bool) {
	vals := ps.GetValues()
	for i, k := range ps.GetKeys() {
		if k != "Quality" || i >= len(vals) {
			continue
		}
		var q int64
		switch v := vals[i]; {
		case v.HasIntValue():
			q = int64(int32(v.GetIntValue()))
		case v.HasLongValue():
			q = int64(v.GetLongValue())
		default:
			return 0, 0, false
		}
		return spQuality(q), uint32(q), true
	}
	return 0, 0, false
}

// spQuality maps a Sparkplug quality code to fieldgate's quality.
func spQuality(q int64) fieldgate.Quality {
	switch {
	case q == int64(SparkplugQualityGood):
		return fieldgate.Good
	case q == int64(SparkplugQualityBad), q == int64(SparkplugQualityStale):
		return fieldgate.Bad
	case q > 0 && q < 256: // an OPC DA quality byte
		switch q & 0xC0 {
		case 0xC0:
			return fieldgate.Good
		case 0x40:
			return fieldgate.Uncertain
		}
		return fieldgate.Bad
	}
	return fieldgate.Uncertain
}

// array appends one reading per element of a packed array (little-endian; see the .proto).
func (m *spMsg) array(base fieldgate.Reading, t uint32, b []byte) error {
	name := base.Metric
	elem := func(i int, v fieldgate.Value) error {
		r := base
		r.Metric, r.Value = name+"."+strconv.Itoa(i), v
		return m.add(r)
	}
	switch dt(t) {
	case sparkplugb.DataType_BooleanArray:
		if len(b) < 4 {
			return fmt.Errorf("BooleanArray of %d bytes: no 4-byte count", len(b))
		}
		count, bits := binary.LittleEndian.Uint32(b), b[4:]
		if uint64(count) > uint64(len(bits))*8 {
			return fmt.Errorf("BooleanArray of %d elements in %d bytes", count, len(bits))
		}
		if err := m.room(uint64(count)); err != nil {
			return err
		}
		for i := range int(count) {
			if err := elem(i, fieldgate.Bool(bits[i/8]&(0x80>>(i%8)) != 0)); err != nil {
				return err
			}
		}
		return nil
	case sparkplugb.DataType_StringArray:
		if len(b) > 0 && b[len(b)-1] != 0 {
			return errors.New("StringArray: the last string is not NUL-terminated")
		}
		if err := m.room(uint64(bytes.Count(b, []byte{0}))); err != nil {
			return err
		}
		for i := 0; len(b) > 0; i++ {
			j := bytes.IndexByte(b, 0)
			if err := elem(i, fieldgate.String(string(b[:j]))); err != nil {
				return err
			}
			b = b[j+1:]
		}
		return nil
	}
	width := 1
	switch dt(t) {
	case sparkplugb.DataType_Int16Array, sparkplugb.DataType_UInt16Array:
		width = 2
	case sparkplugb.DataType_Int32Array, sparkplugb.DataType_UInt32Array, sparkplugb.DataType_FloatArray:
		width = 4
	case sparkplugb.DataType_Int64Array, sparkplugb.DataType_UInt64Array, sparkplugb.DataType_DoubleArray, sparkplugb.DataType_DateTimeArray:
		width = 8
	}
	if len(b)%width != 0 {
		return fmt.Errorf("%s of %d bytes: not a whole number of %d-byte elements", dtName(t), len(b), width)
	}
	if err := m.room(uint64(len(b) / width)); err != nil {
		return err
	}
	le := binary.LittleEndian
	for i := 0; i*width < len(b); i++ {
		e := b[i*width:]
		var v fieldgate.Value
		switch dt(t) {
		case sparkplugb.DataType_Int8Array:
			v = fieldgate.Int(int64(int8(e[0])))
		case sparkplugb.DataType_UInt8Array:
			v = fieldgate.Int(int64(e[0]))
		case sparkplugb.DataType_Int16Array:
			v = fieldgate.Int(int64(int16(le.Uint16(e))))
		case sparkplugb.DataType_UInt16Array:
			v = fieldgate.Int(int64(le.Uint16(e)))
		case sparkplugb.DataType_Int32Array:
			v = fieldgate.Int(int64(int32(le.Uint32(e))))
		case sparkplugb.DataType_UInt32Array:
			v = fieldgate.Int(int64(le.Uint32(e)))
		case sparkplugb.DataType_Int64Array:
			v = fieldgate.Int(int64(le.Uint64(e)))
		case sparkplugb.DataType_UInt64Array:
			if u := le.Uint64(e); u > math.MaxInt64 {
				v = fieldgate.String(strconv.FormatUint(u, 10))
			} else {
				v = fieldgate.Int(int64(u))
			}
		case sparkplugb.DataType_FloatArray:
			v = fieldgate.Float(float64(math.Float32frombits(le.Uint32(e))))
		case sparkplugb.DataType_DoubleArray:
			v = fieldgate.Float(math.Float64frombits(le.Uint64(e)))
		case sparkplugb.DataType_DateTimeArray:
			v = fieldgate.String(spTime(le.Uint64(e)).Format(time.RFC3339Nano))
		}
		if err := elem(i, v); err != nil {
			return err
		}
	}
	return nil
}

// dataSet appends one reading per cell of a data set.
func (m *spMsg) dataSet(base fieldgate.Reading, ds *sparkplugb.Payload_DataSet, t uint32, mt *sparkplugb.Payload_Metric) error {
	if ds == nil {
		return mismatch(mt, t)
	}
	cols, types, rows := ds.GetColumns(), ds.GetTypes(), ds.GetRows()
	switch {
	case ds.HasNumOfColumns() && ds.GetNumOfColumns() != uint64(len(cols)):
		return fmt.Errorf("DataSet: num_of_columns %d but %d columns (tck-id-payloads-dataset-column-size)", ds.GetNumOfColumns(), len(cols))
	case len(types) != len(cols):
		return fmt.Errorf("DataSet: %d columns but %d types (tck-id-payloads-dataset-types-num)", len(cols), len(types))
	}
	if err := m.room(uint64(len(rows)) * uint64(len(cols))); err != nil {
		return err
	}
	name := base.Metric
	for ri, row := range rows {
		els := row.GetElements()
		if len(els) != len(cols) {
			return fmt.Errorf("DataSet row %d has %d values for %d columns", ri, len(els), len(cols))
		}
		for ci, e := range els {
			r := base
			col := cols[ci]
			if col == "" {
				col = strconv.Itoa(ci)
			}
			r.Metric = name + "." + strconv.Itoa(ri) + "." + col
			v, set, err := spScalar(e, types[ci])
			switch {
			case err != nil:
				return fmt.Errorf("DataSet row %d column %q: %w", ri, cols[ci], err)
			case !set:
				r.Quality, r.Status, r.Value = fieldgate.Bad, StatusNull, fieldgate.Zero(kindOf(types[ci]))
			default:
				r.Value = v
			}
			if err := m.add(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// template appends the members of a template instance.
func (m *spMsg) template(base fieldgate.Reading, tv *sparkplugb.Payload_Template, mem *spMembers, depth int, mt *sparkplugb.Payload_Metric) error {
	if tv == nil {
		return mismatch(mt, uint32(sparkplugb.DataType_Template))
	}
	if depth >= maxSparkplugDepth {
		return fmt.Errorf("templates nested deeper than %d", maxSparkplugDepth)
	}
	if tv.GetIsDefinition() {
		return nil // a definition outside the NBIRTH's top level: nothing to store
	}
	if mem == nil && tv.HasTemplateRef() {
		mem = m.n.defs[tv.GetTemplateRef()]
	}
	prefix := base.Metric
	for _, member := range tv.GetMetrics() {
		name := member.GetName()
		if name == "" {
			return errors.New("a template member without a name")
		}
		var known *spMember
		if mem != nil {
			known = mem.byName[name]
		}
		t := member.GetDatatype()
		if !member.HasDatatype() {
			if known == nil {
				return fmt.Errorf("template member %q has no datatype, and its birth gives none", name)
			}
			t = known.datatype
		}
		var sub *spMembers
		if known != nil {
			sub = known.members
		}
		if err := m.value(base, prefix+"."+name, t, member, sub, depth+1); err != nil {
			return fmt.Errorf("member %q: %w", name, err)
		}
	}
	return nil
}

// ---- the shape of a payload ----

// checkShape walks a large payload's wire format before it is unmarshalled and refuses one that would make more
// than MaxSparkplugReadings messages (metrics, members, rows, cells, properties), or nests them deeper than the
// unmarshaller's recursion limit: proto.Unmarshal allocates a struct per message, so a payload of tiny metrics
// could otherwise make it allocate a hundred times its size.
func checkShape(b []byte) error {
	count := 0
	return walkShape(b, shapePayload, 0, &count)
}

type shapeKind uint8

const (
	shapeLeaf shapeKind = iota // a message not walked into (parameters, cells, extensions, metadata)
	shapePayload
	shapeMetric
	shapeTemplate
	shapeDataSet
	shapeRow
	shapePropertySet
	shapePropertyValue
	shapePropertySetList
)

// shapeChild is the kind of message field f of a message of kind k holds; ok is false for scalar and string
// fields.
func shapeChild(k shapeKind, f protowire.Number) (shapeKind, bool) {
	switch k {
	case shapePayload:
		return shapeMetric, f == 2
	case shapeMetric:
		switch f {
		case 8, 19:
			return shapeLeaf, true
		case 9:
			return shapePropertySet, true
		case 17:
			return shapeDataSet, true
		case 18:
			return shapeTemplate, true
		}
	case shapeTemplate:
		switch f {
		case 2:
			return shapeMetric, true
		case 3:
			return shapeLeaf, true
		}
	case shapeDataSet:
		return shapeRow, f == 4
	case shapeRow:
		return shapeLeaf, f == 1
	case shapePropertySet:
		return shapePropertyValue, f == 2
	case shapePropertyValue:
		switch f {
		case 9:
			return shapePropertySet, true
		case 10:
			return shapePropertySetList, true
		case 11:
			return shapeLeaf, true
		}
	case shapePropertySetList:
		return shapePropertySet, f == 1
	}
	return 0, false
}

func walkShape(b []byte, k shapeKind, depth int, count *int) error {
	if depth > spUnmarshal.RecursionLimit {
		return fmt.Errorf("nested deeper than %d messages", spUnmarshal.RecursionLimit)
	}
	for len(b) > 0 {
		f, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(f, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		child, ok := shapeChild(k, f)
		if !ok {
			continue
		}
		if *count++; *count > MaxSparkplugReadings {
			return fmt.Errorf("more than %d metrics, members, rows, cells or properties", MaxSparkplugReadings)
		}
		if child != shapeLeaf {
			if err := walkShape(v, child, depth+1, count); err != nil {
				return err
			}
		}
	}
	return nil
}
