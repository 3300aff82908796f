package mqtt

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/fieldgate/fieldgate"
)

// Limits on what one message may produce. A message beyond them is a dead letter, not a partial result.
const (
	MaxReadingsPerMessage = 10000 // readings from one message, samples included
	MaxJSONDepth          = 64    // nesting of JSON objects and arrays
)

// Mapping rules for JSON payloads (the "json" format):
//
//   - Every number, bool and string leaf becomes one reading; its metric is the dotted path of keys from the
//     root: {"env":{"temp":21.5}} gives "env.temp". Array elements are named by their index: {"axes":[1,2]}
//     gives "axes.0" and "axes.1". null, empty objects and empty arrays give nothing.
//   - A number without fraction or exponent that fits in int64 is an Int; every other number is a Float. So a
//     whole number beyond int64 (above 9223372036854775807, e.g. a uint64 counter past 2^63) becomes a Float,
//     rounded to 53 bits: 18446744073709551615 is read as 1.8446744073709552e19. Send such values as strings
//     to keep every digit.
//   - With fields, only the listed paths are read, renamed; a listed path that names an object or array takes
//     every leaf below it, named by the field's metric plus the rest of the path. Listed paths missing from a
//     message are skipped.
//   - The timestamp leaf is not a metric. It becomes the readings' SourceTime through fieldgate.DeviceTime: a
//     time a reading cannot hold (0001-01-01T00:00:00Z, which means "no time", or one outside the years 1 to 9999
//     or beyond int64 nanoseconds, the years 1678 to 2262, in a unix format) is kept as the nearest one it can,
//     so the gateway's source-time bound finds it implausible and keeps the readings at their gateway time,
//     marked Uncertain (fieldgate.SourceTimeBound).
//   - Keys are used as they are: a key containing "." gives a metric name that looks like a deeper path, and a
//     key repeated in one object gives two readings with the same identity (the central service keeps one).
//   - A message is refused as a whole (a dead letter, no readings) when it is not valid JSON, yields no
//     reading, lacks a configured timestamp or has one that does not parse, or yields a reading that does not
//     Validate (an over-long name or string, invalid UTF-8).

// Mapper maps the messages of one subscription to readings. It keeps small caches of device and metric names,
// so it is not safe for concurrent use; make one per goroutine.
type Mapper struct {
	sub      Subscription
	pat      pattern
	device   template // empty: the whole topic
	metric   template
	fields   []Field
	tsPath   string
	tsFormat string
	samples  string

	levels [maxLevels]string
	nlev   int

	// per-message state
	out      []fieldgate.Reading
	devName  string
	now      time.Time
	prefix   []byte // metric prefix, "" or "<prefix>."
	path     []byte // dotted path of the current value
	name     []byte // scratch for the metric name
	str      []byte // scratch for unescaped strings
	fname    []byte // scratch for a renamed field's metric
	start    int    // index in out of the message's first reading
	inSample bool   // in samples mode: inside a sample element
	seenSamp bool
	tsSet    bool
	ts       time.Time
	err      error

	names   map[string]string // interned metric names
	devices map[string]string // topic → device name
}

const maxCache = 4096

// NewMapper validates sub, applies its defaults and returns its mapper.
func NewMapper(sub Subscription) (*Mapper, error) {
	if err := sub.Validate(); err != nil {
		return nil, err
	}
	sub = sub.withDefaults()
	p, _ := parsePattern(sub.Topic)
	m := &Mapper{sub: sub, pat: p, fields: sub.Fields, samples: sub.Samples,
		names: make(map[string]string), devices: make(map[string]string)}
	dev := sub.Device
	if dev == "" {
		if _, ok := p.names["device"]; ok {
			dev = "{device}"
		}
	}
	m.device, _ = parseTemplate(dev, p)
	m.metric, _ = parseTemplate(sub.Metric, p)
	if sub.Timestamp != nil {
		m.tsPath, m.tsFormat = sub.Timestamp.Path, sub.Timestamp.Format
	}
	return m, nil
}

// Map maps the message as the subscription says, for a message of topic that arrived at now.
func (sub Subscription) Map(topic string, payload []byte, now time.Time) ([]fieldgate.Reading, error) {
	m, err := NewMapper(sub)
	if err != nil {
		return nil, err
	}
	return m.Map(nil, topic, payload, now)
}

// Subscription returns the subscription with its defaults applied.
func (m *Mapper) Subscription() Subscription { return m.sub }

