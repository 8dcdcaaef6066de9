package proxytest

import (
	"bufio"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

var (
	long         = flag.Bool("nginx.long", false, "run TestNginxLong: streams behind nginx with the old 60 s PingInterval and with the default, for -nginx.duration")
	longStreams  = flag.Int("nginx.streams", 20, "streams of each kind in TestNginxLong")
	longDuration = flag.Duration("nginx.duration", 5*time.Minute, "how long TestNginxLong keeps its streams open")
)

// nginxReadTimeout is nginx's default proxy_read_timeout, which the proxy
// in these tests keeps: nginx ends a proxied response when its upstream
// has sent nothing for this long.
const nginxReadTimeout = 60 * time.Second

// TestDefaultPingSurvivesNginx keeps streams idle behind nginx, with
// nginx's defaults, for more than two of its read timeouts. With the
// default PingInterval none is cut, heartbeats arrive as they are written
// (nginx does not buffer them), and no silence comes near nginx's 60 s. A
// stream without heartbeats, through the same nginx, is cut after 60 s:
// the proxy in the test does cut idle streams.
func TestDefaultPingSurvivesNginx(t *testing.T) {
	const idle = 2*nginxReadTimeout + 10*time.Second
	proxy := startProxy(t)

	var (
		wg       sync.WaitGroup
		defaults = make([]watched, 3)
		off      watched
	)
	ctx, cancel := context.WithTimeout(t.Context(), idle)
	defer cancel()
	for i := range defaults {
		wg.Go(func() { defaults[i] = watch(ctx, t, proxy.url+"/default") })
	}
	wg.Go(func() { off = watch(ctx, t, proxy.url+"/off") })
	wg.Wait()

	interval := echosse.DefaultConfig.PingInterval
	// Heroku's router, the tightest of the proxies that cut at about a
	// minute, allows 55 s of silence; nginx's timer may fire a little
	// early (it is not moved for changes under 300 ms).
	const margin = 5 * time.Second
	for i, w := range defaults {
		if w.cut {
			t.Errorf("default stream %d: nginx cut it after %v (%v); PingInterval %v", i, w.lived.Round(time.Millisecond), w.err, interval)
			continue
		}
		t.Logf("default stream %d: not cut, %d heartbeats in %v, longest silence %v", i, w.pings, idle, w.longestSilence.Round(time.Millisecond))
		if want := int(idle / interval); w.pings < want {
			t.Errorf("default stream %d: %d heartbeats in %v, want %d (one every %v)", i, w.pings, idle, want, interval)
		}
		if w.longestSilence > nginxReadTimeout-margin {
			t.Errorf("default stream %d: silent for %v, too close to nginx's %v", i, w.longestSilence.Round(time.Millisecond), nginxReadTimeout)
		}
		if w.longestSilence > interval+5*time.Second {
			t.Errorf("default stream %d: silent for %v with heartbeats every %v: nginx held them back", i, w.longestSilence.Round(time.Millisecond), interval)
		}
	}
	t.Logf("stream without heartbeats: cut %v after %v (%v)", off.cut, off.lived.Round(time.Millisecond), off.err)
	if !off.cut {
		t.Errorf("the stream without heartbeats was not cut in %v: the proxy under test has no idle timeout", idle)
	} else if off.lived < nginxReadTimeout-margin || off.lived > nginxReadTimeout+margin {
		t.Errorf("the stream without heartbeats was cut after %v, want about %v", off.lived.Round(time.Millisecond), nginxReadTimeout)
	}
	if n := strings.Count(proxy.nginx.ErrorLog(), "upstream timed out"); n != 1 {
		t.Errorf("nginx logged %d upstream timeouts, want 1 (the stream without heartbeats):\n%s", n, proxy.nginx.ErrorLog())
	}
}

// TestNginxLong measures, for -nginx.duration, how often nginx cuts
// -nginx.streams streams with the seed's PingInterval (60 s, as
// koa-sse-stream's) and with the default; a cut stream reconnects at once.
// It fails if a stream with the default is ever cut, and reports the cuts
// of the 60 s streams:
//
//	go test -run TestNginxLong -v ./internal/proxytest -nginx.long
func TestNginxLong(t *testing.T) {
	if !*long {
		t.Skip("a measurement of several minutes; run it with -nginx.long")
	}
	proxy := startProxy(t)
	ctx, cancel := context.WithTimeout(t.Context(), *longDuration)
	defer cancel()

	type kind struct {
		path     string
		mu       sync.Mutex
		conns    int             // streams opened
		cut      []time.Duration // the lives of the cut streams
		firstCut int             // clients whose first stream was cut
		hit      int             // clients cut at least once
		pings    int
	}
	kinds := []*kind{{path: "/60s"}, {path: "/default"}}
	var wg sync.WaitGroup
	for _, k := range kinds {
		for range *longStreams {
			wg.Go(func() {
				hit := false
				for n := 0; ctx.Err() == nil; n++ {
					w := watch(ctx, t, proxy.url+k.path)
					k.mu.Lock()
					k.conns++
					k.pings += w.pings
					if w.cut {
						k.cut = append(k.cut, w.lived)
						if n == 0 {
							k.firstCut++
						}
						if !hit {
							hit = true
							k.hit++
						}
					}
					k.mu.Unlock()
					if !w.cut && ctx.Err() == nil {
						t.Errorf("%s: stream ended without a cut: %v", k.path, w.err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for _, k := range kinds {
		slices.Sort(k.cut)
		interval := 60 * time.Second
		if k.path == "/default" {
			interval = echosse.DefaultConfig.PingInterval
		}
		t.Logf("PingInterval %v, %d clients for %v (a cut stream reconnects at once): %d streams opened, %d cut; clients cut at least once: %d; first streams cut: %d; heartbeats received: %d",
			interval, *longStreams, *longDuration, k.conns, len(k.cut), k.hit, k.firstCut, k.pings)
		if len(k.cut) > 0 {
			byMinute := map[time.Duration]int{}
			for _, d := range k.cut {
				byMinute[d.Round(time.Minute)]++
			}
			t.Logf("  lives of the cut streams: min %v, median %v, max %v; by minute: %v",
				k.cut[0].Round(time.Millisecond), k.cut[len(k.cut)/2].Round(time.Millisecond), k.cut[len(k.cut)-1].Round(time.Millisecond), byMinute)
		}
	}
	t.Logf("nginx logged %d upstream timeouts", strings.Count(proxy.nginx.ErrorLog(), "upstream timed out"))
	if n := len(kinds[1].cut); n > 0 {
		t.Errorf("nginx cut the streams with the default PingInterval %d times", n)
	}
}

// proxy is nginx in front of an Echo app with three stream routes, which
// differ only in their PingInterval: /default (the library's default),
// /60s (koa-sse-stream's) and /off (no heartbeats).
type proxy struct {
	url   string
	nginx *Nginx
}

// startProxy starts the app and nginx in front of it, both stopped with
// the test.
func startProxy(t *testing.T) proxy {
	t.Helper()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	for path, cfg := range map[string]echosse.Config{
		"/default": {},
		"/60s":     {PingInterval: 60 * time.Second},
		"/off":     {PingInterval: -1},
	} {
		// Each stream sends one event, then stays idle until the client
		// leaves: all it gets after that are heartbeats.
		e.GET(path, func(c echo.Context) error {
			s, err := echosse.Open(c)
			if err != nil {
				return err
			}
			s.C <- event.Event{Data: "open"} // the buffer has room
			return nil
		}, echosse.Middleware(cfg))
	}
	srv := httptest.NewServer(e)
	n, err := StartNginx(t.TempDir(), srv.Listener.Addr().String())
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Error(err)
		}
		srv.CloseClientConnections()
		srv.Close()
	})
	return proxy{url: "http://" + n.Addr, nginx: n}
}

// watched is what a client saw of one stream.
type watched struct {
	cut            bool          // the stream ended before the client left
	err            error         // how the body ended
	lived          time.Duration // from the response's headers to its end
	pings          int           // heartbeats received
	longestSilence time.Duration // the longest time without a line
}

// watch opens the stream at url and reads it until ctx ends (the client
// leaves) or the stream does.
func watch(ctx context.Context, t *testing.T, url string) watched {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Error(err)
		return watched{}
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if ctx.Err() == nil {
			t.Errorf("GET %s: %v", url, err)
		}
		return watched{}
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("GET %s: status %d, Content-Type %q", url, res.StatusCode, res.Header.Get("Content-Type"))
		return watched{}
	}
	var w watched
	start := time.Now()
	last := start
	lines := bufio.NewScanner(res.Body)
	for lines.Scan() {
		now := time.Now()
		w.longestSilence = max(w.longestSilence, now.Sub(last))
		last = now
		if lines.Text() == ": ping" {
			w.pings++
		}
	}
	end := time.Now()
	w.err = lines.Err()
	if w.err == nil {
		w.err = io.EOF
	}
	w.lived = end.Sub(start)
	w.longestSilence = max(w.longestSilence, end.Sub(last))
	w.cut = ctx.Err() == nil
	return w
}
