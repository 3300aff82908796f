// Package forward drains the gateway's durable log into Kafka.
//
// One loop reads the oldest readings from the log, produces them as one round (franz-go, idempotent producer,
// acks=all, key = device, value = the wire bytes unchanged), and deletes from the log the longest prefix of the
// round that Kafka acknowledged. Nothing is deleted that Kafka did not acknowledge, so delivery is
// at-least-once: a round that times out, a broker that fails over, a gateway that dies between the Kafka ack and
// the log delete all send some readings twice. The central service deduplicates on (device, metric, event time).
//
// Per-device order holds: records with the same key go to the same partition; a round is produced in log order
// and sent by one flush, and holds at most max_message_bytes, so each partition gets one batch per round, which
// Kafka takes or refuses whole; the next round starts only after every record of the previous one was answered,
// from the oldest record not acknowledged. A round that runs out of time is failed by cancelling it
// (AllowIdempotentProduceCancellation): the producer epoch is bumped before the next round, so a late write of the
// old round cannot land after the new one; it may land before it, which is a duplicate.
//
// A record Kafka refuses for good (MESSAGE_TOO_LARGE, INVALID_RECORD, CORRUPT_MESSAGE) becomes a dead letter in
// the log, and is then deleted; since Kafka answers per batch, an ambiguous refusal is first narrowed down by
// producing the suspects one at a time. Errors that concern the configuration rather than a record (authorization,
// authentication, unknown topic) keep everything in the log and are retried with backoff, loudly.
package forward

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/kafkaopt"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Log is the durable FIFO the forwarder drains.
type Log interface {
	// Scan calls fn for up to max of the oldest entries, in order (seq strictly increasing); key = device,
	// value = the exact fieldgate wire bytes; both copies fn may keep. It does not block waiting for data.
	// An error from fn stops the scan and is returned.
	Scan(max int, fn func(seq uint64, key, value []byte) error) error
	// Ack deletes every entry with sequence number <= seq.
	Ack(seq uint64) error
	// Reject stores a dead letter durably (fieldgate.Reject contract).
	Reject(ctx context.Context, d fieldgate.DeadLetter) error
	// Appended is signaled (without blocking the sender) after entries were appended.
	Appended() <-chan struct{}
}

// Stats is a snapshot of the forwarder's counters. Counters only grow.
type Stats struct {
	Forwarded    uint64 // readings Kafka acknowledged that were deleted from the log
	DeadLettered uint64 // readings Kafka refused for good, stored as dead letters and deleted from the log
	// Batches counts produce rounds, whatever their outcome; ProduceSeconds is the sum of their durations (from
	// the first record handed to the client to the last answer), so ProduceSeconds/Batches is the mean latency.
	Batches        uint64
	ProduceSeconds float64
	// ProduceErrors counts rounds that stopped on an error, by class.
	ProduceErrors ErrorCounts
	// LogErrors counts failures of the log itself (Scan, Ack, Reject): the disk, not Kafka.
	LogErrors uint64
	InFlight  int // records handed to the Kafka client and not yet answered
	// ClientRestarts counts how often the Kafka client still held records a few seconds past produce_timeout and
	// was closed and replaced (which fails those records, so that they are produced again).
	ClientRestarts uint64

	Connected     bool      // the last contact with Kafka (a connection, a round) succeeded
	LastError     string    // the last error from Kafka or the log, "" if none yet
	LastErrorTime time.Time // when LastError happened
	LastSuccess   time.Time // when Kafka last acknowledged a record; zero if never
}

// ErrorCounts splits produce errors by what they mean for delivery.
type ErrorCounts struct {
	// Retriable: the broker is down, slow, failing over, or a round timed out; it heals by itself.
	Retriable uint64
	// Fatal: the configuration is refused (authentication, authorization, unknown topic, unsupported codec); it
	// needs a person, and is retried with backoff meanwhile, so nothing is lost when it is fixed.
	Fatal uint64
}

