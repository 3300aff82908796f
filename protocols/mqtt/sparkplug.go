package mqtt

// The Sparkplug B host application of an MQTT input (Config.Sparkplug). It lives beside the JSON mappers: the
// session's message handler maps a Sparkplug message with mapMessage, under the host's lock, and queues its
// readings like any other message's, so a QoS 1 message is acknowledged only once they are committed. The host's
// own messages (NCMD rebirth requests, STATE) go through a small queue to a sender goroutine of the session, so
// the handler never waits for the network.
//
// What each message does (tck-id-* name the specification's statements; the tests are keyed by them):
//
//   - NBIRTH: the edge node is online; its catalogue (every node metric: name, alias, datatype, properties, and
//     template definitions) is built anew, every device is forgotten until its DBIRTH, the bdSeq metric is kept
//     for the NDEATH and the sequence number restarts from the birth's. Its values become readings, but for bdSeq,
//     the Node Control/* commands and template definitions.
//   - DBIRTH: the device is online with its catalogue (aliases are unique per edge node). Its values become
//     readings.
//   - NDATA, DDATA: each metric is resolved by alias (or name) against the birth and decoded by the birth's
//     datatype, not the DATA's (tck-id-payloads-metric-datatype-not-req).
//   - DDEATH: the device's metrics become Bad readings (status 500, Sparkplug's STALE) at the DDEATH's
//     timestamp, and the device is offline (tck-id-operational-behavior-edge-node-termination-host-action-ddeath-*).
//   - NDEATH: only when its bdSeq is the current NBIRTH's (a will may arrive after the next birth): every metric
//     of the node and its devices becomes a Bad reading at the gateway's time and the node is offline
//     (tck-id-operational-behavior-edge-node-termination-host-action-ndeath-*). Another NDEATH is ignored, counted.
//   - NCMD, DCMD and other hosts' STATE: nothing (acknowledged). The input's own STATE with online false: STATE
//     online again (tck-id-message-flow-hid-sparkplug-state-message-delivered).
//
// Sequence numbers are counted per edge node (NBIRTH, DBIRTH, NDATA, DDATA and DDEATH share one counter, 0 to 255
// and round). A message ahead of the expected number opens a gap; messages that fill it within reorder_timeout
// close it (tck-id-operational-behavior-host-reordering-start, -success), and their data is kept whatever the
// order (each reading has its own time). A gap still open then is counted and answered with a rebirth request
// (tck-id-operational-behavior-host-reordering-rebirth).
//
// A message the catalogue cannot decode — data from an edge node or device without a current birth (after the
// gateway started, after a death, after the input lost its connection to the broker), or with an alias or name
// the birth did not define — is stored as a dead letter whole, and the edge node is asked for a rebirth: NCMD
// "Node Control/Rebirth" = true (tck-id-operational-behavior-data-commands-ncmd-rebirth-*), at most one per edge
// node per second, unless passive. Once the new births arrive, data flows again.
//
// When the input loses its connection to the broker, every metric of every online edge node becomes a Bad
// (STALE) reading at the gateway's time, and the nodes wait for new births (the specification's host rule for a
// lost connection): what was published meanwhile is unknown.

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/proto"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/protocols/mqtt/sparkplugb"
)

const sparkplugNamespace = "spBv1.0"

func sparkplugStateTopic(hostID string) string { return sparkplugNamespace + "/STATE/" + hostID }

// The levels of Sparkplug topics, named for the device and node templates.
var (
	sparkplugDevicePattern, _ = parsePattern(sparkplugNamespace + "/{group}/{message_type}/{edge_node}/{device}")
	sparkplugNodePattern, _   = parsePattern(sparkplugNamespace + "/{group}/{message_type}/{edge_node}")
)

// Limits on what Sparkplug peers can make the input hold. A message beyond them is a dead letter.
const (
	MaxSparkplugNodes    = 10000   // edge nodes tracked per input
	MaxSparkplugMetrics  = 100000  // metrics in one edge node's catalogue, its devices' included
	MaxSparkplugReadings = 100000  // readings of one message (a birth or death of a large node); elements decoded likewise
	MaxSparkplugPayload  = 8 << 20 // bytes of a payload, after decompression
	maxSparkplugDepth    = 16      // templates within templates
)

// Sparkplug's metric quality (the Quality property, tck-id-payloads-propertyset-quality-value-value), kept as a
// reading's Status. StatusNull marks a metric sent with is_null and no Quality.
const (
	SparkplugQualityBad   uint32 = 0
	SparkplugQualityGood  uint32 = 192
	SparkplugQualityStale uint32 = 500
	StatusNull            uint32 = 0x106 // 0x105 is fieldgate.StatusImplausibleTime
)

// sparkplugRebirthInterval is the least time between two rebirth requests to one edge node.
const sparkplugRebirthInterval = time.Second

// spType is a Sparkplug message type (the topic's third level).
type spType uint8

const (
	spNBIRTH spType = iota + 1
	spNDEATH
	spNDATA
	spNCMD
	spDBIRTH
	spDDEATH
	spDDATA
	spDCMD
)

var spTypes = map[string]spType{"NBIRTH": spNBIRTH, "NDEATH": spNDEATH, "NDATA": spNDATA, "NCMD": spNCMD,
	"DBIRTH": spDBIRTH, "DDEATH": spDDEATH, "DDATA": spDDATA, "DCMD": spDCMD}

