package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// records is a slog.Handler that keeps what it is given.
type records struct {
	mu  sync.Mutex
	got []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, r)
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

// TestDefaultErrorHandlerLevels: the default ErrorHandler logs the notice
// that the log is read again at level Info, and errors at level Error,
// each with what it says.
func TestDefaultErrorHandlerLevels(t *testing.T) {
	h := new(records)
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(h))

	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg.ErrorHandler(fmt.Errorf("%w after 3 failed attempts", ErrRecovered))
	cfg.ErrorHandler(errors.New("redisbroker: reading the log failed"))

	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.got) != 2 {
		t.Fatalf("got %d records, want 2", len(h.got))
	}
	for i, want := range []struct {
		level slog.Level
		text  string
	}{{slog.LevelInfo, "after 3 failed attempts"}, {slog.LevelError, "reading the log failed"}} {
		r := h.got[i]
		var attrs []string
		r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a.Value.String()); return true })
		if r.Level != want.level || len(attrs) != 1 || !strings.Contains(attrs[0], want.text) {
			t.Errorf("record %d: level %v, attrs %q; want level %v with %q", i, r.Level, attrs, want.level, want.text)
		}
	}
}
