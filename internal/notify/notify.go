// Package notify tells goroutines that follow the log (the feed's streams,
// publishers) that a partition's durable head moved, so that they wait for
// new events without polling.
package notify

import "sync"

// Hub broadcasts "partition p has new durable events". The engine calls
// Notify after every durable batch, on its hot path, so Notify costs a lock
// and nothing more when no one waits; a waiter takes a channel that the next
// Notify closes. A waiter must look at the head again after taking its
// channel and before waiting on it, or it may sleep through the Notify that
// came in between.
type Hub struct {
	parts []slot
	any   slot
}

type slot struct {
	mu    sync.Mutex
	ch    chan struct{}
	taken bool
}

// New returns a Hub for n partitions.
func New(n int) *Hub {
	h := &Hub{parts: make([]slot, n)}
	for i := range h.parts {
		h.parts[i].ch = make(chan struct{})
	}
	h.any.ch = make(chan struct{})
	return h
}

// Notify wakes everyone waiting on partition p, and everyone waiting on any
// partition.
func (h *Hub) Notify(p int) {
	h.parts[p].wake()
	h.any.wake()
}

// Wait returns a channel closed at the next Notify of partition p.
func (h *Hub) Wait(p int) <-chan struct{} { return h.parts[p].take() }

// WaitAny returns a channel closed at the next Notify of any partition.
func (h *Hub) WaitAny() <-chan struct{} { return h.any.take() }

func (s *slot) wake() {
	s.mu.Lock()
	if s.taken {
		close(s.ch)
		s.ch = make(chan struct{})
		s.taken = false
	}
	s.mu.Unlock()
}

func (s *slot) take() <-chan struct{} {
	s.mu.Lock()
	s.taken = true
	ch := s.ch
	s.mu.Unlock()
	return ch
}
