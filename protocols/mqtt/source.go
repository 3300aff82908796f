// Package mqtt is fieldgate's MQTT input: it subscribes to a broker with paho.mqtt.golang, maps each message's
// topic and payload to readings, and acknowledges a QoS 1/2 message to the broker only after its readings (or
// its dead letter) are durably committed.
//
// # Delivery
//
// The client uses a fixed client id and a persistent session (clean_session false) by default, so the broker
// keeps queued and unacknowledged messages while the gateway is down or disconnected. paho's automatic
// acknowledgement is off. The message handler, which paho calls in arrival order on its router goroutine, maps
// the message to readings (or a dead letter) and queues them in the buffer's group commit (fieldgate.Sink): it
// never waits for the commit. A second goroutine, the acknowledger, waits for the commits in order and
// acknowledges each message once its commit is done, in arrival order, as MQTT requires. A message is
// acknowledged only after its readings (or its dead letter) are durable.
//
// Messages wait for the buffer's commit interval, so that one commit carries many; but the broker lets only
// max_inflight_messages (Mosquitto's default 20) be unacknowledged and sends nothing more until it has
// acknowledgements, so when max_inflight messages wait the handler asks for the commit at once (Sink.Flush).
// Waiting then would only cap the rate.
//
// When a commit fails, nothing from its first message on is acknowledged. The session then drops the
// connection and connects again after a backoff (doubling up to max_reconnect_interval, reset by the next
// successful commit): an MQTT 3.1.1 broker sends an unacknowledged message again only on a new connection, so
// the reconnect is what makes the broker redeliver. Messages of the dropped connection still waiting for
// commits are discarded, unacknowledged; the broker redelivers them too.
//
// # Throughput
//
// A broker lets only a few QoS 1/2 messages per client be unacknowledged (Mosquitto's max_inflight_messages,
// default 20), so the rate is bounded by about max_inflight / (commit time + round trip): with a 2 ms commit,
// some 10,000 messages/s. Raising max_inflight_messages on the broker (and max_inflight here) raises that bound;
// the broker's max_queued_messages (default 1000) and max_queued_bytes bound what it keeps for the gateway while
// it is down, and Mosquitto drops messages beyond them silently: raise them to cover the outages you plan for,
// e.g.
//
//	max_inflight_messages 100   # per client; more in flight = bigger group commits
//	max_queued_messages 1000000 # per client, kept while the gateway is away or behind
//	max_queued_bytes 0          # no byte limit (or size it to the broker's memory)
//	persistence true            # sessions and queued messages survive a broker restart (saved on shutdown
//	autosave_interval 60        # and every autosave_interval seconds; a kill -9 loses what came after)
//
// The handler blocks paho's reader only while max_batch messages wait for their commits; the broker's in-flight
// limit normally keeps QoS 1/2 traffic below that, and a QoS 0 flood faster than the commits slows paho's reader
// down (backpressure) rather than growing memory. A wait longer than the keepalive interval would cost the
// connection (paho reads the ping responses on the same goroutine).
//
// # Sparkplug B
//
// With a sparkplug section (SparkplugConfig) the input is also a Sparkplug B host application: it subscribes to
// the Sparkplug namespace, and the handler maps those messages with the input's Sparkplug host (sparkplug.go)
// instead of a subscription's mapper, queueing and acknowledging them like any other. The host keeps every edge
// node's catalogue from its births, decodes data by alias and the birth's datatype, follows sequence numbers,
// marks metrics stale on deaths and a lost connection, and sends rebirth requests (NCMD) and, as a primary host,
// its STATE through a sender goroutine of the session.
//
// # Caveats
//
//   - A persistent session keeps the subscriptions of an earlier configuration at the broker; messages on them
//     match no subscription here and become dead letters, until the session is cleaned once (clean_session true
//     for one start, or a new client_id).
//   - Every (re)subscribe makes the broker send the retained messages on the filter again. A retained message
//     whose payload has no timestamp then gives a new reading at the new receive time.
//   - Overlapping filters (plant/+/+/telemetry and plant/#) may make the broker deliver a message once per
//     matching subscription (MQTT 3.1.1 allows either); here each copy is mapped by the first subscription
//     whose filter matches. Prefer filters that do not overlap.
//   - Messages are delivered at least once: after a reconnect the broker may send again what was committed but
//     not yet acknowledged. Readings with a source time are then exact duplicates, which the central service
//     stores once.
package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldgate/fieldgate"
)