// Forwarder moves readings from a Log to Kafka. Create it with New; call Run once.
type Forwarder struct {
	cfg       Config
	gatewayID string
	log       *slog.Logger
	klog      *slog.Logger // for the Kafka client's own messages
	headers   []kgo.RecordHeader
	// headerBytes is the size of the headers' keys and values with their varint lengths, per record.
	headerBytes int

	// extraOpts are appended to the client options; tests use it to shorten metadata ageing and backoffs.
	extraOpts []kgo.Opt
	// grace is how long a round that ran out of time waits for the client to fail its records before the client
	// is closed and replaced.
	grace time.Duration
	// idlePoll re-scans an idle log in case an Appended signal was missed.
	idlePoll time.Duration

	forwarded, deadLettered, batches, retriable, fatal, logErrors, restarts atomic.Uint64
	produceNanos                                                            atomic.Int64
	inFlight                                                                atomic.Int64
	connected                                                               atomic.Bool

	mu            sync.Mutex // guards the fields below
	lastErr       string
	connErr       error // the last failed connection attempt, nil after a successful one
	lastErrTime   time.Time
	lastSuccess   time.Time
	lastLogged    string // the kind of failure last logged
	lastLoggedAt  time.Time
	lastNarrowLog time.Time
	loggedFailing bool
}

// New checks cfg, applies the defaults and returns a Forwarder. It does no I/O: TLS files are read and brokers
// are dialed by Run. gatewayID names this gateway in every record's header and in the default client id; headers
// are added to every record after fieldgate-gateway and fieldgate-format.
func New(cfg Config, gatewayID string, log *slog.Logger, headers ...kgo.RecordHeader) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if gatewayID == "" {
		return nil, errors.New("forward: gateway id is empty")
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.WithDefaults(gatewayID)
	f := &Forwarder{
		cfg:       cfg,
		gatewayID: gatewayID,
		log:       log.With("component", "forward", "topic", cfg.Topic),
		// The client's own messages from Warn up: its Info level narrates every flush and metadata refresh; what
		// matters for delivery the forwarder logs itself.
		klog: slog.New(minLevel{log.Handler(), slog.LevelWarn}).With("component", "kafka-client"),
		headers: append([]kgo.RecordHeader{
			{Key: fieldgate.HeaderGateway, Value: []byte(gatewayID)},
			{Key: fieldgate.HeaderFormat, Value: []byte(fmt.Sprint(fieldgate.FormatVersion))},
		}, headers...),
		grace:    2 * time.Second,
		idlePoll: time.Second,
	}
	for _, h := range f.headers {
		f.headerBytes += len(h.Key) + len(h.Value) + 2*5 // with their varint lengths
	}
	return f, nil
}

// minLevel passes on only records at or above min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}
func (h minLevel) WithGroup(g string) slog.Handler { return minLevel{h.Handler.WithGroup(g), h.min} }

// Config returns the configuration with defaults applied.
func (f *Forwarder) Config() Config { return f.cfg }

var codecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
	"gzip":   kgo.GzipCompression(),
}

func (f *Forwarder) clientOpts() ([]kgo.Opt, error) {
	c := f.cfg
	opts, err := kafkaopt.Options(kafkaopt.Conn{Brokers: c.Brokers, ClientID: c.ClientID, TLS: c.TLS, SASL: c.SASL}, f.klog)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.WithHooks(connHook{f}),
		kgo.DefaultProduceTopic(c.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// The idempotent producer (the default) never fails a record that may have been sent, so a dead broker
		// would hold a round forever. Let the round's context fail it: a record may then be written twice, which
		// the central dedup absorbs; it is never lost, since the log keeps it until Kafka acknowledges it.
		kgo.AllowIdempotentProduceCancellation(),
		kgo.RecordDeliveryTimeout(max(c.ProduceTimeout, time.Second)),
		kgo.ProduceRequestTimeout(min(10*time.Second, max(c.ProduceTimeout/2, time.Second))),
		kgo.ProducerBatchCompression(codecs[c.Compression]),
		kgo.ProducerBatchMaxBytes(int32(c.MaxMessageBytes)),
		// One round, one batch per partition: see produce.
		kgo.ManualFlushing(),
		// A round holds at most BatchSize records and max_message_bytes of them, so the client never reaches these
		// limits (with manual flushing it would refuse records, not block); they are the guard that keeps memory
		// bounded if it ever did.
		kgo.MaxBufferedRecords(2*c.BatchSize+16),
		kgo.MaxBufferedBytes(4*c.MaxMessageBytes),
	)
	return append(opts, f.extraOpts...), nil
}

// entry is one log entry of the current round.
type entry struct {
	seq        uint64
	key, value []byte
}

var errRoundFull = errors.New("round full")