var spTypeNames = [...]string{"", "NBIRTH", "NDEATH", "NDATA", "NCMD", "DBIRTH", "DDEATH", "DDATA", "DCMD"}

func (t spType) String() string { return spTypeNames[t] }

func (t spType) device() bool { return t >= spDBIRTH }

type spNodeKey struct{ group, node string }

// spNode is an edge node as the host knows it.
type spNode struct {
	group, id        string
	name             string // the readings' device for node metrics
	online           bool   // an NBIRTH since the last death (or connection loss)
	refused          bool   // its last NBIRTH was refused: no rebirth requests until the next one
	bdSeq            int64  // the NBIRTH's, -1 when it had none
	next             int    // the sequence number expected next, -1 unknown
	missing          [256]bool
	nMissing         int
	deadline         time.Time // reorder timeout of the open gap
	lastRebirthAsked time.Time

	aliases  map[uint64]*spMetric
	metrics  map[string]*spMetric // node metrics by name
	list     []*spMetric          // node metrics in birth order
	devices  map[string]*spDevice
	devList  []*spDevice
	nMetrics int                   // node and device metrics
	defs     map[string]*spMembers // template definitions by name

	births, deaths, rebirths, gaps, aliasMisses uint64
	lastBirth, lastDeath, lastMessage           time.Time
	lastSeq                                     int
}

// spDevice is a device of an edge node.
type spDevice struct {
	id, name             string
	online               bool
	metrics              map[string]*spMetric
	list                 []*spMetric
	lastBirth, lastDeath time.Time
}

// spMetric is one metric of a birth: what DATA needs to decode it, and the reading names it gave last (for the
// Bad readings of a death).
type spMetric struct {
	name     string
	alias    uint64
	hasAlias bool
	datatype uint32
	dev      *spDevice // nil: the edge node's own
	control  bool      // bdSeq, Node Control/*, a template definition: no readings
	members  *spMembers
	leaves   []spLeaf            // the reading names it gave: what a death marks stale
	leafSet  map[string]struct{} // leaves by name, for a composite
}

type spLeaf struct {
	name string
	kind fieldgate.Kind
}

// spMembers are a template's member metrics by name.
type spMembers struct {
	byName map[string]*spMember
}

type spMember struct {
	datatype uint32
	members  *spMembers // a nested template
}

// spOutbound is a message of the host's own: NCMD or STATE.
type spOutbound struct {
	topic   string
	qos     byte
	retain  bool
	payload []byte
}

// sparkplugHost is the Sparkplug state of one input: edge nodes, their catalogues and sequence numbers. It
// outlives the input's sessions: a lost connection drops the catalogues (the nodes wait for births) but keeps
// the nodes and their counters.
type sparkplugHost struct {
	cfg        SparkplugConfig // defaults applied
	log        *slog.Logger
	device     template
	node       template
	filters    []string
	stateTopic string // "" without host_id
	now        func() time.Time
	out        chan spOutbound

	mu             sync.Mutex // held by mapMessage; guards what follows
	sink           fieldgate.Sink
	nodes          map[spNodeKey]*spNode
	timer          *time.Timer
	timerAt        time.Time
	closed         bool
	levels         [maxLevels]string
	pb             *sparkplugb.Payload
	c              spCounters
	lastLog        time.Time
	notLogged      int
	lastStateAgain time.Time

	stateTS                         atomic.Int64 // the STATE timestamp of the current connection (will and birth)
	stateOnline                     atomic.Bool
	messages, readings, deadLetters atomic.Uint64
}

type spCounters struct {
	births, deaths, ignoredDeaths, refusedBirths         uint64
	rebirths, rebirthsNotSent, gaps, reordered, outOfSeq uint64
	aliasMisses, withoutBirth, transient, historical     uint64
	staleReadings                                        uint64
}

func newSparkplugHost(cfg SparkplugConfig, log *slog.Logger) *sparkplugHost {
	h := &sparkplugHost{cfg: cfg, log: log, filters: cfg.filters(), now: time.Now,
		out: make(chan spOutbound, 64), nodes: map[spNodeKey]*spNode{}, pb: new(sparkplugb.Payload)}
	h.device, _ = parseTemplate(cfg.Device, sparkplugDevicePattern)
	h.node, _ = parseTemplate(cfg.Node, sparkplugNodePattern)
	if cfg.HostID != "" {
		h.stateTopic = sparkplugStateTopic(cfg.HostID)
	}
	return h
}

// matches reports whether topic is the host's: under one of its filters.
func (h *sparkplugHost) matches(topic string) bool {
	for _, f := range h.filters {
		if matchFilter(f, topic) {
			return true
		}
	}
	return false
}

// close stops the reorder timer; the host takes no more timer work.
func (h *sparkplugHost) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	if h.timer != nil {
		h.timer.Stop()
	}
}

// errNoBirth marks a message the catalogue cannot decode.
var errNoBirth = errors.New("no current birth")

