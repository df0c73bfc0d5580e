package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// Replays in a cluster.
//
// An endpoint's dead letters are records in the shared store, one per event
// id, under a kind of the endpoint's generation; any node may be asked to
// replay them, and two nodes may be asked at once (two admins, a retried
// request sent to another node). The Runners do not touch the list except to
// add to it, so a replay is not tied to the partitions a node serves: what
// must not happen is two nodes sending one dead letter at once and each then
// recording an outcome. Within a process the endpoint's replaying semaphore
// serializes replays; across processes each dead letter is claimed before it
// is sent:
//
//   - A claim is a record created (Records.CreateRecord: of concurrent
//     creates exactly one succeeds) under the endpoint's claim kind, keyed by
//     the event id and a hash of the dead letter as it was read: the version
//     being replayed. A process whose create fails leaves the dead letter to
//     the replay that holds it, untried (it is in none of the answer's
//     lists, like the dead letters a replay ran out of time for).
//   - The claimant reads the dead letter again after claiming it and sends it
//     only if it is still that version: a replay that finished meanwhile has
//     deleted it (not found) or rewritten it (a failed attempt counted), and
//     a stale read can then not send it again.
//   - The outcome (the dead letter deleted, or rewritten with the attempt)
//     is written before the claim is deleted.
//   - A claim expires: its holder gives up sending before claimTTL has
//     passed. A claim left by a process that died is passed over by creating
//     the next level of the same version's claim, once the one before has
//     expired; so there is at most one live claim of a version at a time.
//     This assumes the nodes' clocks agree to well within a minute, as
//     leases do.
//
// A process that dies between writing an outcome and deleting its claims
// leaves claim records of a version that no longer exists; they are harmless
// and purged with the endpoint's dead letters when it is deleted.

// claimLevels bounds how many dead holders of one version are passed over.
const claimLevels = 16

// claimTTL is how long a claim holds a dead letter: one attempt (at most
// Timeout) and the writes around it, with room to spare.
func (m *Manager) claimTTL() time.Duration { return m.opts.Timeout + time.Minute }

// claimMargin is how long before its claim expires a holder stops sending.
const claimMargin = 30 * time.Second

type claimRecord struct {
	Expires time.Time `json:"expires"`
}

// claimState is the outcome of claim.
type claimState int

const (
	claimHeld claimState = iota // this process holds the claim
	claimBusy                   // another replay holds it, or it changed since read
	claimGone                   // the dead letter is no longer on the list
)

// claimed is a dead letter this process is replaying.
type claimed struct {
	ep      *endpoint
	base    string // event id and version
	level   int
	expires time.Time
}

// claim claims dead letter id, as value holds it, for one replay attempt.
func (ep *endpoint) claim(ctx context.Context, id string, value []byte) (*claimed, claimState, error) {
	store := ep.m.opts.Store
	sum := sha256.Sum256(value)
	c := &claimed{ep: ep, base: id + "/" + hex.EncodeToString(sum[:12])}
	kind := ep.cfg.claimKind()
	for c.level = 0; c.level < claimLevels; c.level++ {
		c.expires = time.Now().Add(ep.m.claimTTL())
		rec, err := json.Marshal(claimRecord{Expires: c.expires})
		if err != nil {
			return nil, 0, err
		}
		created, err := store.CreateRecord(ctx, kind, c.key(), rec)
		if err != nil {
			return nil, 0, err
		}
		if created {
			cur, ok, err := store.GetRecord(ctx, ep.cfg.deadKind(), id)
			switch {
			case err != nil:
				c.release(ctx, false)
				return nil, 0, err
			case !ok:
				c.release(ctx, true)
				return nil, claimGone, nil
			case !bytes.Equal(cur, value):
				c.release(ctx, false)
				return nil, claimBusy, nil
			}
			return c, claimHeld, nil
		}
		held, ok, err := store.GetRecord(ctx, kind, c.key())
		if err != nil {
			return nil, 0, err
		}
		var hr claimRecord
		if !ok || json.Unmarshal(held, &hr) != nil || time.Now().Before(hr.Expires) {
			// Held (or let go this moment): the other replay has it.
			return nil, claimBusy, nil
		}
		// Its holder died: pass it over.
	}
	return nil, claimBusy, nil
}

func (c *claimed) key() string { return c.base + "/" + strconv.Itoa(c.level) }

// deadline is when the holder must stop sending.
func (c *claimed) deadline() time.Time { return c.expires.Add(-claimMargin) }

// release deletes the claim once the outcome is written (changed: the dead
// letter was deleted or rewritten, so that no claim of this version can
// matter again and the levels passed over go too) or not (only its own
// level goes: the ones below stay, expired, so that the next claimant
// passes them over as this one did, and no two can hold the version).
func (c *claimed) release(ctx context.Context, changed bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	kind := c.ep.cfg.claimKind()
	from := c.level
	if changed {
		from = 0
	}
	for l := from; l <= c.level; l++ {
		if err := c.ep.m.opts.Store.DeleteRecord(ctx, kind, c.base+"/"+strconv.Itoa(l)); err != nil {
			c.ep.m.log.Warn("webhook: a replay's claim was not deleted; it expires", "webhook", c.ep.cfg.Name, "err", err)
			return
		}
	}
}
