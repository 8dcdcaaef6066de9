package prom_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/metrics/prom"
)

// An Echo app whose streams are counted in Counters given to the door,
// and whose /metrics serves them; one stream, one event, then a scrape.
func ExampleNewStreamCollector() {
	counters := new(echosse.Counters)
	reg := prometheus.NewRegistry()
	reg.MustRegister(prom.NewStreamCollector(counters))

	e := echo.New()
	e.Use(echosse.Middleware(echosse.Config{Counters: counters}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		s.Send(event.Event{Data: "hello"})
		close(s.C)
		return nil
	})
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	srv := httptest.NewServer(e)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()

	res, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "echosse_streams_") || strings.HasPrefix(line, "echosse_events_written") {
			fmt.Println(line)
		}
	}
	// Output:
	// echosse_events_written_total 1
	// echosse_streams_ended_total{reason="aborted"} 0
	// echosse_streams_ended_total{reason="client_gone"} 0
	// echosse_streams_ended_total{reason="closed"} 1
	// echosse_streams_ended_total{reason="handler_error"} 0
	// echosse_streams_ended_total{reason="handler_panic"} 0
	// echosse_streams_ended_total{reason="pump_panic"} 0
	// echosse_streams_ended_total{reason="shutdown"} 0
	// echosse_streams_ended_total{reason="write_timeout"} 0
	// echosse_streams_open 0
	// echosse_streams_opened_total 1
	// echosse_streams_parked 0
	// echosse_streams_refused_total{overflow="retry"} 0
	// echosse_streams_refused_total{overflow="unavailable"} 0
}
