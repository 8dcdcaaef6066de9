// Package sseclient reads server-sent events over HTTP, as a browser's
// EventSource does, for Go programs.
//
// [Client.Events] sends a request and ranges over the events of the
// response. When the connection ends or fails, it waits the reconnection time
// and requests again with the Last-Event-ID header, and goes on doing so
// until the server answers 204 No Content, answers in a way the standard
// says ends the stream, or the caller stops ranging or cancels the context:
//
//	for ev, err := range c.Events(ctx, req) {
//		if err != nil {
//			return err // why the stream ended for good
//		}
//		fmt.Println(ev.Type, ev.Data)
//	}
//
// [Client.Views] is the same loop for programs that parse each event's data
// and keep little: it lends each event as an [event.View] of bytes, valid
// until the next iteration, and allocates nothing for it (string(v.Data)
// is the one allocation for data kept). Events costs two allocations per
// event: its Data string and the interface holding it.
//
// Events are decoded by [event.Decoder], exactly as the WHATWG HTML standard
// tells a browser to: an event arrives once its empty line has, never in
// part.
package sseclient
