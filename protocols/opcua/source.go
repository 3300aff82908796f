// Package opcua is fieldgate's OPC UA input (gopcua v0.8.0): subscriptions and polling reads of configured
// nodes, secure by default (SignAndEncrypt with the strongest policy the server offers, a pinned server
// certificate), every service call split to fit the server's operation limits, and self-healing.
//
// Self-healing does not rely on gopcua's auto-reconnect, which in v0.8.0 can report Connected while every
// subscription is dead (gopcua #879, #876, #895). The Source runs the client with AutoReconnect off and owns the
// whole life of a session: on any failure it closes the client, waits (capped exponential backoff), dials a new
// one and creates every subscription afresh from the config. It also runs the subscription protocol itself
// (CreateSubscription, CreateMonitoredItems, a pipeline of Publish requests with acknowledgements) instead of
// gopcua's Subscribe, so that it sees keep-alives and sequence numbers: a watchdog rebuilds a subscription that
// sends neither data nor a keep-alive within twice its keep-alive time, and gaps in the sequence numbers are
// counted. Publish responses are converted and queued without waiting for the buffer; a separate loop hands them
// to Emit in batches. The queue is bounded (Config.QueueSize); when the buffer falls that far behind, the oldest
// readings are dropped and counted rather than the publish loop stalling until the server's queues overflow
// unseen.
//
// While disconnected no readings are produced: the gap shows in Stats (Connected, DisconnectedSince and each
// group's LastData).
//
// Delivery: a publish response is acknowledged to the server when it has been queued, before Emit commits it, so
// a gateway crash can lose up to the queued readings; OPC UA servers do not redeliver acknowledged data anyway.
package opcua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// Source is one OPC UA input. Create it with New; Run it once.
type Source struct {
	cfg   Config
	log   *slog.Logger
	q     *queue
	trust trust

	groups []*groupState

	connected         atomic.Bool
	connectedSince    atomic.Int64 // unix nanos
	disconnectedSince atomic.Int64
	connects          atomic.Uint64
	connectFailures   atomic.Uint64
	watchdogRebuilds  atomic.Uint64
	notifications     atomic.Uint64
	publishResponses  atomic.Uint64
	keepAlives        atomic.Uint64
	sequenceGaps      atomic.Int64
	reads             atomic.Uint64
	readNodes         atomic.Uint64
	itemCalls         atomic.Uint64
	itemErrors        atomic.Uint64
	splitRetries      atomic.Uint64
	errorsTotal       atomic.Uint64
	emitted           atomic.Uint64
	emitErrors        atomic.Uint64

	// testDropPublish makes the session ignore every publish response, as if the subscription had gone silent
	// while the connection stays up (gopcua #879/#895). Tests only.
	testDropPublish atomic.Bool

	mu        sync.Mutex // guards the fields below
	lastError string
	security  string
	limits    EffectiveLimits
	learned   EffectiveLimits // lowered by refusals (BadTooManyOperations...): kept for the next sessions

	// orphan is a session whose connection was lost before it could be closed. The server keeps it (and counts
	// it against its session limit) until it times out, so the next connection closes it first. Only Run's
	// goroutine uses it.
	orphan *opcua.Session
}

type groupState struct {
	cfg          Group
	lastData     atomic.Int64
	readings     atomic.Uint64
	rebuilds     atomic.Uint64
	items        atomic.Int64
	failedItems  atomic.Int64
	subscription atomic.Uint32
	deadline     atomic.Int64 // watchdog deadline of the current subscription
}

// EffectiveLimits are the operation limits in force on the current connection: the server's, lowered to the
// config's.
type EffectiveLimits struct {
	MaxNodesPerRead          int
	MaxMonitoredItemsPerCall int
	MaxNodesPerBrowse        int
}

