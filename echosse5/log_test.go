package echosse5_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v5"

	"github.com/echosse/echo-sse/echosse5"
	"github.com/echosse/echo-sse/event"
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

// panicky is event data whose encoding panics, in the pump.
type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("panicky: no JSON today") }

// TestDefaultErrorHandlerLogs: the default ErrorHandler logs with Echo's
// slog logger, with attributes: the error, the reason when the error ended
// the stream, the client's address and the stream's age.
func TestDefaultErrorHandlerLogs(t *testing.T) {
	logs := &lockedBuffer{}
	e := echo.NewWithConfig(echo.Config{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	e.Use(echosse5.Middleware(echosse5.Config{}))
	e.GET("/", func(c *echo.Context) error {
		s, err := echosse5.Open(c)
		if err != nil {
			return err
		}
		s.Send(event.Event{ID: "bad\nid"})
		s.Send(event.Event{Data: panicky{}})
		return nil
	})
	srv := serve(t, e)
	res := request(t, "GET", srv.URL+"/")
	io.Copy(io.Discard, res.Body)
	res.Body.Close()

	logs.mu.Lock()
	defer logs.mu.Unlock()
	var lines []map[string]any
	for line := range strings.Lines(logs.b.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "echosse5: stream error" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("logged %d stream errors, want 2: %q", len(lines), logs.b.String())
	}
	for i, l := range lines {
		msg, _ := l["error"].(string)
		addr, _ := l["remote_addr"].(string)
		age, _ := l["stream_age"].(float64)
		_, hasReason := l["reason"]
		if l["level"] != "ERROR" || !strings.HasPrefix(msg, "echosse") || !strings.HasPrefix(addr, "127.0.0.1:") || age <= 0 || hasReason != (i == 1) {
			t.Errorf("line %d: %v", i, l)
		}
	}
	if got := lines[1]["reason"]; got != "pump_panic" {
		t.Errorf("reason %v, want pump_panic", got)
	}
}