// Run drains l into Kafka until ctx ends, then returns nil. Kafka being unreachable, slow, or refusing the
// configuration is not an error: Run keeps the readings in the log, logs, reports it in Stats, and retries with
// backoff. Run returns an error only if the client cannot be built (unreadable TLS files). Every wait is bounded
// by ProduceTimeout plus a few seconds, and Run returns within a few seconds of ctx's end, with its goroutines
// and the client's stopped. Run must be called once.
func (f *Forwarder) Run(ctx context.Context, l Log) error {
	opts, err := f.clientOpts()
	if err != nil {
		return fmt.Errorf("kafka client for %v: %w", f.cfg.Brokers, err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client for %v: %w", f.cfg.Brokers, err)
	}
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	f.log.Info("forwarding to kafka", "brokers", f.cfg.Brokers, "client_id", f.cfg.ClientID,
		"compression", f.cfg.Compression, "tls", f.cfg.TLS.On(), "sasl", f.cfg.SASL.Mechanism)

	var (
		entries   []entry
		rd        = newRound()
		bo        = backoff{min: f.cfg.MinBackoff, max: f.cfg.MaxBackoff}
		isolating bool   // produce one record per round, to tell which record Kafka refuses
		isolateTo uint64 // ... up to and including this seq
		idle      = time.NewTimer(f.idlePoll)
	)
	defer idle.Stop()
	for ctx.Err() == nil {
		n := f.cfg.BatchSize
		if isolating {
			n = 1
		}
		entries, err = f.scan(l, entries[:0], n)
		if err != nil {
			f.logFailure("read the buffer", err, false)
			f.logErrors.Add(1)
			if !sleep(ctx, bo.next()) {
				return nil
			}
			continue
		}
		if len(entries) == 0 {
			idle.Reset(f.idlePoll)
			select {
			case <-ctx.Done():
				return nil
			case <-l.Appended():
			case <-idle.C:
			}
			continue
		}

		if !f.produce(ctx, cl, rd, entries) {
			// The client did not answer within the grace period: close it, which fails what it holds, and start
			// a fresh one. This is the last resort against a client that never answers (never seen in tests but
			// the one that forces it): the new producer id is not fenced against the old one, so a request of the
			// old client still on its way could land after the resent records (a duplicate out of order).
			cl.Close()
			cl = nil
			if ctx.Err() == nil {
				f.restarts.Add(1)
			}
			answered := rd.wait(5 * time.Second)
			if !answered {
				f.log.Error("kafka client did not answer its records after being closed; abandoning them (they stay in the buffer)")
				rd = newRound()
			}
			if ctx.Err() != nil {
				if answered {
					f.settle(context.WithoutCancel(ctx), l, entries, rd.errs[:len(entries)], false)
				}
				return nil
			}
			if answered {
				for i, err := range rd.errs[:len(entries)] {
					if errors.Is(err, kgo.ErrClientClosed) {
						rd.errs[i] = fmt.Errorf("no answer from kafka within produce_timeout %s, client restarted: %w", f.cfg.ProduceTimeout, err)
					}
				}
			}
			if cl, err = kgo.NewClient(opts...); err != nil {
				return fmt.Errorf("kafka client for %v: %w", f.cfg.Brokers, err)
			}
			if !answered {
				f.logFailure("produce to kafka", errors.New("the client did not answer within produce_timeout; restarted it"), false)
				f.retriable.Add(1)
				if !sleep(ctx, bo.next()) {
					return nil
				}
				continue
			}
		}
		if ctx.Err() != nil {
			// Shutting down: acknowledge what Kafka did acknowledge (a short local write), to save duplicates.
			f.settle(context.WithoutCancel(ctx), l, entries, rd.errs[:len(entries)], false)
			return nil
		}
		res := f.settle(ctx, l, entries, rd.errs[:len(entries)], true)
		switch {
		case res.isolateTo > 0:
			isolating, isolateTo = true, max(isolateTo, res.isolateTo)
		case isolating && res.acked && entries[0].seq >= isolateTo:
			isolating = false
		}
		if res.acked {
			bo.reset()
		}
		if res.failed {
			if !sleep(ctx, bo.next()) {
				return nil
			}
		}
	}
	return nil
}

// recordOverhead bounds what the client adds to a record's key, value and headers inside a batch (length,
// attributes, timestamp and offset deltas, and the lengths of key, value and headers, as varints), and
// batchOverhead the batch's own header.
const (
	recordOverhead = 48
	batchOverhead  = 128
)

// scan reads up to n entries and at most what fits in one batch of max message bytes (always at least one entry,
// which the client refuses if it alone is too large).
func (f *Forwarder) scan(l Log, dst []entry, n int) ([]entry, error) {
	room := f.cfg.MaxMessageBytes - batchOverhead
	err := l.Scan(n, func(seq uint64, key, value []byte) error {
		size := len(key) + len(value) + f.headerBytes + recordOverhead
		if len(dst) > 0 && size > room {
			return errRoundFull
		}
		room -= size
		dst = append(dst, entry{seq: seq, key: key, value: value})
		return nil
	})
	if errors.Is(err, errRoundFull) {
		err = nil
	}
	return dst, err
}

// round holds the records of one produce round and their outcomes. Its records and promises are reused, so a
// round costs no allocation per record once it has grown.
type round struct {
	recs     []kgo.Record
	errs     []error
	promises []func(*kgo.Record, error)
	pending  atomic.Int64
	done     chan struct{}
}

func newRound() *round { return &round{} }

func (r *round) reset(n int) {
	if n > len(r.recs) {
		// Grow anew rather than append: a closure must never see its slices reallocated under it.
		r.recs = make([]kgo.Record, n)
		r.errs = make([]error, n)
		r.promises = make([]func(*kgo.Record, error), n)
		for i := range r.promises {
			r.promises[i] = func(_ *kgo.Record, err error) {
				r.errs[i] = err
				if r.pending.Add(-1) == 0 {
					close(r.done)
				}
			}
		}
	}
	clear(r.errs[:n])
	r.pending.Store(int64(n))
	r.done = make(chan struct{})
}

// wait waits up to d for every record of the round to be answered.
func (r *round) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.done:
		return true
	case <-t.C:
		return false
	}
}

