package fieldgate

import (
	"context"
	"time"
)

// Emit stores readings durably. It returns nil only after every reading in rs is committed (fsynced) to the
// gateway's buffer; only then may a source acknowledge its upstream (an MQTT QoS 1/2 PUBACK, say). A non-nil
// error means none of rs may be taken as stored: the source must not acknowledge, and should let the device or
// broker deliver again. Emit blocks for at most one group commit; it returns early with ctx's error when ctx
// ends. It is safe for concurrent use, and does not keep rs after it returns.
type Emit func(ctx context.Context, rs []Reading) error

// Source produces readings from one configured input (a broker subscription, a Modbus connection, an OPC UA
// session).
//
// Run blocks until ctx ends, then returns nil, or until a non-recoverable error (such as a configuration the
// device refuses for good). Losing a connection is not such an error: Run reconnects with backoff itself. Run is
// called once, and leaves no goroutine behind when it returns.
type Source interface {
	Run(ctx context.Context, emit Emit) error
}

// DeadLetter is input that could not become readings, kept with its cause so that nothing vanishes silently: a
// payload that does not decode, a record Kafka refused for good.
type DeadLetter struct {
	Time    time.Time // when it was rejected
	Source  string    // the configured input or component that rejected it, e.g. "mqtt:plant-sensors"
	Origin  string    // where it came from: an MQTT topic, a device address, "topic/partition/offset"
	Reason  string    // why it was rejected, for a person to read
	Payload []byte    // the raw bytes as received
}

// Reject stores a dead letter durably, with the same contract as Emit: nil only after the commit, and a source
// acknowledges the rejected input upstream only then (poison must not be redelivered forever).
type Reject func(ctx context.Context, d DeadLetter) error
