package app

import (
	"context"
	"slices"
	"strings"

	"github.com/stockd/stockd"
	"github.com/stockd/stockd/publish"
	"github.com/stockd/stockd/readmodel"
	"github.com/stockd/stockd/webhook"
)

// consumerAdmin implements stockd.ConsumerAdmin over the app's store and the
// consumers it runs.
type consumerAdmin struct{ a *App }

// running returns the consumers this server runs: the read model, every
// broker's publisher and every webhook endpoint.
func (c consumerAdmin) running() []string {
	var out []string
	if c.a.ReadModel != nil {
		out = append(out, readmodel.DefaultName)
	}
	for _, r := range c.a.Publishers {
		out = append(out, publish.Consumer(r.Name()))
	}
	if c.a.Webhooks != nil {
		out = append(out, c.a.Webhooks.Consumers()...)
	}
	return out
}

// runs reports whether this server runs consumer.
func (c consumerAdmin) runs(consumer string) bool {
	return slices.Contains(c.running(), consumer)
}

// view returns consumer as the API shows it: the lag of a consumer this
// server runs is where it is now, that of another one where its saved
// checkpoints are.
func (c consumerAdmin) view(ctx context.Context, consumer string, running bool) (stockd.Consumer, error) {
	v := stockd.Consumer{Name: consumer, Running: running}
	if lag, ok := c.liveLag(ctx, consumer); ok {
		v.Lag = lag
		return v, nil
	}
	for p := range c.a.Engine.Partitions() {
		cp, err := c.a.Store.Checkpoint(ctx, consumer, p)
		if err != nil {
			return stockd.Consumer{}, err
		}
		if head := c.a.Engine.DurableHead(p); head > cp.Position {
			v.Lag += head - cp.Position
		}
	}
	return v, nil
}

// liveLag returns the lag of a consumer this server runs, as it is now.
func (c consumerAdmin) liveLag(ctx context.Context, consumer string) (uint64, bool) {
	if consumer == readmodel.DefaultName && c.a.ReadModel != nil {
		return c.a.ReadModel.Lag(), true
	}
	for _, r := range c.a.Publishers {
		if publish.Consumer(r.Name()) == consumer {
			return r.Lag(), true
		}
	}
	if name, ok := strings.CutPrefix(consumer, webhook.Consumer("")); ok && c.a.Webhooks != nil {
		if w, err := c.a.Webhooks.GetWebhook(ctx, name); err == nil {
			return w.Lag, true
		}
	}
	return 0, false
}

func (c consumerAdmin) ListConsumers(ctx context.Context) (stockd.ConsumerList, error) {
	saved, err := c.a.Store.Consumers(ctx)
	if err != nil {
		return stockd.ConsumerList{}, err
	}
	running := c.running()
	names := append(slices.Clone(saved), running...)
	slices.Sort(names)
	list := stockd.ConsumerList{Items: []stockd.Consumer{}}
	for _, name := range slices.Compact(names) {
		v, err := c.view(ctx, name, slices.Contains(running, name))
		if err != nil {
			return stockd.ConsumerList{}, err
		}
		list.Items = append(list.Items, v)
	}
	return list, nil
}

func (c consumerAdmin) DeleteConsumer(ctx context.Context, name string) (stockd.Consumer, error) {
	if c.runs(name) {
		return stockd.Consumer{}, stockd.Errorf(stockd.CodeInUse, "consumer %q is running on this server: remove it from the configuration (or delete its webhook endpoint) first", name)
	}
	saved, err := c.a.Store.Consumers(ctx)
	if err != nil {
		return stockd.Consumer{}, err
	}
	if !slices.Contains(saved, name) {
		return stockd.Consumer{}, stockd.Errorf(stockd.CodeNotFound, "consumer %q has no checkpoint", name)
	}
	v, err := c.view(ctx, name, false)
	if err != nil {
		return stockd.Consumer{}, err
	}
	if err := c.a.Store.DeleteConsumer(ctx, name); err != nil {
		return stockd.Consumer{}, err
	}
	c.a.log.Info("consumer deleted", "consumer", name, "lag", v.Lag)
	return v, nil
}
