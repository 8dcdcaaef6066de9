// Package sse streams server-sent events on net/http, with no web
// framework: it is the core that the front doors for Echo (echosse for
// Echo v4, echosse5 for Echo v5) are built on, and the front door for
// plain net/http (http.ServeMux, chi, any http.Handler stack).
//
// Make a [Server] from a [Config] with [New], then open a stream in a
// handler with [Server.Open] and pump it with [Stream.Wait], or let
// [Server.Handler] do both:
//
//	streams, err := sse.New(sse.Config{})
//	...
//	mux.Handle("GET /events", streams.Handler(func(s *sse.Stream, r *http.Request) error {
//		go produce(s) // sends on s.C, and closes it to end the stream
//		return nil
//	}))
//
// A [Stream]'s channel, [Stream.C], takes [event.Event] values: business
// goroutines send on it, and the sender closes it to end the stream with
// the close event. One pump per client encodes what arrives on the
// channel, writes it to the response, flushes it so the client receives it
// at once, and writes a heartbeat comment when the stream has been idle for
// a while. The pump is the handler's own goroutine once it calls Wait;
// until then, from a millisecond after Open, a goroutine of the stream's.
//
// When the stream ends, for whatever reason (the channel was closed, the
// client went away, a write timed out, the server shuts down, the handler
// failed), the pump frees the client's slot and cancels
// [Stream.Context], which is also the context of the request from Open
// on. Senders select on it so that none is left blocked; [Stream.Err]
// says why it ended, with one of this package's errors, which every door
// returns alike.
package sse