// produce hands the round to the client and waits for every answer, at most ProduceTimeout plus the grace
// period. It returns false if the client still holds records then.
//
// The client flushes manually: every record of the round is buffered first, then one Flush sends them. Since a
// round holds at most max_message_bytes of records, each partition gets exactly one batch per round, and Kafka
// accepts or refuses a partition's part of the round as a whole. That is what keeps per-device order when Kafka
// refuses a batch for good: no later batch of the same partition can have been written meanwhile. (With
// automatic flushing, a linger expiring or a buffer limit mid-round splits a partition's records into several
// batches, and a refused first batch with an accepted second one reorders a device.)
func (f *Forwarder) produce(ctx context.Context, cl *kgo.Client, rd *round, entries []entry) bool {
	rctx, cancel := context.WithTimeout(ctx, f.cfg.ProduceTimeout)
	defer cancel()
	n := len(entries)
	rd.reset(n)
	start := time.Now()
	f.inFlight.Store(int64(n))
	defer f.inFlight.Store(0)
	defer func() {
		f.batches.Add(1)
		f.produceNanos.Add(int64(time.Since(start)))
	}()
	for i, e := range entries {
		rd.recs[i] = kgo.Record{Key: e.key, Value: e.value, Headers: f.headers, Topic: f.cfg.Topic}
		cl.Produce(rctx, &rd.recs[i], rd.promises[i])
	}
	// Flush until the round is over (not only until rctx ends: the client must keep draining to fail the
	// cancelled records). It runs aside so that a client that never answers cannot hold Run; Run then closes it.
	// It must have returned before the next round is buffered: a late Flush would send half a round.
	fctx, stopFlush := context.WithCancel(context.Background())
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		cl.Flush(fctx) //nolint:errcheck // the promises carry the outcome
	}()
	answered := f.await(ctx, rctx, rd)
	stopFlush()
	select {
	case <-flushed:
	case <-time.After(f.grace):
		return false
	}
	return answered
}

// await waits until every record of the round is answered, or rctx ends and then at most the grace period; it
// reports whether all were answered.
func (f *Forwarder) await(ctx, rctx context.Context, rd *round) bool {
	select {
	case <-rd.done:
		return true
	case <-rctx.Done():
	}
	if ctx.Err() != nil {
		return false // shutting down: closing the client is the quickest way to get the answers
	}
	// The round's context failing makes the client fail the records it holds (AllowIdempotentProduceCancellation),
	// at its next decision point; give it a moment.
	return rd.wait(f.grace)
}

type settled struct {
	acked     bool   // some prefix was deleted from the log
	failed    bool   // the round stopped on an error: back off before the next
	isolateTo uint64 // > 0: a multi-record round had refused records, up to this seq
}

