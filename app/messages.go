package app

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"strings"
	"sync"
	"time"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/engine"
)

// messagesPath is the route a node takes saga messages from the other nodes
// on. It is not part of the public API: only a node holding the cluster's
// token may call it.
const messagesPath = "/internal/v1/messages"

// messenger carries the saga messages of the partitions this node serves to
// partitions other nodes serve (engine.Options.Send), DESIGN §4
// "Cross-partition carts": a queue per partition sent to, delivered in the
// order sent, each batch of waiting messages in one request to the node
// that held the partition's lease at the last look, and tried again while
// no node takes it (the partition is moving, its node is down). A message
// that still finds no taker after giveUp is dropped: the saga's home sends
// what is overdue again (stockd.State.Overdue), and participants answer
// repeats as before.
type messenger struct {
	eng   func() *engine.Engine
	m     *member
	token string
	hc    *nethttp.Client
	log   *slog.Logger

	mu     sync.Mutex
	queues map[int]*messageQueue
	closed bool
	wg     sync.WaitGroup
}

type messageQueue struct {
	msgs    []stockd.Message
	running bool
}

// giveUp bounds how long a message waits for a node to take it.
const giveUp = time.Minute

func newMessenger(m *member, token string, eng func() *engine.Engine, log *slog.Logger) *messenger {
	t := nethttp.DefaultTransport.(*nethttp.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	return &messenger{
		eng: eng, m: m, token: token, log: log,
		hc:     &nethttp.Client{Transport: t, Timeout: 10 * time.Second},
		queues: map[int]*messageQueue{},
	}
}

// send queues m for its partition; it never blocks.
func (ms *messenger) send(m stockd.Message) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.closed {
		return
	}
	q := ms.queues[m.To]
	if q == nil {
		q = &messageQueue{}
		ms.queues[m.To] = q
	}
	q.msgs = append(q.msgs, m)
	if !q.running {
		q.running = true
		ms.wg.Add(1)
		go ms.drain(m.To, q)
	}
}

// drain delivers partition p's queue until it is empty.
func (ms *messenger) drain(p int, q *messageQueue) {
	defer ms.wg.Done()
	for {
		ms.mu.Lock()
		batch := q.msgs
		q.msgs = nil
		if len(batch) == 0 || ms.closed {
			q.running = false
			ms.mu.Unlock()
			return
		}
		ms.mu.Unlock()
		ms.deliver(p, batch)
	}
}

// deliver hands batch to partition p's node, trying again with backoff.
func (ms *messenger) deliver(p int, batch []stockd.Message) {
	wait := 20 * time.Millisecond
	for start := time.Now(); ; {
		var err error
		if batch, err = ms.try(p, batch); err == nil {
			return
		}
		if time.Since(start) > giveUp {
			ms.log.Warn("saga messages found no node to take them; the saga's home sends them again", "partition", p, "messages", len(batch), "err", err)
			return
		}
		ms.mu.Lock()
		closed := ms.closed
		ms.mu.Unlock()
		if closed {
			return
		}
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}

// try delivers batch once: here, if this node serves p now, else to the
// node that does. It returns what is left to deliver.
func (ms *messenger) try(p int, batch []stockd.Message) ([]stockd.Message, error) {
	if eng := ms.eng(); eng != nil && eng.Serves(p) {
		for i, m := range batch {
			if err := eng.Deliver(m); err != nil {
				return batch[i:], err
			}
		}
		return nil, nil
	}
	owner, ok := ms.m.owner(p)
	if !ok || owner.ID == ms.m.node.ID {
		return batch, fmt.Errorf("no node serves partition %d yet", p)
	}
	body, err := encodeMessages(batch)
	if err != nil {
		ms.log.Error("a saga message cannot be encoded", "partition", p, "err", err)
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := nethttp.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(owner.URL, "/")+messagesPath, bytes.NewReader(body))
	if err != nil {
		return batch, err
	}
	req.Header.Set("Authorization", "Bearer "+ms.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := ms.hc.Do(req)
	if err != nil {
		return batch, err
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	if res.StatusCode != nethttp.StatusNoContent {
		return batch, fmt.Errorf("node %s answered %d", owner.ID, res.StatusCode)
	}
	return nil, nil
}

// close stops delivering; messages still queued are dropped (their homes
// send them again).
func (ms *messenger) close() {
	ms.mu.Lock()
	ms.closed = true
	ms.mu.Unlock()
	ms.wg.Wait()
}

// messagesBody is the body of messagesPath: messages in stockd's encoding.
type messagesBody struct {
	Messages [][]byte `json:"messages"`
}

func encodeMessages(batch []stockd.Message) ([]byte, error) {
	var b messagesBody
	for _, m := range batch {
		data, err := stockd.EncodeMessage(m)
		if err != nil {
			return nil, err
		}
		b.Messages = append(b.Messages, data)
	}
	return json.Marshal(b)
}

// maxMessagesBody bounds the body of one delivery.
const maxMessagesBody = 16 << 20

// messagesHandler takes saga messages from another node of the cluster for
// partitions this node serves: 204 when every one was handed to its
// partition, 503 when one is not served here (the sender tries again), 401
// without the cluster's token, 400 for a body that does not decode.
func (ms *messenger) messagesHandler() nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(token), []byte(ms.token)) != 1 {
			nethttp.Error(w, "this route is for the nodes of the cluster", nethttp.StatusUnauthorized)
			return
		}
		var b messagesBody
		if err := json.NewDecoder(io.LimitReader(r.Body, maxMessagesBody)).Decode(&b); err != nil {
			nethttp.Error(w, "the body does not decode", nethttp.StatusBadRequest)
			return
		}
		msgs := make([]stockd.Message, 0, len(b.Messages))
		for _, data := range b.Messages {
			m, err := stockd.DecodeMessage(data)
			if err != nil {
				nethttp.Error(w, "a message does not decode", nethttp.StatusBadRequest)
				return
			}
			msgs = append(msgs, m)
		}
		eng := ms.eng()
		for _, m := range msgs {
			if eng == nil {
				nethttp.Error(w, "not serving yet", nethttp.StatusServiceUnavailable)
				return
			}
			if err := eng.Deliver(m); err != nil {
				// Those delivered already come again with the retry:
				// a saga answers repeats as before.
				w.Header().Set("Retry-After", "1")
				nethttp.Error(w, "partition not served here", nethttp.StatusServiceUnavailable)
				return
			}
		}
		w.WriteHeader(nethttp.StatusNoContent)
	})
}
