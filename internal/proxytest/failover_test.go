package proxytest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// failTimeout is the upstream servers' fail_timeout in TestNginxFailover:
// nginx's default is 10 s; 2 s keeps the test short and changes nothing but
// the length of the outage. nginx counts it in whole seconds.
const failTimeout = 2 * time.Second

// TestNginxFailover runs two instances behind nginx, restarts one (A),
// lets a request probe it once its fail_timeout is over, then kills the
// other (B) and sends 20 requests. With nginx's default passive health
// check (max_fails=1), A stays marked failed while the probe that found it
// alive is still going on, which for a stream is its whole life: with B
// gone and A excluded, nginx has no live upstream and answers 502 to
// everything until A's fail_timeout runs out again. A short probe ends at
// once and clears the mark; max_fails=0 never sets it. The browser's
// EventSource gives up for good on such a 502.
func TestNginxFailover(t *testing.T) {
	for _, tt := range []struct {
		name    string
		params  string // of each upstream server
		probe   string // what reaches A first after its fail_timeout: "stream" or "request"
		want502 bool
	}{
		{"max_fails=1 (default), probed by a stream", "fail_timeout=2s", "stream", true},
		{"max_fails=1 (default), probed by a request", "fail_timeout=2s", "request", false},
		{"max_fails=0, probed by a stream", "max_fails=0 fail_timeout=2s", "stream", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := startInstance(t, "A", "127.0.0.1:0"), startInstance(t, "B", "127.0.0.1:0")
			n, err := StartNginxUpstream(t.TempDir(), a.addr+" "+tt.params, b.addr+" "+tt.params)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := n.Stop(); err != nil {
					t.Error(err)
				}
			})
			url := "http://" + n.Addr
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel() // the probing streams

			// A goes down: nginx finds it refusing and serves B.
			a.kill()
			for range 4 {
				if code, who := name(t, client, url); code != http.StatusOK || who != "B" {
					t.Fatalf("with A down: got %d from %q, want 200 from B", code, who)
				}
			}
			if !strings.Contains(n.ErrorLog(), "Connection refused") {
				t.Fatalf("nginx never tried A while it was down:\n%s", n.ErrorLog())
			}

			// A comes back, and after its fail_timeout nginx tries it.
			a = startInstance(t, "A", a.addr)
			time.Sleep(failTimeout + 1500*time.Millisecond)
			found := false
			for range 8 {
				var who string
				if tt.probe == "stream" {
					who = openStream(ctx, t, client, url)
				} else {
					_, who = name(t, client, url)
				}
				if found = who == "A"; found {
					break
				}
			}
			if !found {
				t.Fatalf("no %s reached A in 8 tries", tt.probe)
			}

			// B goes down.
			b.kill()
			codes := map[int]int{}
			for range 20 {
				code, _ := name(t, client, url)
				codes[code]++
			}
			t.Logf("20 requests with B down, just after A was probed by a %s: %v", tt.probe, codes)
			if tt.want502 {
				if codes[http.StatusBadGateway] != 20 {
					t.Errorf("got %v, want 20 answers 502: A marked failed while its probe stream lives", codes)
				}
				if !strings.Contains(n.ErrorLog(), "no live upstreams") {
					t.Errorf("nginx did not log \"no live upstreams\":\n%s", n.ErrorLog())
				}
				// Bounded by fail_timeout: then a request probes A again.
				time.Sleep(failTimeout + 1500*time.Millisecond)
				if code, who := name(t, client, url); code != http.StatusOK || who != "A" {
					t.Errorf("after fail_timeout: got %d from %q, want 200 from A", code, who)
				}
			} else if codes[http.StatusOK] != 20 {
				t.Errorf("got %v, want 20 answers 200 from A", codes)
			}
		})
	}
}

// An instance is one app server behind the proxy: GET /name answers its
// name, GET /events opens a stream whose first event is its name.
type instance struct {
	addr string
	srv  *http.Server
}

// startInstance starts the app named name on addr ("127.0.0.1:0" for a
// free port), closed with the test unless killed first.
func startInstance(t *testing.T, name, addr string) *instance {
	t.Helper()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.GET("/name", func(c echo.Context) error { return c.String(http.StatusOK, name) })
	e.GET("/events", func(c echo.Context) error {
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		s.C <- event.Event{Data: name} // the buffer has room
		return nil
	}, echosse.Middleware(echosse.Config{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{addr: ln.Addr().String(), srv: &http.Server{Handler: e}}
	go in.srv.Serve(ln)
	t.Cleanup(in.kill)
	return in
}

// kill stops the instance at once, as a crash would: its port refuses
// connections and its open connections close.
func (in *instance) kill() { in.srv.Close() }

// name asks the proxy at url which instance answers GET /name, and
// returns the status and the body.
func name(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	res, err := client.Get(url + "/name")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// openStream opens a stream through the proxy at url and returns the name
// in its first event; the stream stays open until ctx ends.
func openStream(ctx context.Context, t *testing.T, client *http.Client, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		t.Fatalf("GET /events: %s", res.Status)
	}
	ev, err := event.NewDecoder(bufio.NewReader(res.Body)).Decode()
	if err != nil {
		res.Body.Close()
		t.Fatal(fmt.Errorf("first event: %w", err))
	}
	go func() {
		<-ctx.Done()
		res.Body.Close()
	}()
	return fmt.Sprint(ev.Data)
}
