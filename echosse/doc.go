// Package echosse streams server-sent events from Echo handlers.
//
// Install [Middleware] once, then call [Open] in any handler that wants to
// stream. Open answers the request with an event stream and returns a
// [Stream] whose channel, [Stream.C], takes [event.Event] values: business
// goroutines send on it, and the sender closes it to end the stream with the
// close event. One pump per client encodes what arrives on the channel,
// writes it to Echo's response (through Echo's Gzip middleware when it sits
// in front), flushes it so the client receives it at once, and writes a
// heartbeat comment when the stream has been idle for a while. Once the
// handler has returned, the pump is the request's own goroutine, which has
// to wait for the stream anyway; a handler that keeps running gets a pump
// goroutine of its own after a millisecond.
//
// When the stream ends, for whatever reason (the channel was closed, the
// client went away, a write timed out, the handler failed), the pump frees the
// client's slot and cancels [Stream.Context], which is also the context of
// c.Request() from [Open] on. Senders select on it so that none is left
// blocked.
//
// Echo reuses an echo.Context once its request has ended. Goroutines that
// outlive the handler must hold the Stream (or its channel and context),
// never c.
package echosse