// Stats is a snapshot of the input's counters, for metrics and /api/status.
type Stats struct {
	Connected          bool
	ConnectedSince     time.Time // zero while disconnected
	DisconnectedSince  time.Time // zero while connected; the start of the gap in the data
	Connects           uint64    // sessions established
	Reconnects         uint64    // sessions established after the first
	ConnectFailures    uint64    // failed connection attempts
	Security           string    // policy/mode of the current or last session, e.g. "Aes256_Sha256_RsaPss/SignAndEncrypt"
	Limits             EffectiveLimits
	WatchdogRebuilds   uint64 // subscriptions rebuilt because neither data nor a keep-alive came in time
	PublishResponses   uint64
	KeepAlives         uint64
	Notifications      uint64 // monitored-item values received
	SequenceGaps       uint64 // notification messages the server sent but the gateway never received
	Reads              uint64 // Read service calls
	ReadNodes          uint64 // nodes read by them
	MonitoredItemCalls uint64 // CreateMonitoredItems calls
	ItemErrors         uint64 // nodes the server refused to read or monitor (unknown node, bad namespace...)
	SplitRetries       uint64 // calls the server refused as too large and that were retried in halves
	Errors             uint64 // failed service calls and lost sessions
	LastError          string // the last error since the last session was established
	Queued             int    // readings waiting for the buffer
	Dropped            uint64 // readings dropped because the buffer fell QueueSize behind
	Emitted            uint64 // readings committed by Emit
	EmitErrors         uint64 // failed Emit calls (retried)
	Groups             []GroupStats
}

// GroupStats describes one node group.
type GroupStats struct {
	Name             string
	Mode             string
	Items            int       // nodes monitored or read on the current session
	FailedItems      int       // nodes the server refused on the current session
	Subscription     uint32    // server's subscription id; 0 for poll groups or while disconnected
	LastData         time.Time // gateway time of the group's last reading
	Readings         uint64
	WatchdogRebuilds uint64
	// WatchdogDeadline: silence after which the subscription is rebuilt (twice the revised keep-alive time)
	WatchdogDeadline time.Duration
}

// New checks cfg and applies the defaults. It does no I/O. log is used as it is: the caller names the input in it.
func New(cfg Config, log *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.WithDefaults()
	s := &Source{cfg: cfg, log: log, q: newQueue(cfg.QueueSize)}
	for _, g := range cfg.Groups {
		s.groups = append(s.groups, &groupState{cfg: g})
	}
	s.disconnectedSince.Store(time.Now().UnixNano())
	return s, nil
}

// Stats returns a snapshot. Safe for concurrent use.
func (s *Source) Stats() Stats {
	st := Stats{
		Connected:          s.connected.Load(),
		Connects:           s.connects.Load(),
		ConnectFailures:    s.connectFailures.Load(),
		WatchdogRebuilds:   s.watchdogRebuilds.Load(),
		PublishResponses:   s.publishResponses.Load(),
		KeepAlives:         s.keepAlives.Load(),
		Notifications:      s.notifications.Load(),
		SequenceGaps:       uint64(max(0, s.sequenceGaps.Load())),
		Reads:              s.reads.Load(),
		ReadNodes:          s.readNodes.Load(),
		MonitoredItemCalls: s.itemCalls.Load(),
		ItemErrors:         s.itemErrors.Load(),
		SplitRetries:       s.splitRetries.Load(),
		Errors:             s.errorsTotal.Load(),
		Emitted:            s.emitted.Load(),
		EmitErrors:         s.emitErrors.Load(),
	}
	if st.Connects > 0 {
		st.Reconnects = st.Connects - 1
	}
	if st.Connected {
		st.ConnectedSince = unixTime(s.connectedSince.Load())
	} else {
		st.DisconnectedSince = unixTime(s.disconnectedSince.Load())
	}
	st.Queued, st.Dropped = s.q.stats()
	s.mu.Lock()
	st.LastError, st.Security, st.Limits = s.lastError, s.security, s.limits
	s.mu.Unlock()
	for _, g := range s.groups {
		st.Groups = append(st.Groups, GroupStats{
			Name: g.cfg.Name, Mode: g.cfg.Mode, Items: int(g.items.Load()), FailedItems: int(g.failedItems.Load()),
			Subscription: g.subscription.Load(), LastData: unixTime(g.lastData.Load()),
			Readings: g.readings.Load(), WatchdogRebuilds: g.rebuilds.Load(),
			WatchdogDeadline: time.Duration(g.deadline.Load()),
		})
	}
	return st
}

func unixTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (s *Source) setError(err error) {
	s.errorsTotal.Add(1)
	s.mu.Lock()
	s.lastError = err.Error()
	s.mu.Unlock()
}

// push queues a group's readings for the emit loop.
func (s *Source) push(g *groupState, rs []fieldgate.Reading) {
	if len(rs) == 0 {
		return
	}
	g.lastData.Store(time.Now().UnixNano())
	g.readings.Add(uint64(len(rs)))
	s.q.push(rs)
}