// Filter returns the MQTT topic filter to subscribe to.
func (m *Mapper) Filter() string { return m.pat.filter }

// Matches reports whether the subscription's filter matches topic, as the broker decides it.
func (m *Mapper) Matches(topic string) bool { return matchFilter(m.pat.filter, topic) }

// Map appends the readings of one message to dst. Every reading has GatewayTime now and passes Validate. On
// error dst is returned unchanged (no partial message) and the error says why, for the dead letter. Map keeps
// no reference to payload.
func (m *Mapper) Map(dst []fieldgate.Reading, topic string, payload []byte, now time.Time) ([]fieldgate.Reading, error) {
	n, ok := m.pat.match(topic, &m.levels)
	if !ok {
		return dst, fmt.Errorf("topic %q does not match pattern %q", topic, m.sub.Topic)
	}
	m.nlev = n
	m.devName = m.deviceName(topic)
	m.now = now
	start := len(dst)
	m.out, m.start = dst, start
	var err error
	if m.sub.Format == FormatValue {
		err = m.mapValue(topic, payload)
	} else {
		err = m.mapJSON(payload)
	}
	out := m.out
	m.out = nil
	if err != nil {
		return out[:start], err
	}
	if len(out) == start {
		return out[:start], errors.New("no usable value in the payload (only null, empty objects or arrays, or no listed field)")
	}
	for i := start; i < len(out); i++ {
		if err := out[i].Validate(); err != nil {
			return out[:start], err
		}
	}
	return out, nil
}

func (m *Mapper) deviceName(topic string) string {
	if m.device.empty() {
		return topic
	}
	if d, ok := m.devices[topic]; ok {
		return d
	}
	m.name = m.device.expand(m.name[:0], &m.levels)
	d := string(m.name)
	if len(m.devices) < maxCache {
		m.devices[topic] = d
	}
	return d
}

// metricName returns the interned metric name for the bytes in m.name.
func (m *Mapper) metricName() string {
	if s, ok := m.names[string(m.name)]; ok {
		return s
	}
	s := string(m.name)
	if len(m.names) < maxCache {
		m.names[s] = s
	}
	return s
}

func (m *Mapper) add(metric string, v fieldgate.Value) error {
	if len(m.out)-m.start >= MaxReadingsPerMessage {
		return fmt.Errorf("more than %d values in one message", MaxReadingsPerMessage)
	}
	m.out = append(m.out, fieldgate.Reading{Device: m.devName, Metric: metric, Value: v, GatewayTime: m.now})
	return nil
}

// ---- value payloads ----

func (m *Mapper) mapValue(topic string, payload []byte) error {
	if m.metric.empty() {
		m.name = append(m.name[:0], topic[strings.LastIndexByte(topic, '/')+1:]...)
	} else {
		m.name = m.metric.expand(m.name[:0], &m.levels)
	}
	if len(m.name) == 0 {
		return fmt.Errorf("topic %q gives an empty metric name", topic)
	}
	metric := m.metricName()
	v, err := parseScalar(payload, &m.str)
	if err != nil {
		return err
	}
	return m.add(metric, v)
}

// parseScalar parses a value payload: a number, true or false, a JSON string, or else plain text.
func parseScalar(payload []byte, scratch *[]byte) (fieldgate.Value, error) {
	b := bytes.TrimSpace(payload)
	if len(b) == 0 {
		return fieldgate.Value{}, errors.New("empty payload")
	}
	switch b[0] {
	case '{', '[':
		return fieldgate.Value{}, errors.New("payload is a JSON object or array, not one value (use format: json)")
	case '"':
		s := scanner{data: b}
		raw, esc, err := s.str()
		if err == nil && s.pos == len(b) {
			if !esc {
				return fieldgate.String(string(raw)), nil
			}
			if *scratch, err = appendUnescaped((*scratch)[:0], raw); err == nil {
				return fieldgate.String(string(*scratch)), nil
			}
		}
	case 't', 'T', 'f', 'F':
		switch string(b) {
		case "true", "TRUE", "True":
			return fieldgate.Bool(true), nil
		case "false", "FALSE", "False":
			return fieldgate.Bool(false), nil
		}
	default:
		s := scanner{data: b}
		if v, err := s.number(); err == nil && s.pos == len(b) {
			return v, nil
		} else if err != nil && errors.Is(err, errNumberRange) {
			return fieldgate.Value{}, err
		}
	}
	if !utf8.Valid(b) {
		return fieldgate.Value{}, errors.New("payload is neither a number, a bool nor UTF-8 text")
	}
	return fieldgate.String(string(b)), nil
}

