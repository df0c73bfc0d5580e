package app

import "github.com/prometheus/client_golang/prometheus"

// registerFeedMetrics exports the feed's open streams and events served.
// They are read when scraped, through the API, which serves the scrapes.
func (a *App) registerFeedMetrics() error {
	streams := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stockd_feed_streams",
		Help: "Server-Sent Events streams of the change feed open now.",
	}, func() float64 { return float64(a.API.OpenStreams()) })
	served := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "stockd_feed_events_served_total",
		Help: "Events the change feed served, in pages, streams and subscription reads.",
	}, func() float64 { return float64(a.Feed.Served()) })
	for _, c := range []prometheus.Collector{streams, served} {
		if err := a.Metrics.Register(c); err != nil {
			return err
		}
	}
	return nil
}