// mapMessage handles one message on a Sparkplug topic and appends its readings to dst. On error dst is returned
// unchanged and the error is the dead letter's reason. It may queue NCMD or STATE messages for the sender.
func (h *sparkplugHost) mapMessage(dst []fieldgate.Reading, topic string, payload []byte, now time.Time) ([]fieldgate.Reading, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if topic == h.stateTopic {
		h.ownState(payload, now)
		return dst, nil
	}
	n, ok := h.split(topic)
	if ok && n >= 2 && h.levels[1] == "STATE" {
		return dst, nil // another host application's state
	}
	var typ spType
	if ok && n >= 4 {
		typ = spTypes[h.levels[2]]
	}
	if typ == 0 || n != 4+btoi(typ.device()) {
		return dst, fmt.Errorf("topic %q is not a Sparkplug B topic (spBv1.0/<group>/<type>/<edge node>[/<device>])", topic)
	}
	if typ == spNCMD || typ == spDCMD {
		return dst, nil // commands to edge nodes (our own rebirth requests among them)
	}
	for i := 1; i < n; i++ {
		if h.levels[i] == "" {
			return dst, fmt.Errorf("topic %q has an empty Sparkplug id", topic)
		}
	}
	p, err := h.decode(payload)
	if err != nil {
		return dst, err
	}
	key := spNodeKey{h.levels[1], h.levels[3]}
	nd := h.nodes[key]
	if nd == nil {
		if len(h.nodes) >= MaxSparkplugNodes {
			return dst, fmt.Errorf("more than %d edge nodes on this input", MaxSparkplugNodes)
		}
		nd = &spNode{group: key.group, id: key.node, next: -1, bdSeq: -1, lastSeq: -1}
		nd.name = string(h.node.expand(nil, &h.levels))
		h.nodes[key] = nd
	}
	nd.lastMessage = now
	if p.HasSeq() && typ != spNDEATH {
		nd.lastSeq = int(min(p.GetSeq(), 1<<16))
	}
	m := spMsg{h: h, typ: typ, n: nd, p: p, now: now, out: dst, start: len(dst)}
	if p.HasTimestamp() {
		m.ts = spTime(p.GetTimestamp())
	}
	switch typ {
	case spNBIRTH:
		err = m.nbirth()
	case spNDEATH:
		err = m.ndeath()
	default:
		if !nd.online {
			h.c.withoutBirth++
			if !nd.refused {
				h.requestRebirth(nd, now, "data without a current NBIRTH")
			}
			return dst, fmt.Errorf("%s from edge node %s/%s, which has %w (rebirth requested unless passive)", typ, nd.group, nd.id, errNoBirth)
		}
		h.checkSeq(nd, p, now)
		err = m.device(h.levels[4])
	}
	out := m.out
	if err == nil {
		for i := m.start; i < len(out); i++ {
			if err = out[i].Validate(); err != nil {
				break
			}
		}
	}
	if err != nil {
		clear(out[m.start:])
		return out[:m.start], err
	}
	return out, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// split puts the topic's levels in h.levels and returns how many there are; ok is false beyond maxLevels.
func (h *sparkplugHost) split(topic string) (n int, ok bool) {
	for n < maxLevels {
		i := strings.IndexByte(topic, '/')
		if i < 0 {
			h.levels[n] = topic
			return n + 1, true
		}
		h.levels[n], topic = topic[:i], topic[i+1:]
		n++
	}
	return n, false
}

// decode unmarshals a payload, bounded: its shape is counted before anything is allocated for it, and a
// compressed payload (Tahu's uuid SPBV1.0_COMPRESSED) is inflated at most to MaxSparkplugPayload.
func (h *sparkplugHost) decode(b []byte) (*sparkplugb.Payload, error) {
	p, err := unmarshalSparkplug(b, h.pb)
	if err != nil {
		return nil, err
	}
	if p.GetUuid() != sparkplugCompressed {
		return p, nil
	}
	raw, err := inflateSparkplug(p)
	if err != nil {
		return nil, err
	}
	return unmarshalSparkplug(raw, h.pb)
}

const sparkplugCompressed = "SPBV1.0_COMPRESSED"

var spUnmarshal = proto.UnmarshalOptions{DiscardUnknown: true, RecursionLimit: 2*maxSparkplugDepth + 8}

func unmarshalSparkplug(b []byte, p *sparkplugb.Payload) (*sparkplugb.Payload, error) {
	if len(b) > MaxSparkplugPayload {
		return nil, fmt.Errorf("payload of %d bytes: more than %d", len(b), MaxSparkplugPayload)
	}
	// Every message takes at least 2 bytes (tag and length): a smaller payload cannot hold too many.
	if len(b) > 2*MaxSparkplugReadings {
		if err := checkShape(b); err != nil {
			return nil, fmt.Errorf("not a Sparkplug B payload: %w", err)
		}
	}
	if err := spUnmarshal.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("not a Sparkplug B payload: %w", err)
	}
	return p, nil
}