// ---- JSON payloads ----

func (m *Mapper) mapJSON(payload []byte) error {
	m.prefix = m.prefix[:0]
	if !m.metric.empty() {
		m.prefix = m.metric.expand(m.prefix, &m.levels)
		m.prefix = append(m.prefix, '.')
	}
	m.path = m.path[:0]
	m.inSample, m.seenSamp, m.tsSet, m.err = false, false, false, nil
	s := scanner{data: payload}
	s.skipWS()
	if s.pos < len(s.data) && s.data[s.pos] != '{' && s.data[s.pos] != '[' {
		return errors.New("payload is not a JSON object or array (for a bare value use format: value)")
	}
	if err := m.walk(&s); err != nil {
		return err
	}
	s.skipWS()
	if s.pos != len(s.data) {
		return s.errorf("data after the JSON value")
	}
	if m.samples != "" {
		if !m.seenSamp {
			return fmt.Errorf("no samples array at %q", m.samples)
		}
		return nil
	}
	return m.finishTime(m.start)
}

// finishTime sets the source time of the readings from index start on (one message or one sample).
func (m *Mapper) finishTime(start int) error {
	if m.tsPath == "" {
		return nil
	}
	if !m.tsSet {
		return fmt.Errorf("no timestamp at %q", m.tsPath)
	}
	for i := start; i < len(m.out); i++ {
		m.out[i].SourceTime = m.ts
	}
	return nil
}

// active reports whether leaves at the current path become readings.
func (m *Mapper) active() bool { return m.samples == "" || m.inSample }

func (m *Mapper) walk(s *scanner) error {
	s.skipWS()
	if s.pos >= len(s.data) {
		return s.errorf("unexpected end of JSON")
	}
	switch c := s.data[s.pos]; c {
	case '{':
		return m.object(s)
	case '[':
		return m.array(s)
	case '"':
		raw, esc, err := s.str()
		if err != nil {
			return err
		}
		if !m.active() {
			return nil
		}
		if esc {
			if m.str, err = appendUnescaped(m.str[:0], raw); err != nil {
				return s.errorf("%v", err)
			}
			raw = m.str
		}
		if m.isTimestamp() {
			return m.setTime(raw, true)
		}
		return m.leaf(fieldgate.String(string(raw)))
	case 't':
		if err := s.literal("true"); err != nil {
			return err
		}
		return m.boolLeaf(true)
	case 'f':
		if err := s.literal("false"); err != nil {
			return err
		}
		return m.boolLeaf(false)
	case 'n':
		return s.literal("null")
	default:
		numStart := s.pos
		v, err := s.number()
		if err != nil {
			return err
		}
		if !m.active() {
			return nil
		}
		if m.isTimestamp() {
			return m.setTime(s.data[numStart:s.pos], false)
		}
		return m.leaf(v)
	}
}

func (m *Mapper) boolLeaf(b bool) error {
	if !m.active() {
		return nil
	}
	if m.isTimestamp() {
		return fmt.Errorf("timestamp at %q is a bool", m.tsPath)
	}
	return m.leaf(fieldgate.Bool(b))
}

func (m *Mapper) isTimestamp() bool { return m.tsPath != "" && string(m.path) == m.tsPath }

func (m *Mapper) leaf(v fieldgate.Value) error {
	m.name = append(m.name[:0], m.prefix...)
	if len(m.fields) == 0 {
		if len(m.path) == 0 {
			return nil
		}
		m.name = append(m.name, m.path...)
	} else {
		f, ok := m.field()
		if !ok {
			return nil
		}
		m.name = append(m.name, f...)
	}
	return m.add(m.metricName(), v)
}

// field returns the metric name (without prefix) for the current path, if a listed field covers it.
func (m *Mapper) field() ([]byte, bool) {
	for i := range m.fields {
		f := &m.fields[i]
		p := f.Path
		if len(m.path) < len(p) || string(m.path[:len(p)]) != p {
			continue
		}
		if len(m.path) != len(p) && m.path[len(p)] != '.' {
			continue
		}
		metric := f.Metric
		if metric == "" {
			metric = p
		}
		m.fname = append(m.fname[:0], metric...)
		m.fname = append(m.fname, m.path[len(p):]...)
		return m.fname, true
	}
	return nil, false
}

