// Package mqtt is fieldgate's MQTT input: it subscribes to a broker with paho.mqtt.golang, maps each message's
// topic and payload to readings, and acknowledges a QoS 1/2 message to the broker only after its readings (or
// its dead letter) are durably committed.
//
// # Delivery
//
// The client uses a fixed client id and a persistent session (clean_session false) by default, so the broker
// keeps queued and unacknowledged messages while the gateway is down or disconnected. paho's automatic
// acknowledgement is off: the message handler only queues a message for one worker goroutine, which takes every
// message that has arrived (up to max_batch), maps them, commits all their readings in one Emit call (one group
// commit of the buffer) and stores the dead letters with Reject, then acknowledges the messages in arrival
// order, as MQTT requires. A message is acknowledged only after Emit (or Reject) returned nil for it.
//
// When Emit or Reject fails, nothing from the failed message on is acknowledged. The worker then drops the
// connection and connects again after a backoff (doubling up to max_reconnect_interval, reset by the next
// successful commit): an MQTT 3.1.1 broker sends an unacknowledged message again only on a new connection, so
// the reconnect is what makes the broker redeliver. Messages already queued from the dropped connection are
// discarded, unacknowledged; the broker redelivers them too.
//
// # Throughput
//
// A broker lets only a few QoS 1/2 messages per client be unacknowledged (Mosquitto's max_inflight_messages,
// default 20), so the rate is bounded by about max_inflight / (commit time + round trip): with a 2 ms group
// commit, some 10,000 messages/s. Raising max_inflight_messages on the broker raises that bound; the broker's
// max_queued_messages (default 1000) and max_queued_bytes bound what it keeps for the gateway while it is down,
// and Mosquitto drops messages beyond them silently: raise them to cover the outages you plan for, e.g.
//
//	max_inflight_messages 100   # per client; more in flight = bigger group commits
//	max_queued_messages 1000000 # per client, kept while the gateway is away or behind
//	max_queued_bytes 0          # no byte limit (or size it to the broker's memory)
//	persistence true            # sessions and queued messages survive a broker restart (saved on shutdown
//	autosave_interval 60        # and every autosave_interval seconds; a kill -9 loses what came after)
//
// The handler blocks paho's reader only while the queue (max_batch messages, at least 256) is full; the broker's
// in-flight limit normally keeps QoS 1/2 traffic below that, and a QoS 0 flood faster than the commits slows
// paho's reader down (backpressure) rather than growing memory. A full queue for longer than the keepalive
// interval would cost the connection (paho reads the ping responses on the same goroutine).
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
	reject fieldgate.Reject
	origin string // "mqtt:<name>", the dead letters' Source
	subs   []Subscription
	ran    atomic.Bool

	connected, subscribed            atomic.Bool
	connects, losses, subscribeErrs  atomic.Uint64
	messages, redelivered, readings  atomic.Uint64
	deadLetters, emitErrs, rejectErr atomic.Uint64
	acked, batches, discarded        atomic.Uint64
	ackNanos, ackCount               atomic.Uint64
	perSub                           []subCounters
	unrouted                         atomic.Uint64
}

type subCounters struct {
	messages, readings, deadLetters atomic.Uint64
}

// Stats is a snapshot of a Source's counters, all cumulative since New.
type Stats struct {
	Connected        bool   // the client holds a connection to the broker now
	Subscribed       bool   // the broker confirmed every subscription on the current connection
	Connects         uint64 // connections established (first and reconnects)
	ConnectionLosses uint64 // connections lost or dropped on purpose after a failed commit
	SubscribeErrors  uint64 // subscriptions the broker refused or did not confirm
	Messages         uint64 // messages received
	Redelivered      uint64 // messages received with the DUP flag (the broker sends again what was not acknowledged)
	Readings         uint64 // readings committed through Emit
	DeadLetters      uint64 // messages stored as dead letters (then acknowledged)
	EmitErrors       uint64 // Emit calls that failed (their messages were not acknowledged)
	RejectErrors     uint64 // Reject calls that failed (their messages were not acknowledged)
	AckedMessages    uint64 // QoS 1/2 messages acknowledged after their commit (paho drops an ack for a connection lost meanwhile; the broker redelivers)
	Batches          uint64 // commit rounds (one Emit call each, at most)
	Discarded        uint64 // queued messages dropped unacknowledged after a failed commit (the broker redelivers them)
	// AckLatencySeconds is the sum of the times from receipt to acknowledgement of AckLatencyCount messages.
	AckLatencySeconds float64
	AckLatencyCount   uint64
	Subscriptions     []SubscriptionStats // in configuration order
	Unrouted          uint64              // messages that matched no subscription (dead letters, counted in DeadLetters too)
}

