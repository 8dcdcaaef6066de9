package echosse_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// streamApp serves GET /events with handler h behind the middleware, and
// hands each opened stream to the test.
func streamApp(t testing.TB, cfg echosse.Config, h func(s *echosse.Stream) error, mws ...echo.MiddlewareFunc) (*httptest.Server, chan *echosse.Stream) {
	t.Helper()
	return streamAppWith(t, cfg, func(_ echo.Context, s *echosse.Stream) error { return h(s) }, mws...)
}

// streamAppWith is streamApp for handlers that need the echo.Context too.
func streamAppWith(t testing.TB, cfg echosse.Config, h func(c echo.Context, s *echosse.Stream) error, mws ...echo.MiddlewareFunc) (*httptest.Server, chan *echosse.Stream) {
	t.Helper()
	streams := make(chan *echosse.Stream, 100)
	e := newEcho()
	e.Use(mws...)
	e.Use(echosse.Middleware(cfg))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		streams <- s
		return h(c, s)
	})
	return newServer(t, e), streams
}

// openSendClose is an Echo handler that opens a stream and leaves it to
// sendThenClose.
func openSendClose(evs ...event.Event) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		return sendThenClose(evs...)(s)
	}
}

// sendThenClose is a handler that leaves the stream to a goroutine which
// sends evs and closes the channel.
func sendThenClose(evs ...event.Event) func(s *echosse.Stream) error {
	return func(s *echosse.Stream) error {
		go func() {
			defer close(s.C)
			for _, ev := range evs {
				if s.Send(ev) != nil {
					return
				}
			}
		}()
		return nil
	}
}

func TestStreamHeadersEventsAndCloseEvent(t *testing.T) {
	srv, streams := streamApp(t, echosse.Config{}, sendThenClose(
		event.Event{Data: "a notice"},
		event.Event{Type: "update", ID: "7", Data: map[string]int{"n": 1}},
		event.Event{Data: "two\nlines"},
	))
	res := get(t, srv.URL+"/events")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("got status %d, want 200", res.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
		"Connection":        "",
		"Content-Length":    "",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("header %s: got %q, want %q", k, got, want)
		}
	}
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := "data: a notice\n\nevent: update\nid: 7\ndata: {\"n\":1}\n\ndata: two\ndata: lines\n\nevent: close\ndata:\n\n"
	if string(raw) != want {
		t.Fatalf("got stream\n%q\nwant\n%q", raw, want)
	}
	s := <-streams
	<-s.Done()
	if !errors.Is(s.Err(), echosse.ErrClosed) {
		t.Errorf("got Err %v, want ErrClosed", s.Err())
	}
	if context := s.Context(); context.Err() == nil {
		t.Error("stream context not cancelled after the stream ended")
	}
}