// Source is one MQTT input. Make it with New and run it with Run.
type Source struct {
	cfg    Config // defaults applied
	log    *slog.Logger
	origin string // "mqtt:<name>", the dead letters' Source
	subs   []Subscription
	ran    atomic.Bool

	connected, subscribed           atomic.Bool
	connects, losses, subscribeErrs atomic.Uint64
	lastErr                         atomic.Value // string: see Stats.LastError
	messages, redelivered, readings atomic.Uint64
	deadLetters, commitErrs         atomic.Uint64
	acked, commits, discarded       atomic.Uint64
	flushes, held                   atomic.Uint64
	ackNanos, ackCount              atomic.Uint64
	perSub                          []subCounters
	unrouted                        atomic.Uint64
	spb                             *sparkplugHost // nil without a sparkplug section

	deadLog *rateLog // the rate limit of the dead-letter log

	replayMu      sync.Mutex // guards replayMappers
	replayMappers []*Mapper  // Replay's own mappers (a Mapper serves one caller at a time); built at its first call
}

type subCounters struct {
	messages, readings, deadLetters atomic.Uint64
}

// Stats is a snapshot of a Source's counters, all cumulative since New.
type Stats struct {
	Connected        bool   // the client holds a connection to the broker now
	Subscribed       bool   // the broker confirmed every subscription on the current connection
	LastError        string // why the last connection attempt failed, the connection was lost or a subscription not confirmed; cleared by a connect
	Connects         uint64 // connections established (first and reconnects)
	ConnectionLosses uint64 // connections lost or dropped on purpose after a failed commit
	SubscribeErrors  uint64 // subscriptions the broker refused or did not confirm
	Messages         uint64 // messages received
	Redelivered      uint64 // messages received with the DUP flag (the broker sends again what was not acknowledged)
	Readings         uint64 // readings committed
	DeadLetters      uint64 // messages stored as dead letters (then acknowledged)
	EmitErrors       uint64 // commits that failed or could not be queued (their messages were not acknowledged)
	AckedMessages    uint64 // QoS 1/2 messages acknowledged after their commit (paho drops an ack for a connection lost meanwhile; the broker redelivers)
	Batches          uint64 // buffer commits that carried this input's messages
	Flushes          uint64 // commits asked for at once because max_inflight messages were waiting
	Held             uint64 // times the handler held paho's reader because max_batch messages were waiting
	Discarded        uint64 // messages dropped unacknowledged after a failed commit or at the end of a session (the broker redelivers them)
	// AckLatencySeconds is the sum of the times from receipt to acknowledgement of AckLatencyCount messages.
	AckLatencySeconds float64
	AckLatencyCount   uint64
	Subscriptions     []SubscriptionStats // in configuration order
	Unrouted          uint64              // messages that matched no subscription (dead letters, counted in DeadLetters too)
	Sparkplug         *SparkplugStats     // the Sparkplug host application, nil without a sparkplug section
}

// SubscriptionStats are the counters of one subscription.
type SubscriptionStats struct {
	Topic       string
	Messages    uint64
	Readings    uint64
	DeadLetters uint64
}

var _ fieldgate.Source = (*Source)(nil)

// New checks cfg, applies its defaults and returns the source. It does no I/O. log is used as it is: the caller
// names the input in it.
func New(cfg Config, log *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.WithDefaults()
	s := &Source{cfg: cfg, log: log, origin: "mqtt:" + cfg.Name, deadLog: newRateLog(log, time.Second, "dead-letter"),
		subs: cfg.Subscriptions, perSub: make([]subCounters, len(cfg.Subscriptions))}
	if cfg.Sparkplug != nil {
		s.spb = newSparkplugHost(*cfg.Sparkplug, s.log)
	}
	return s, nil
}

// Name returns the input's configured name.
func (s *Source) Name() string { return s.cfg.Name }

