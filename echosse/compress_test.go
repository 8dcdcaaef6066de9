package echosse_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

// TestCompressEachEventArrivesAtOnce streams with Config.Compress through
// pauses longer than CompressIdle, so the stream gives its compressor back
// and borrows one again: every event still arrives before the next is sent,
// and the decompressed stream is the uncompressed one, byte for byte.
func TestCompressEachEventArrivesAtOnce(t *testing.T) {
	var transcripts []string
	for _, acceptGzip := range []bool{true, false} {
		t.Run(fmt.Sprint("gzip=", acceptGzip), func(t *testing.T) {
			acks := make(chan struct{})
			srv, streams := streamApp(t, echosse.Config{Compress: true, CompressIdle: 20 * time.Millisecond, PingInterval: 30 * time.Millisecond},
				func(s *echosse.Stream) error {
					go func() {
						defer close(s.C)
						for i := range 12 {
							ev := event.Event{ID: fmt.Sprint(i), Type: "tick", Data: fmt.Sprintf(`{"symbol":"ECHO","price":%d.25,"seq":%d}`, 17+i%3, i)}
							if s.Send(ev) != nil {
								return
							}
							select {
							case <-acks:
							case <-s.Context().Done():
								return
							}
							if i%3 == 2 { // idle: the compressor goes back, pings go out
								time.Sleep(80 * time.Millisecond)
							}
						}
					}()
					return nil
				})
			var h []string
			if acceptGzip {
				h = []string{"Accept-Encoding", "gzip"}
			}
			res := get(t, srv.URL+"/events", h...)
			if got := res.Header.Get("Content-Encoding"); got != map[bool]string{true: "gzip"}[acceptGzip] {
				t.Fatalf("got Content-Encoding %q", got)
			}
			if acceptGzip && !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
				t.Fatalf("got Vary %q, want Accept-Encoding", res.Header.Get("Vary"))
			}
			var tee bytes.Buffer
			d := event.NewDecoder(io.TeeReader(body(t, res), &tee))
			for i := range 12 {
				expectEvent(t, d, "tick", fmt.Sprintf(`{"symbol":"ECHO","price":%d.25,"seq":%d}`, 17+i%3, i))
				acks <- struct{}{}
			}
			expectEvent(t, d, "close", "")
			if _, err := d.Decode(); err != io.EOF { // the gzip trailer checks out
				t.Fatalf("after the close event: got %v, want EOF", err)
			}
			s := <-streams
			<-s.Done()
			// Pings are comments: compare the stream without them.
			transcripts = append(transcripts, strings.ReplaceAll(tee.String(), ": ping\n\n", ""))
		})
	}
	if len(transcripts) == 2 && transcripts[0] != transcripts[1] {
		t.Fatalf("compression changed the stream:\n%q\n%q", transcripts[0], transcripts[1])
	}
}

func TestCompressWithEchoGzipInFront(t *testing.T) {
	for _, tt := range []struct {
		name       string
		skipStream bool
		wantStatus int
	}{
		{"fails loudly", false, http.StatusInternalServerError},
		{"works when Gzip skips the stream route", true, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEcho()
			e.Use(middleware.GzipWithConfig(middleware.GzipConfig{Skipper: func(c echo.Context) bool {
				return tt.skipStream && c.Path() == "/events"
			}}))
			e.Use(echosse.Middleware(echosse.Config{Compress: true}))
			e.GET("/events", openSendClose(event.Event{Data: "once"}))
			e.GET("/api", func(c echo.Context) error {
				return c.JSON(http.StatusOK, map[string]string{"ok": strings.Repeat("y", 100)})
			})
			srv := serve(t, e)
			res := get(t, srv.URL+"/events", "Accept-Encoding", "gzip")
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d, want %d", res.StatusCode, tt.wantStatus)
			}
			b, err := io.ReadAll(body(t, res))
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantStatus != http.StatusOK {
				if !strings.Contains(string(b), "skip the route") {
					t.Fatalf("got %q, want it to say how to fix it", b)
				}
				return
			}
			if want := "data: once\n\nevent: close\ndata:\n\n"; string(b) != want {
				t.Fatalf("got %q, want %q", b, want)
			}
			// Other routes stay with Echo's Gzip.
			api := get(t, srv.URL+"/api", "Accept-Encoding", "gzip")
			if api.Header.Get("Content-Encoding") != "gzip" {
				t.Fatal("the JSON route lost Echo's compression")
			}
		})
	}
}

func TestCompressClientGoneReturnsCompressor(t *testing.T) {
	srv, streams := streamApp(t, echosse.Config{Compress: true, CompressIdle: time.Hour}, func(s *echosse.Stream) error {
		go func() {
			for s.Send(event.Event{Data: strings.Repeat("z", 100)}) == nil {
			}
		}()
		return nil
	})
	res := get(t, srv.URL+"/events", "Accept-Encoding", "gzip")
	d := event.NewDecoder(body(t, res))
	if _, err := d.Decode(); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	s := <-streams
	<-s.Done()
	if !errors.Is(s.Err(), echosse.ErrClientGone) {
		t.Fatalf("got %v, want ErrClientGone", s.Err())
	}
	if n := echosse.CompressorsInUse(); n != 0 {
		t.Fatalf("%d compressors still held after the stream ended", n)
	}
}

// TestCompressIdleStreamsHoldNoCompressor opens more compressed streams
// than compressors, sends each a burst at once, and checks that every
// client decodes its own events, and that once idle no stream holds a
// compressor.
func TestCompressIdleStreamsHoldNoCompressor(t *testing.T) {
	const n, events = 20, 100
	sent := make(chan struct{}, n)
	cfg := echosse.Config{Compress: true, CompressIdle: 50 * time.Millisecond, MaxCompressors: 2}
	var opened atomic.Int64
	srv, _ := streamApp(t, cfg, func(s *echosse.Stream) error {
		name := fmt.Sprintf("s%d", opened.Add(1))
		go func() {
			for i := range events {
				if s.Send(event.Event{ID: fmt.Sprint(i), Data: fmt.Sprintf(`{"stream":%q,"price":17.25}`, name)}) != nil {
					return
				}
			}
			sent <- struct{}{}
		}()
		return nil
	})
	var decs []*event.Decoder
	for range n {
		decs = append(decs, event.NewDecoder(body(t, get(t, srv.URL+"/events", "Accept-Encoding", "gzip"))))
	}
	seen := map[string]bool{} // each stream's name, which its events carry
	for i, d := range decs {
		var first string
		for j := range events {
			ev, err := d.Decode()
			if err != nil {
				t.Fatal(err)
			}
			if j == 0 {
				first, _ = ev.Data.(string)
			}
			if ev.ID != fmt.Sprint(j) || ev.Data != first || !strings.HasPrefix(first, `{"stream":"s`) {
				t.Fatalf("client %d, event %d: got id %q data %q, want id %d and the data of its first event, %s", i, j, ev.ID, ev.Data, j, first)
			}
		}
		if seen[first] {
			t.Fatalf("client %d got the events of another stream, %s", i, first)
		}
		seen[first] = true
	}
	for range n {
		<-sent
	}
	waitFor(t, "idle streams to give their compressors back", func() bool { return echosse.CompressorsInUse() == 0 })
}
