// Package echosse5 streams server-sent events from Echo v5 handlers: the
// Echo v5 front door of the core, package [sse], as package echosse is
// the Echo v4 one. Both take the same Config fields, return the same
// errors ([sse.ErrTooManyClients] and the others, matched with errors.Is)
// and open the same [sse.Stream], so that a broker serves streams of
// either door.
//
// Install [Middleware] once, then call [Open] in any handler that wants to
// stream. Open answers the request with an event stream and returns a
// [Stream] whose channel, [Stream.C], takes [event.Event] values: business
// goroutines send on it, and the sender closes it to end the stream with the
// close event. One pump per client encodes what arrives on the channel,
// writes it to the response (through Echo's Gzip middleware when it sits in
// front, whatever its MinLength), flushes it so the client receives it at
// once, and writes a heartbeat comment when the stream has been idle for a
// while.
//
// When the stream ends, for whatever reason (the channel was closed, the
// client went away, a write timed out, the handler failed), the pump frees
// the client's slot and cancels [Stream.Context], which is also the context
// of c.Request() from [Open] on. Senders select on it so that none is left
// blocked.
//
// Echo reuses an *echo.Context once its request has ended. Goroutines that
// outlive the handler must hold the Stream (or its channel and context),
// never c.
package echosse5