// Stats returns a snapshot of the counters. It is safe to call at any time, concurrently with Run.
func (s *Source) Stats() Stats {
	st := Stats{
		Connected: s.connected.Load(), Subscribed: s.subscribed.Load(), Connects: s.connects.Load(), ConnectionLosses: s.losses.Load(),
		SubscribeErrors: s.subscribeErrs.Load(), Messages: s.messages.Load(), Redelivered: s.redelivered.Load(),
		Readings: s.readings.Load(), DeadLetters: s.deadLetters.Load(), EmitErrors: s.commitErrs.Load(),
		AckedMessages: s.acked.Load(), Batches: s.commits.Load(), Flushes: s.flushes.Load(), Held: s.held.Load(),
		Discarded: s.discarded.Load(), AckLatencySeconds: float64(s.ackNanos.Load()) / 1e9,
		AckLatencyCount: s.ackCount.Load(), Unrouted: s.unrouted.Load(),
	}
	st.LastError, _ = s.lastErr.Load().(string)
	st.Subscriptions = make([]SubscriptionStats, len(s.subs))
	for i := range s.subs {
		c := &s.perSub[i]
		st.Subscriptions[i] = SubscriptionStats{Topic: s.subs[i].Topic, Messages: c.messages.Load(),
			Readings: c.readings.Load(), DeadLetters: c.deadLetters.Load()}
	}
	if s.spb != nil {
		st.Sparkplug = s.spb.stats()
	}
	return st
}

// errCommit ends a session after a commit failed, so that the broker redelivers on the next connection.
var errCommit = errors.New("commit failed")

// Run connects, subscribes and delivers readings to sink until ctx ends, then returns nil. It reconnects by
// itself after a lost connection or a failed commit (see the package doc). It returns an error only for what
// retrying cannot fix: TLS files that cannot be read. Run may be called once; it leaves no goroutine of its own
// behind (paho's may take up to disconnectQuiesce to wind down after the disconnect).
func (s *Source) Run(ctx context.Context, sink fieldgate.Sink) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("mqtt: Run called twice")
	}
	tlsCfg, err := s.cfg.TLS.Build()
	if err != nil {
		return fmt.Errorf("mqtt input %s: %w", s.cfg.Name, err)
	}
	if tlsCfg == nil && s.cfg.tlsOn() {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	for _, w := range s.cfg.Warnings() {
		s.log.Warn(w)
	}
	mappers, err := s.newMappers()
	if err != nil {
		return err
	}
	defer s.deadLog.close()
	if s.spb != nil {
		s.spb.mu.Lock()
		s.spb.sink = sink
		s.spb.mu.Unlock()
		defer s.spb.close()
	}
	const firstDelay = 500 * time.Millisecond
	delay := firstDelay
	for {
		committed, err := s.session(ctx, tlsCfg, &intake{s: s, sink: sink, mappers: mappers})
		if ctx.Err() != nil {
			return nil
		}
		if committed {
			delay = firstDelay
		}
		s.log.Warn("mqtt session ended, connecting again", "broker", s.cfg.Broker, "in", delay, "err", err)
		if err != nil {
			s.lastErr.Store(err.Error())
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(delay*2, s.cfg.MaxReconnectInterval)
	}
}

// disconnectQuiesce bounds how long a session's end waits for paho to write what is queued (the last
// acknowledgements, then DISCONNECT). It normally takes well under a millisecond; on a starved CPU an
// acknowledgement cut off here is only a redelivery after the restart.
const disconnectQuiesce = 1000 // milliseconds

// session runs one paho client: connect, then acknowledge until ctx ends or a commit fails. committed reports
// whether anything was committed (which resets the backoff).
func (s *Source) session(ctx context.Context, tlsCfg *tls.Config, in *intake) (committed bool, err error) {
	in.pending = fieldgate.NewPending[inflight]()
	in.failed = make(chan struct{})
	in.stop = make(chan struct{})
	in.settled = make(chan struct{}, 1)
	client := paho.NewClient(s.options(tlsCfg, in.handle))
	stopSender := func() {}
	if s.spb != nil {
		stop, sent := make(chan struct{}), make(chan struct{})
		go func() { defer close(sent); s.spb.sender(client, stop) }()
		stopSender = func() { close(stop); <-sent }
	}
	defer func() {
		in.close() // the handler takes nothing more, so paho's router can stop
		stopSender()
		if s.spb != nil {
			s.spb.offline(client, disconnectQuiesce*time.Millisecond)
		}
		client.Disconnect(disconnectQuiesce)
		s.subscribed.Store(false)
		if s.connected.Swap(false) && errors.Is(err, errCommit) {
			s.losses.Add(1)
			if s.spb != nil {
				s.spb.connectionLost()
			}
		}
		s.discarded.Add(uint64(in.pending.Len()))
	}()

	tok := client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return false, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return false, fmt.Errorf("connect to %s: %w", s.cfg.Broker, err)
	}
	return in.acknowledge(ctx)
}

