package stockd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
)

// The encoding of an AvailabilityState, which the read model saves in its
// checkpoints:
//
//	magic "SDAV" | format 1 | body | CRC-32C of everything before it
//
// The body holds the partition, partition count, head and clock, then each
// SKU (id, version, safety stock, and per location on_hand and reserved),
// then each live reservation with its lines. The magic tells it apart from
// an encoded State (EncodeState), whose first byte is its format number; the
// checksum and a strict decoder refuse anything else with an error wrapping
// ErrCorrupt.

var availabilityMagic = []byte("SDAV")

// The availability formats: 5 added the preorder holds of reservation
// lines (numbered after the event format that added them, so as not to meet
// another rule's); format 1 is still read, its lines without preorders.
const (
	availabilityFormatV1 = 1
	availabilityFormatV5 = 5
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// IsAvailabilityEncoding reports whether data starts like an encoding made by
// EncodeAvailability, rather than, say, an encoded State.
func IsAvailabilityEncoding(data []byte) bool {
	return bytes.HasPrefix(data, availabilityMagic)
}

// EncodeAvailability returns the encoding of a.
func EncodeAvailability(a *AvailabilityState) []byte {
	w := writer{buf: make([]byte, 0, 256+32*len(a.skus)+96*len(a.reservations))}
	w.buf = append(w.buf, availabilityMagic...)
	w.byte(availabilityFormatV5)
	w.varint(int64(a.partition))
	w.varint(int64(a.partitions))
	w.uvarint(a.head)
	w.time(a.clock)
	w.uvarint(uint64(len(a.skus)))
	for id, sk := range a.skus {
		w.string(id)
		w.uvarint(sk.version)
		w.varint(sk.safety)
		w.uvarint(uint64(len(sk.locs)))
		for _, st := range sk.locs {
			w.string(st.location)
			w.varint(st.onHand)
			w.varint(st.reserved)
		}
	}
	w.uvarint(uint64(len(a.reservations)))
	for _, r := range a.reservations {
		w.strings(r.id, string(r.status), r.customer)
		w.time(r.createdAt)
		w.time(r.expiresAt)
		w.varint(int64(r.home))
		w.bool(r.saga)
		w.bool(r.aborted)
		w.uvarint(uint64(len(r.lines)))
		for _, l := range r.lines {
			w.string(l.sku)
			w.varint(int64(l.partition))
			w.varint(l.quantity)
			w.allocations(l.allocations)
			w.bool(l.holding)
			w.preorderHolds(l.preorders)
		}
	}
	return appendChecksum(w.buf)
}

// appendChecksum appends the CRC-32C of b to it.
func appendChecksum(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// DecodeAvailability decodes an encoding made by EncodeAvailability. It
// refuses anything else, an encoded State included, with an error wrapping
// ErrCorrupt.
func DecodeAvailability(data []byte) (*AvailabilityState, error) {
	if !IsAvailabilityEncoding(data) {
		return nil, fmt.Errorf("%w: not an availability encoding", ErrCorrupt)
	}
	if len(data) < len(availabilityMagic)+1+4 {
		return nil, fmt.Errorf("%w: availability encoding of %d bytes is truncated", ErrCorrupt, len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("%w: availability checksum %08x, want %08x", ErrCorrupt, got, sum)
	}
	r := reader{buf: body[len(availabilityMagic):]}
	v := r.byte()
	if v != availabilityFormatV1 && v != availabilityFormatV5 {
		return nil, fmt.Errorf("%w: unknown availability format %d", ErrCorrupt, v)
	}
	p, partitions := r.int(), r.int()
	if r.err == nil && (partitions < 1 || p < 0 || p >= partitions) {
		r.fail("partition %d of %d", p, partitions)
	}
	a := NewAvailabilityState(p, partitions)
	a.head = r.uvarint()
	a.clock = r.time()
	n := r.count()
	for i := 0; i < n && r.err == nil; i++ {
		id := r.string()
		sk := &availSKU{version: r.uvarint(), safety: r.varint()}
		m := r.count()
		sk.locs = make([]availStock, 0, m)
		for j := 0; j < m && r.err == nil; j++ {
			st := availStock{location: r.recent(), onHand: r.varint(), reserved: r.varint()}
			if j > 0 && strings.Compare(sk.locs[j-1].location, st.location) >= 0 {
				r.fail("locations of %q out of order", id)
			}
			sk.locs = append(sk.locs, st)
		}
		if _, dup := a.skus[id]; dup || id == "" {
			r.fail("SKU %q empty or repeated", id)
		}
		a.skus[id] = sk
	}
	n = r.count()
	for i := 0; i < n && r.err == nil; i++ {
		x := &liveReservation{id: r.string(), status: ReservationStatus(r.string()), customer: r.string()}
		x.createdAt, x.expiresAt = r.time(), r.time()
		x.home = r.int()
		x.saga, x.aborted = r.bool(), r.bool()
		m := r.count()
		x.lines = make([]*liveLine, 0, m)
		for j := 0; j < m && r.err == nil; j++ {
			l := &liveLine{sku: r.recent(), partition: r.int(), quantity: r.varint(), allocations: r.allocations(), holding: r.bool()}
			if v >= availabilityFormatV5 {
				l.preorders = r.preorderHolds()
			}
			x.lines = append(x.lines, l)
		}
		switch {
		case r.err != nil:
		case !slices.Contains([]ReservationStatus{StatusPending, StatusHeld, StatusCommitted, StatusReleased, StatusExpired}, x.status):
			r.fail("reservation %q has status %q", x.id, x.status)
		case x.id == "" || a.reservations[x.id] != nil:
			r.fail("reservation %q empty or repeated", x.id)
		case x.home < 0 || x.home >= partitions:
			r.fail("reservation %q has home %d of %d partitions", x.id, x.home, partitions)
		}
		a.reservations[x.id] = x
	}
	if r.err == nil && len(r.buf) != 0 {
		r.fail("%d bytes after the end", len(r.buf))
	}
	if r.err != nil {
		return nil, r.err
	}
	a.reindex()
	return a, nil
}
