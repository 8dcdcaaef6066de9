package soak_test

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

var (
	clientsFlag  = flag.Int("soak.clients", defaultClients, "clients in the soak test")
	durationFlag = flag.Duration("soak.duration", defaultDuration, "how long publishers publish in the soak test")
)

// padding makes events large enough (about 500 bytes) that a client that
// stops reading fills its connection's buffers within seconds.
var padding = strings.Repeat("x", 480)

const (
	topics       = 4
	perTopicRate = 20 // events per second on each topic
	heapBound    = 512 << 20
)

// kind is how a client behaves.
type kind int

const (
	wellBehaved kind = iota // reads everything, leaves and comes back at random
	slow                    // like wellBehaved, but stops reading once for long enough to be dropped
	stalled                 // reads the first event, then never again, and never comes back
)

// figures are what the soak counts.
type figures struct {
	connections   atomic.Int64 // streams opened by clients
	refused       atomic.Int64 // connections that got no stream
	delivered     atomic.Int64 // events clients received
	writeTimeouts atomic.Int64 // streams the pump dropped after its write timeout
	gaps          atomic.Int64 // subscriptions the history did not cover
}

func TestSoak(t *testing.T) {
	nClients, duration := *clientsFlag, *durationFlag
	baseline := runtime.NumGoroutine()
	var fig figures

	b, err := broker.New(broker.Config{HistorySize: 20000})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.Logger.SetOutput(io.Discard)
	e.Use(echosse.Middleware(echosse.Config{
		MaxClients:   nClients + 100,
		PingInterval: time.Second,
		WriteTimeout: time.Second,
		BufferSize:   16,
		ErrorHandler: func(_ echo.Context, err error) {
			if errors.Is(err, echosse.ErrWriteTimeout) {
				fig.writeTimeouts.Add(1)
			}
		},
	}))
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		if err := b.Subscribe(s, c.QueryParam("topic")); errors.Is(err, broker.ErrGap) {
			fig.gaps.Add(1)
			return s.Send(event.Event{Type: "gap", Data: ""})
		} else if err != nil {
			return err
		}
		return nil
	})
	srv := httptest.NewUnstartedServer(e)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	addr := srv.Listener.Addr().String()

	// Publishers: one per topic, at a steady rate; last[t] is the last
	// sequence number published on topic t.
	var last [topics]atomic.Int64
	stopPub := make(chan struct{})
	var pubs sync.WaitGroup
	for tp := range topics {
		pubs.Go(func() {
			tick := time.NewTicker(time.Second / perTopicRate)
			defer tick.Stop()
			for seq := int64(1); ; seq++ {
				select {
				case <-stopPub:
					return
				case <-tick.C:
				}
				if _, err := b.Publish(t.Context(), topicName(tp), event.Event{Data: fmt.Sprintf("%d:%d:%s", tp, seq, padding)}); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				last[tp].Store(seq)
			}
		})
	}

	// Clients.
	draining := make(chan struct{}) // publishers stopped: catch up, then stop
	stopAll := make(chan struct{})  // everyone stops
	var clients sync.WaitGroup
	var problems sync.Map // client index -> problem
	var checked []*client
	for i := range nClients {
		k := wellBehaved
		switch r := i % 20; {
		case r < 3:
			k = slow
		case r < 6:
			k = stalled
		}
		c := &client{i: i, kind: k, topic: i % topics, addr: addr, fig: &fig, rng: rand.New(rand.NewPCG(uint64(i), 7))}
		if k != stalled {
			checked = append(checked, c)
		}
		clients.Go(func() {
			err := c.run(draining, stopAll)
			if err != nil {
				problems.Store(i, err)
			}
		})
		if i%50 == 49 {
			time.Sleep(10 * time.Millisecond) // ramp up
		}
	}

	// Watch the heap while it runs.
	var peakHeap uint64
	end := time.After(duration)
	for running := true; running; {
		select {
		case <-end:
			running = false
		case <-time.After(200 * time.Millisecond):
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
		}
	}
	close(stopPub)
	pubs.Wait()
	close(draining)
	// Every client that reads comes to the last event of its topic.
	deadline := time.Now().Add(30 * time.Second)
	for behind := len(checked); behind > 0; {
		behind = 0
		for _, c := range checked {
			if c.seen.Load() < last[c.topic].Load() {
				behind++
			}
		}
		if behind > 0 && time.Now().After(deadline) {
			t.Errorf("%d of %d clients did not catch up with every event after the publishers stopped", behind, len(checked))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stopAll)
	clients.Wait()
	st := b.Stats()
	b.Close()
	srv.CloseClientConnections()
	srv.Close()

	problems.Range(func(k, v any) bool {
		t.Errorf("client %v: %v", k, v)
		return true
	})
	var published int64
	for tp := range topics {
		published += last[tp].Load()
	}
	// Goroutines back to where they were (goleak checks it again at the end).
	var now int
	for range 100 {
		if now = runtime.NumGoroutine(); now <= baseline {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("soak: %d clients (%d checked for every event), %v of publishing", nClients, len(checked), duration)
	t.Logf("soak: connections served %d, refused %d; events published %d, delivered %d, replayed %d",
		fig.connections.Load(), fig.refused.Load(), published, fig.delivered.Load(), st.Replayed)
	t.Logf("soak: drops by cause: slow client (broker) %d, write timeout (pump) %d, history gaps %d",
		st.SlowClients, fig.writeTimeouts.Load(), fig.gaps.Load())
	t.Logf("soak: peak heap in use %d MiB (bound %d MiB); goroutines %d at the start, %d at the end",
		peakHeap>>20, heapBound>>20, baseline, now)
	if peakHeap > heapBound {
		t.Errorf("peak heap %d MiB, want at most %d MiB", peakHeap>>20, heapBound>>20)
	}
	if now > baseline {
		t.Errorf("%d goroutines left, %d at the start", now, baseline)
	}
	if fig.gaps.Load() != 0 {
		t.Errorf("%d subscriptions fell outside the history, which holds everything here", fig.gaps.Load())
	}
	if st.SlowClients == 0 && fig.writeTimeouts.Load() == 0 {
		t.Error("no client was ever dropped: the slow and stalled clients did not exercise the drop paths")
	}
}

func topicName(tp int) string { return "topic-" + strconv.Itoa(tp) }

// smallBuffers gives the server's connections small send buffers, so that a
// client that stops reading blocks the server within a few KB.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// client is one browser-like client: it keeps the last event ID across its
// connections and checks that it sees every event of its topic exactly
// once, in order, from its first event on.
type client struct {
	i     int
	kind  kind
	topic int
	addr  string
	fig   *figures
	rng   *rand.Rand

	lastID  string
	nextSeq int64 // the sequence number the next event must carry; 0 before the first
	paused  bool  // a slow client pauses once
	seen    atomic.Int64
}

func (c *client) run(draining, stopAll <-chan struct{}) error {
	for {
		select {
		case <-stopAll:
			return nil
		default:
		}
		conn, err := c.connect()
		if err != nil {
			c.fig.refused.Add(1)
			select {
			case <-stopAll:
				return nil
			case <-time.After(100 * time.Millisecond):
				continue
			}
		}
		err = c.read(conn, draining, stopAll)
		conn.conn.Close()
		if err != nil {
			return err
		}
		if c.kind == stalled {
			<-stopAll
			return nil
		}
		select { // come back after a short while, as a browser does
		case <-stopAll:
			return nil
		case <-time.After(time.Duration(c.rng.IntN(300)) * time.Millisecond):
		}
	}
}

type conn struct {
	conn net.Conn
	dec  *event.Decoder
}

func (c *client) connect() (*conn, error) {
	nc, err := net.Dial("tcp", c.addr)
	if err != nil {
		return nil, err
	}
	nc.(*net.TCPConn).SetReadBuffer(4 << 10)
	req, _ := http.NewRequest(http.MethodGet, "http://"+c.addr+"/events?topic="+topicName(c.topic), nil)
	if c.lastID != "" {
		req.Header.Set("Last-Event-ID", c.lastID)
	}
	if err := req.Write(nc); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(nc), req)
	if err != nil || res.StatusCode != http.StatusOK {
		nc.Close()
		return nil, fmt.Errorf("no stream: %v", err)
	}
	nc.SetReadDeadline(time.Time{})
	c.fig.connections.Add(1)
	return &conn{conn: nc, dec: event.NewDecoder(res.Body)}, nil
}

// read reads events until it decides to leave, the server ends the stream,
// or the soak ends; it returns an error only for a wrong event.
func (c *client) read(cn *conn, draining, stopAll <-chan struct{}) error {
	leaveAt := time.Now().Add(time.Second + time.Duration(c.rng.IntN(7000))*time.Millisecond)
	pauseAt := c.rng.IntN(200) + 20
	// Closing the connection unblocks a Decode when the soak ends.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-stopAll:
			cn.conn.Close()
		case <-done:
		}
	}()
	for n := 0; ; n++ {
		ev, err := cn.dec.Decode()
		if err != nil {
			return nil // the stream ended (dropped, or the soak is over)
		}
		switch ev.Type {
		case "gap":
			return fmt.Errorf("the history did not cover Last-Event-ID %q", c.lastID)
		case "message":
		default:
			return fmt.Errorf("unexpected event %q", ev.Type)
		}
		c.fig.delivered.Add(1)
		tp, rest, ok := strings.Cut(ev.Data.(string), ":")
		seq, _, _ := strings.Cut(rest, ":")
		s, _ := strconv.ParseInt(seq, 10, 64)
		if !ok || tp != strconv.Itoa(c.topic) {
			return fmt.Errorf("got %q on topic %d", ev.Data, c.topic)
		}
		if c.kind != stalled && c.nextSeq != 0 && s != c.nextSeq {
			return fmt.Errorf("got event %d, want %d (Last-Event-ID %q)", s, c.nextSeq, c.lastID)
		}
		c.nextSeq = s + 1
		c.lastID = ev.ID
		c.seen.Store(s)
		if c.kind == stalled {
			<-stopAll // never read again
			return nil
		}
		select {
		case <-draining:
			continue // stay until the end
		default:
		}
		if c.kind == slow && !c.paused && n == pauseAt {
			c.paused = true
			select { // long enough for the server to drop it
			case <-time.After(4 * time.Second):
			case <-stopAll:
				return nil
			}
		}
		if time.Now().After(leaveAt) {
			return nil
		}
	}
}