// options builds paho's options. The handler is the default publish handler, set before Connect: paho does not
// acknowledge a message no handler matches, and a persistent session delivers queued messages right after the
// CONNACK, before any Subscribe returns.
func (s *Source) options(tlsCfg *tls.Config, handler paho.MessageHandler) *paho.ClientOptions {
	o := paho.NewClientOptions()
	o.AddBroker(s.cfg.Broker)
	o.SetClientID(s.cfg.ClientID)
	o.SetCleanSession(s.cfg.CleanSession)
	o.SetProtocolVersion(4) // MQTT 3.1.1, no silent fallback to 3.1
	if s.cfg.Username != "" {
		o.SetUsername(s.cfg.Username)
		o.SetPassword(s.cfg.Password.Reveal())
	}
	if tlsCfg != nil {
		o.SetTLSConfig(tlsCfg)
	}
	o.SetKeepAlive(s.cfg.KeepAlive)
	o.SetPingTimeout(min(s.cfg.KeepAlive, 10*time.Second))
	o.SetConnectTimeout(s.cfg.ConnectTimeout)
	// Later connection losses: paho reconnects by itself, backing off from 1s up to MaxReconnectInterval. The
	// first connect is retried by Run, which can be cancelled (paho's ConnectRetry sleeps uninterruptibly).
	o.SetAutoReconnect(true)
	o.SetMaxReconnectInterval(s.cfg.MaxReconnectInterval)
	o.SetConnectRetry(false)
	// The in-memory store: paho's FileStore does not fsync and panics on I/O errors. The broker's session and
	// our commit-before-ack carry durability.
	o.SetStore(paho.NewMemoryStore())
	o.SetOrderMatters(true) // the handler runs in arrival order on paho's router goroutine
	o.SetAutoAckDisabled(true)
	o.SetDefaultPublishHandler(handler)
	o.SetResumeSubs(false)
	o.SetOnConnectHandler(func(c paho.Client) {
		s.subscribed.Store(false)
		s.connected.Store(true)
		s.connects.Add(1)
		s.lastErr.Store("")
		s.subscribe(c)
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		s.losses.Add(1)
		s.log.Warn("mqtt connection lost; reconnecting", "broker", s.cfg.Broker, "err", err)
		if !s.connected.Load() { // not when paho ran this after the next connect
			s.lastErr.Store("connection lost: " + err.Error())
		}
	})
	// A failed reconnect attempt is reported in order with the attempts (before the next one), so its reason is
	// what Stats.LastError shows while paho retries.
	o.SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
		if f, ok := n.(paho.ConnectionNotificationFailed); ok {
			s.lastErr.Store("reconnect failed: " + f.Reason.Error())
		}
	})
	// paho runs the lost handler concurrently with its reconnect, so it can run after the next connection's
	// connect handler: what a lost connection changes is done before each reconnect attempt instead.
	o.SetReconnectingHandler(func(_ paho.Client, opts *paho.ClientOptions) {
		s.connected.Store(false)
		s.subscribed.Store(false)
		if s.spb != nil {
			s.spb.reconnecting(opts)
		}
	})
	if s.spb != nil && s.spb.stateTopic != "" {
		// A primary host's will: STATE offline, with a timestamp new at every connect, which the STATE birth
		// repeats (tck-id-host-topic-phid-death-payload-timestamp-connect, -birth-payload-timestamp).
		o.SetBinaryWill(s.spb.stateTopic, s.spb.newStateTimestamp(), 1, true)
	}
	return o
}