func TestSynchronousHandlerSendsMoreThanTheBuffer(t *testing.T) {
	const n = 100
	srv, _ := streamApp(t, echosse.Config{BufferSize: 2}, func(s *echosse.Stream) error {
		for i := range n {
			if err := s.Send(event.Event{Data: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
		close(s.C)
		<-s.Done()
		return nil
	})
	evs := decodeAll(t, get(t, srv.URL+"/events").Body)
	if len(evs) != n+1 {
		t.Fatalf("got %d events, want %d", len(evs), n+1)
	}
	for i := range n {
		if evs[i].Data != fmt.Sprint(i) {
			t.Fatalf("event %d: got %q, want %q", i, evs[i].Data, fmt.Sprint(i))
		}
	}
	if evs[n].Type != "close" {
		t.Fatalf("last event: got type %q, want close", evs[n].Type)
	}
}

// TestEachEventArrivesAtOnce checks that every event reaches the client
// before the next one is sent, with and without Echo's Gzip in front, and
// that both give the same stream.
func TestEachEventArrivesAtOnce(t *testing.T) {
	var transcripts [2]string
	for i, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			acks := make(chan struct{})
			var mws []echo.MiddlewareFunc
			if gz {
				mws = append(mws, middleware.Gzip())
			}
			srv, _ := streamApp(t, echosse.Config{}, func(s *echosse.Stream) error {
				go func() {
					defer close(s.C)
					for i := range 5 {
						if s.Send(event.Event{ID: fmt.Sprint(i), Data: fmt.Sprintf("event %d", i)}) != nil {
							return
						}
						select { // the next event waits for the client
						case <-acks:
						case <-s.Context().Done():
							return
						}
					}
				}()
				return nil
			}, mws...)
			res := get(t, srv.URL+"/events", "Accept-Encoding", "gzip")
			if got, want := res.Header.Get("Content-Encoding") == "gzip", gz; got != want {
				t.Fatalf("gzip'd: got %v, want %v", got, want)
			}
			var tee bytes.Buffer
			d := event.NewDecoder(io.TeeReader(body(t, res), &tee))
			for i := range 5 {
				expectEvent(t, d, "message", fmt.Sprintf("event %d", i))
				acks <- struct{}{}
			}
			expectEvent(t, d, "close", "")
			if _, err := d.Decode(); err != io.EOF {
				t.Fatalf("after the close event: got %v, want EOF", err)
			}
			transcripts[i] = tee.String()
		})
	}
	if transcripts[0] != transcripts[1] {
		t.Fatalf("gzip changed the stream:\n%q\n%q", transcripts[0], transcripts[1])
	}
}

func TestGzipRegisteredAfterFailsLoudly(t *testing.T) {
	e := newEcho()
	e.Use(echosse.Middleware(echosse.Config{}))
	e.Use(middleware.Gzip())
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		close(s.C)
		return nil
	})
	srv := serve(t, e)
	res := get(t, srv.URL+"/events", "Accept-Encoding", "gzip")
	b, _ := io.ReadAll(body(t, res))
	if res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("got status %d, want 500", res.StatusCode)
	}
	if !strings.Contains(string(b), "register it before") {
		t.Fatalf("got body %q, want it to say how to fix the order", b)
	}
}

func TestPingWhenIdleAndPushedBackByEvents(t *testing.T) {
	const interval = 100 * time.Millisecond
	send := make(chan struct{})
	srv, _ := streamApp(t, echosse.Config{PingInterval: interval}, func(s *echosse.Stream) error {
		go func() {
			for {
				select {
				case <-send:
					s.Send(event.Event{Data: "x"})
				case <-s.Context().Done():
					return
				}
			}
		}()
		return nil
	})
	res := get(t, srv.URL+"/events")
	// The stream opens with its headers alone: the first line is the
	// first heartbeat.
	last := time.Now()
	lines := lineReader{bufio.NewReader(res.Body)}
	for range 3 {
		if got := lines.next(t); got != ": ping" {
			t.Fatalf("got %q, want %q", got, ": ping")
		}
		lines.next(t)
		// A heartbeat comes after 7/8 of the interval idle at the
		// soonest: allow only for clock granularity.
		if gap := time.Since(last); gap < interval-interval/8-10*time.Millisecond {
			t.Fatalf("ping after %v idle, want at least %v", gap, interval-interval/8)
		}
		last = time.Now()
	}
	// An event restarts the idle wait: the next ping comes at least 7/8
	// of an interval after it, not the half left.
	time.Sleep(interval / 2)
	send <- struct{}{}
	if got := lines.next(t); got != "data: x" {
		t.Fatalf("got %q, want %q", got, "data: x")
	}
	lines.next(t)
	sent := time.Now()
	if got := lines.next(t); got != ": ping" {
		t.Fatalf("got %q, want %q", got, ": ping")
	}
	if gap := time.Since(sent); gap < interval-interval/8-10*time.Millisecond {
		t.Fatalf("ping %v after an event, want at least %v", gap, interval-interval/8)
	}
}