// inflateSparkplug returns the body of a compressed payload: DEFLATE (zlib) unless its "algorithm" metric says
// GZIP. The body is inflated twice, first only to count its size: what is allocated is what it inflates to, within
// MaxSparkplugPayload, never a growing buffer a compression bomb could drive to the limit.
func inflateSparkplug(p *sparkplugb.Payload) ([]byte, error) {
	algo := "DEFLATE"
	for _, m := range p.GetMetrics() {
		if m.GetName() == "algorithm" && m.HasStringValue() {
			algo = strings.ToUpper(m.GetStringValue())
		}
	}
	open := func() (io.ReadCloser, error) {
		switch algo {
		case "DEFLATE":
			return zlib.NewReader(bytes.NewReader(p.GetBody()))
		case "GZIP":
			return gzip.NewReader(bytes.NewReader(p.GetBody()))
		}
		return nil, fmt.Errorf("unknown algorithm %q", algo)
	}
	r, err := open()
	if err != nil {
		return nil, fmt.Errorf("compressed payload: %w", err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(r, MaxSparkplugPayload+1))
	r.Close()
	switch {
	case err != nil:
		return nil, fmt.Errorf("compressed payload: %w", err)
	case n > MaxSparkplugPayload:
		return nil, fmt.Errorf("compressed payload inflates beyond %d bytes", MaxSparkplugPayload)
	}
	if r, err = open(); err != nil {
		return nil, fmt.Errorf("compressed payload: %w", err)
	}
	defer r.Close()
	raw := make([]byte, n)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf("compressed payload: %w", err)
	}
	return raw, nil
}

// spTime is a Sparkplug timestamp (milliseconds since the epoch, UTC) as a time a reading can hold.
func spTime(ms uint64) time.Time {
	if ms > 1<<62 {
		ms = 1 << 62
	}
	return fieldgate.DeviceTime(time.UnixMilli(int64(ms)))
}

// checkSeq follows an edge node's sequence numbers (tck-id-payloads-sequence-num-incrementing) and opens, fills
// and times gaps.
func (h *sparkplugHost) checkSeq(n *spNode, p *sparkplugb.Payload, now time.Time) {
	if !p.HasSeq() {
		return
	}
	if p.GetSeq() > 255 {
		h.c.outOfSeq++
		return
	}
	s := int(p.GetSeq())
	switch {
	case n.next < 0:
		n.next = (s + 1) & 0xff
	case n.missing[s]:
		n.missing[s] = false
		n.nMissing--
		h.c.reordered++
		if n.nMissing == 0 {
			n.deadline = time.Time{}
		}
	case s == n.next:
		n.next = (s + 1) & 0xff
	case (s-n.next)&0xff < 128: // ahead: the numbers in between are missing
		for i := n.next; i != s; i = (i + 1) & 0xff {
			if !n.missing[i] {
				n.missing[i] = true
				n.nMissing++
			}
		}
		n.next = (s + 1) & 0xff
		if n.deadline.IsZero() {
			n.deadline = now.Add(h.cfg.ReorderTimeout)
			h.arm(n.deadline)
		}
	default: // behind and not missing: a duplicate, or older than any gap still open
		h.c.outOfSeq++
	}
}

// arm makes the reorder timer fire at t at the latest.
func (h *sparkplugHost) arm(t time.Time) {
	if h.closed {
		return
	}
	if h.timer == nil {
		h.timerAt = t
		h.timer = time.AfterFunc(t.Sub(h.now()), h.expire)
		return
	}
	if h.timerAt.IsZero() || t.Before(h.timerAt) {
		h.timerAt = t
		h.timer.Reset(t.Sub(h.now()))
	}
}

// expire closes the gaps whose reorder timeout passed: each is counted and the edge node asked for a rebirth.
func (h *sparkplugHost) expire() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expireAt(h.now())
}

func (h *sparkplugHost) expireAt(now time.Time) {
	if h.closed {
		return
	}
	h.timerAt = time.Time{}
	var next time.Time
	for _, n := range h.nodes {
		if n.nMissing == 0 {
			continue
		}
		if n.deadline.After(now) {
			if next.IsZero() || n.deadline.Before(next) {
				next = n.deadline
			}
			continue
		}
		h.c.gaps++
		n.gaps++
		h.logf("sparkplug sequence gap not filled within the reorder timeout", "group", n.group, "edge_node", n.id,
			"missing", n.nMissing, "reorder_timeout", h.cfg.ReorderTimeout)
		n.missing, n.nMissing, n.deadline = [256]bool{}, 0, time.Time{}
		h.requestRebirth(n, now, "sequence gap")
	}
	if !next.IsZero() {
		h.arm(next)
	}
}

// requestRebirth queues NCMD Node Control/Rebirth for the edge node, unless the host is passive or asked it less
// than a second ago.
func (h *sparkplugHost) requestRebirth(n *spNode, now time.Time, why string) {
	if h.cfg.Passive || now.Sub(n.lastRebirthAsked) < sparkplugRebirthInterval {
		h.c.rebirthsNotSent++
		return
	}
	ms := uint64(now.UnixMilli())
	payload, err := proto.Marshal(sparkplugb.Payload_builder{
		Timestamp: proto.Uint64(ms),
		Metrics: []*sparkplugb.Payload_Metric{sparkplugb.Payload_Metric_builder{
			Name: proto.String("Node Control/Rebirth"), Timestamp: proto.Uint64(ms),
			Datatype: proto.Uint32(uint32(sparkplugb.DataType_Boolean)), BooleanValue: proto.Bool(true),
		}.Build()},
	}.Build())
	if err != nil { // cannot happen: the message is fixed
		panic(err)
	}
	if !h.enqueue(spOutbound{topic: sparkplugNamespace + "/" + n.group + "/NCMD/" + n.id, payload: payload}) {
		h.c.rebirthsNotSent++
		return
	}
	n.lastRebirthAsked = now
	n.rebirths++
	h.c.rebirths++
	h.logf("sparkplug rebirth requested", "group", n.group, "edge_node", n.id, "why", why)
}

