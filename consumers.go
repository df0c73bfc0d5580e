package stockd

import "context"

// ConsumerAdmin shows the checkpointed consumers of the log (the read model,
// the brokers' publishers, the webhook endpoints) and deletes the checkpoints
// of one that is gone. Archiving waits for every consumer with a checkpoint:
// a publisher removed from the configuration would hold it back for ever
// until its checkpoints are deleted. Every operation needs the admin scope.
type ConsumerAdmin interface {
	// ListConsumers returns every consumer with a checkpoint, and every
	// one this server runs, in name order.
	ListConsumers(ctx context.Context) (ConsumerList, error)
	// DeleteConsumer deletes a consumer's checkpoints in every partition
	// and returns it as it was: CodeNotFound if it has none, CodeInUse if
	// this server runs it (stop it first: remove the broker from the
	// configuration, or delete the webhook endpoint).
	DeleteConsumer(ctx context.Context, name string) (Consumer, error)
}

// Consumer is one checkpointed consumer of the log.
type Consumer struct {
	// Name is the name its checkpoints are saved under: "availability"
	// (the read model), "publish/nats", "publish/kafka",
	// "publish/webhook/<endpoint>".
	Name string `json:"name"`
	// Running says whether this server runs it.
	Running bool `json:"running"`
	// Lag is the number of durable events it has not yet processed,
	// summed over partitions: where it is now if this server runs it,
	// else after its saved checkpoints.
	Lag uint64 `json:"lag"`
}

// ConsumerList is every consumer, in name order.
type ConsumerList struct {
	Items []Consumer `json:"items"`
}