func TestPingOff(t *testing.T) {
	srv, _ := streamApp(t, echosse.Config{PingInterval: -1}, func(s *echosse.Stream) error {
		go func() {
			time.Sleep(300 * time.Millisecond)
			close(s.C)
		}()
		return nil
	})
	raw, _ := io.ReadAll(get(t, srv.URL+"/events").Body)
	if want := "event: close\ndata:\n\n"; string(raw) != want {
		t.Fatalf("got %q, want %q", raw, want)
	}
}

func TestCustomCloseEventAndRetry(t *testing.T) {
	srv, _ := streamApp(t, echosse.Config{CloseEvent: "bye", Retry: 1500 * time.Millisecond}, sendThenClose())
	raw, _ := io.ReadAll(get(t, srv.URL+"/events").Body)
	if want := "retry: 1500\n\nevent: bye\ndata:\n\n"; string(raw) != want {
		t.Fatalf("got %q, want %q", raw, want)
	}
}

func TestClientGoneUnblocksSenderAndFreesSlot(t *testing.T) {
	senderDone := make(chan error, 1)
	srv, streams := streamApp(t, echosse.Config{BufferSize: 1, MaxClients: 1}, func(s *echosse.Stream) error {
		go func() {
			for i := 0; ; i++ {
				if err := s.Send(event.Event{Data: strings.Repeat("x", 1024)}); err != nil {
					senderDone <- err
					return
				}
			}
		}()
		return nil
	})
	res := get(t, srv.URL+"/events")
	d := event.NewDecoder(res.Body)
	if _, err := d.Decode(); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	select {
	case err := <-senderDone:
		if !errors.Is(err, echosse.ErrClientGone) {
			t.Fatalf("sender got %v, want ErrClientGone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sender still blocked after the client went away")
	}
	s := <-streams
	<-s.Done()
	if !errors.Is(s.Err(), echosse.ErrClientGone) {
		t.Fatalf("got Err %v, want ErrClientGone", s.Err())
	}
	// The slot is free again: with MaxClients 1, a new stream opens.
	res2 := get(t, srv.URL+"/events")
	d2 := event.NewDecoder(res2.Body)
	if _, err := d2.Decode(); err != nil {
		t.Fatalf("second client: %v", err)
	}
}

// TestClientThatStopsReadingIsDropped holds a connection that never reads,
// so the server's writes fill the socket buffers and then time out.
func TestClientThatStopsReadingIsDropped(t *testing.T) {
	errs := &errRecorder{}
	srv, streams := streamApp(t, echosse.Config{WriteTimeout: 200 * time.Millisecond, ErrorHandler: errs.handle},
		func(s *echosse.Stream) error {
			go func() {
				big := strings.Repeat("x", 64<<10)
				for s.Send(event.Event{Data: big}) == nil {
				}
			}()
			return nil
		})
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	s := <-streams
	select {
	case <-s.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("a client that never reads is still connected")
	}
	if !errors.Is(s.Err(), echosse.ErrWriteTimeout) {
		t.Fatalf("got Err %v, want ErrWriteTimeout", s.Err())
	}
	waitFor(t, "the error hook", func() bool {
		for _, err := range errs.all() {
			if errors.Is(err, echosse.ErrWriteTimeout) {
				return true
			}
		}
		return false
	})
}

func TestInvalidEventIsReportedAndSkipped(t *testing.T) {
	errs := &errRecorder{}
	srv, _ := streamApp(t, echosse.Config{ErrorHandler: errs.handle}, sendThenClose(
		event.Event{Data: "before"},
		event.Event{ID: "1\nevent: injected", Data: "bad"},
		event.Event{Data: make(chan int)},
		event.Event{Data: "after"},
	))
	evs := decodeAll(t, get(t, srv.URL+"/events").Body)
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Type+":"+ev.Data.(string))
	}
	if want := "message:before message:after close:"; strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, " "), want)
	}
	all := errs.all()
	if len(all) != 2 {
		t.Fatalf("error hook called %d times, want 2: %v", len(all), all)
	}
	var fe *event.FieldError
	if !errors.As(all[0], &fe) || fe.Field != "id" || !errors.Is(all[0], event.ErrLineBreak) {
		t.Errorf("got %v, want an id FieldError with ErrLineBreak", all[0])
	}
	if !errors.As(all[1], &fe) || fe.Field != "data" {
		t.Errorf("got %v, want a data FieldError", all[1])
	}
}