// subscribe (re)subscribes every filter; it runs on every connect, because a clean session, or a broker that
// lost its state, forgets subscriptions. No callback is registered per filter: the default handler routes.
func (s *Source) subscribe(c paho.Client) {
	filters := make(map[string]byte, len(s.subs))
	for _, sub := range s.subs {
		p, _ := parsePattern(sub.Topic)
		filters[p.filter] = *sub.QoS
	}
	if s.spb != nil {
		for _, f := range s.spb.filters {
			filters[f] = *s.cfg.Sparkplug.QoS
		}
	}
	tok := c.SubscribeMultiple(filters, nil)
	if !tok.WaitTimeout(s.cfg.ConnectTimeout) {
		s.subscribeErrs.Add(1)
		s.lastErr.Store(fmt.Sprintf("subscribe not confirmed within %s", s.cfg.ConnectTimeout))
		s.log.Error("mqtt subscribe not confirmed in time; retrying on the next connect", "broker", s.cfg.Broker, "timeout", s.cfg.ConnectTimeout)
		return
	}
	if err := tok.Error(); err != nil {
		s.subscribeErrs.Add(1)
		s.lastErr.Store("subscribe failed: " + err.Error())
		s.log.Error("mqtt subscribe failed", "broker", s.cfg.Broker, "err", err)
		return
	}
	refused := false
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for filter, code := range st.Result() {
			if code == 0x80 {
				refused = true
				s.subscribeErrs.Add(1)
				s.lastErr.Store("the broker refused the subscription " + filter + " (check its ACL)")
				s.log.Error("mqtt broker refused the subscription (check its ACL)", "broker", s.cfg.Broker, "filter", filter)
			}
		}
	}
	if refused {
		return
	}
	if s.spb != nil {
		s.spb.online(c, s.cfg.ConnectTimeout)
	}
	s.subscribed.Store(s.connected.Load())
	s.log.Info("mqtt connected and subscribed", "broker", redactURL(s.cfg.Broker), "client_id", s.cfg.ClientID, "filters", len(filters))
}

func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	return p.Redacted()
}

// intake is one session's path from paho to the buffer and back: handle maps and queues each message as it
// arrives; acknowledge acknowledges them as their commits finish.
type intake struct {
	s       *Source
	sink    fieldgate.Sink
	mappers []*Mapper // shared by the sessions of a Source; only the handler of one session uses them at a time
	pending *fieldgate.Pending[inflight]
	// open is the commit the last message was queued into, and openQoS how many QoS 1/2 messages were queued
	// into it: used by the handler only.
	open    *fieldgate.Commit
	openQoS int

	mu       sync.Mutex // held by the handler; guards closed and readings
	closed   bool
	readings []fieldgate.Reading

	failOnce sync.Once
	failErr  error
	failed   chan struct{} // closed when a message could not be queued
	stop     chan struct{} // closed by close
	settled  chan struct{} // cap 1: signalled by the acknowledger after it settled messages
}

// inflight is a message waiting for its commit.
type inflight struct {
	msg    paho.Message
	at     time.Time
	commit *fieldgate.Commit
	sub    int    // subscription index, or subNone, subSparkplug
	n      int    // readings of this message
	reason error  // non-nil: it was stored as a dead letter
	class  string // the dead letter's class (fieldgate.DeadLetterDecode, ...)
}

// newMappers builds a mapper per subscription; a Mapper serves one caller at a time.
func (s *Source) newMappers() ([]*Mapper, error) {
	mappers := make([]*Mapper, len(s.subs))
	for i, sub := range s.subs {
		var err error
		if mappers[i], err = NewMapper(sub); err != nil {
			return nil, fmt.Errorf("mqtt input %s: subscriptions[%d]: %w", s.cfg.Name, i, err)
		}
	}
	return mappers, nil
}

// route returns the index of the first subscription (of mappers) whose filter matches topic, else subSparkplug
// when the Sparkplug host takes it, else subNone.
func (s *Source) route(mappers []*Mapper, topic string) int {
	for k, mp := range mappers {
		if mp.Matches(topic) {
			return k
		}
	}
	if s.spb != nil && s.spb.matches(topic) {
		return subSparkplug
	}
	return subNone
}

// oversizeKept is how much of a payload over max_payload_bytes its dead letter keeps: enough to recognise it.
const oversizeKept = 4096

// countMessage counts a message of subscription sub (or of the Sparkplug host).
func (s *Source) countMessage(sub int) {
	switch {
	case sub >= 0:
		s.perSub[sub].messages.Add(1)
	case sub == subSparkplug:
		s.spb.messages.Add(1)
	}
}

// inflight.sub of a message that matched no subscription, and of one the Sparkplug host took.
const (
	subNone      = -1
	subSparkplug = -2
)

// nothingToStore is the commit of a message with nothing to store: already done, so the message is acknowledged
// as soon as the messages before it are.
var nothingToStore = func() *fieldgate.Commit {
	c := fieldgate.NewCommit()
	c.Finish(nil)
	return c
}()