// learn records the limits of a session that a server's refusals lowered, for Stats and the next sessions.
func (s *Source) learn(l EffectiveLimits) {
	s.mu.Lock()
	s.limits = l
	s.learned = l
	s.mu.Unlock()
}

// Run connects, collects and reconnects until ctx ends, then returns nil after its goroutines have exited. It
// returns an error only for a configuration that cannot work at all (an unreadable client certificate, say);
// a refused connection, an untrusted server certificate or a wrong password are retried with backoff (the
// operator may fix the server side) and reported in the log and Stats.LastError.
func (s *Source) Run(ctx context.Context, sink fieldgate.Sink) error {
	var id clientIdentity
	if s.cfg.Security.Mode != ModeNone {
		var err error
		if id, err = loadClientIdentity(s.cfg.Security, s.cfg.Name, s.log); err != nil {
			return fmt.Errorf("opcua %s: %w", s.cfg.Name, err)
		}
		if s.trust, err = loadTrust(s.cfg.Security); err != nil {
			return fmt.Errorf("opcua %s: %w", s.cfg.Name, err)
		}
	}
	s.warnInsecure()

	var wg sync.WaitGroup
	ectx, ecancel := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.emitLoop(ectx, sink)
	}()
	defer func() {
		ecancel()
		wg.Wait()
	}()

	backoff := s.cfg.ReconnectInterval
	for ctx.Err() == nil {
		start := time.Now()
		established, err := s.runSession(ctx, id)
		if ctx.Err() != nil {
			break
		}
		// A session that lived a while resets the backoff. One that ends soon after it began (a server that
		// answers every read with something undecodable, say) backs off like a failed connect, so that it is
		// not reopened every second.
		if established && time.Since(start) >= s.cfg.MaxReconnectInterval {
			backoff = s.cfg.ReconnectInterval
		}
		if established {
			s.log.Warn("opcua: session lost; reconnecting", "endpoint", s.cfg.Endpoint, "err", err, "in", backoff)
		} else {
			s.connectFailures.Add(1)
			s.log.Error("opcua: connect failed", "endpoint", s.cfg.Endpoint, "err", err, "retry_in", backoff)
		}
		s.setError(err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.cfg.MaxReconnectInterval)
	}
	return nil
}

func (s *Source) warnInsecure() {
	sec := s.cfg.Security
	switch {
	case sec.Mode == ModeNone:
		s.log.Warn("opcua: security mode None: data and credentials travel unprotected and the server is not authenticated",
			"endpoint", s.cfg.Endpoint)
	case sec.Policy == PolicyBasic128Rsa15 || sec.Policy == PolicyBasic256:
		s.log.Warn("opcua: deprecated security policy (SHA-1); use Basic256Sha256 or an Aes policy if the server allows",
			"policy", sec.Policy)
	}
}

// errSessionEnded wraps the cause that ended an established session.
var errSessionEnded = errors.New("session ended")

// runSession makes one connection and serves it until it fails or ctx ends. established reports whether a
// session was up (so the caller resets its backoff).
func (s *Source) runSession(ctx context.Context, id clientIdentity) (established bool, err error) {
	c, ep, stateCh, err := s.connect(ctx, id)
	if err != nil {
		return false, err
	}
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sess := &session{src: s, c: c, subs: map[uint32]*sub{}, cancel: cancel, stateCh: stateCh}
	defer func() {
		s.connected.Store(false)
		s.disconnectedSince.Store(time.Now().UnixNano())
		for _, g := range s.groups {
			g.subscription.Store(0)
			g.items.Store(0)
			g.failedItems.Store(0)
		}
		s.closeSession(c)
	}()

	s.mu.Lock()
	s.security = policyName(ep.SecurityPolicyURI) + "/" + modeName(ep.SecurityMode)
	s.mu.Unlock()
	limits := s.readLimits(sctx, c)
	sess.limits = limits
	s.mu.Lock()
	s.limits = limits
	s.mu.Unlock()

	if err := sess.start(sctx); err != nil {
		cancel(err)
		sess.wg.Wait()
		return false, err
	}
	s.connects.Add(1)
	s.connected.Store(true)
	s.connectedSince.Store(time.Now().UnixNano())
	s.disconnectedSince.Store(0)
	s.mu.Lock()
	s.lastError = "" // reconnected: what went wrong before is in the log and Stats.Errors
	s.mu.Unlock()
	s.log.Info("opcua: connected", "endpoint", s.cfg.Endpoint, "security", s.security,
		"max_nodes_per_read", limits.MaxNodesPerRead, "max_monitored_items_per_call", limits.MaxMonitoredItemsPerCall)
	<-sctx.Done()
	sess.wg.Wait()
	if ctx.Err() != nil {
		return true, nil
	}
	cause := context.Cause(sctx)
	if errors.Is(cause, errConnectionLost) && sess.failure != nil {
		cause = fmt.Errorf("%w after %w", cause, sess.failure)
	}
	return true, fmt.Errorf("%w: %w", errSessionEnded, cause)
}

