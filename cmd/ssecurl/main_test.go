package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/goleak"

	"github.com/echosse/echo-sse/echosse"
	"github.com/echosse/echo-sse/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// An echosse server that sends two events, ends, and answers the
// reconnection that resumes after them with 204.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	e := echo.New()
	e.Use(echosse.Middleware(echosse.Config{Retry: 10 * time.Millisecond}))
	e.Any("/events", func(c echo.Context) error {
		r := c.Request()
		if r.Header.Get("Last-Event-ID") == "2" {
			return c.NoContent(http.StatusNoContent)
		}
		body, _ := io.ReadAll(r.Body)
		s, err := echosse.Open(c)
		if err != nil {
			return err
		}
		go func() {
			defer close(s.C)
			s.Send(event.Event{ID: "1", Data: r.Method + " " + string(body) + " " + r.Header.Get("X-Token")})
			s.Send(event.Event{ID: "2", Type: "price", Data: "17\n18"})
		}()
		return nil
	})
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		srv.Close()
	})
	return srv
}

func TestRun(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"text", []string{srv.URL + "/events"},
			"event: message\nid: 1\ndata: GET  \n\nevent: price\nid: 2\ndata: 17\ndata: 18\n\nevent: close\nid: 2\ndata: \n\n"},
		{"json, POST with headers", []string{"-json", "-d", `{"a":1}`, "-H", "X-Token: t1", srv.URL + "/events"},
			`{"type":"message","id":"1","data":"POST {\"a\":1} t1"}` + "\n" +
				`{"type":"price","id":"2","data":"17\n18"}` + "\n" +
				`{"type":"close","id":"2","data":""}` + "\n"},
		{"method", []string{"-json", "-X", "PUT", srv.URL + "/events"},
			`{"type":"message","id":"1","data":"PUT  "}` + "\n" +
				`{"type":"price","id":"2","data":"17\n18"}` + "\n" +
				`{"type":"close","id":"2","data":""}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			if code := run(ctx, tt.args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit status %d, stderr %q", code, stderr.String())
			}
			if stdout.String() != tt.want {
				t.Errorf("stdout:\ngot  %q\nwant %q", stdout.String(), tt.want)
			}
		})
	}
}

func TestRunFails(t *testing.T) {
	srv := newServer(t)
	for _, tt := range []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"no URL", nil, 2, "usage"},
		{"bad header", []string{"-H", "nocolon", srv.URL}, 2, "Name: value"},
		{"404", []string{srv.URL + "/missing"}, 1, "sseclient: unexpected status 404"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("exit status %d, want %d", code, tt.code)
			}
			if !strings.Contains(stderr.String(), tt.inStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.inStderr)
			}
		})
	}
}

// TestRunReconnects: with -retry-5xx a 503 is retried after its
// Retry-After; with -idle a stream on which nothing arrives is replaced;
// -retry sets the reconnection time; -v reports each reconnection with its
// reason; the reconnection sends the last event ID, and a 204 ends the run.
func TestRunReconnects(t *testing.T) {
	var mu sync.Mutex
	var lastIDs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		n := len(lastIDs)
		mu.Unlock()
		switch n {
		case 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2: // one event, then nothing: the client's -idle replaces it
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "id: a\ndata: one\n\n")
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	defer http.DefaultClient.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"-retry-5xx", "-idle", "200ms", "-retry", "5ms", "-v", srv.URL}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit status %d, stderr %q", code, stderr.String())
	}
	if want := "event: message\nid: a\ndata: one\n\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	reports := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(reports) != 2 || !strings.Contains(reports[0], "503") || !strings.Contains(reports[1], "ReadIdleTimeout") || !strings.HasSuffix(reports[1], "reconnecting in 5ms") {
		t.Errorf("stderr reports %q, want a 503 and then an idle timeout, the second reconnecting in 5ms", reports)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"", "", "a"}; strings.Join(lastIDs, ",") != strings.Join(want, ",") {
		t.Errorf("Last-Event-ID of the requests: %q, want %q", lastIDs, want)
	}
}