// SubscriptionStats are the counters of one subscription.
type SubscriptionStats struct {
	Topic       string
	Messages    uint64
	Readings    uint64
	DeadLetters uint64
}

// New checks cfg, applies its defaults and returns the source. It does no I/O. reject stores dead letters durably;
// it must not be nil.
func New(cfg Config, log *slog.Logger, reject fieldgate.Reject) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reject == nil {
		return nil, errors.New("mqtt: New needs a Reject func for dead letters")
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	s := &Source{cfg: cfg, log: log.With("input", "mqtt:"+cfg.Name), reject: reject, origin: "mqtt:" + cfg.Name,
		subs: cfg.Subscriptions, perSub: make([]subCounters, len(cfg.Subscriptions))}
	return s, nil
}

// Name returns the input's configured name.
func (s *Source) Name() string { return s.cfg.Name }

// Stats returns a snapshot of the counters. It is safe to call at any time, concurrently with Run.
func (s *Source) Stats() Stats {
	st := Stats{
		Connected: s.connected.Load(), Subscribed: s.subscribed.Load(), Connects: s.connects.Load(), ConnectionLosses: s.losses.Load(),
		SubscribeErrors: s.subscribeErrs.Load(), Messages: s.messages.Load(), Redelivered: s.redelivered.Load(),
		Readings: s.readings.Load(), DeadLetters: s.deadLetters.Load(), EmitErrors: s.emitErrs.Load(),
		RejectErrors: s.rejectErr.Load(), AckedMessages: s.acked.Load(), Batches: s.batches.Load(),
		Discarded: s.discarded.Load(), AckLatencySeconds: float64(s.ackNanos.Load()) / 1e9,
		AckLatencyCount: s.ackCount.Load(), Unrouted: s.unrouted.Load(),
	}
	st.Subscriptions = make([]SubscriptionStats, len(s.subs))
	for i := range s.subs {
		c := &s.perSub[i]
		st.Subscriptions[i] = SubscriptionStats{Topic: s.subs[i].Topic, Messages: c.messages.Load(),
			Readings: c.readings.Load(), DeadLetters: c.deadLetters.Load()}
	}
	return st
}

// errCommit ends a session after Emit or Reject failed, so that the broker redelivers on the next connection.
var errCommit = errors.New("commit failed")