// settle acknowledges the longest prefix of the round that Kafka acknowledged or that became dead letters.
func (f *Forwarder) settle(ctx context.Context, l Log, entries []entry, errs []error, report bool) settled {
	var (
		res       settled
		last      uint64
		nOK, nBad int
		stopErr   error
		stopClass errClass
	)
scan:
	for i, e := range entries {
		err := errs[i]
		if err == nil {
			last, nOK = e.seq, nOK+1
			continue
		}
		class := classify(err)
		if class != classRecord {
			stopErr, stopClass = err, class
			break
		}
		if len(entries) > 1 {
			// Kafka answers per batch: this record may be innocent. Find the last refused one, and produce them
			// one by one from the first.
			for j := len(entries) - 1; j >= i; j-- {
				if errs[j] != nil && classify(errs[j]) == classRecord {
					res.isolateTo = entries[j].seq
					break
				}
			}
			if report {
				f.narrowing(err)
			}
			break scan
		}
		d := fieldgate.DeadLetter{
			Time:    time.Now(),
			Source:  "forward",
			Origin:  fmt.Sprintf("kafka topic %s, buffer seq %d, key %q", f.cfg.Topic, e.seq, e.key),
			Reason:  "Kafka refused the record: " + err.Error(),
			Class:   fieldgate.DeadLetterKafka,
			Payload: e.value,
		}
		if rerr := l.Reject(ctx, d); rerr != nil {
			f.logFailure("store a dead letter", rerr, false)
			f.logErrors.Add(1)
			res.failed = true
			break
		}
		f.log.Warn("kafka refused a record for good; stored it as a dead letter", "seq", e.seq, "key", string(e.key), "err", err)
		last, nBad = e.seq, nBad+1
	}
	if nOK+nBad > 0 {
		if err := l.Ack(last); err != nil {
			f.logFailure("delete forwarded readings from the buffer", err, false)
			f.logErrors.Add(1)
			return settled{failed: true}
		}
		res.acked = true
		f.forwarded.Add(uint64(nOK))
		f.deadLettered.Add(uint64(nBad))
	}
	if nOK > 0 {
		f.succeeded()
	}
	if stopErr != nil && report {
		res.failed = true
		f.mu.Lock()
		connErr := f.connErr
		f.mu.Unlock()
		if errors.Is(stopErr, context.DeadlineExceeded) {
			stopErr = fmt.Errorf("no answer from kafka within produce_timeout %s: %w", f.cfg.ProduceTimeout, stopErr)
		}
		if connErr != nil && stopClass == classRetriable {
			// A round that timed out says little; the connection error says why.
			stopErr = fmt.Errorf("%w (last connection error: %w)", stopErr, connErr)
			if classify(connErr) == classFatal {
				stopClass = classFatal
			}
		}
		// The error first, then the count: a reader that sees the count sees the error.
		f.connected.Store(false)
		f.logFailure("produce to kafka", stopErr, stopClass == classFatal)
		if stopClass == classFatal {
			f.fatal.Add(1)
		} else {
			f.retriable.Add(1)
		}
	}
	return res
}

type errClass int

const (
	classRetriable errClass = iota // keep, back off, retry: it heals by itself
	classFatal                     // keep, back off, retry: the configuration is refused, a person must act
	classRecord                    // this record can never be written: dead-letter it
)

// classify decides what an error from producing one record means. It is the one place that does.
func classify(err error) errClass {
	var ke *kerr.Error
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.CorruptMessage):
		return classRecord
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		// The client gives up on these only after several metadata loads: the topic does not exist and the
		// cluster does not create it.
		return classFatal
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, kgo.ErrRecordRetries), errors.Is(err, kgo.ErrClientClosed),
		errors.Is(err, kgo.ErrMaxBuffered):
		return classRetriable
	case errors.As(err, new(*tls.CertificateVerificationError)), errors.As(err, new(x509.UnknownAuthorityError)),
		errors.As(err, new(x509.HostnameError)), errors.As(err, new(x509.CertificateInvalidError)):
		return classFatal // the broker's certificate is not trusted: the CA or the server name is wrong
	case errors.As(err, &ke) && !ke.Retriable:
		// Authentication, authorization, unknown topic, invalid topic, unsupported compression, a policy
		// violation, a timestamp out of the broker's range (the gateway's clock): not this record's fault.
		return classFatal
	}
	return classRetriable
}

