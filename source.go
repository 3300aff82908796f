package fieldgate

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Sink is where a source delivers what it collects: the gateway's durable buffer, seen through the counters the
// gateway keeps per input.
//
// The buffer commits in groups: Queue adds readings and dead letters to the commit being filled and returns it at
// once, without waiting. That commit starts when the buffer's commit interval has passed since its first work
// was queued, when it holds enough to be worth writing, or at once after Flush. A source acknowledges its
// upstream (an MQTT PUBACK) only once the commit is Done with a nil Err: the readings are then fsynced.
//
// A source that can send its upstream nothing more until it has acknowledgements (an MQTT input whose broker's
// in-flight window is full) calls Flush, so that it never waits for the interval. A source that merely polls
// (Modbus, OPC UA) queues and goes on: commits of many inputs are shared, which bounds the commits per second
// (and what they write to flash) however many inputs and devices emit.
//
// Both methods are safe for concurrent use and never block on I/O.
type Sink interface {
	// Queue adds rs and dead to the commit being filled and returns it. It does not keep rs or dead. An error
	// means nothing was queued: a reading is invalid (the error wraps ErrInvalidReading) or the buffer is
	// closed.
	Queue(rs []Reading, dead []DeadLetter) (*Commit, error)
	// Flush asks for the commit being filled to start now, rather than at the end of the commit interval. It
	// returns at once; a commit already running finishes first.
	Flush()
}

// Commit is one group commit of the buffer, shared by everything queued into it. Commits finish in the order
// they were filled.
type Commit struct {
	done chan struct{}
	err  error
}

// NewCommit returns a commit that is not done. Sinks make them; sources only wait for them.
func NewCommit() *Commit { return &Commit{done: make(chan struct{})} }

// Finish marks c done with err (nil: durably committed) and releases everyone waiting. It is called once, by the
// sink that made c.
func (c *Commit) Finish(err error) {
	c.err = err
	close(c.done)
}

// Done is closed when the commit has finished, successfully or not.
func (c *Commit) Done() <-chan struct{} { return c.done }

// Err is the commit's outcome once Done is closed: nil if everything queued into it is durable. Before that it
// is nil too; read it only after Done.
func (c *Commit) Err() error { return c.err }

// Wait waits until the commit is done and returns its error, or ctx's error if ctx ends first (what was queued
// may still be committed: at-least-once, so the source must not acknowledge and a redelivery is a duplicate).
func (c *Commit) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Store queues rs and dead in s and waits for their commit: it returns nil only once they are durable. It waits
// for at most the buffer's commit interval plus one commit; a non-nil error means none of them may be taken as
// stored. For a source that does nothing else meanwhile; one that must go on collecting queues and waits
// aside (see Pending).
func Store(ctx context.Context, s Sink, rs []Reading, dead ...DeadLetter) error {
	c, err := s.Queue(rs, dead)
	if err != nil {
		return err
	}
	return c.Wait(ctx)
}

// Pending is a source's work waiting for its commits, oldest first. Since commits finish in the order they were
// filled, settling from the front never skips anything. It is safe for concurrent use: typically one goroutine
// adds as it receives and another settles as commits finish.
type Pending[T any] struct {
	mu    sync.Mutex
	items []pendingItem[T]
	head  int
	added chan struct{} // cap 1: signalled when an item is added to an empty queue
}

type pendingItem[T any] struct {
	c *Commit
	v T
}

// NewPending returns an empty queue.
func NewPending[T any]() *Pending[T] { return &Pending[T]{added: make(chan struct{}, 1)} }

// Add appends v, which waits for commit c.
func (p *Pending[T]) Add(c *Commit, v T) {
	p.mu.Lock()
	wasEmpty := p.head == len(p.items)
	p.items = append(p.items, pendingItem[T]{c: c, v: v})
	p.mu.Unlock()
	if wasEmpty {
		select {
		case p.added <- struct{}{}:
		default:
		}
	}
}

// Len is the number of items waiting.
func (p *Pending[T]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.items) - p.head
}

