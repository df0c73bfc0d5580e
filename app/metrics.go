package app

import (
	nethttp "net/http"

	"github.com/stockd/stockd/metrics"
)

// counted wraps h so that the metrics count the requests in flight.
func counted(m *metrics.Metrics, h nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		m.StartRequest()
		defer m.EndRequest()
		h.ServeHTTP(w, r)
	})
}
