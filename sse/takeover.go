package sse

// This file owns Config.Takeover: taking an HTTP/1.x connection away from
// net/http once a stream opens, writing the response head, and learning
// that the client left without net/http's background reader.

import (
	"bytes"
	"context"
	"net"
	"net/http"
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
	ctx, cancel := context.WithCancel(context.Background())
	s.conn = conn
	s.reqCtx = ctx
	s.reqDone = ctx.Done()
	s.watched = make(chan struct{})
	s.out = connWriter{conn}
	if s.gz != nil {
		s.gz.w = s.out
	}
	go watch(conn, cancel, s.watched)
	s.deadline()
	if _, err := conn.Write(b.Bytes()); err != nil {
		cancel() // the first write reports it
	}
	return true
}

// watch reads from conn until the read fails, which it does when the
// client closes the connection or the stream closes it, then cancels.
func watch(conn net.Conn, cancel context.CancelFunc, done chan<- struct{}) {
	defer close(done)
	defer cancel()
	var b [1]byte
	for {
		if _, err := conn.Read(b[:]); err != nil {
			return
		}
	}
}

// connWriter is a taken-over connection as the stream's response writer:
// only Write is used; headers went out with the response head.
type connWriter struct{ conn net.Conn }

// Header implements [http.ResponseWriter]; it is never read.
func (w connWriter) Header() http.Header { return http.Header{} }

// Write implements [http.ResponseWriter], writing to the connection.
func (w connWriter) Write(b []byte) (int, error) { return w.conn.Write(b) }

// WriteHeader implements [http.ResponseWriter]; it does nothing.
func (w connWriter) WriteHeader(int) {}

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

// closeConn closes a taken-over connection, which ends the response, and
// waits for its watcher.
func (s *Stream) closeConn() {
	if s.conn != nil {
		_ = s.conn.Close()
		<-s.watched
	}
}