// enqueue hands a message to the session's sender without waiting; false when its queue is full.
func (h *sparkplugHost) enqueue(o spOutbound) bool {
	select {
	case h.out <- o:
		return true
	default:
		return false
	}
}

// logf logs a Sparkplug event at most once a second; the lines in between are counted in the next.
func (h *sparkplugHost) logf(msg string, args ...any) {
	now := h.now()
	if now.Sub(h.lastLog) < time.Second {
		h.notLogged++
		return
	}
	h.log.Info(msg, append(args, "not_logged_since_last", h.notLogged)...)
	h.lastLog, h.notLogged = now, 0
}

// ---- births, deaths, data ----

// spMsg is one message being mapped.
type spMsg struct {
	h     *sparkplugHost
	typ   spType
	n     *spNode
	p     *sparkplugb.Payload
	now   time.Time
	ts    time.Time // the payload's timestamp, zero if none
	out   []fieldgate.Reading
	start int
}

func (m *spMsg) nbirth() error {
	h, n := m.h, m.n
	h.dropCatalogue(n)
	n.lastBirth, n.births = m.now, n.births+1
	h.c.births++
	n.missing, n.nMissing, n.deadline = [256]bool{}, 0, time.Time{}
	n.next = -1
	if m.p.HasSeq() && m.p.GetSeq() <= 255 {
		n.next = int(m.p.GetSeq()+1) & 0xff // any birth value is taken (tck-id-payloads-sequence-num-zero-nbirth is the edge's)
	}
	n.bdSeq = -1
	n.aliases, n.metrics, n.devices, n.defs = map[uint64]*spMetric{}, map[string]*spMetric{}, map[string]*spDevice{}, map[string]*spMembers{}
	if err := m.define(nil); err != nil {
		h.c.refusedBirths++
		n.refused = true
		h.dropCatalogue(n)
		return fmt.Errorf("NBIRTH of edge node %s/%s refused: %w", n.group, n.id, err)
	}
	n.online, n.refused = true, false
	return nil
}

func (m *spMsg) ndeath() error {
	h, n := m.h, m.n
	bd := int64(-1)
	for _, mt := range m.p.GetMetrics() {
		if mt.GetName() == "bdSeq" {
			bd = int64(mt.GetLongValue() | uint64(mt.GetIntValue()))
		}
	}
	// tck-id-operational-behavior-edge-node-termination-host-action-ndeath-*: only the death of the current birth.
	if !n.online || (n.bdSeq >= 0 && bd != n.bdSeq) {
		h.c.ignoredDeaths++
		h.logf("sparkplug NDEATH ignored: not the death of the current NBIRTH", "group", n.group, "edge_node", n.id,
			"bdseq", bd, "birth_bdseq", n.bdSeq, "online", n.online)
		return nil
	}
	n.deaths++
	h.c.deaths++
	n.lastDeath = m.now
	m.out = h.appendStale(m.out, n, nil, m.now, m.now)
	h.dropCatalogue(n)
	return nil
}

// device handles DBIRTH, DDEATH, NDATA and DDATA of an online edge node.
func (m *spMsg) device(devID string) error {
	h, n := m.h, m.n
	var d *spDevice
	if m.typ.device() {
		d = n.devices[devID]
	}
	switch m.typ {
	case spDBIRTH:
		if d == nil {
			d = &spDevice{id: devID, name: string(h.device.expand(nil, &h.levels))}
			n.devices[devID] = d
			n.devList = append(n.devList, d)
		}
		h.dropDevice(n, d)
		d.lastBirth = m.now
		h.c.births++
		if err := m.define(d); err != nil {
			h.c.refusedBirths++
			h.dropDevice(n, d)
			return fmt.Errorf("DBIRTH of device %s/%s/%s refused: %w", n.group, n.id, devID, err)
		}
		d.online = true
		return nil
	case spDDEATH:
		if d == nil || !d.online {
			h.c.ignoredDeaths++
			return nil
		}
		h.c.deaths++
		d.lastDeath = m.now
		at := m.ts // tck-id-operational-behavior-edge-node-termination-host-action-ddeath-devices-tags-stale
		if at.IsZero() {
			at = m.now
		}
		m.out = h.appendStale(m.out, n, d, at, m.now)
		h.dropDevice(n, d)
		return nil
	}
	if m.typ == spDDATA && (d == nil || !d.online) {
		h.c.withoutBirth++
		h.requestRebirth(n, m.now, "device data without a current DBIRTH")
		return fmt.Errorf("DDATA from device %s/%s/%s, which has %w (rebirth requested unless passive)", n.group, n.id, devID, errNoBirth)
	}
	for _, mt := range m.p.GetMetrics() {
		def, err := m.resolve(d, mt)
		if err != nil {
			h.c.aliasMisses++
			n.aliasMisses++
			h.requestRebirth(n, m.now, "unknown metric")
			return err
		}
		if err := m.metric(def, mt); err != nil {
			if errors.Is(err, errDatatype) {
				h.requestRebirth(n, m.now, "a value does not match its birth's datatype")
			}
			return err
		}
	}
	return nil
}

