package opcua

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// session is the life of one connection: its subscriptions, publish pipeline, watchdog and poll loops. Any
// failure that the session cannot repair in place cancels it; the Source then makes a new connection.
type session struct {
	src     *Source
	c       *opcua.Client
	cancel  context.CancelCauseFunc
	stateCh <-chan opcua.ConnState
	wg      sync.WaitGroup

	items []item // by client handle - 1

	mu      sync.Mutex // guards subs, acks, limits and failure
	subs    map[uint32]*sub
	acks    []*ua.SubscriptionAcknowledgement
	limits  EffectiveLimits
	failure error // the first failed call, reported with a lost connection
}

// item is one monitored or polled node of the session.
type item struct {
	t     target
	group *groupState
	node  *ua.NodeID
}

// sub is one subscription: one group in subscribe mode.
type sub struct {
	g         *groupState
	handles   []uint32 // client handles of its items
	id        uint32
	interval  time.Duration // revised
	keepAlive uint32        // revised
	last      atomic.Int64  // unix nanos of the last publish response (data or keep-alive)
	mu        sync.Mutex
	nextSeq   uint32
}

// deadline is how long the watchdog lets the subscription be silent: twice the keep-alive time.
func (b *sub) deadline() time.Duration {
	return 2*b.interval*time.Duration(b.keepAlive+1) + 500*time.Millisecond
}

// start resolves the node ids against this session's namespace array (nsu= ids are resolved again on every
// session: a server may renumber its namespaces when it restarts), creates the subscriptions and starts the
// session's goroutines. A node whose namespace the server does not have gives a Bad reading (BadNodeIdUnknown),
// once per session, in both modes.
func (ss *session) start(ctx context.Context) error {
	s := ss.src
	namespaces := ss.c.Namespaces()
	type groupItems struct {
		g       *groupState
		handles []uint32
	}
	var groups []groupItems
	now := time.Now()
	for _, g := range s.groups {
		gi := groupItems{g: g}
		var bad []fieldgate.Reading
		for _, n := range g.cfg.Nodes {
			t := target{device: n.Device, metric: n.Metric, arraysAsString: n.Arrays == "string"}
			nid, err := parseNodeID(n.ID, namespaces)
			if err != nil {
				s.itemErrors.Add(1)
				g.failedItems.Add(1)
				s.log.Error("opcua: node skipped", "group", g.cfg.Name, "node", n.ID, "err", err)
				bad = append(bad, t.bad(ua.StatusBadNodeIDUnknown, now))
				continue
			}
			ss.items = append(ss.items, item{t: t, group: g, node: nid})
			gi.handles = append(gi.handles, uint32(len(ss.items)))
		}
		s.push(g, bad)
		groups = append(groups, gi)
	}

	// Watch the connection: with AutoReconnect off, gopcua reports Disconnected or Closed and stops.
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case st := <-ss.stateCh:
				if st == opcua.Disconnected || st == opcua.Closed {
					ss.cancel(errConnectionLost)
					return
				}
			}
		}
	}()

	var subs []*sub
	for _, gi := range groups {
		if gi.g.cfg.Mode != GroupSubscribe || len(gi.handles) == 0 {
			continue
		}
		b := &sub{g: gi.g, handles: gi.handles}
		if err := ss.createSub(ctx, b); err != nil {
			return err
		}
		subs = append(subs, b)
	}
	if len(subs) > 0 {
		defer func() {
			for _, b := range subs {
				if err := ss.createItems(ctx, b); err != nil && ctx.Err() == nil {
					ss.cancel(err)
					return
				}
			}
		}()
		// Enough Publish requests in flight that every subscription can answer without waiting for another's.
		for range min(len(subs)+1, 5) {
			ss.wg.Add(1)
			go func() {
				defer ss.wg.Done()
				ss.publishLoop(ctx)
			}()
		}
		ss.wg.Add(1)
		go func() {
			defer ss.wg.Done()
			ss.watchdog(ctx)
		}()
	}
	for _, gi := range groups {
		if gi.g.cfg.Mode != GroupPoll || len(gi.handles) == 0 {
			continue
		}
		gi.g.items.Store(int64(len(gi.handles)))
		ss.wg.Add(1)
		go func() {
			defer ss.wg.Done()
			ss.pollLoop(ctx, gi.g, gi.handles)
		}()
	}
	return nil
}

