package bench

import (
	"context"
	"strconv"
	"time"
)

// Workload says which SKUs a run reserves from and how much of each is
// stocked before timing starts. Every operation reserves one unit.
type Workload struct {
	// Name is "hot" or "uniform"; it also names the workload in reports.
	Name string
	// SKUs is how many SKUs there are. The hot workload's one SKU is
	// named "hot"; others are named "sku-0", "sku-1", ….
	SKUs int
	// Stock is how many units of each SKU are stocked before timing. It
	// must cover the whole run, or the tail of the run measures refusals.
	Stock int64
}

// The default stock: the largest single receipt the API accepts for the hot
// SKU (a flash sale of a billion units outlasts any run on one machine), and a
// million units for each uniform SKU (a run would need 10^11 reservations to
// exhaust one on average).
const (
	DefaultHotStock     = 1_000_000_000
	DefaultUniformStock = 1_000_000
	DefaultUniformSKUs  = 100_000
)

// Hot is the flash-sale workload: every operation reserves one unit of the one
// SKU "hot".
func Hot() Workload { return Workload{Name: "hot", SKUs: 1, Stock: DefaultHotStock} }

// Uniform is the spread-out workload: every operation reserves one unit of a
// SKU chosen uniformly at random from skus SKUs "sku-0"…"sku-<skus-1>".
func Uniform(skus int) Workload {
	return Workload{Name: "uniform", SKUs: skus, Stock: DefaultUniformStock}
}

func (w Workload) hot() bool { return w.Name == "hot" }

// SKU returns the name of SKU i of the workload.
func (w Workload) SKU(i int) string {
	if w.hot() {
		return "hot"
	}
	return "sku-" + strconv.Itoa(i)
}

// appendSKU appends the name of SKU i without allocating.
func (w Workload) appendSKU(b []byte, i int) []byte {
	if w.hot() {
		return append(b, "hot"...)
	}
	return strconv.AppendInt(append(b, "sku-"...), int64(i), 10)
}

// Target is one system under load: stockd over HTTP, the no-op HTTP ceiling,
// or a PostgreSQL design. The runner drives every target with the same
// closed loop, so their figures are comparable.
type Target interface {
	// Name is how reports name the target ("stockd", "pg-rowlock", …).
	Name() string
	// OpsPerRequest is how many operations one request carries: 1, or the
	// batch size for a batch target.
	OpsPerRequest() int
	// Prepare stocks the workload's SKUs. It runs once per workload, before
	// any level is timed.
	Prepare(ctx context.Context, w Workload) error
	// Start readies the target for a level of clients concurrent clients
	// (connections, pools) and returns one Worker per client.
	Start(ctx context.Context, w Workload, clients int) (*Level, error)
	// Close releases everything the target holds (servers, schemas).
	Close() error
}

// Level is a target readied for one concurrency level.
type Level struct {
	// Workers has one Worker per client; the runner calls each from one
	// goroutine only.
	Workers []Worker
	// Conns is the number of connections serving the clients when the
	// target bounds it (a database pool); 0 when every client has its own.
	Conns int
	// Note is a remark for the report, such as why Conns < clients.
	Note string
	// Stop, when set, ends the level.
	Stop func() error
}

// Worker issues requests for one client, one at a time.
type Worker interface {
	// Do performs one request carrying n operations and reports what
	// became of them. Errors are reported in the Outcome, never returned:
	// a load generator counts failures, it does not stop at them.
	Do(ctx context.Context, n int) Outcome
}

// Outcome is what became of the operations of one request.
type Outcome struct {
	// OK counts operations that succeeded (a reservation granted).
	OK int
	// Insufficient counts operations refused for lack of stock.
	Insufficient int
	// Overloaded counts operations refused by load shedding (429/503).
	Overloaded int
	// Other counts every other failure.
	Other int
	// Retries counts optimistic-concurrency conflicts retried.
	Retries int
	// Err describes the first Other failure.
	Err error
	// Backoff is how long the server asked the client to wait before
	// retrying (Retry-After), capped by the worker.
	Backoff time.Duration
}
