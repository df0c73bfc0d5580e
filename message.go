package stockd

import (
	"fmt"
	"slices"
)

// The wire encoding of saga messages. When partitions are owned by several
// nodes, a Message a decision produces for a partition on another node
// travels between processes: EncodeMessage writes it, DecodeMessage reads it
// back on the receiving node, which decides its Command in partition To like
// any message of its own. The encoding uses the primitives of the event
// encoding (codec.go) and is versioned by its first byte; decoding is strict
// — an unknown format or kind, a field out of range or trailing bytes are
// errors wrapping ErrCorrupt — and never panics or allocates more than the
// input can justify. A message that decodes encodes again to an equal one.
//
// Whatever a decoded message says, deciding it is safe: saga messages are
// checked against the receiving partition's state (see sagaHold, sagaStep,
// sagaAck), and the receiver of a message it did not expect changes nothing.
// Authenticating the sender is the transport's job.

// The message formats: 2 added the sales caps of a sagaAck's shortfalls; 3
// their customer limits; 4 the preorder holds of a sagaAck's held lines; 6
// the messages of a change of a cart spanning partitions (sagaGrow,
// sagaTrim). Formats 1 and 2 are still read, their shortfalls without caps
// or limits, and none before 6 has the kinds format 6 added. (A sagaHold
// carries its cart's customer since format 1: the participant checks the
// limits with it.)
const (
	messageFormatV1 = 1
	messageFormatV2 = 2
	messageFormatV3 = 3
	messageFormatV4 = 4
	messageFormatV6 = 6
)

// The kinds of saga message, the byte after the format.
const (
	kindSagaHold  byte = 1
	kindSagaStep  byte = 2
	kindSagaAck   byte = 3
	kindAbortSaga byte = 4
	// The kinds of a change, with the commerce rules' tags.
	kindSagaGrow byte = 87
	kindSagaTrim byte = 88
)

// EncodeMessage returns the wire encoding of m, a message a Decision (or
// Recover, or Overdue) produced. It fails for a command that is not a
// message between partitions, or a negative partition.
func EncodeMessage(m Message) ([]byte, error) {
	if m.To < 0 {
		return nil, fmt.Errorf("stockd: message to partition %d", m.To)
	}
	w := writer{}
	w.byte(messageFormatV6)
	w.varint(int64(m.To))
	switch c := m.Command.(type) {
	case sagaHold:
		w.byte(kindSagaHold)
		w.sagaHold(c)
	case sagaStep:
		w.byte(kindSagaStep)
		w.string(c.reservation)
		w.varint(int64(c.home))
		w.varint(int64(c.step))
		w.uvarint(c.attempt)
		w.byte(byte(c.action))
		w.uvarint(uint64(len(c.lines)))
		for _, l := range c.lines {
			w.string(l.SKU)
			w.varint(l.Quantity)
		}
		w.time(c.expiresAt)
		w.string(string(c.reason))
	case sagaAck:
		w.byte(kindSagaAck)
		w.string(c.reservation)
		w.varint(int64(c.step))
		w.varint(int64(c.from))
		w.uvarint(c.attempt)
		w.uvarint(uint64(len(c.held)))
		for _, l := range c.held {
			w.string(l.SKU)
			w.varint(l.Quantity)
			w.varint(l.Held)
			w.allocations(l.Allocations)
			w.preorderHolds(l.Preorders)
		}
		w.shortfalls(c.shortfalls)
	case abortSaga:
		w.byte(kindAbortSaga)
		w.string(c.reservation)
	case sagaGrow:
		w.byte(kindSagaGrow)
		w.sagaHold(sagaHold(c))
	case sagaTrim:
		w.byte(kindSagaTrim)
		w.string(c.reservation)
		w.varint(int64(c.home))
		w.varint(int64(c.step))
		w.uvarint(c.attempt)
		w.resLines(c.lines)
		w.time(c.expiresAt)
	default:
		return nil, fmt.Errorf("stockd: %T is not a message between partitions", m.Command)
	}
	return w.buf, nil
}