// errConnectionLost: gopcua reported the connection Disconnected or Closed.
var errConnectionLost = errors.New("connection lost")

// closeTimeout bounds closing a session, on a context of its own: the session's has ended by then.
const closeTimeout = 2 * time.Second

// closeSession closes the session and the connection of c. A session that could not be closed (the connection
// is gone) becomes the orphan that the next connection closes.
func (s *Source) closeSession(c *opcua.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if sess := c.Session(); sess != nil {
		if err := c.CloseSession(ctx); err != nil && !isSessionGone(err) {
			s.orphan = sess
			c.DetachSession(ctx)
			s.log.Info("opcua: session not closed; closing it on the next connection", "err", err)
		}
	}
	c.Close(ctx)
}

// isSessionGone reports whether the server said the session no longer exists.
func isSessionGone(err error) bool {
	return errors.Is(err, ua.StatusBadSessionIDInvalid) || errors.Is(err, ua.StatusBadSessionClosed) ||
		errors.Is(err, ua.StatusBadSessionNotActivated)
}

// closeOrphan closes the session a lost connection left open: it activates it on a connection of its own (the
// server moves a session to a new secure channel of the same client certificate) and closes it with its
// subscriptions. A failure is only logged: the server drops the session when it times out.
func (s *Source) closeOrphan(ctx context.Context, opts []opcua.Option) {
	o := s.orphan
	s.orphan = nil
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	c, err := opcua.NewClient(s.cfg.Endpoint, opts...)
	if err != nil {
		return
	}
	defer c.Close(ctx)
	if err = c.Dial(ctx); err == nil {
		if err = c.ActivateSession(ctx, o); err == nil {
			err = c.CloseSession(ctx)
		}
	}
	if err != nil {
		s.log.Info("opcua: the session the lost connection left open could not be closed; the server drops it when it times out",
			"timeout", o.RevisedTimeout(), "err", err)
		return
	}
	s.log.Info("opcua: closed the session the lost connection left open")
}

// connect discovers the endpoints, selects one, checks the server certificate and opens a session.
func (s *Source) connect(ctx context.Context, id clientIdentity) (*opcua.Client, *ua.EndpointDescription, <-chan opcua.ConnState, error) {
	cfg := s.cfg
	dctx, dcancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	eps, err := opcua.GetEndpoints(dctx, cfg.Endpoint, opcua.DialTimeout(cfg.RequestTimeout), opcua.RequestTimeout(cfg.RequestTimeout))
	dcancel()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("get endpoints of %s: %w", cfg.Endpoint, err)
	}
	ep, err := selectEndpoint(eps, cfg.Security)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", cfg.Endpoint, err)
	}
	var serverCert []byte
	if ep.SecurityMode != ua.MessageSecurityModeNone {
		if serverCert, err = s.trust.check(ep.ServerCertificate); err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", cfg.Endpoint, err)
		}
	}
	opts, err := clientOptions(cfg, ep, serverCert, id)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", cfg.Endpoint, err)
	}
	if s.orphan != nil {
		// first, so that a server with one free session slot has it for the new session
		s.closeOrphan(ctx, opts)
	}
	stateCh := make(chan opcua.ConnState, 16)
	c, err := opcua.NewClient(cfg.Endpoint, append(opts, opcua.StateChangedCh(stateCh))...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", cfg.Endpoint, err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 2*cfg.RequestTimeout)
	defer ccancel()
	if err := c.Connect(cctx); err != nil {
		// the patched Connect has closed what it opened, on a context of its own
		return nil, nil, nil, fmt.Errorf("connect to %s (%s/%s, %s auth): %w", cfg.Endpoint, policyName(ep.SecurityPolicyURI),
			modeName(ep.SecurityMode), cfg.Auth.Method, explain(err))
	}
	return c, ep, stateCh, nil
}

