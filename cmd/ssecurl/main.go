// Command ssecurl prints the events of a server-sent events stream as they
// arrive, and reconnects as a browser does, resuming with Last-Event-ID.
//
// Usage:
//
//	ssecurl [flags] URL
//
// Each event is printed as its type, ID and data lines, then a blank line;
// with -json, as one JSON object a line: {"type":…,"id":…,"data":…}. The
// command ends when the server answers 204 No Content (exit status 0), on
// an interrupt (0), or when the stream fails for good (1).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/echosse/echo-sse/sseclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command, with its arguments (without the program name) and
// outputs; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ssecurl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ssecurl [flags] URL")
		fs.PrintDefaults()
	}
	var headers []string
	fs.Func("H", "a request header, \"Name: value\" (repeatable)", func(s string) error {
		if name, _, ok := strings.Cut(s, ":"); !ok || strings.TrimSpace(name) == "" {
			return errors.New(`want "Name: value"`)
		}
		headers = append(headers, s)
		return nil
	})
	body := fs.String("d", "", "the request body (the method becomes POST unless -X says otherwise)")
	method := fs.String("X", "", "the request method (default GET, or POST with -d)")
	asJSON := fs.Bool("json", false, "print each event as a line of JSON")
	retry := fs.Duration("retry", 0, "the reconnection time until the server sets one (default 3s)")
	idle := fs.Duration("idle", 0, "reconnect when nothing arrives for this long (default: never)")
	retryStatus := fs.Bool("retry-5xx", false, "retry 429 and 5xx answers with backoff, honouring Retry-After")
	verbose := fs.Bool("v", false, "report each reconnection on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if *method == "" {
		*method = http.MethodGet
		if *body != "" {
			*method = http.MethodPost
		}
	}
	var rd io.Reader
	if *body != "" {
		rd = strings.NewReader(*body) // http.NewRequest sets GetBody, so it is sent again
	}
	req, err := http.NewRequest(*method, fs.Arg(0), rd)
	if err != nil {
		fmt.Fprintln(stderr, "ssecurl:", err)
		return 2
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	c := &sseclient.Client{Retry: *retry, ReadIdleTimeout: *idle}
	if *retryStatus {
		c.RetryStatus = sseclient.Transient
	}
	if *verbose {
		c.OnRetry = func(reason error, delay time.Duration) {
			fmt.Fprintf(stderr, "ssecurl: %v; reconnecting in %v\n", reason, delay)
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	for ev, err := range c.Events(ctx, req) {
		switch {
		case errors.Is(err, sseclient.ErrNoContent), err != nil && ctx.Err() != nil:
			return 0
		case err != nil:
			fmt.Fprintln(stderr, "ssecurl:", err)
			return 1
		}
		data, _ := ev.Data.(string)
		if *asJSON {
			enc.Encode(struct {
				Type string `json:"type"`
				ID   string `json:"id"`
				Data string `json:"data"`
			}{ev.Type, ev.ID, data})
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "event: %s\n", ev.Type)
		if ev.ID != "" {
			fmt.Fprintf(&b, "id: %s\n", ev.ID)
		}
		for line := range strings.SplitSeq(data, "\n") {
			fmt.Fprintf(&b, "data: %s\n", line)
		}
		b.WriteString("\n")
		io.WriteString(stdout, b.String())
	}
	return 0
}