// DecodeMessage decodes a message written by EncodeMessage.
func DecodeMessage(data []byte) (Message, error) {
	r := reader{buf: data}
	v := r.byte()
	if (v < messageFormatV1 || v > messageFormatV6) && r.err == nil {
		return Message{}, fmt.Errorf("%w: unknown message format %d", ErrCorrupt, v)
	}
	m := Message{To: r.partition()}
	switch kind := r.byte(); kind {
	case kindSagaHold:
		m.Command = r.sagaHold()
	case kindSagaStep:
		c := sagaStep{reservation: r.string(), home: r.partition(), step: r.step(), attempt: r.uvarint()}
		c.action = SagaAction(r.byte())
		if c.action < SagaHold || c.action > SagaExtend {
			r.fail("unknown saga action %d", c.action)
		}
		if n := r.count(); n > 0 {
			c.lines = make([]CommitLine, 0, n)
			for i := 0; i < n && r.err == nil; i++ {
				c.lines = append(c.lines, CommitLine{SKU: r.string(), Quantity: r.varint()})
			}
		}
		c.expiresAt = r.time()
		c.reason = ReleaseReason(r.string())
		if !slices.Contains([]ReleaseReason{"", ReleaseRequested, ReleaseExpired, ReleaseCompensated, ReleasePartialCommit}, c.reason) {
			r.fail("unknown release reason %q", c.reason)
		}
		m.Command = c
	case kindSagaAck:
		c := sagaAck{reservation: r.string(), step: r.step(), from: r.partition(), attempt: r.uvarint()}
		if n := r.count(); n > 0 {
			c.held = make([]ReservationLine, 0, n)
			for i := 0; i < n && r.err == nil; i++ {
				l := ReservationLine{SKU: r.string(), Quantity: r.varint(), Held: r.varint()}
				l.Allocations = r.allocations()
				if v >= messageFormatV4 {
					l.Preorders = r.preorderHolds()
					l.Preorder = sumPreorders(l.Preorders)
				}
				c.held = append(c.held, l)
			}
		}
		c.shortfalls = r.shortfalls(v >= messageFormatV2, v >= messageFormatV3)
		m.Command = c
	case kindAbortSaga:
		m.Command = abortSaga{reservation: r.string()}
	case kindSagaGrow, kindSagaTrim:
		if v < messageFormatV6 {
			r.fail("message kind %d in format %d", kind, v)
			break
		}
		if kind == kindSagaGrow {
			m.Command = sagaGrow(r.sagaHold())
			break
		}
		c := sagaTrim{reservation: r.string(), home: r.partition(), step: r.step(), attempt: r.uvarint()}
		c.lines = r.resLines()
		c.expiresAt = r.time()
		m.Command = c
	default:
		r.fail("unknown message kind %d", kind)
	}
	if r.err != nil {
		return Message{}, r.err
	}
	if len(r.buf) != 0 {
		return Message{}, fmt.Errorf("%w: %d trailing bytes in message", ErrCorrupt, len(r.buf))
	}
	return m, nil
}

// sagaHold writes the body of a sagaHold, which a sagaGrow shares.
func (w *writer) sagaHold(c sagaHold) {
	w.string(c.reservation)
	w.varint(int64(c.home))
	w.varint(int64(c.step))
	w.uvarint(c.attempt)
	w.reserveLines(c.lines)
	w.string(c.region)
	w.time(c.expiresAt)
	w.string(c.customer)
}

// sagaHold reads what writer.sagaHold wrote.
func (r *reader) sagaHold() sagaHold {
	c := sagaHold{reservation: r.string(), home: r.partition(), step: r.step(), attempt: r.uvarint()}
	c.lines = r.reserveLines()
	c.region = r.string()
	c.expiresAt = r.time()
	c.customer = r.string()
	return c
}

// partition reads a partition number, which is never negative.
func (r *reader) partition() int {
	p := r.int()
	if p < 0 {
		r.fail("partition %d", p)
		return 0
	}
	return p
}

// step reads a saga step number, which is never negative (0 is the home's
// release of lines it does not want held; see orphanStep).
func (r *reader) step() int {
	s := r.int()
	if s < 0 {
		r.fail("saga step %d", s)
		return 0
	}
	return s
}
