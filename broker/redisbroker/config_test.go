package redisbroker

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// Recovery notices go to NoticeHandler; without one, to an ErrorHandler
// that is set (as before NoticeHandler existed); without either, to slog
// at level info, not to the error log.
func TestNoticeHandlerDefaults(t *testing.T) {
	notice := errors.New("a notice")

	var told []string
	cfg, err := Config{
		ErrorHandler:  func(err error) { told = append(told, "error: "+err.Error()) },
		NoticeHandler: func(n error) { told = append(told, "notice: "+n.Error()) },
	}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg.NoticeHandler(notice)
	if len(told) != 1 || told[0] != "notice: a notice" {
		t.Fatalf("with both set: got %q, want the notice told to NoticeHandler", told)
	}

	told = nil
	cfg, err = Config{ErrorHandler: func(err error) { told = append(told, "error: "+err.Error()) }}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg.NoticeHandler(notice)
	if len(told) != 1 || told[0] != "error: a notice" {
		t.Fatalf("with ErrorHandler alone: got %q, want the notice told to it", told)
	}

	var buf bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	cfg, err = Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg.NoticeHandler(notice)
	if out := buf.String(); !strings.Contains(out, "level=INFO") || !strings.Contains(out, `msg="a notice"`) {
		t.Fatalf("by default: got %q, want the notice logged at level info", out)
	}
}