// resolve finds a DATA metric's definition: by alias, else by name, in the device's (or node's) catalogue.
func (m *spMsg) resolve(d *spDevice, mt *sparkplugb.Payload_Metric) (*spMetric, error) {
	n := m.n
	owner := func() string {
		if d != nil {
			return fmt.Sprintf("device %s/%s/%s", n.group, n.id, d.id)
		}
		return fmt.Sprintf("edge node %s/%s", n.group, n.id)
	}
	if mt.HasAlias() {
		def := n.aliases[mt.GetAlias()]
		if def == nil || def.dev != d {
			return nil, fmt.Errorf("alias %d is not in the birth of %s (rebirth requested unless passive)", mt.GetAlias(), owner())
		}
		return def, nil
	}
	byName := n.metrics
	if d != nil {
		byName = d.metrics
	}
	if def := byName[mt.GetName()]; def != nil && mt.HasName() {
		return def, nil
	}
	return nil, fmt.Errorf("metric %q is not in the birth of %s (rebirth requested unless passive)", mt.GetName(), owner())
}

// define builds the catalogue of a birth (of the node when d is nil) and appends the birth's values.
func (m *spMsg) define(d *spDevice) error {
	h, n := m.h, m.n
	metrics := m.p.GetMetrics()
	if n.nMetrics+len(metrics) > MaxSparkplugMetrics {
		return fmt.Errorf("more than %d metrics for one edge node", MaxSparkplugMetrics)
	}
	byName := n.metrics
	if d != nil {
		byName = map[string]*spMetric{}
		d.metrics = byName
	}
	// Template definitions first: instances may come before them in the birth.
	if d == nil {
		for _, mt := range metrics {
			if t := mt.GetTemplateValue(); mt.GetDatatype() == uint32(sparkplugb.DataType_Template) && t.GetIsDefinition() {
				mem, err := h.members(n, t, 0)
				if err != nil {
					return fmt.Errorf("template definition %q: %w", mt.GetName(), err)
				}
				n.defs[mt.GetName()] = mem
			}
		}
	}
	for _, mt := range metrics {
		name := mt.GetName()
		switch {
		case !mt.HasName() || name == "":
			return errors.New("a metric without a name (tck-id-payloads-name-requirement)")
		case !mt.HasDatatype():
			return fmt.Errorf("metric %q has no datatype (tck-id-payloads-metric-datatype-req)", name)
		case byName[name] != nil:
			return fmt.Errorf("metric %q is defined twice", name)
		}
		def := &spMetric{name: name, datatype: mt.GetDatatype(), dev: d, alias: mt.GetAlias(), hasAlias: mt.HasAlias()}
		t := mt.GetTemplateValue()
		isDef := def.datatype == uint32(sparkplugb.DataType_Template) && t.GetIsDefinition()
		def.control = d == nil && (name == "bdSeq" || strings.HasPrefix(name, "Node Control/")) || isDef
		if d == nil && name == "bdSeq" {
			n.bdSeq = int64(mt.GetLongValue() | uint64(mt.GetIntValue()))
		}
		if def.hasAlias {
			if other := n.aliases[def.alias]; other != nil {
				return fmt.Errorf("alias %d of metric %q is also metric %q's (tck-id-payloads-alias-uniqueness)", def.alias, name, other.name)
			}
			n.aliases[def.alias] = def
		}
		byName[name] = def
		if d != nil {
			d.list = append(d.list, def)
		} else {
			n.list = append(n.list, def)
		}
		n.nMetrics++
		if def.datatype == uint32(sparkplugb.DataType_Template) && !isDef {
			mem, err := h.members(n, t, 0)
			if err != nil {
				return fmt.Errorf("template %q: %w", name, err)
			}
			def.members = mem
		}
		if def.control {
			continue
		}
		if err := m.metric(def, mt); err != nil {
			return err
		}
	}
	return nil
}

// members builds the member catalogue of a template (definition or instance): each member's datatype, from the
// member itself or else from the definition the instance refers to.
func (h *sparkplugHost) members(n *spNode, t *sparkplugb.Payload_Template, depth int) (*spMembers, error) {
	if depth >= maxSparkplugDepth {
		return nil, fmt.Errorf("templates nested deeper than %d", maxSparkplugDepth)
	}
	var ref *spMembers
	if t.HasTemplateRef() {
		ref = n.defs[t.GetTemplateRef()]
	}
	mem := &spMembers{byName: make(map[string]*spMember, len(t.GetMetrics()))}
	for _, mt := range t.GetMetrics() {
		dt := mt.GetDatatype()
		var known *spMember
		if ref != nil {
			known = ref.byName[mt.GetName()]
		}
		if !mt.HasDatatype() {
			if known == nil {
				return nil, fmt.Errorf("member %q has no datatype, and no definition gives one", mt.GetName())
			}
			dt = known.datatype
		}
		me := &spMember{datatype: dt}
		if dt == uint32(sparkplugb.DataType_Template) {
			sub := mt.GetTemplateValue()
			if sub == nil && known != nil {
				me.members = known.members
			} else {
				var err error
				if me.members, err = h.members(n, sub, depth+1); err != nil {
					return nil, err
				}
			}
		}
		mem.byName[mt.GetName()] = me
	}
	return mem, nil
}

// dropCatalogue forgets an edge node's birth: it waits for the next NBIRTH.
func (h *sparkplugHost) dropCatalogue(n *spNode) {
	n.online = false
	n.aliases, n.metrics, n.list, n.devices, n.devList, n.defs, n.nMetrics = nil, nil, nil, nil, nil, nil, 0
}