// Run connects, subscribes and delivers readings through emit until ctx ends, then returns nil. It reconnects by
// itself after a lost connection or a failed commit (see the package doc). It returns an error only for what
// retrying cannot fix: TLS files that cannot be read. Run may be called once; it leaves no goroutine of its own
// behind (paho's may take up to disconnectQuiesce to wind down after the disconnect).
func (s *Source) Run(ctx context.Context, emit fieldgate.Emit) error {
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
	mappers := make([]*Mapper, len(s.subs))
	for i, sub := range s.subs {
		if mappers[i], err = NewMapper(sub); err != nil {
			return fmt.Errorf("mqtt input %s: subscriptions[%d]: %w", s.cfg.Name, i, err)
		}
	}
	w := &worker{s: s, emit: emit, mappers: mappers}
	const firstDelay = 500 * time.Millisecond
	delay := firstDelay
	for {
		committed, err := s.session(ctx, tlsCfg, w)
		if ctx.Err() != nil {
			return nil
		}
		if committed {
			delay = firstDelay
		}
		s.log.Warn("mqtt session ended, connecting again", "broker", s.cfg.Broker, "in", delay, "err", err)
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

type inbound struct {
	msg paho.Message
	at  time.Time
}

// session runs one paho client: connect, then work until ctx ends or a commit fails. committed reports whether
// anything was committed (which resets the backoff).
func (s *Source) session(ctx context.Context, tlsCfg *tls.Config, w *worker) (committed bool, err error) {
	queue := make(chan inbound, max(s.cfg.MaxBatch, 256))
	done := make(chan struct{})
	handler := func(_ paho.Client, m paho.Message) {
		// Keep this short: it runs on paho's router goroutine, which also reads the keepalive responses.
		s.messages.Add(1)
		if m.Duplicate() {
			s.redelivered.Add(1)
		}
		select {
		case queue <- inbound{msg: m, at: time.Now()}:
		case <-done:
		}
	}
	client := paho.NewClient(s.options(tlsCfg, handler))
	defer func() {
		close(done) // unblock the handler, so paho's router can stop
		client.Disconnect(disconnectQuiesce)
		s.subscribed.Store(false)
		if s.connected.Swap(false) && errors.Is(err, errCommit) {
			s.losses.Add(1)
		}
		s.discarded.Add(uint64(len(queue)))
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
	return w.run(ctx, queue)
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
		s.subscribe(c)
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		s.connected.Store(false)
		s.subscribed.Store(false)
		s.losses.Add(1)
		s.log.Warn("mqtt connection lost; reconnecting", "broker", s.cfg.Broker, "err", err)
	})
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
	tok := c.SubscribeMultiple(filters, nil)
	if !tok.WaitTimeout(s.cfg.ConnectTimeout) {
		s.subscribeErrs.Add(1)
		s.log.Error("mqtt subscribe not confirmed in time; retrying on the next connect", "broker", s.cfg.Broker, "timeout", s.cfg.ConnectTimeout)
		return
	}
	if err := tok.Error(); err != nil {
		s.subscribeErrs.Add(1)
		s.log.Error("mqtt subscribe failed", "broker", s.cfg.Broker, "err", err)
		return
	}
	refused := false
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for filter, code := range st.Result() {
			if code == 0x80 {
				refused = true
				s.subscribeErrs.Add(1)
				s.log.Error("mqtt broker refused the subscription (check its ACL)", "broker", s.cfg.Broker, "filter", filter)
			}
		}
	}
	if refused {
		return
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

// worker maps, commits and acknowledges. Its state lives across sessions (the mappers' caches); it runs on the
// goroutine of Run only.
type worker struct {
	s        *Source
	emit     fieldgate.Emit
	mappers  []*Mapper
	batch    []inbound
	readings []fieldgate.Reading
	state    []msgState
	dead     []int

	lastLog    time.Time
	suppressed int
}

type msgState struct {
	sub    int   // subscription index, -1 for none
	n      int   // readings of this message
	reason error // non-nil: a dead letter
	failed bool  // its Emit or Reject failed
}

func (w *worker) run(ctx context.Context, queue <-chan inbound) (committed bool, err error) {
	maxBatch := w.s.cfg.MaxBatch
	for {
		select {
		case <-ctx.Done():
			return committed, ctx.Err()
		case in := <-queue:
			w.batch = append(w.batch[:0], in)
		}
	fill:
		for len(w.batch) < maxBatch {
			select {
			case in := <-queue:
				w.batch = append(w.batch, in)
			default:
				break fill
			}
		}
		ok, err := w.commit(ctx)
		committed = committed || ok
		clear(w.batch) // drop references to payloads
		if err != nil {
			return committed, err
		}
	}
}

// commit maps the batch, commits its readings and dead letters, and acknowledges the messages in order up to the
// first that failed. ok reports whether anything was committed.
func (w *worker) commit(ctx context.Context) (ok bool, err error) {
	s := w.s
	w.readings = w.readings[:0]
	w.state = w.state[:0]
	w.dead = w.dead[:0]
	for i, in := range w.batch {
		topic := in.msg.Topic()
		st := msgState{sub: -1}
		for k, m := range w.mappers {
			if m.Matches(topic) {
				st.sub = k
				break
			}
		}
		if st.sub < 0 {
			st.reason = fmt.Errorf("topic %q matches no subscription (a persistent session keeps the subscriptions of an earlier configuration)", topic)
			s.unrouted.Add(1)
		} else {
			s.perSub[st.sub].messages.Add(1)
			before := len(w.readings)
			w.readings, st.reason = w.mappers[st.sub].Map(w.readings, topic, in.msg.Payload(), in.at)
			st.n = len(w.readings) - before
		}
		if st.reason != nil {
			w.dead = append(w.dead, i)
		}
		w.state = append(w.state, st)
	}

	var emitErr error
	rejectErrs := make([]error, len(w.dead))
	var wg sync.WaitGroup
	for j, i := range w.dead {
		// Dead letters go in parallel with the readings, so that they share the buffer's group commit.
		in := w.batch[i]
		d := fieldgate.DeadLetter{Time: in.at, Source: s.origin, Origin: in.msg.Topic(),
			Reason: w.state[i].reason.Error(), Payload: in.msg.Payload()}
		wg.Go(func() { rejectErrs[j] = s.reject(ctx, d) })
	}
	if len(w.readings) > 0 {
		s.batches.Add(1)
		emitErr = w.emit(ctx, w.readings)
	}
	wg.Wait()
	clear(w.readings) // drop references to strings

	if emitErr != nil {
		for i := range w.state {
			if w.state[i].reason == nil {
				w.state[i].failed = true
			}
		}
		if ctx.Err() == nil {
			s.emitErrs.Add(1)
			s.log.Error("emit failed; not acknowledging, dropping the connection so the broker redelivers",
				"messages", len(w.batch), "readings", len(w.readings), "err", emitErr)
		}
	} else if len(w.readings) > 0 {
		ok = true
		s.readings.Add(uint64(len(w.readings)))
	}
	var rejectErr error
	for j, i := range w.dead {
		if rejectErrs[j] != nil {
			w.state[i].failed = true
			rejectErr = rejectErrs[j]
			continue
		}
		ok = true
		st := w.state[i]
		s.deadLetters.Add(1)
		if st.sub >= 0 {
			s.perSub[st.sub].deadLetters.Add(1)
		}
		w.logDeadLetter(w.batch[i].msg.Topic(), st.reason)
	}
	if rejectErr != nil && ctx.Err() == nil {
		s.rejectErr.Add(1)
		s.log.Error("storing a dead letter failed; not acknowledging, dropping the connection so the broker redelivers", "err", rejectErr)
	}

	now := time.Now()
	for i, in := range w.batch {
		st := w.state[i]
		if st.failed {
			// MQTT acknowledges in order: nothing after a failed message either.
			s.discarded.Add(uint64(len(w.batch) - i))
			return ok, errCommit
		}
		if st.sub >= 0 && st.reason == nil {
			s.perSub[st.sub].readings.Add(uint64(st.n))
		}
		in.msg.Ack()
		if in.msg.Qos() > 0 {
			s.acked.Add(1)
			s.ackNanos.Add(uint64(now.Sub(in.at)))
			s.ackCount.Add(1)
		}
	}
	return ok, nil
}

// logDeadLetter logs a dead letter, at most one line a second; the lines in between are counted in the next.
func (w *worker) logDeadLetter(topic string, reason error) {
	now := time.Now()
	if now.Sub(w.lastLog) < time.Second {
		w.suppressed++
		return
	}
	w.s.log.Warn("mqtt message stored as a dead letter and acknowledged", "topic", topic, "reason", reason,
		"not_logged_since_last", w.suppressed)
	w.lastLog, w.suppressed = now, 0
}