func (m *Mapper) object(s *scanner) error {
	if s.depth++; s.depth > MaxJSONDepth {
		return s.errorf("nested deeper than %d levels", MaxJSONDepth)
	}
	s.pos++ // {
	base := len(m.path)
	s.skipWS()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		s.skipWS()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return s.errorf("want an object key")
		}
		raw, esc, err := s.str()
		if err != nil {
			return err
		}
		m.path = m.path[:base]
		if base > 0 {
			m.path = append(m.path, '.')
		}
		if esc {
			if m.path, err = appendUnescaped(m.path, raw); err != nil {
				return s.errorf("%v", err)
			}
		} else {
			m.path = append(m.path, raw...)
		}
		s.skipWS()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.errorf("want : after an object key")
		}
		s.pos++
		if err := m.walkChild(s); err != nil {
			return err
		}
		s.skipWS()
		if s.pos >= len(s.data) {
			return s.errorf("unexpected end of JSON in an object")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			m.path = m.path[:base]
			return nil
		default:
			return s.errorf("want , or } in an object")
		}
	}
}

func (m *Mapper) array(s *scanner) error {
	if s.depth++; s.depth > MaxJSONDepth {
		return s.errorf("nested deeper than %d levels", MaxJSONDepth)
	}
	s.pos++ // [
	base := len(m.path)
	isSamples := m.samples != "" && !m.inSample && string(m.path) == m.samples
	if isSamples {
		m.seenSamp = true
	}
	s.skipWS()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		s.depth--
		return nil
	}
	for i := 0; ; i++ {
		if isSamples {
			if err := m.sample(s, i); err != nil {
				return err
			}
		} else {
			m.path = m.path[:base]
			if base > 0 {
				m.path = append(m.path, '.')
			}
			m.path = strconv.AppendInt(m.path, int64(i), 10)
			if err := m.walkChild(s); err != nil {
				return err
			}
		}
		s.skipWS()
		if s.pos >= len(s.data) {
			return s.errorf("unexpected end of JSON in an array")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			m.path = m.path[:base]
			return nil
		default:
			return s.errorf("want , or ] in an array")
		}
	}
}

// walkChild walks a value below the current path; in samples mode it notices the samples array.
func (m *Mapper) walkChild(s *scanner) error {
	if m.samples != "" && !m.inSample && string(m.path) == m.samples {
		s.skipWS()
		if s.pos < len(s.data) && s.data[s.pos] != '[' {
			return fmt.Errorf("samples at %q is not an array", m.samples)
		}
	}
	return m.walk(s)
}

// sample maps element i of the samples array as a message of its own.
func (m *Mapper) sample(s *scanner, i int) error {
	s.skipWS()
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		return s.errorf("sample %d is not an object", i)
	}
	m.path = m.path[:0]
	m.inSample, m.tsSet = true, false
	start := len(m.out)
	if err := m.object(s); err != nil {
		return err
	}
	if err := m.finishTime(start); err != nil {
		return fmt.Errorf("sample %d: %w", i, err)
	}
	m.inSample = false
	m.path = append(m.path[:0], m.samples...) // the array's own path, as array() expects
	return nil
}

// setTime parses the timestamp leaf: raw is a string's content (str) or a number's text.
func (m *Mapper) setTime(raw []byte, str bool) error {
	t, err := parseTime(raw, str, m.tsFormat)
	if err != nil {
		return fmt.Errorf("timestamp at %q: %w", m.tsPath, err)
	}
	m.ts, m.tsSet = fieldgate.DeviceTime(t), true
	return nil
}

var errRange = errors.New("out of range (int64 nanoseconds cover the years 1678 to 2262)")

// parseTime parses a timestamp in format. Unix formats take a JSON number or a string holding one; unix_s may
// have a fraction, read exactly to the nanosecond. A unix time beyond int64 nanoseconds gives a time some 35,000
// years away on its side: not one to use, but a time all the same (see fieldgate.DeviceTime).
func parseTime(raw []byte, str bool, format string) (time.Time, error) {
	if format == TimeRFC3339 {
		if !str {
			return time.Time{}, fmt.Errorf("%s is a number, want an RFC 3339 string", raw)
		}
		t, err := time.Parse(time.RFC3339Nano, string(raw))
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not RFC 3339", raw)
		}
		return t.UTC(), nil
	}
	var scale int // decimal digits below the unit down to nanoseconds
	switch format {
	case TimeUnixS:
		scale = 9
	case TimeUnixMS:
		scale = 6
	case TimeUnixUS:
		scale = 3
	case TimeUnixNS:
		scale = 0
	default:
		return time.Time{}, fmt.Errorf("unknown format %q", format)
	}
	ns, err := parseScaled(raw, scale)
	if errors.Is(err, errRange) {
		if raw[0] == '-' {
			return time.Unix(-1<<40, 0).UTC(), nil
		}
		return time.Unix(1<<40, 0).UTC(), nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a %s time: %w", raw, format, err)
	}
	return time.Unix(0, ns).UTC(), nil
}