// handle is paho's message handler: it maps the message and queues its readings or its dead letter in the
// buffer, without waiting for the commit. It runs on paho's router goroutine, which also reads the keepalive
// responses, so it is short: it blocks only while max_batch messages wait for their commits.
func (in *intake) handle(_ paho.Client, m paho.Message) {
	s := in.s
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return // the session ended: not acknowledged, so the broker sends it again
	}
	s.messages.Add(1)
	if m.Duplicate() {
		s.redelivered.Add(1)
	}
	topic := m.Topic()
	f := inflight{msg: m, at: time.Now(), sub: s.route(in.mappers, topic)}
	in.readings = in.readings[:0]
	payload := m.Payload()
	var size int // the payload's size when only its start is stored
	switch {
	case f.sub == subNone:
		f.reason, f.class = fmt.Errorf("topic %q matches no subscription (a persistent session keeps the subscriptions of an earlier configuration)", topic), fieldgate.DeadLetterUnrouted
		s.unrouted.Add(1)
	case len(payload) > s.cfg.MaxPayloadBytes:
		// Never parsed: a payload this large costs memory a small gateway may not have.
		f.reason = fmt.Errorf("payload of %d bytes is over max_payload_bytes (%d); not parsed, its first %d bytes stored",
			len(payload), s.cfg.MaxPayloadBytes, min(len(payload), oversizeKept))
		f.class, size, payload = fieldgate.DeadLetterTooLarge, len(payload), payload[:min(len(payload), oversizeKept)]
		s.countMessage(f.sub)
	case f.sub == subSparkplug:
		s.countMessage(f.sub)
		if in.readings, f.reason = s.spb.mapMessage(in.readings, topic, payload, f.at); f.reason != nil {
			f.class = fieldgate.DeadLetterSparkplug
		}
	default:
		s.countMessage(f.sub)
		if in.readings, f.reason = in.mappers[f.sub].Map(in.readings, topic, payload, f.at); f.reason != nil {
			f.class = fieldgate.DeadLetterDecode
		}
	}
	f.n = len(in.readings)
	var err error
	switch {
	case f.reason != nil:
	case f.n == 0:
		// Nothing to store (a Sparkplug command, STATE, or a death of no current birth): acknowledged in turn,
		// after the messages before it.
		f.commit = nothingToStore
	default:
		f.commit, err = in.sink.Queue(in.readings, nil)
		if errors.Is(err, fieldgate.ErrInvalidReading) {
			// the buffer refuses what the mapper made of it: poison, not a reason to reconnect
			f.reason, f.class, f.n = err, fieldgate.DeadLetterInvalid, 0
		}
	}
	if f.reason != nil {
		f.commit, err = in.sink.Queue(nil, []fieldgate.DeadLetter{{Time: f.at, Source: s.origin, Origin: topic,
			Reason: f.reason.Error(), Class: f.class, Payload: payload, Size: size}})
	}
	clear(in.readings) // drop references to strings
	in.mu.Unlock()
	if err != nil {
		in.fail(fmt.Errorf("queue the readings of a message on %s: %w", topic, err))
		return
	}
	in.pending.Add(f.commit, f)
	if f.commit != nothingToStore && f.commit != in.open {
		in.open, in.openQoS = f.commit, 0
	}
	if m.Qos() > 0 && f.commit != nothingToStore {
		in.openQoS++
		// max_inflight messages wait in this commit: the broker sends nothing more until it has their
		// acknowledgements, so do not wait for the commit interval. (Messages of earlier commits are being
		// acknowledged already; counting them too would start commits too early.)
		if in.openQoS == s.cfg.MaxInflight {
			s.flushes.Add(1)
			in.sink.Flush()
		}
	}
	if in.pending.Len() >= s.cfg.MaxBatch {
		s.held.Add(1)
		in.sink.Flush()
		for in.pending.Len() >= s.cfg.MaxBatch {
			select {
			case <-in.settled:
			case <-in.stop:
				return
			}
		}
	}
}

// fail ends the session: a message could not be queued (the buffer refused it or is closed), so neither it nor
// anything after it may be acknowledged.
func (in *intake) fail(err error) {
	in.failOnce.Do(func() {
		in.failErr = err
		close(in.failed)
	})
}

// close makes the handler take nothing more; it returns once a handler call in progress has finished.
func (in *intake) close() {
	in.mu.Lock()
	in.closed = true
	in.mu.Unlock()
	close(in.stop)
}

