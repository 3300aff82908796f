package mqtt

import (
	"errors"
	"fmt"
	"strings"
)

// segKind is the kind of one segment of a topic pattern.
type segKind uint8

const (
	segLiteral segKind = iota // matches itself
	segNamed                  // {name}: one non-empty level, captured
	segPlus                   // +: one level
	segHash                   // #: the rest (last segment only)
)

type segment struct {
	kind segKind
	text string // the literal, or the name of a named segment
}

// pattern is a parsed subscription topic.
type pattern struct {
	segs   []segment
	filter string         // the MQTT filter subscribed to
	names  map[string]int // named segment → index
}

// parsePattern parses a topic pattern such as "plant/{line}/{device}/telemetry".
func parsePattern(topic string) (pattern, error) {
	if topic == "" {
		return pattern{}, errors.New("required, e.g. plant/{line}/{device}/telemetry")
	}
	if len(topic) > 65535 {
		return pattern{}, errors.New("longer than 65535 bytes")
	}
	if strings.ContainsRune(topic, 0) {
		return pattern{}, errors.New("contains a NUL character")
	}
	parts := strings.Split(topic, "/")
	p := pattern{segs: make([]segment, len(parts)), names: map[string]int{}}
	filter := make([]string, len(parts))
	for i, s := range parts {
		switch {
		case s == "#":
			if i != len(parts)-1 {
				return pattern{}, fmt.Errorf("%q: # is allowed only as the last segment", topic)
			}
			p.segs[i] = segment{kind: segHash}
			filter[i] = "#"
		case s == "+":
			p.segs[i] = segment{kind: segPlus}
			filter[i] = "+"
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && len(s) > 2:
			name := s[1 : len(s)-1]
			if !validName(name) {
				return pattern{}, fmt.Errorf("%q: segment name %q: use letters, digits, _ and -", topic, name)
			}
			if _, dup := p.names[name]; dup {
				return pattern{}, fmt.Errorf("%q: segment {%s} named twice", topic, name)
			}
			p.names[name] = i
			p.segs[i] = segment{kind: segNamed, text: name}
			filter[i] = "+"
		case strings.ContainsAny(s, "+#{}"):
			return pattern{}, fmt.Errorf("%q: segment %q: wildcards and {name} must fill a whole segment", topic, s)
		default:
			p.segs[i] = segment{kind: segLiteral, text: s}
			filter[i] = s
		}
	}
	p.filter = strings.Join(filter, "/")
	return p, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// maxLevels bounds the topic levels we capture; deeper topics still match patterns ending in #.
const maxLevels = 32

// match reports whether topic matches the pattern, and fills levels with the topic's levels (up to maxLevels;
// levels beyond the pattern are not captured). It does not allocate.
func (p *pattern) match(topic string, levels *[maxLevels]string) (n int, ok bool) {
	// MQTT: a filter starting with a wildcard does not match topics starting with $.
	if len(topic) > 0 && topic[0] == '$' && len(p.segs) > 0 && p.segs[0].kind != segLiteral {
		return 0, false
	}
	rest, ended := topic, false
	for _, seg := range p.segs {
		if seg.kind == segHash {
			return n, true // the rest, zero levels included: "a/#" matches "a"
		}
		if ended {
			return 0, false
		}
		var level string
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			level, rest = rest[:j], rest[j+1:]
		} else {
			level, rest, ended = rest, "", true
		}
		switch seg.kind {
		case segLiteral:
			if level != seg.text {
				return 0, false
			}
		case segNamed:
			// Matching the filter is not enough: a named level must not be empty.
			if level == "" {
				return 0, false
			}
		}
		if n < maxLevels {
			levels[n] = level
			n++
		}
	}
	return n, ended
}

// matchFilter reports whether an MQTT filter (with + and #) matches topic, as the broker does.
func matchFilter(filter, topic string) bool {
	if len(topic) > 0 && topic[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fi := strings.IndexByte(filter, '/')
		f := filter
		if fi >= 0 {
			f = filter[:fi]
		}
		if f == "#" {
			return true
		}
		ti := strings.IndexByte(topic, '/')
		t := topic
		if ti >= 0 {
			t = topic[:ti]
		}
		if f != "+" && f != t {
			return false
		}
		switch {
		case fi < 0 && ti < 0:
			return true
		case fi < 0:
			return false
		case ti < 0:
			return filter[fi+1:] == "#"
		}
		filter, topic = filter[fi+1:], topic[ti+1:]
	}
}

// template is a parsed name template such as "{line}/{device}": literal text and references to named levels.
type template struct {
	parts []tplPart
}

type tplPart struct {
	lit   string
	level int // index into the captured levels, or -1 for a literal
}

// parseTemplate parses s over the named segments of p. An empty s gives an empty template.
func parseTemplate(s string, p pattern) (template, error) {
	var t template
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			if strings.IndexByte(s, '}') >= 0 {
				return template{}, fmt.Errorf("unbalanced } in %q", s)
			}
			t.parts = append(t.parts, tplPart{lit: s, level: -1})
			break
		}
		if i > 0 {
			if strings.IndexByte(s[:i], '}') >= 0 {
				return template{}, fmt.Errorf("unbalanced } in %q", s)
			}
			t.parts = append(t.parts, tplPart{lit: s[:i], level: -1})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return template{}, fmt.Errorf("unclosed { in %q", s)
		}
		name := s[i+1 : i+j]
		idx, ok := p.names[name]
		if !ok {
			known := make([]string, 0, len(p.names))
			for _, seg := range p.segs {
				if seg.kind == segNamed {
					known = append(known, "{"+seg.text+"}")
				}
			}
			if len(known) == 0 {
				return template{}, fmt.Errorf("{%s} is not a named segment of the topic (it names none)", name)
			}
			return template{}, fmt.Errorf("{%s} is not a named segment of the topic (known: %s)", name, strings.Join(known, ", "))
		}
		if idx >= maxLevels {
			return template{}, fmt.Errorf("{%s} is deeper than %d levels", name, maxLevels)
		}
		t.parts = append(t.parts, tplPart{level: idx})
		s = s[i+j+1:]
	}
	return t, nil
}

func (t template) empty() bool { return len(t.parts) == 0 }

// expand appends the template's expansion for the captured levels to dst.
func (t template) expand(dst []byte, levels *[maxLevels]string) []byte {
	for _, p := range t.parts {
		if p.level < 0 {
			dst = append(dst, p.lit...)
		} else {
			dst = append(dst, levels[p.level]...)
		}
	}
	return dst
}