// fail records the first failed call of the session, so that a lost connection is reported with its cause (a
// response that could not be decoded ends the connection; the error is the call's).
func (ss *session) fail(err error) {
	ss.mu.Lock()
	if ss.failure == nil {
		ss.failure = err
	}
	ss.mu.Unlock()
}

// isSessionError reports whether err means the session or connection is gone (rather than one call failing).
func isSessionError(err error) bool {
	var sc ua.StatusCode
	if errors.As(err, &sc) {
		switch sc {
		case ua.StatusBadTimeout, ua.StatusBadRequestTimeout, ua.StatusBadSessionIDInvalid, ua.StatusBadSessionClosed, ua.StatusBadSessionNotActivated,
			ua.StatusBadServerNotConnected, ua.StatusBadSecureChannelIDInvalid, ua.StatusBadSecureChannelClosed,
			ua.StatusBadConnectionClosed, ua.StatusBadCommunicationError, ua.StatusBadServerHalted,
			ua.StatusBadShutdown:
			return true
		}
		return false
	}
	return true // io.EOF, connection errors
}

func isTooMany(err error) bool {
	var sc ua.StatusCode
	return errors.As(err, &sc) && (sc == ua.StatusBadTooManyOperations || sc == ua.StatusBadTCPMessageTooLarge ||
		sc == ua.StatusBadEncodingLimitsExceeded || sc == ua.StatusBadResponseTooLarge || sc == ua.StatusBadRequestTooLarge)
}

// send is one service call, bounded by the request timeout. A call that times out reports StatusBadTimeout.
func (ss *session) send(ctx context.Context, req ua.Request) (ua.Response, error) {
	cctx, cancel := context.WithTimeout(ctx, ss.src.cfg.RequestTimeout)
	defer cancel()
	var res ua.Response
	err := ss.c.Send(cctx, req, func(v ua.Response) error {
		res = v
		return nil
	})
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = ua.StatusBadTimeout
	}
	return res, err
}

// createSub creates the subscription of b.g on the server (without items).
func (ss *session) createSub(ctx context.Context, b *sub) error {
	g := b.g.cfg
	res, err := ss.send(ctx, &ua.CreateSubscriptionRequest{
		RequestedPublishingInterval: float64(g.PublishingInterval) / float64(time.Millisecond),
		RequestedLifetimeCount:      3 * g.KeepAliveCount * 4,
		RequestedMaxKeepAliveCount:  g.KeepAliveCount,
		MaxNotificationsPerPublish:  1000, // keeps each publish response well under message size limits; the server sets MoreNotifications
		PublishingEnabled:           true,
	})
	if err != nil {
		return fmt.Errorf("create subscription for group %s: %w", g.Name, err)
	}
	r, ok := res.(*ua.CreateSubscriptionResponse)
	if !ok || r.SubscriptionID == 0 {
		return fmt.Errorf("create subscription for group %s: unexpected response %T", g.Name, res)
	}
	b.id = r.SubscriptionID
	b.interval = time.Duration(r.RevisedPublishingInterval * float64(time.Millisecond))
	if b.interval <= 0 {
		b.interval = g.PublishingInterval
	}
	b.keepAlive = max(r.RevisedMaxKeepAliveCount, 1)
	b.nextSeq = 1
	b.last.Store(time.Now().UnixNano())
	ss.mu.Lock()
	ss.subs[b.id] = b
	ss.mu.Unlock()
	b.g.subscription.Store(b.id)
	b.g.deadline.Store(int64(b.deadline()))
	return nil
}

