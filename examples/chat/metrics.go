package main

// GET /metrics: the room's counters for Prometheus, read at each scrape:
// the streams' (counted by the door in the room's sse.Counters), the
// broker's, Redis's with -redis, and the Go runtime's and the process's.

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/echosse/echo-sse/metrics/prom"
)

// metricsHandler returns the handler of GET /metrics.
func (s *server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		prom.NewStreamCollector(s.counters),
		// The room's two topics are fixed names: labels that cost two
		// series, not one per user.
		prom.NewBrokerCollector(s.b, topicChat, topicPresence),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if s.shared != nil {
		reg.MustRegister(prom.NewRedisCollector(s.shared.backend))
	}
	// Echo's Gzip compresses it for scrapers that ask, as it does every
	// route.
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{DisableCompression: true})
}