// acknowledge acknowledges the queued messages, in arrival order, as their commits finish, until ctx ends or a
// message could not be committed. committed reports whether anything was.
func (in *intake) acknowledge(ctx context.Context) (committed bool, err error) {
	s := in.s
	var last *fieldgate.Commit
	for {
		select {
		case <-ctx.Done():
			return committed, ctx.Err()
		case <-in.failed:
			s.commitErrs.Add(1)
			s.log.Error("cannot queue readings; not acknowledging, dropping the connection so the broker redelivers", "err", in.failErr)
			return committed, errCommit
		case <-in.pending.Ready():
		}
		var commitErr error
		now := time.Now()
		in.pending.Settle(func(f inflight, err error) {
			if commitErr == nil && err != nil {
				commitErr = err
			}
			if commitErr != nil {
				// MQTT acknowledges in order: nothing after a failed message either.
				s.discarded.Add(1)
				return
			}
			if f.commit != nothingToStore {
				committed = true
				if f.commit != last {
					last = f.commit
					s.commits.Add(1)
				}
			}
			if f.reason != nil {
				s.deadLetters.Add(1)
				switch {
				case f.sub >= 0:
					s.perSub[f.sub].deadLetters.Add(1)
				case f.sub == subSparkplug:
					s.spb.deadLetters.Add(1)
				}
				s.logDeadLetter(f.msg.Topic(), f.class, f.reason)
			} else {
				s.readings.Add(uint64(f.n))
				switch {
				case f.sub >= 0:
					s.perSub[f.sub].readings.Add(uint64(f.n))
				case f.sub == subSparkplug:
					s.spb.readings.Add(uint64(f.n))
				}
			}
			f.msg.Ack()
			if f.msg.Qos() > 0 {
				s.acked.Add(1)
				s.ackNanos.Add(uint64(now.Sub(f.at)))
				s.ackCount.Add(1)
			}
		})
		select {
		case in.settled <- struct{}{}: // room for a handler held by max_batch
		default:
		}
		if commitErr != nil {
			if ctx.Err() == nil {
				s.commitErrs.Add(1)
				s.log.Error("commit failed; not acknowledging, dropping the connection so the broker redelivers", "err", commitErr)
			}
			return committed, errCommit
		}
	}
}

// logDeadLetter logs a dead letter, at most one line a second (deadLog).
func (s *Source) logDeadLetter(topic string, class string, reason error) {
	s.deadLog.log(class, func() {
		s.log.Warn("mqtt message stored as a dead letter and acknowledged", "topic", topic, "class", class, "reason", reason)
	})
}

var _ fieldgate.Replayer = (*Source)(nil)

// Replay maps a dead letter of this input again, through the input's current subscriptions: the readings its
// topic (Origin) and payload give now, or why they still do not (the mapper's error, or no subscription matching).
// A letter of another input, one whose payload was stored cut, and a Sparkplug message (its decoding depends on
// the edge node's birth at the time) give an error wrapping fieldgate.ErrNotReplayable. The receive time of the
// readings is the letter's Time. Safe to call concurrently with Run; it takes no connection.
func (s *Source) Replay(d fieldgate.DeadLetter) ([]fieldgate.Reading, error) {
	switch {
	case d.Source != s.origin:
		return nil, fmt.Errorf("a dead letter of %q, not of %s: %w", d.Source, s.origin, fieldgate.ErrNotReplayable)
	case d.Size > len(d.Payload):
		return nil, fmt.Errorf("only the first %d of its %d bytes were stored: %w", len(d.Payload), d.Size, fieldgate.ErrNotReplayable)
	case len(d.Payload) > s.cfg.MaxPayloadBytes:
		return nil, fmt.Errorf("payload of %d bytes is over max_payload_bytes (%d)", len(d.Payload), s.cfg.MaxPayloadBytes)
	}
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	if s.replayMappers == nil {
		mappers, err := s.newMappers()
		if err != nil {
			return nil, err
		}
		s.replayMappers = mappers
	}
	switch sub := s.route(s.replayMappers, d.Origin); sub {
	case subNone:
		return nil, fmt.Errorf("topic %q matches no subscription", d.Origin)
	case subSparkplug:
		return nil, fmt.Errorf("a Sparkplug B message decodes only against the edge node's birth at the time: %w", fieldgate.ErrNotReplayable)
	default:
		rs, err := s.replayMappers[sub].Map(nil, d.Origin, d.Payload, d.Time)
		if err != nil {
			return nil, err
		}
		return rs, nil
	}
}