// createItems creates the monitored items of b, in calls of at most MaxMonitoredItemsPerCall items (halved
// again when the server still says a call is too large). Publish requests should already be in flight, so that
// initial values flow while later batches are being created.
func (ss *session) createItems(ctx context.Context, b *sub) error {
	s, g := ss.src, b.g.cfg
	filter := dataChangeFilter(g)
	reqs := make([]*ua.MonitoredItemCreateRequest, 0, len(b.handles))
	for _, h := range b.handles {
		it := ss.items[h-1]
		reqs = append(reqs, &ua.MonitoredItemCreateRequest{
			ItemToMonitor:  &ua.ReadValueID{NodeID: it.node, AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}},
			MonitoringMode: ua.MonitoringModeReporting,
			RequestedParameters: &ua.MonitoringParameters{
				ClientHandle:     h,
				SamplingInterval: float64(g.SamplingInterval) / float64(time.Millisecond),
				Filter:           filter,
				QueueSize:        g.QueueSize,
				DiscardOldest:    *g.DiscardOldest,
			},
		})
	}
	var ok2, failed int64
	var bad []fieldgate.Reading
	err := ss.split(ctx, len(reqs), &ss.limits.MaxMonitoredItemsPerCall, func(lo, hi int) error {
		s.itemCalls.Add(1)
		res, err := ss.send(ctx, &ua.CreateMonitoredItemsRequest{
			SubscriptionID: b.id, TimestampsToReturn: ua.TimestampsToReturnBoth, ItemsToCreate: reqs[lo:hi],
		})
		if err != nil {
			return err
		}
		r, ok := res.(*ua.CreateMonitoredItemsResponse)
		if !ok || len(r.Results) != hi-lo {
			return fmt.Errorf("unexpected response %T with %d results for %d items", res, len(r.Results), hi-lo)
		}
		now := time.Now()
		for i, res := range r.Results {
			if res.StatusCode == ua.StatusOK || qualityOf(res.StatusCode) != fieldgate.Bad {
				ok2++
				continue
			}
			failed++
			s.itemErrors.Add(1)
			it := ss.items[reqs[lo+i].RequestedParameters.ClientHandle-1]
			bad = append(bad, it.t.bad(res.StatusCode, now))
			if failed <= 10 {
				s.log.Error("opcua: server refused to monitor node", "group", g.Name, "node", it.node.String(), "status", res.StatusCode)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create monitored items for group %s: %w", g.Name, err)
	}
	b.g.items.Store(ok2)
	b.g.failedItems.Store(failed)
	// as a poll of the node would: a Bad reading with the server's status, once per subscription
	s.push(b.g, bad)
	return nil
}

// split runs call over [0,n) in chunks of at most *limit operations (one of ss.limits). A chunk the server
// refuses as too large is retried in halves on the same session: the refusal ends only that call. The halved
// limit is kept, for this session's next calls and (Source.learn) for the next sessions, since a server that
// enforces a limit it does not advertise refuses every larger call.
func (ss *session) split(ctx context.Context, n int, limit *int, call func(lo, hi int) error) error {
	for lo := 0; lo < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		ss.mu.Lock()
		hi := min(lo+max(*limit, 1), n)
		ss.mu.Unlock()
		err := call(lo, hi)
		if err != nil && isTooMany(err) && hi-lo > 1 {
			ss.src.splitRetries.Add(1)
			half := (hi - lo) / 2
			ss.mu.Lock()
			*limit = min(*limit, half)
			l := ss.limits
			ss.mu.Unlock()
			ss.src.learn(l)
			ss.src.log.Warn("opcua: server refused a call as too large; splitting", "operations", hi-lo, "now", half, "err", err)
			continue
		}
		if err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

func dataChangeFilter(g Group) *ua.ExtensionObject {
	f := &ua.DataChangeFilter{Trigger: ua.DataChangeTriggerStatusValue}
	switch g.Trigger {
	case "status":
		f.Trigger = ua.DataChangeTriggerStatus
	case "status_value_timestamp":
		f.Trigger = ua.DataChangeTriggerStatusValueTimestamp
	}
	switch g.Deadband {
	case "absolute":
		f.DeadbandType = uint32(ua.DeadbandTypeAbsolute)
		f.DeadbandValue = g.DeadbandValue
	case "percent":
		f.DeadbandType = uint32(ua.DeadbandTypePercent)
		f.DeadbandValue = g.DeadbandValue
	}
	if f.Trigger == ua.DataChangeTriggerStatusValue && f.DeadbandType == 0 {
		return nil // the server's default filter; some servers reject an explicit one on non-numeric nodes
	}
	return ua.NewExtensionObject(f)
}

// deleteSub removes a subscription from the session and, best effort, from the server.
func (ss *session) deleteSub(ctx context.Context, b *sub) {
	ss.mu.Lock()
	delete(ss.subs, b.id)
	ss.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ss.send(dctx, &ua.DeleteSubscriptionsRequest{SubscriptionIDs: []uint32{b.id}})
}

// publishLoop keeps one Publish request in flight and dispatches its response.
func (ss *session) publishLoop(ctx context.Context) {
	s := ss.src
	for ctx.Err() == nil {
		ss.mu.Lock()
		acks := ss.acks
		ss.acks = nil
		ss.mu.Unlock()
		if acks == nil {
			acks = []*ua.SubscriptionAcknowledgement{}
		}
		// No deadline but the client's request timeout, which is set above the longest keep-alive wait.
		var res ua.Response
		err := ss.c.Send(ctx, &ua.PublishRequest{SubscriptionAcknowledgements: acks}, func(v ua.Response) error {
			res = v
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			ss.mu.Lock()
			ss.acks = append(ss.acks, acks...)
			ss.mu.Unlock()
			var sc ua.StatusCode
			switch {
			case errors.As(err, &sc) && (sc == ua.StatusBadTimeout || sc == ua.StatusBadNoSubscription ||
				sc == ua.StatusBadTooManyPublishRequests || sc == ua.StatusBadRequestTimeout):
				sleep(ctx, 200*time.Millisecond)
			case errors.Is(err, context.DeadlineExceeded):
				// the request timed out client side: the watchdog decides whether the subscription is dead
			default:
				err = fmt.Errorf("publish: %w", err)
				s.setError(err)
				ss.fail(err)
				ss.cancel(err)
				return
			}
			continue
		}
		r, ok := res.(*ua.PublishResponse)
		if !ok || r.NotificationMessage == nil {
			continue
		}
		ss.handlePublish(r)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// handlePublish accounts one publish response, converts its notifications and queues the readings.
func (ss *session) handlePublish(r *ua.PublishResponse) {
	s := ss.src
	if s.testDropPublish.Load() {
		return
	}
	s.publishResponses.Add(1)
	ss.mu.Lock()
	b := ss.subs[r.SubscriptionID]
	ss.mu.Unlock()
	if b == nil {
		return // a subscription the watchdog has replaced
	}
	now := time.Now()
	b.last.Store(now.UnixNano())
	msg := r.NotificationMessage
	seq := msg.SequenceNumber
	b.mu.Lock()
	switch {
	case len(msg.NotificationData) == 0: // keep-alive: carries the next sequence number
		s.keepAlives.Add(1)
		if int32(seq-b.nextSeq) > 0 {
			s.sequenceGaps.Add(int64(seq - b.nextSeq))
			b.nextSeq = seq
		}
	case seq == b.nextSeq:
		b.nextSeq = seq + 1
	case int32(seq-b.nextSeq) > 0:
		s.sequenceGaps.Add(int64(seq - b.nextSeq))
		b.nextSeq = seq + 1
	default:
		// a message that overtook an earlier one on another Publish request: it was counted as missing
		s.sequenceGaps.Add(-1)
	}
	b.mu.Unlock()
	if len(msg.NotificationData) == 0 {
		return
	}
	ss.mu.Lock()
	ss.acks = append(ss.acks, &ua.SubscriptionAcknowledgement{SubscriptionID: r.SubscriptionID, SequenceNumber: seq})
	ss.mu.Unlock()

	var rs []fieldgate.Reading
	for _, eo := range msg.NotificationData {
		if eo == nil {
			continue
		}
		switch n := eo.Value.(type) {
		case *ua.DataChangeNotification:
			for _, mi := range n.MonitoredItems {
				if mi == nil || mi.ClientHandle == 0 || int(mi.ClientHandle) > len(ss.items) {
					continue
				}
				rs = appendReadings(rs, ss.items[mi.ClientHandle-1].t, mi.Value, now)
			}
			s.notifications.Add(uint64(len(n.MonitoredItems)))
		case *ua.StatusChangeNotification:
			s.log.Warn("opcua: subscription status changed; rebuilding it", "group", b.g.cfg.Name, "status", n.Status)
			b.last.Store(1) // the watchdog rebuilds it on its next tick
		}
	}
	s.push(b.g, rs)
}

// watchdog rebuilds any subscription that has been silent (no data and no keep-alive) for longer than its
// deadline. A rebuild that fails ends the session.
func (ss *session) watchdog(ctx context.Context) {
	s := ss.src
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ss.mu.Lock()
		var dead []*sub
		for _, b := range ss.subs {
			if time.Since(unixTime(b.last.Load())) > b.deadline() {
				dead = append(dead, b)
			}
		}
		ss.mu.Unlock()
		if len(dead) > 0 {
			// Is it the subscription or the whole connection? A dead connection is a reconnect, not a rebuild.
			_, err := ss.send(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{
				NodeID: ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime), AttributeID: ua.AttributeIDValue,
				DataEncoding: &ua.QualifiedName{}}}})
			if err != nil {
				if ctx.Err() == nil {
					ss.cancel(fmt.Errorf("subscriptions silent and the server does not answer a read: %w", err))
				}
				return
			}
		}
		for _, b := range dead {
			s.watchdogRebuilds.Add(1)
			b.g.rebuilds.Add(1)
			s.log.Warn("opcua: subscription silent beyond its keep-alive time; rebuilding it", "group", b.g.cfg.Name,
				"subscription", b.id, "silent_for", time.Since(unixTime(b.last.Load())).Round(time.Millisecond),
				"deadline", b.deadline())
			ss.deleteSub(ctx, b)
			nb := &sub{g: b.g, handles: b.handles}
			err := ss.createSub(ctx, nb)
			if err == nil {
				err = ss.createItems(ctx, nb)
			}
			if err != nil {
				ss.cancel(fmt.Errorf("rebuild subscription of group %s: %w", b.g.cfg.Name, err))
				return
			}
		}
	}
}

// pollLoop reads the group's nodes every poll interval, in calls of at most MaxNodesPerRead nodes.
func (ss *session) pollLoop(ctx context.Context, g *groupState, handles []uint32) {
	s := ss.src
	tick := time.NewTicker(g.cfg.PollInterval)
	defer tick.Stop()
	req := make([]*ua.ReadValueID, len(handles))
	for i, h := range handles {
		req[i] = &ua.ReadValueID{NodeID: ss.items[h-1].node, AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}}
	}
	for {
		var rs []fieldgate.Reading
		err := ss.split(ctx, len(req), &ss.limits.MaxNodesPerRead, func(lo, hi int) error {
			s.reads.Add(1)
			s.readNodes.Add(uint64(hi - lo))
			res, err := ss.send(ctx, &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth, NodesToRead: req[lo:hi]})
			if err != nil {
				return err
			}
			r, ok := res.(*ua.ReadResponse)
			if !ok || len(r.Results) != hi-lo {
				return fmt.Errorf("unexpected read response %T", res)
			}
			now := time.Now()
			for i, dv := range r.Results {
				rs = appendReadings(rs, ss.items[handles[lo+i]-1].t, dv, now)
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			err = fmt.Errorf("read group %s: %w", g.cfg.Name, err)
			s.setError(err)
			ss.fail(err)
			if isSessionError(err) {
				ss.cancel(err)
				return
			}
			s.log.Error("opcua: poll failed", "err", err)
		}
		s.push(g, rs)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
