package sse_test

import (
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// TestNewRefusesBadConfig: a programmer's error in Config fails New with
// a message that names the field, in this package's words.
func TestNewRefusesBadConfig(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cfg     sse.Config
		wantErr string
	}{
		{"negative MaxClients", sse.Config{MaxClients: -1}, "MaxClients must not be negative"},
		{"CloseEvent with LF", sse.Config{CloseEvent: "a\nb"}, "CloseEvent must not contain CR or LF"},
		{"Retry over MaxDelay", sse.Config{Retry: sse.MaxDelay + 1}, "Retry must be at most"},
		{"unknown Overflow", sse.Config{Overflow: 7}, "Overflow must be"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := sse.New(tt.cfg)
			if err == nil || srv != nil || !strings.HasPrefix(err.Error(), "sse: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, %v; want an error starting %q containing %q", srv, err, "sse: ", tt.wantErr)
			}
		})
	}
}

// TestMatchQueryKeys: MatchQuery finds its key as url.Values.Has does,
// escaped or not, and not in a value or in a pair net/url drops.
func TestMatchQueryKeys(t *testing.T) {
	srv, err := sse.New(sse.Config{MatchQuery: "sse key"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		query string
		want  bool
	}{
		{"sse+key", true},
		{"sse%20key=1", true},
		{"a=1&sse+key&b=2", true},
		{"a=sse+key", false},
		{"ssekey", false},
		{"sse+key;x=1", false}, // url.ParseQuery drops a pair with ';'
		{"", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/?"+tt.query, nil)
		if got := r.URL.Query().Has("sse key"); got != tt.want {
			t.Fatalf("the test's own expectation for %q is wrong: url.Values.Has says %v", tt.query, got)
		}
		w := httptest.NewRecorder()
		s, err := srv.Open(w, r)
		if got := err == nil; got != tt.want {
			t.Fatalf("query %q: Open returned %v, want a stream %v", tt.query, err, tt.want)
		}
		if err == nil {
			close(s.C)
			if err := s.Wait(); !errors.Is(err, sse.ErrClosed) {
				t.Fatalf("Wait = %v, want ErrClosed", err)
			}
		} else if !errors.Is(err, sse.ErrNotRequested) || w.Body.Len() != 0 || len(w.Header()) != 0 {
			t.Fatalf("query %q: %v, and wrote %q %v; want ErrNotRequested and nothing written", tt.query, err, w.Body, w.Header())
		}
	}
}

// TestLastEventIDFromQuery: without the header, the ID comes from the
// lastEventID query parameter, escaped or not.
func TestLastEventIDFromQuery(t *testing.T) {
	srv, err := sse.New(sse.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for query, want := range map[string]string{
		"lastEventID=42":        "42",
		"last%45ventID=7":       "7",
		"lastEventID=a%20b":     "a b",
		"x=lastEventID":         "",
		"":                      "",
		"other=1&lastEventID=9": "9",
	} {
		s, err := srv.Open(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/?"+query, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.LastEventID(); got != want {
			t.Errorf("query %q: LastEventID %q, want %q", query, got, want)
		}
		close(s.C)
		s.Wait()
	}
}

// TestErrorAnswers: Server.Error answers each refusal with its status;
// over MaxClients as Overflow says.
func TestErrorAnswers(t *testing.T) {
	for _, overflow := range []sse.Overflow{sse.OverflowRetry, sse.OverflowUnavailable} {
		srv, err := sse.New(sse.Config{MaxClients: 1, Overflow: overflow, RetryAfter: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		held, err := srv.Open(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		_, err = srv.Open(w, r)
		if !errors.Is(err, sse.ErrTooManyClients) {
			t.Fatalf("second Open: %v, want ErrTooManyClients", err)
		}
		srv.Error(w, r, err)
		switch overflow {
		case sse.OverflowRetry:
			d := event.NewDecoder(w.Body)
			ev, derr := d.Decode()
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/event-stream" || derr != io.EOF || d.Retry() < time.Second || d.Retry() > 2*time.Second {
				t.Fatalf("OverflowRetry: %d %q, event %+v %v, retry %v", w.Code, w.Header(), ev, derr, d.Retry())
			}
		case sse.OverflowUnavailable:
			if w.Code != http.StatusServiceUnavailable || (w.Header().Get("Retry-After") != "1" && w.Header().Get("Retry-After") != "2") {
				t.Fatalf("OverflowUnavailable: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
			}
		}
		close(held.C)
		held.Wait()
	}

	srv, _ := sse.New(sse.Config{})
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", strings.NewReader("body"))
	_, err := srv.Open(w, r)
	srv.Error(w, r, err)
	if !errors.Is(err, sse.ErrRequestBody) || w.Code != http.StatusBadRequest || w.Header().Get("Connection") != "close" {
		t.Fatalf("a GET with a body: %v, answered %d %v", err, w.Code, w.Header())
	}
}

// TestHandlerPanic: a panic in Handler's serve ends the stream with
// ErrHandlerPanicked and frees its slot before net/http sees the panic;
// the server goes on.
func TestHandlerPanic(t *testing.T) {
	var reported atomic.Int64
	srv, err := sse.New(sse.Config{MaxClients: 1, ErrorHandler: func(*http.Request, error) { reported.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	hs := httptest.NewUnstartedServer(srv.Handler(func(s *sse.Stream, r *http.Request) error {
		if r.URL.Query().Has("panic") {
			s.AfterFunc(func() { ended <- s.Err() })
			panic("boom")
		}
		close(s.C)
		return nil
	}))
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // net/http logs the panic
	hs.Start()
	defer hs.Close()

	res, err := http.Get(hs.URL + "/?panic")
	if err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	select {
	case err := <-ended:
		if !errors.Is(err, sse.ErrHandlerPanicked) {
			t.Fatalf("the stream ended with %v, want ErrHandlerPanicked", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end")
	}
	// The slot is free (MaxClients is 1): the next stream opens and ends
	// with the close event.
	res, err = http.Get(hs.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	ev, err := event.NewDecoder(res.Body).Decode()
	if err != nil || ev.Type != "close" {
		t.Fatalf("after the panic: %+v, %v; want the close event", ev, err)
	}
}

// TestHandlerError: an error serve returns ends the stream with it and
// goes to Config.ErrorHandler; an ordinary end does not.
func TestHandlerError(t *testing.T) {
	errBusiness := errors.New("business failed")
	got := make(chan error, 2)
	srv, _ := sse.New(sse.Config{ErrorHandler: func(_ *http.Request, err error) { got <- err }})
	streamErr := make(chan error, 1)
	hs := httptest.NewServer(srv.Handler(func(s *sse.Stream, r *http.Request) error {
		s.AfterFunc(func() { streamErr <- s.Err() })
		return errBusiness
	}))
	defer hs.Close()
	res, err := http.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err := <-streamErr; !errors.Is(err, errBusiness) {
		t.Fatalf("Stream.Err = %v, want the handler's error", err)
	}
	if err := <-got; !errors.Is(err, errBusiness) {
		t.Fatalf("ErrorHandler got %v, want the handler's error", err)
	}
}
