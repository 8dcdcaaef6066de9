package sse

// This file owns Config.Takeover: taking an HTTP/1.x connection away from
// net/http once a stream opens, writing the response head, handing the
// stream to a goroutine of its own, or parking it (park.go), when the
// handler returns, and learning that the client left without net/http's
// background reader: from the shared poller (poll_linux.go), or else from
// a goroutine of the stream's own blocked in a read.

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/echosse/echo-sse/internal/door"
)

// canTakeOver reports whether the stream of r may take its connection
// over: an HTTP/1.x request other than HEAD whose writer w (the one under
// an Echo door's Response) is net/http's own, not a middleware's around
// it (Echo's Gzip, gzhttp), which would expect to write the response.
func canTakeOver(w http.ResponseWriter, r *http.Request) bool {
	return r.ProtoMajor == 1 && r.Method != http.MethodHead && door.Is(w, "net/http", "response")
}

// takeOver hijacks the connection, writes the response head with the
// headers set on out, and makes the stream write to the connection and
// watch it for the client's leaving. It reports false, with nothing
// written, when the connection cannot be hijacked.
//
// From here on the stream keeps nothing of net/http's: not the
// ResponseController, not the writer it was given (whose response holds
// the connection's read and write buffers), not the request's context.
func (s *Stream) takeOver(out http.ResponseWriter) bool {
	conn, brw, err := s.rc.Hijack()
	if err != nil {
		return false
	}
	// What the client sent after the request (nothing, from an
	// EventSource) is not read: the stream only writes.
	brw.Reader.Reset(nil)
	brw.Writer.Reset(nil)
	h := out.Header()
	for _, k := range []string{"Connection", "Content-Length", "Transfer-Encoding", "Keep-Alive"} {
		h.Del(k)
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&b)
	b.WriteString("Connection: close\r\n\r\n")
	_ = conn.SetDeadline(time.Time{})
	s.conn = conn
	s.rc = nil
	s.reqCtx = nil
	s.out = conn
	if s.gz != nil {
		s.gz.w = s.out
	}
	s.watch()
	s.deadline()
	if _, err := conn.Write(b.Bytes()); err != nil {
		s.leave() // the first write reports it
	}
	return true
}

// leave tells the pump that the client of a taken-over connection left.
func (s *Stream) leave() {
	s.gone.Store(true)
	s.poke()
}

// left reports whether the client is gone: its connection closed, or the
// request's context cancelled, as net/http does when it learns it.
func (s *Stream) left() bool {
	if s.conn != nil {
		return s.gone.Load()
	}
	return s.reqCtx.Err() != nil
}

// watch arranges for leave to be called when the client closes the
// taken-over connection: by the shared poller, or else by a goroutine of
// the stream's own.
func (s *Stream) watch() {
	if poller.add(s) {
		return
	}
	s.watched = make(chan struct{})
	go s.read()
}

// read reads from the connection until the read fails, which it does when
// the client closes the connection or the stream closes it, then calls
// leave.
func (s *Stream) read() {
	defer close(s.watched)
	defer s.leave()
	var b [1]byte
	for {
		if _, err := s.conn.Read(b[:]); err != nil {
			return
		}
	}
}

// setWriteDeadline sets the deadline of the stream's writes.
func (s *Stream) setWriteDeadline(t time.Time) {
	if s.conn != nil {
		_ = s.conn.SetWriteDeadline(t)
		return
	}
	_ = s.rc.SetWriteDeadline(t)
}

// flushOut flushes the response; a taken-over connection has no buffer.
func (s *Stream) flushOut() error {
	if s.conn != nil {
		return nil
	}
	return s.rc.Flush()
}

// closeConn closes a taken-over connection, which ends the response, once
// the poller no longer watches it, or waits for its reader.
func (s *Stream) closeConn() {
	if s.conn == nil {
		return
	}
	if s.watched == nil {
		poller.remove(s)
		// Unread bytes from the client would make the close a reset,
		// which may cut off what was written last.
		_ = s.conn.SetReadDeadline(time.Now())
		var b [64]byte
		for {
			if n, err := s.conn.Read(b[:]); n == 0 || err != nil {
				break
			}
		}
	}
	_ = s.conn.Close()
	if s.watched != nil {
		<-s.watched
	}
}

// pumpDetached pumps a taken-over stream, whose handler has returned,
// from first, if it holds an event, until it ends or parks.
func (s *Stream) pumpDetached(first pending) {
	s.list() // parks once idle
	if err, _ := s.pump(false, first); err != errParked {
		s.finish(err)
	}
}

// leanRequest is what a taken-over stream keeps of its request once the
// handler has returned, for the error handler: the method, URL, host,
// client address and TLS state, not the header, whose map and values
// (cookies, tokens) are most of what a browser's request weighs, nor the
// body. request makes an *http.Request of it when an error is reported.
//
// The URL is kept only when it is not what parsing requestURI gives back
// (a middleware rewrote it): else request parses it again, and the
// stream keeps neither net/http's *url.URL nor the request line, which
// the method, the URI and the URL's strings point into.
type leanRequest struct {
	method, host, remoteAddr, requestURI string
	url                                  *url.URL // nil when reparse
	minor                                int
	reparse                              bool // url is what parsing requestURI gives
	tls                                  *tls.ConnectionState
}

// lean returns what r keeps when it becomes a leanRequest.
func lean(r *http.Request) *leanRequest {
	l := &leanRequest{
		method: leanMethod(r.Method), host: r.Host, remoteAddr: r.RemoteAddr,
		requestURI: strings.Clone(r.RequestURI), minor: r.ProtoMinor, tls: r.TLS,
	}
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && r.URL != nil && *u == *r.URL {
		l.reparse = true
	} else {
		l.url = r.URL
	}
	return l
}

// leanMethod returns method, as a constant for a method of RFC 9110:
// net/http's is a piece of the request line.
func leanMethod(method string) string {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		if method == m {
			return m
		}
	}
	return strings.Clone(method)
}

// request returns the request, with ctx, the stream's context.
func (l *leanRequest) request(ctx context.Context) *http.Request {
	u := l.url
	if l.reparse {
		u, _ = url.ParseRequestURI(l.requestURI) // as lean did
	}
	r := &http.Request{
		Method: l.method, URL: u, Proto: "HTTP/1." + strconv.Itoa(l.minor), ProtoMajor: 1, ProtoMinor: l.minor,
		Header: http.Header{}, Body: http.NoBody, Host: l.host, RemoteAddr: l.remoteAddr, RequestURI: l.requestURI, TLS: l.tls,
	}
	return r.WithContext(ctx)
}
