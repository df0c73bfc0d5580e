// Package bench is the load generator behind `stockd bench`: it drives stockd
// over HTTP and, in the same run, the usual alternatives, and reports each
// one's throughput and latency and the ratios between them.
//
// The generator is closed-loop: at each concurrency level, that many client
// goroutines each issue one request at a time, the HTTP ones through a single
// shared http.Client whose Transport keeps a keep-alive connection per client.
// Each level first runs unmeasured for a warm-up, then for a measured window
// (or a number of operations); requests completing inside the window count.
// Latency is per request, over requests with at least one successful
// operation, recorded per client in a log-linear histogram (under 1% error,
// fixed memory) and merged at the end. Failed operations are counted by kind:
// insufficient stock, overloaded (429/503, after which the client honours
// Retry-After up to 100 ms), and other.
//
// Targets run one after another, never at once, so each has the machine to
// itself; Main runs the ceiling first and gives each workload a fresh embedded
// server, so that no target pays for another's leftover heap or background
// work:
//
//   - noop: NoopHandler, a net/http handler in this process that decodes the
//     same body strictly and answers 201. Driven by the same generator, it
//     is the machine's per-request HTTP ceiling, so stockd/noop says how much
//     of that ceiling stockd reaches.
//   - stockd: one reservation per POST /v1/reservations.
//   - stockd-batch: many reservations per POST /v1/batch, each with its own
//     result; throughput counts reservations.
//   - pg-rowlock: the row-lock design,
//     UPDATE stock SET available = available - $2 WHERE sku = $1 AND available >= $2,
//     one autocommit statement per reservation, one connection per client.
//   - pg-events: an event table with optimistic concurrency on
//     (sku, version) and a head row per SKU; a conflict is retried and
//     counted.
//
// Main parses the command's flags and runs it; the stockd command calls it
// with the arguments after "bench", and sets StartEmbedded so that the bench
// can start its own server when no --url is given.
package bench