// parseScaled parses a decimal number (JSON grammar, no exponent) multiplied by 10^scale, as int64 nanoseconds.
// Digits below a nanosecond are dropped.
func parseScaled(b []byte, scale int) (int64, error) {
	if len(b) == 0 {
		return 0, errors.New("empty")
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	var v uint64
	digits, frac := 0, -1
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if frac >= 0 {
				if frac >= scale {
					continue // below a nanosecond
				}
				frac++
			}
			if v > (math.MaxInt64-9)/10 {
				return 0, errRange
			}
			v = v*10 + uint64(c-'0')
			digits++
		case c == '.' && frac < 0 && digits > 0:
			frac = 0
		default:
			return 0, errors.New("not a plain decimal number")
		}
	}
	if digits == 0 || frac == 0 {
		return 0, errors.New("not a plain decimal number")
	}
	if frac < 0 {
		frac = 0
	}
	for ; frac < scale; frac++ {
		if v > math.MaxInt64/10 {
			return 0, errRange
		}
		v *= 10
	}
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}

// ---- a small JSON scanner ----

// scanner reads JSON from data without building a tree. It checks the grammar of what it reads.
type scanner struct {
	data  []byte
	pos   int
	depth int
}

var errNumberRange = errors.New("number out of the range of a 64-bit float")

func (s *scanner) errorf(format string, a ...any) error {
	return fmt.Errorf("invalid JSON at byte %d: %s", s.pos, fmt.Sprintf(format, a...))
}

func (s *scanner) skipWS() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) literal(want string) error {
	if len(s.data)-s.pos < len(want) || string(s.data[s.pos:s.pos+len(want)]) != want {
		return s.errorf("want %s", want)
	}
	s.pos += len(want)
	return nil
}

// str reads a string at s.pos (which is '"') and returns its raw content and whether it has escapes.
func (s *scanner) str() (raw []byte, esc bool, err error) {
	start := s.pos + 1
	for i := start; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '"':
			s.pos = i + 1
			return s.data[start:i], esc, nil
		case c == '\\':
			esc = true
			i++
		case c < 0x20:
			s.pos = i
			return nil, false, s.errorf("control character in a string")
		}
	}
	s.pos = len(s.data)
	return nil, false, s.errorf("unterminated string")
}

// number reads a JSON number: an Int when it has no fraction or exponent and fits in int64, else a Float.
func (s *scanner) number() (fieldgate.Value, error) {
	start := s.pos
	i := s.pos
	d := s.data
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		s.pos = i
		return fieldgate.Value{}, s.errorf("want a value")
	}
	isInt := true
	if i < len(d) && d[i] == '.' {
		isInt = false
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			s.pos = i
			return fieldgate.Value{}, s.errorf("want a digit after the decimal point")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		isInt = false
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			s.pos = i
			return fieldgate.Value{}, s.errorf("want a digit in the exponent")
		}
	}
	s.pos = i
	text := d[start:i]
	if isInt {
		if v, ok := parseInt(text); ok {
			return fieldgate.Int(v), nil
		}
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return fieldgate.Value{}, fmt.Errorf("%w: %s", errNumberRange, text)
	}
	return fieldgate.Float(f), nil
}

// parseInt parses an optionally negative run of digits; ok is false when it does not fit in int64.
func parseInt(b []byte) (int64, bool) {
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		v = v*10 + uint64(c-'0') // 19 digits cannot overflow uint64
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// appendUnescaped appends the unescaped content of a JSON string (without quotes) to dst. Invalid surrogates
// become U+FFFD, as encoding/json does.
func appendUnescaped(dst, raw []byte) ([]byte, error) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(raw) {
			return dst, errors.New("truncated escape")
		}
		switch raw[i] {
		case '"', '\\', '/':
			dst = append(dst, raw[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw[i+1:])
			if !ok {
				return dst, errors.New(`bad \u escape`)
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(-1), false
				if i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2, ok = hex4(raw[i+3:])
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, fmt.Errorf(`bad escape \%c`, raw[i])
		}
	}
	return dst, nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