func TestServerWriteTimeoutDoesNotCutStream(t *testing.T) {
	e := newEcho()
	e.Use(echosse.Middleware(echosse.Config{}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		go func() {
			defer close(s.C)
			for i := range 6 {
				time.Sleep(100 * time.Millisecond)
				if s.Send(event.Event{Data: fmt.Sprint(i)}) != nil {
					return
				}
			}
		}()
		return nil
	})
	srv := httptest.NewUnstartedServer(e)
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Start()
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	evs := decodeAll(t, get(t, srv.URL+"/events").Body)
	if len(evs) != 7 || evs[6].Type != "close" {
		t.Fatalf("got %d events (%v), want 6 and the close event", len(evs), evs)
	}
}

func TestHandlerErrorAfterOpenEndsStreamWithoutCloseEvent(t *testing.T) {
	boom := errors.New("boom")
	srv, streams := streamApp(t, echosse.Config{}, func(s *echosse.Stream) error {
		if err := s.Send(event.Event{Data: "partial"}); err != nil {
			return err
		}
		return boom
	})
	evs := decodeAll(t, get(t, srv.URL+"/events").Body)
	if len(evs) > 1 || (len(evs) == 1 && evs[0].Data != "partial") {
		t.Fatalf("got %v, want at most the one event sent and no close event", evs)
	}
	s := <-streams
	<-s.Done()
	if !errors.Is(s.Err(), boom) {
		t.Fatalf("got Err %v, want the handler's error", s.Err())
	}
}

func TestHandlerPanicAfterOpenFreesSlot(t *testing.T) {
	e := newEcho()
	e.Use(middleware.Recover())
	e.Use(echosse.Middleware(echosse.Config{MaxClients: 1}))
	streams := make(chan *echosse.Stream, 2)
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		streams <- s
		if c.QueryParam("panic") != "" {
			panic("handler bug")
		}
		close(s.C)
		return nil
	})
	srv := serve(t, e)
	res := get(t, srv.URL+"/events?panic=1")
	io.Copy(io.Discard, res.Body)
	s := <-streams
	<-s.Done()
	if !errors.Is(s.Err(), echosse.ErrHandlerPanicked) {
		t.Fatalf("got Err %v, want ErrHandlerPanicked", s.Err())
	}
	evs := decodeAll(t, get(t, srv.URL+"/events").Body)
	if len(evs) != 1 || evs[0].Type != "close" {
		t.Fatalf("after the panic: got %v, want a stream with its close event", evs)
	}
}

func TestAbortEndsWithoutCloseEvent(t *testing.T) {
	slow := errors.New("too slow")
	srv, streams := streamApp(t, echosse.Config{}, func(s *echosse.Stream) error {
		go func() {
			s.Send(event.Event{Data: "one"})
			time.Sleep(50 * time.Millisecond)
			s.Abort(slow)
		}()
		return nil
	})
	evs := decodeAll(t, get(t, srv.URL+"/events").Body)
	if len(evs) != 1 || evs[0].Data != "one" {
		t.Fatalf("got %v, want only the event sent before Abort", evs)
	}
	s := <-streams
	<-s.Done()
	if !errors.Is(s.Err(), slow) {
		t.Fatalf("got Err %v, want the Abort cause", s.Err())
	}
}