// connHook records the outcome of every connection attempt, which carries the cause (refused, TLS, SASL) that a
// timed-out round does not.
type connHook struct{ f *Forwarder }

func (h connHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, conn net.Conn, err error) {
	f := h.f
	if err == nil {
		f.connected.Store(true)
		f.mu.Lock()
		f.connErr = nil
		f.mu.Unlock()
		return
	}
	addr := net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port))
	switch {
	case conn == nil:
		err = fmt.Errorf("connect to kafka broker %s: %w", addr, err)
	case f.cfg.SASL.Mechanism != "":
		// The TCP (and TLS) connection stood; ApiVersions or the SASL exchange failed. A broker answers a bad
		// password with SASL_AUTHENTICATION_FAILED, or by closing the connection.
		err = fmt.Errorf("kafka broker %s refused the session (SASL %s as user %q: wrong username, password or mechanism?): %w",
			addr, f.cfg.SASL.Mechanism, f.cfg.SASL.Username, err)
	default:
		err = fmt.Errorf("kafka broker %s: connection set-up failed: %w", addr, err)
	}
	f.connected.Store(false)
	f.mu.Lock()
	f.connErr = err
	f.mu.Unlock()
	f.setError(err)
}

func (f *Forwarder) succeeded() {
	now := time.Now()
	f.connected.Store(true)
	f.mu.Lock()
	f.lastSuccess = now
	recovered := f.loggedFailing
	f.loggedFailing = false
	f.lastLogged = ""
	f.mu.Unlock()
	if recovered {
		f.log.Info("kafka accepts records again")
	}
}

func (f *Forwarder) setError(err error) {
	now := time.Now()
	f.mu.Lock()
	f.lastErr, f.lastErrTime = err.Error(), now
	f.mu.Unlock()
}

// narrowing records and logs (at most once a minute) that a batch was refused for a record's sake.
func (f *Forwarder) narrowing(err error) {
	err = fmt.Errorf("kafka refused a batch (%w); producing its readings one at a time to find the one at fault"+
		" (if this repeats, max_message_bytes may be above the topic's max.message.bytes)", err)
	f.setError(err)
	now := time.Now()
	f.mu.Lock()
	logIt := now.Sub(f.lastNarrowLog) >= time.Minute
	if logIt {
		f.lastNarrowLog = now
	}
	f.mu.Unlock()
	if logIt {
		f.log.Warn("narrowing down a refused batch", "err", err)
	}
}

// logFailure records err, and logs it unless a failure of the same kind was logged less than a minute ago (an
// outage of hours logs once a minute, not once a round).
func (f *Forwarder) logFailure(what string, err error, fatal bool) {
	f.setError(fmt.Errorf("%s: %w", what, err))
	kind := fmt.Sprint(what, fatal)
	f.mu.Lock()
	msg := f.lastErr
	now := time.Now()
	logIt := kind != f.lastLogged || now.Sub(f.lastLoggedAt) >= time.Minute
	if logIt {
		f.lastLogged, f.lastLoggedAt, f.loggedFailing = kind, now, true
	}
	f.mu.Unlock()
	if !logIt {
		return
	}
	if fatal {
		f.log.Error("kafka refuses the configuration; readings stay in the buffer until it is fixed", "err", msg)
	} else {
		f.log.Warn("cannot forward; readings stay in the buffer and are retried", "err", msg)
	}
}

// Stats returns a snapshot of the counters. It is safe to call concurrently with Run.
func (f *Forwarder) Stats() Stats {
	s := Stats{
		Forwarded:      f.forwarded.Load(),
		DeadLettered:   f.deadLettered.Load(),
		Batches:        f.batches.Load(),
		ProduceSeconds: time.Duration(f.produceNanos.Load()).Seconds(),
		ProduceErrors:  ErrorCounts{Retriable: f.retriable.Load(), Fatal: f.fatal.Load()},
		LogErrors:      f.logErrors.Load(),
		ClientRestarts: f.restarts.Load(),
		InFlight:       int(f.inFlight.Load()),
		Connected:      f.connected.Load(),
	}
	f.mu.Lock()
	s.LastError, s.LastErrorTime, s.LastSuccess = f.lastErr, f.lastErrTime, f.lastSuccess
	f.mu.Unlock()
	return s
}

// backoff doubles from min to max, with "equal jitter": a pause of d is taken as d/2 plus up to d/2 at random,
// so gateways that lost the same broker do not come back in step.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
