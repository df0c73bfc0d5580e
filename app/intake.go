package app

import (
	"context"
	"fmt"
	"time"

	"github.com/stockd/stockd/drops"
	"github.com/stockd/stockd/http"
	"github.com/stockd/stockd/imports"
	"github.com/stockd/stockd/intake"
)

// IntakeConfig configures the asynchronous intake of commands and the
// watcher of supplier file drops (docs/intake.md).
type IntakeConfig struct {
	// Retain is how long a finished command's status is kept; default
	// 24 h.
	Retain time.Duration
	// MaxQueued bounds the commands waiting; default 10,000.
	MaxQueued int
	// Paused queues commands without applying them (maintenance, tests).
	Paused bool
	// NATSStream, NATSSubject and NATSDurable name the JetStream work
	// queue commands are taken from when Publish.NATS is set; defaults
	// STOCKD_COMMANDS, stockd.commands, stockd-intake.
	NATSStream, NATSSubject, NATSDurable string
	// NoNATS leaves the NATS work queue out even with Publish.NATS set.
	NoNATS bool
	// DropsURL is the folder or bucket supplier files are dropped into;
	// empty: no watcher.
	DropsURL string
	// DropsEvery is the pause between looks; default 10 s.
	DropsEvery time.Duration
	// DropsSettle is how long a file must stay unchanged before it is
	// read; default 30 s (DropsSettleSet makes 0 mean 0).
	DropsSettle    time.Duration
	DropsSettleSet bool
	// DropsLocation is the location of rows that name none.
	DropsLocation string
}

// openIntake starts the command queue and its worker, the importer, the
// NATS work queue when NATS is configured, and the drop watcher when a drop
// URL is.
func (a *App) openIntake(ctx context.Context) error {
	ic := a.cfg.Intake
	im := intake.NewMetrics()
	dm := drops.NewMetrics()
	if err := a.Metrics.Register(im); err != nil {
		return err
	}
	if err := a.Metrics.Register(dm); err != nil {
		return err
	}
	opts := intake.Options{
		Service: a.Service, Records: a.Store, Limits: a.cfg.Engine.Limits, Problem: http.CommandProblem,
		Retain: ic.Retain, MaxQueued: ic.MaxQueued, Paused: ic.Paused,
		Logger: a.log.With("component", "intake"), Metrics: im, Node: a.NodeID,
	}
	if m := a.member; m != nil {
		// Commands queued on a node that left or died are applied by
		// the others (the node registered before this opens).
		opts.Live = func(ctx context.Context) (map[string]bool, error) {
			nodes, err := m.store.Nodes(ctx)
			if err != nil {
				return nil, err
			}
			live := make(map[string]bool, len(nodes))
			for _, n := range nodes {
				live[n.ID] = true
			}
			return live, nil
		}
	}
	q, err := intake.Open(ctx, opts)
	if err != nil {
		return err
	}
	a.Intake = q
	a.Importer = imports.New(imports.Options{Service: a.Service, Records: a.Store, Logger: a.log.With("component", "imports")})
	if a.cfg.Publish.NATS != "" && !ic.NoNATS {
		c, err := intake.StartNATS(ctx, q, intake.NATSOptions{
			URL: a.cfg.Publish.NATS, Stream: ic.NATSStream, Subject: ic.NATSSubject, Durable: ic.NATSDurable,
			Logger: a.log.With("component", "intake", "source", "nats"),
		})
		if err != nil {
			return fmt.Errorf("nats intake: %w", err)
		}
		a.IntakeNATS = c
	}
	if ic.DropsURL != "" {
		w, err := drops.Open(ctx, drops.Options{
			URL: ic.DropsURL, Every: ic.DropsEvery, Settle: ic.DropsSettle, SettleSet: ic.DropsSettleSet, Location: ic.DropsLocation,
			Imports: a.Importer, Records: a.Store, Logger: a.log.With("component", "drops"), Metrics: dm,
		})
		if err != nil {
			return err
		}
		a.Drops = w
		w.Start()
	}
	return nil
}

// closeIntake stops the drop watcher, the NATS work queue and the worker,
// before the engine closes. Queued commands stay queued, for the next start.
func (a *App) closeIntake() error {
	var err error
	if a.Drops != nil {
		err = a.Drops.Close()
		a.Drops = nil
	}
	if a.IntakeNATS != nil {
		a.IntakeNATS.Close()
		a.IntakeNATS = nil
	}
	if a.Intake != nil {
		a.Intake.Close()
	}
	return err
}