// dropDevice forgets a device's birth: its metrics leave the node's catalogue and aliases.
func (h *sparkplugHost) dropDevice(n *spNode, d *spDevice) {
	for _, def := range d.list {
		if def.hasAlias && n.aliases[def.alias] == def {
			delete(n.aliases, def.alias)
		}
	}
	n.nMetrics -= len(d.list)
	d.online, d.metrics, d.list = false, nil, nil
}

// appendStale appends a Bad (STALE) reading at time at for every metric the birth of the node (d nil: and of
// every online device) or of device d defined.
func (h *sparkplugHost) appendStale(out []fieldgate.Reading, n *spNode, d *spDevice, at, now time.Time) []fieldgate.Reading {
	add := func(dev string, list []*spMetric) {
		for _, def := range list {
			for _, l := range def.leaves {
				if len(out) >= MaxSparkplugReadings {
					return
				}
				out = append(out, fieldgate.Reading{Device: dev, Metric: l.name, Value: fieldgate.Zero(l.kind), Quality: fieldgate.Bad,
					Status: SparkplugQualityStale, SourceTime: at, GatewayTime: now})
				h.c.staleReadings++
			}
		}
	}
	if d != nil {
		add(d.name, d.list)
		return out
	}
	add(n.name, n.list)
	for _, dd := range n.devList {
		if dd.online {
			add(dd.name, dd.list)
		}
	}
	return out
}

// connectionLost marks every online edge node stale, as the specification wants of a host that lost its broker:
// a Bad reading for each metric at the gateway's time, queued in the buffer (nothing to acknowledge), and the
// nodes wait for new births.
func (h *sparkplugHost) connectionLost() {
	h.mu.Lock()
	now := h.now()
	var rs []fieldgate.Reading
	for _, n := range h.nodes {
		if n.online {
			rs = h.appendStale(rs, n, nil, now, now)
			h.dropCatalogue(n)
		}
		n.missing, n.nMissing, n.deadline, n.next = [256]bool{}, 0, time.Time{}, -1
	}
	sink := h.sink
	h.mu.Unlock()
	if len(rs) == 0 || sink == nil {
		return
	}
	if _, err := sink.Queue(rs, nil); err != nil {
		h.log.Error("sparkplug: cannot queue the stale readings of the lost connection", "readings", len(rs), "err", err)
	}
}

// ---- STATE (primary host) ----

// stateJSON is the STATE payload (tck-id-host-topic-phid-birth-payload, -death-payload).
func stateJSON(online bool, ts int64) []byte {
	return fmt.Appendf(nil, `{"online":%t,"timestamp":%d}`, online, ts)
}

// reconnecting runs before each attempt to reconnect after a lost connection: the edge nodes become stale and a
// primary host's will gets the new connection's timestamp.
func (h *sparkplugHost) reconnecting(opts *paho.ClientOptions) {
	h.stateOnline.Store(false)
	h.connectionLost()
	if h.stateTopic != "" {
		opts.SetBinaryWill(h.stateTopic, h.newStateTimestamp(), 1, true)
	}
}

// newStateTimestamp starts a connection's STATE: the timestamp its will and birth carry.
func (h *sparkplugHost) newStateTimestamp() []byte {
	ts := h.now().UnixMilli()
	h.stateTS.Store(ts)
	return stateJSON(false, ts)
}

// ownState answers the input's own STATE topic: online false there (a will of ours, or someone else's claim)
// is answered with online true at once (tck-id-message-flow-hid-sparkplug-state-message-delivered), at most once
// a second.
func (h *sparkplugHost) ownState(payload []byte, now time.Time) {
	var st struct {
		Online *bool `json:"online"`
	}
	if json.Unmarshal(payload, &st) != nil || st.Online == nil || *st.Online || !h.stateOnline.Load() {
		return
	}
	if now.Sub(h.lastStateAgain) < time.Second {
		return
	}
	h.lastStateAgain = now
	h.enqueue(spOutbound{topic: h.stateTopic, qos: 1, retain: true, payload: stateJSON(true, h.stateTS.Load())})
}

// online publishes the STATE birth once the subscriptions are confirmed
// (tck-id-message-flow-phid-sparkplug-subscription, -state-publish), QoS 1 and retained, with the will's
// timestamp (tck-id-host-topic-phid-birth-payload-timestamp). It runs on paho's connect handler goroutine.
func (h *sparkplugHost) online(c paho.Client, timeout time.Duration) {
	if h.stateTopic == "" {
		return
	}
	tok := c.Publish(h.stateTopic, 1, true, stateJSON(true, h.stateTS.Load()))
	if !tok.WaitTimeout(timeout) || tok.Error() != nil {
		h.log.Error("sparkplug STATE birth not published; edge nodes waiting for this host will not publish", "topic", h.stateTopic, "err", tok.Error())
		return
	}
	h.stateOnline.Store(true)
	h.log.Info("sparkplug primary host online", "topic", h.stateTopic)
}