// Ready returns a channel to wait on for progress: the oldest item's commit's Done, or, while nothing waits, a
// channel that receives when something is added. After it fires, call Settle.
func (p *Pending[T]) Ready() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head == len(p.items) {
		return p.added
	}
	return p.items[p.head].c.Done()
}

// Settle removes the items at the front whose commit is done, oldest first, and calls fn for each with its
// commit's error. It returns how many it settled. fn runs without the lock held, so it may call Add.
func (p *Pending[T]) Settle(fn func(v T, err error)) int {
	n := 0
	for {
		p.mu.Lock()
		if p.head == len(p.items) {
			p.items, p.head = p.items[:0], 0
			p.mu.Unlock()
			return n
		}
		it := p.items[p.head]
		select {
		case <-it.c.Done():
		default:
			p.mu.Unlock()
			return n
		}
		p.items[p.head] = pendingItem[T]{}
		p.head++
		if p.head > 1024 && p.head*2 > len(p.items) {
			p.items = append(p.items[:0], p.items[p.head:]...)
			p.head = 0
		}
		p.mu.Unlock()
		fn(it.v, it.c.Err())
		n++
	}
}

// Source produces readings from one configured input (a broker subscription, a Modbus connection, an OPC UA
// session).
//
// Run blocks until ctx ends, then returns nil, or until a non-recoverable error (such as a configuration the
// device refuses for good). Losing a connection is not such an error: Run reconnects with backoff itself. A
// failed commit is not one either: the source does not acknowledge what it carried (a broker redelivers) and
// goes on. Run is called once, and leaves no goroutine behind when it returns.
type Source interface {
	Run(ctx context.Context, sink Sink) error
}

// DeadLetter is input that could not become readings, kept with its cause so that nothing vanishes silently: a
// payload that does not decode, a record Kafka refused for good.
type DeadLetter struct {
	Time   time.Time // when it was rejected
	Source string    // the configured input or component that rejected it, e.g. "mqtt:plant-sensors"
	Origin string    // where it came from: an MQTT topic, a device address, "topic/partition/offset"
	Reason string    // why it was rejected, for a person to read
	// Class is a short, fixed name for the kind of Reason, for counting (a metric label): one of the
	// DeadLetter* classes below; empty counts as DeadLetterOther.
	Class   string
	Payload []byte // the raw bytes as received, or their start when Size says they were cut
	// Size is the payload's length as received when Payload holds only its start (a payload over the input's
	// size limit, or the buffer's MaxDeadLetterPayload); 0 when Payload is all of it.
	Size int
}

// The classes of dead letters (DeadLetter.Class).
const (
	DeadLetterDecode    = "decode"    // the payload does not decode, or does not fit the mapping
	DeadLetterUnrouted  = "unrouted"  // no configured mapping takes it (an MQTT topic no subscription matches)
	DeadLetterTooLarge  = "too_large" // larger than the input's limit: stored cut, never parsed
	DeadLetterInvalid   = "invalid"   // decoded into readings the buffer refuses (ErrInvalidReading)
	DeadLetterSparkplug = "sparkplug" // a Sparkplug B message that cannot be decoded now (no birth, stale catalogue)
	DeadLetterKafka     = "kafka"     // a record Kafka refused for good
	DeadLetterOther     = "other"
)

// ErrNotReplayable is returned (wrapped) by a Replayer for a dead letter that cannot be decoded again outside
// the moment it arrived; replaying leaves such a letter as it is.
var ErrNotReplayable = errors.New("not replayable")

// Replayer is implemented by a source that can decode a stored dead letter's payload again through its current
// configuration (after a mapping was fixed). Replay returns the readings the payload gives now, or an error that
// says why it still cannot become readings; it does not queue anything, blocks on nothing and is safe to call
// concurrently with Run. A dead letter the source never produced, or whose payload cannot be decoded out of its
// original context (cut, or dependent on session state such as a Sparkplug birth), gives an error saying so.
type Replayer interface {
	Replay(d DeadLetter) ([]Reading, error)
}