// explain adds a hint to the status codes an operator meets when commissioning.
func explain(err error) error {
	var sc ua.StatusCode
	if errors.As(err, &sc) {
		switch sc {
		case ua.StatusBadUserAccessDenied, ua.StatusBadIdentityTokenRejected, ua.StatusBadIdentityTokenInvalid:
			return fmt.Errorf("%w (wrong user name or password, or the user certificate is not trusted by the server)", err)
		case ua.StatusBadCertificateUntrusted, ua.StatusBadSecurityChecksFailed, ua.StatusBadCertificateInvalid:
			return fmt.Errorf("%w (the server does not trust the gateway's client certificate: trust it in the server's PKI)", err)
		}
	}
	return err
}

// readLimits reads the server's operation limits and lowers them to the configured ones.
func (s *Source) readLimits(ctx context.Context, c *opcua.Client) EffectiveLimits {
	l := EffectiveLimits{
		MaxNodesPerRead:          s.cfg.Limits.MaxNodesPerRead,
		MaxMonitoredItemsPerCall: s.cfg.Limits.MaxMonitoredItemsPerCall,
		MaxNodesPerBrowse:        s.cfg.Limits.MaxNodesPerBrowse,
	}
	ids := []uint32{id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
		id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse}
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither}
	for _, n := range ids {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.NewNumericNodeID(0, n), AttributeID: ua.AttributeIDValue})
	}
	lim := []*int{&l.MaxNodesPerRead, &l.MaxMonitoredItemsPerCall, &l.MaxNodesPerBrowse}
	s.mu.Lock()
	for i, v := range []int{s.learned.MaxNodesPerRead, s.learned.MaxMonitoredItemsPerCall, s.learned.MaxNodesPerBrowse} {
		if v > 0 && v < *lim[i] {
			*lim[i] = v
		}
	}
	s.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	res, err := c.Read(rctx, req)
	if err != nil || len(res.Results) != len(ids) {
		s.log.Info("opcua: server operation limits not readable; using the configured ones", "err", err)
		return l
	}
	for i, dv := range res.Results {
		if dv == nil || dv.Status != ua.StatusOK || dv.Value == nil {
			continue
		}
		if v := int(dv.Value.Uint()); v > 0 && v < *lim[i] {
			*lim[i] = v
		}
	}
	return l
}

// emitLoop stores queued readings in batches, retrying a failed batch until it is stored or ctx ends. It waits
// for each batch's commit (the buffer's commit interval, then the commit), while the next batch gathers in the
// queue.
func (s *Source) emitLoop(ctx context.Context, sink fieldgate.Sink) {
	wait := 100 * time.Millisecond
	for {
		batch := s.q.take(ctx, s.cfg.BatchSize)
		if batch == nil {
			return
		}
		for {
			err := fieldgate.Store(ctx, sink, batch)
			if err == nil {
				s.emitted.Add(uint64(len(batch)))
				wait = 100 * time.Millisecond
				break
			}
			if ctx.Err() != nil {
				return
			}
			s.emitErrors.Add(1)
			s.log.Error("opcua: storing readings failed; retrying", "readings", len(batch), "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
		}
	}
}

// queue is a bounded FIFO of readings between the publish loop and the emit loop. push never blocks: when full it
// drops the oldest readings and counts them.
type queue struct {
	mu      sync.Mutex
	buf     []fieldgate.Reading
	cap     int
	dropped uint64
	ready   chan struct{}
}

func newQueue(capacity int) *queue {
	return &queue{cap: capacity, ready: make(chan struct{}, 1)}
}

func (q *queue) push(rs []fieldgate.Reading) {
	if len(rs) == 0 {
		return
	}
	q.mu.Lock()
	q.buf = append(q.buf, rs...)
	if over := len(q.buf) - q.cap; over > 0 {
		q.dropped += uint64(over)
		q.buf = append(q.buf[:0], q.buf[over:]...)
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take waits for readings and returns up to n of them; nil when ctx ends.
func (q *queue) take(ctx context.Context, n int) []fieldgate.Reading {
	for {
		q.mu.Lock()
		if len(q.buf) > 0 {
			k := min(n, len(q.buf))
			out := make([]fieldgate.Reading, k)
			copy(out, q.buf[:k])
			rest := copy(q.buf, q.buf[k:])
			clear(q.buf[rest:])
			q.buf = q.buf[:rest]
			q.mu.Unlock()
			return out
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-q.ready:
		}
	}
}

func (q *queue) stats() (queued int, dropped uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf), q.dropped
}

var _ fieldgate.Source = (*Source)(nil)