// offline publishes the STATE death before an intentional disconnect
// (tck-id-operational-behavior-host-application-termination), with the connection's timestamp.
func (h *sparkplugHost) offline(c paho.Client, timeout time.Duration) {
	if h.stateTopic == "" || !h.stateOnline.Swap(false) || !c.IsConnectionOpen() {
		return
	}
	tok := c.Publish(h.stateTopic, 1, true, stateJSON(false, h.stateTS.Load()))
	if !tok.WaitTimeout(timeout) || tok.Error() != nil {
		h.log.Warn("sparkplug STATE death not published before disconnecting; the broker's will says it instead", "err", tok.Error())
	}
}

// sender publishes the host's queued messages on the session's client until stop is closed. QoS 1 messages are
// waited for here, never on the handler.
func (h *sparkplugHost) sender(c paho.Client, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case o := <-h.out:
			tok := c.Publish(o.topic, o.qos, o.retain, o.payload)
			if o.qos > 0 {
				select {
				case <-tok.Done():
				case <-stop:
					return
				}
			}
			if err := tok.Error(); err != nil {
				h.log.Warn("sparkplug publish failed", "topic", o.topic, "err", err)
			}
		}
	}
}

// ---- stats ----

// SparkplugStats are the counters of an input's Sparkplug host application (Stats.Sparkplug).
type SparkplugStats struct {
	Messages        uint64 // messages on Sparkplug topics
	Readings        uint64 // readings committed from them
	DeadLetters     uint64 // messages stored as dead letters
	Births          uint64 // NBIRTH and DBIRTH messages taken
	RefusedBirths   uint64 // births refused (a metric without name or datatype, a duplicate alias): dead letters
	Deaths          uint64 // NDEATH and DDEATH messages that marked metrics stale
	IgnoredDeaths   uint64 // deaths of no current birth (an NDEATH whose bdSeq is not the NBIRTH's)
	RebirthRequests uint64 // NCMD Node Control/Rebirth sent
	RebirthsNotSent uint64 // rebirths wanted but not sent: passive, or one was sent to the node less than a second ago
	SequenceGaps    uint64 // gaps in sequence numbers not filled within reorder_timeout
	Reordered       uint64 // messages that arrived late and filled a gap in time
	OutOfSequence   uint64 // messages behind the expected number and not in a gap (duplicates), or with seq above 255
	AliasMisses     uint64 // DATA messages with an alias or name their birth did not define (dead letters)
	WithoutBirth    uint64 // DATA or DBIRTH from an edge node or device without a current birth (dead letters)
	Transient       uint64 // metrics marked is_transient: not stored, as the specification asks of hosts
	Historical      uint64 // metrics marked is_historical, stored at their own time
	StaleReadings   uint64 // Bad (STALE) readings made for deaths and lost connections
	StateOnline     bool   // primary host: the STATE birth is published on the current connection
	Nodes           []SparkplugNodeStats
}

// SparkplugNodeStats is one edge node as the host knows it.
type SparkplugNodeStats struct {
	Group, EdgeNode string
	Device          string // the readings' device of its own metrics
	Online          bool   // born and not dead since
	BdSeq           int64  // of the current NBIRTH, -1 none
	Seq             int    // the last sequence number received, -1 none
	Metrics         int    // in its catalogue, its devices' included
	Births, Deaths  uint64
	RebirthRequests uint64
	SequenceGaps    uint64
	AliasMisses     uint64
	LastBirth       time.Time
	LastDeath       time.Time
	LastMessage     time.Time
	Devices         []SparkplugDeviceStats
}

// SparkplugDeviceStats is one device of an edge node.
type SparkplugDeviceStats struct {
	ID, Device           string
	Online               bool
	Metrics              int
	LastBirth, LastDeath time.Time
}

func (h *sparkplugHost) stats() *SparkplugStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.c
	st := &SparkplugStats{Messages: h.messages.Load(), Readings: h.readings.Load(), DeadLetters: h.deadLetters.Load(),
		Births: c.births, RefusedBirths: c.refusedBirths, Deaths: c.deaths, IgnoredDeaths: c.ignoredDeaths,
		RebirthRequests: c.rebirths, RebirthsNotSent: c.rebirthsNotSent, SequenceGaps: c.gaps, Reordered: c.reordered,
		OutOfSequence: c.outOfSeq, AliasMisses: c.aliasMisses, WithoutBirth: c.withoutBirth, Transient: c.transient,
		Historical: c.historical, StaleReadings: c.staleReadings, StateOnline: h.stateOnline.Load()}
	for _, n := range h.nodes {
		ns := SparkplugNodeStats{Group: n.group, EdgeNode: n.id, Device: n.name, Online: n.online, BdSeq: n.bdSeq,
			Seq: n.lastSeq, Metrics: n.nMetrics, Births: n.births, Deaths: n.deaths, RebirthRequests: n.rebirths,
			SequenceGaps: n.gaps, AliasMisses: n.aliasMisses, LastBirth: n.lastBirth, LastDeath: n.lastDeath,
			LastMessage: n.lastMessage}
		for _, d := range n.devList {
			ns.Devices = append(ns.Devices, SparkplugDeviceStats{ID: d.id, Device: d.name, Online: d.online,
				Metrics: len(d.list), LastBirth: d.lastBirth, LastDeath: d.lastDeath})
		}
		st.Nodes = append(st.Nodes, ns)
	}
	slices.SortFunc(st.Nodes, func(a, b SparkplugNodeStats) int {
		return strings.Compare(a.Group+"/"+a.EdgeNode, b.Group+"/"+b.EdgeNode)
	})
	return st
}
