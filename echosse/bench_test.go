package echosse_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// pumpRig is one stream over loopback whose sender the benchmark drives,
// with a client that reads everything into io.Discard.
type pumpRig struct {
	s    *echosse.Stream
	conn net.Conn
	read chan int64
}

func newPumpRig(tb testing.TB, cfg echosse.Config) *pumpRig {
	tb.Helper()
	streams := make(chan *echosse.Stream, 1)
	e := newEcho()
	e.Use(echosse.Middleware(cfg))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		streams <- s
		return nil
	})
	srv := newServer(tb, e)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/events", nil)
	req.Write(conn)
	res, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		tb.Fatal(err)
	}
	r := &pumpRig{s: <-streams, conn: conn, read: make(chan int64, 1)}
	go func() {
		n, _ := io.Copy(io.Discard, res.Body)
		r.read <- n
	}()
	return r
}

// close ends the stream and waits for the client to read it all.
func (r *pumpRig) close() {
	close(r.s.C)
	<-r.read
	r.conn.Close()
}

// BenchmarkStream sends events as fast as the pump takes them: the pump
// writes whatever is queued and flushes once per batch. Allocations count
// every goroutine, the pump's included.
func BenchmarkStream(b *testing.B) {
	for _, tt := range []struct {
		name string
		ev   event.Event
	}{
		{"string", event.Event{Type: "tick", Data: `{"symbol":"ECHO","price":17.25,"volume":1200,"ts":"2026-11-23T23:11:20Z","seq":123456}`}},
		{"prepared", mustPrepare(event.Event{Type: "tick", Data: `{"symbol":"ECHO","price":17.25,"volume":1200,"ts":"2026-11-23T23:11:20Z","seq":123456}`})},
	} {
		b.Run(tt.name, func(b *testing.B) {
			r := newPumpRig(b, echosse.Config{BufferSize: 64})
			b.ReportAllocs()
			for b.Loop() {
				r.s.C <- tt.ev
			}
			b.StopTimer()
			r.close()
		})
	}
}

func mustPrepare(ev event.Event) event.Event {
	ev, err := ev.Prepare()
	if err != nil {
		panic(err)
	}
	return ev
}
