package sse_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// lockedBuffer is a bytes.Buffer safe for a pump and a test at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the JSON objects written, one a line.
func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(l.b.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// streamErrorsServer serves one stream per request, which sends an invalid
// event and then, for ?fail, an event whose encoding panics (the stream
// ends), or else closes its channel.
func streamErrorsServer(t *testing.T, cfg sse.Config) *httptest.Server {
	t.Helper()
	srv, err := sse.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler(func(s *sse.Stream, r *http.Request) error {
		time.Sleep(2 * time.Millisecond) // an age to see
		s.Send(event.Event{ID: "bad\nid"})
		if r.URL.Query().Has("fail") {
			s.Send(event.Event{Data: panicky{}})
		} else {
			close(s.C)
		}
		return nil
	}))
	t.Cleanup(hs.Close)
	return hs
}

// TestStreamError: the error handler is given a *StreamError that says
// whether the error ended the stream, why, the client's address and the
// stream's age.
func TestStreamError(t *testing.T) {
	var mu sync.Mutex
	var told []*sse.StreamError
	hs := streamErrorsServer(t, sse.Config{ErrorHandler: func(_ *http.Request, err error) {
		se := (*sse.StreamError)(nil)
		if !errors.As(err, &se) {
			t.Errorf("the error handler was given a %T, not a *StreamError: %v", err, err)
			return
		}
		mu.Lock()
		told = append(told, se)
		mu.Unlock()
	}})
	for _, path := range []string{"/", "/?fail"} {
		res, err := newClient(t).Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 3 {
		t.Fatalf("told %d errors, want 3: two invalid events, a panic", len(told))
	}
	for i, se := range told {
		fe := (*event.FieldError)(nil)
		wantEnds := i == 2
		switch {
		case se.Ends != wantEnds:
			t.Errorf("%v: Ends %v, want %v", se, se.Ends, wantEnds)
		case wantEnds && (se.Reason != sse.EndPumpPanic || !errors.Is(se, sse.ErrPumpPanicked)):
			t.Errorf("%v: Reason %v, want pump_panic", se, se.Reason)
		case !wantEnds && !errors.As(se, &fe):
			t.Errorf("%v: not an event.FieldError inside", se)
		case !strings.HasPrefix(se.RemoteAddr, "127.0.0.1:"):
			t.Errorf("RemoteAddr %q, want the client's", se.RemoteAddr)
		case se.Age < 2*time.Millisecond || se.Age > 10*time.Second:
			t.Errorf("Age %v, want the stream's (over 2ms)", se.Age)
		case se.Error() != se.Err.Error():
			t.Errorf("message %q, want Err's %q", se.Error(), se.Err.Error())
		}
	}
}

// TestDefaultErrorHandlerLogs: the default ErrorHandler logs with slog's
// default logger, with the StreamError's attributes.
func TestDefaultErrorHandlerLogs(t *testing.T) {
	logs := &lockedBuffer{}
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewJSONHandler(logs, nil)))
	hs := streamErrorsServer(t, sse.Config{})
	res, err := newClient(t).Get(hs.URL + "/?fail")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()

	lines := logs.lines(t)
	if len(lines) != 2 {
		t.Fatalf("logged %d lines, want 2: %v", len(lines), lines)
	}
	for i, l := range lines {
		_, hasReason := l["reason"]
		if l["level"] != "ERROR" || l["msg"] != "sse: stream error" || l["error"] == nil ||
			!strings.HasPrefix(l["remote_addr"].(string), "127.0.0.1:") || l["stream_age"].(float64) <= 0 || hasReason != (i == 1) {
			t.Errorf("line %d: %v", i, l)
		}
	}
	if got := lines[1]["reason"]; got != "pump_panic" {
		t.Errorf("reason %v, want pump_panic", got)
	}
}
