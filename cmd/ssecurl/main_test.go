package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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