func TestLastEventID(t *testing.T) {
	ids := make(chan string, 1)
	srv, _ := streamApp(t, echosse.Config{}, func(s *echosse.Stream) error {
		ids <- s.LastEventID()
		close(s.C)
		return nil
	})
	for _, tt := range []struct {
		name, query, header, want string
	}{
		{"none", "", "", ""},
		{"header", "", "41", "41"},
		{"query", "?lastEventID=42", "", "42"},
		{"header wins", "?lastEventID=42", "43", "43"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.header != "" {
				h = []string{"Last-Event-ID", tt.header}
			}
			io.Copy(io.Discard, get(t, srv.URL+"/events"+tt.query, h...).Body)
			if got := <-ids; got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestBurstsOnManyStreamsAtOnce sends a burst on more streams at once than
// there are large batch buffers, so that most pumps yield with what they
// gathered already handed to the response: every client receives every
// event of its own stream, in order, then the close event; plain, with the
// stream's own compression, and behind Echo's Gzip.
func TestBurstsOnManyStreamsAtOnce(t *testing.T) {
	const streams, events = 24, 1500
	for _, tc := range []struct {
		name string
		cfg  echosse.Config
		mws  []echo.MiddlewareFunc
	}{
		{"plain", echosse.Config{}, nil},
		{"Compress", echosse.Config{Compress: true, MaxCompressors: 2}, nil},
		{"EchoGzip", echosse.Config{}, []echo.MiddlewareFunc{middleware.Gzip()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := make(chan struct{})
			srv, opened := streamApp(t, tc.cfg, func(s *echosse.Stream) error {
				go func() {
					<-start
					for i := range events {
						ev := event.Event{ID: fmt.Sprint(i), Data: fmt.Sprintf(`{"n":%d,"pad":"%0100d"}`, i, i)}
						if s.Send(ev) != nil {
							return
						}
					}
					close(s.C)
				}()
				return nil
			}, tc.mws...)
			var wg sync.WaitGroup
			for range streams {
				res := get(t, srv.URL+"/events", "Accept-Encoding", "gzip")
				r := body(t, res)
				wg.Go(func() {
					evs := decodeAll(t, r)
					if len(evs) != events+1 || evs[events].Type != "close" {
						t.Errorf("got %d events, want %d and the close event", len(evs), events)
						return
					}
					for i := range events {
						if evs[i].ID != fmt.Sprint(i) {
							t.Errorf("event %d has ID %q: lost or out of order", i, evs[i].ID)
							return
						}
					}
				})
			}
			for range streams {
				<-opened
			}
			close(start)
			wg.Wait()
		})
	}
}

// panicky panics when encoding/json marshals it.
type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("MarshalJSON bug") }

// TestPanicInThePumpEndsOnlyThatStream sends an event whose MarshalJSON
// panics, and has an ErrorHandler that panics, both while the handler
// still runs (the pump is a goroutine of its own) and after it returned
// (the request's goroutine pumps): the stream ends with ErrPumpPanicked,
// what it wrote before stays whole, its slot is freed, the panic is
// reported, and the process lives on.
func TestPanicInThePumpEndsOnlyThatStream(t *testing.T) {
	for _, tc := range []struct {
		name       string
		hold       bool // the handler waits for the stream to end
		ev         event.Event
		badHandler bool // the ErrorHandler panics
	}{
		{"MarshalJSON, handler returned", false, event.Event{Data: panicky{}}, false},
		{"MarshalJSON, handler running", true, event.Event{Data: panicky{}}, false},
		{"ErrorHandler, handler returned", false, event.Event{ID: "a\nb"}, true},
		{"ErrorHandler, handler running", true, event.Event{ID: "a\nb"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reported errRecorder
			cfg := echosse.Config{MaxClients: 1, ErrorHandler: reported.handle}
			if tc.badHandler {
				cfg.ErrorHandler = func(c echo.Context, err error) {
					if !errors.Is(err, echosse.ErrPumpPanicked) {
						panic("ErrorHandler bug")
					}
					reported.handle(c, err)
				}
			}
			proceed := make(chan struct{}, 1) // the client has the first event
			srv, streams := streamApp(t, cfg, func(s *echosse.Stream) error {
				go func() {
					s.Send(event.Event{Data: "before"})
					<-proceed
					s.Send(tc.ev)
					s.Send(event.Event{Data: "after"})
				}()
				if tc.hold {
					<-s.Context().Done()
				}
				return nil
			})
			for round := range 3 { // MaxClients is 1: each round needs the slot back
				d := event.NewDecoder(get(t, srv.URL+"/events").Body)
				expectEvent(t, d, "message", "before")
				proceed <- struct{}{}
				if ev, err := d.Decode(); err != io.EOF {
					t.Fatalf("round %d: got %v %v, want the stream to end after the event before the panic", round, ev, err)
				}
				s := <-streams
				<-s.Done()
				if !errors.Is(s.Err(), echosse.ErrPumpPanicked) || !strings.Contains(s.Err().Error(), "bug") {
					t.Fatalf("round %d: got Err %v, want ErrPumpPanicked with the panic's value", round, s.Err())
				}
			}
			errs := reported.all()
			if len(errs) != 3 || !errors.Is(errs[0], echosse.ErrPumpPanicked) || !strings.Contains(errs[0].Error(), "goroutine") {
				t.Fatalf("reported %v, want three ErrPumpPanicked with their stacks", errs)
			}
		})
	}
}

// TestLargePreparedEventsAsTheyAre sends prepared events large enough to be
// written from their own bytes, between small ones and in bursts, plain,
// compressed by the stream and behind Echo's Gzip: each decodes to what was
// sent, in order, and the prepared events' bytes are left as they were.
func TestLargePreparedEventsAsTheyAre(t *testing.T) {
	var sent []event.Event
	for i := range 12 {
		data := fmt.Sprintf("small %d", i)
		if i%3 != 0 {
			data = strings.Repeat(fmt.Sprintf("line %d of a large event\n", i), 1+i*500)[:10000*i]
		}
		sent = append(sent, event.Event{ID: fmt.Sprint(i), Data: data})
	}
	for _, tc := range []struct {
		name string
		cfg  echosse.Config
		mws  []echo.MiddlewareFunc
	}{
		{"plain", echosse.Config{}, nil},
		{"Compress", echosse.Config{Compress: true}, nil},
		{"Echo's Gzip", echosse.Config{}, []echo.MiddlewareFunc{middleware.Gzip()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prepared := make([]event.Event, len(sent))
			wire := make([][]byte, len(sent))
			for i, ev := range sent {
				var err error
				if prepared[i], err = ev.Prepare(); err != nil {
					t.Fatal(err)
				}
				wire[i], _ = prepared[i].AppendTo(nil)
			}
			srv, _ := streamApp(t, tc.cfg, func(s *echosse.Stream) error {
				for _, ev := range prepared { // a burst: all queued at once
					s.C <- ev
				}
				close(s.C)
				return nil
			}, tc.mws...)
			evs := decodeAll(t, body(t, get(t, srv.URL+"/events", "Accept-Encoding", "gzip")))
			if len(evs) != len(sent)+1 || evs[len(sent)].Type != "close" {
				t.Fatalf("got %d events, want %d and the close event", len(evs), len(sent))
			}
			for i, ev := range sent {
				want := ev.Data.(string)
				if evs[i].ID != ev.ID || evs[i].Data != want {
					t.Fatalf("event %d: got %d bytes with ID %q, want %d with %q", i, len(evs[i].Data.(string)), evs[i].ID, len(want), ev.ID)
				}
				if again, _ := prepared[i].AppendTo(nil); !bytes.Equal(again, wire[i]) {
					t.Fatalf("event %d: its prepared bytes changed", i)
				}
			}
		})
	}
}
