// Package event reads and writes the server-sent events wire format.
//
// An event stream is UTF-8 text made of lines. Each line is a field
// ("name: value"), a comment (starting with a colon) or empty; an empty line
// ends an event and tells the client to dispatch it:
//
//	: a comment, ignored by clients
//	event: price
//	id: 42
//	retry: 3000
//	data: {"symbol":"ECHO",
//	data:  "price":17}
//
// The client joins the data lines with a line feed, so the event above
// arrives as one message of type "price" whose data is two lines.
//
// [Event.AppendTo] encodes one event, validating every field so that no value
// can inject another field or event. [Decoder] parses a stream exactly as the
// WHATWG HTML standard's "server-sent events" section tells a browser to, so
// tests can see what an EventSource would see. [Decoder.Decode] returns each
// event as an [Event] of strings; [Decoder.Scan] and [Decoder.View], in the
// manner of bufio.Scanner, lend its bytes until the next call and allocate
// nothing, for programs that parse the data and keep little of it.
//
// The package knows nothing of HTTP; see the echosse package for streaming
// events to Echo clients.
package event
