package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/echosse/echo-sse/event"
)

func ExampleEvent_AppendTo() {
	e := event.Event{
		ID:    "42",
		Type:  "price",
		Data:  "ECHO 17.25\nSSE 3.10",
		Retry: 3 * time.Second,
	}
	buf, err := e.AppendTo(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(buf))
	// Output:
	// event: price
	// id: 42
	// retry: 3000
	// data: ECHO 17.25
	// data: SSE 3.10
}

func ExampleEvent_WriteTo() {
	type quote struct {
		Symbol string  `json:"symbol"`
		Price  float64 `json:"price"`
	}
	events := []event.Event{
		{Comment: "keep-alive"},
		{Type: "quote", Data: quote{"ECHO", 17.25}},
		{Type: "close"}, // a client drops an event without data, so AppendTo adds an empty data line
	}
	for _, e := range events {
		if _, err := e.WriteTo(os.Stdout); err != nil {
			fmt.Println(err)
			return
		}
	}
	// Output:
	// : keep-alive
	//
	// event: quote
	// data: {"symbol":"ECHO","price":17.25}
	//
	// event: close
	// data:
}

func ExampleEvent_Prepare() {
	// Encode once, send to every subscriber.
	p, err := event.Event{
		Type: "announcement",
		Data: map[string]string{"text": "maintenance at 18:00"},
	}.Prepare()
	if err != nil {
		fmt.Println(err)
		return
	}
	subscribers := make([]bytes.Buffer, 3)
	for i := range subscribers {
		if _, err := p.WriteTo(&subscribers[i]); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Print(subscribers[2].String())
	// Output:
	// event: announcement
	// data: {"text":"maintenance at 18:00"}
}

func ExampleFieldError() {
	_, err := event.Event{ID: "7\n8", Data: "x"}.AppendTo(nil)
	var fe *event.FieldError
	if errors.As(err, &fe) {
		fmt.Println("field:", fe.Field)
	}
	fmt.Println(errors.Is(err, event.ErrLineBreak))
	fmt.Println(err)
	// Output:
	// field: id
	// true
	// event: invalid id: contains a line break
}

func ExampleDecoder() {
	stream := ": welcome\n" +
		"retry: 5000\n\n" +
		"id: 1\nevent: greeting\ndata: hello\n\n" +
		"data: line one\r\ndata: line two\n\n" +
		"event: close\ndata:\n\n" +
		"data: never dispatched, the stream ends first\n"
	d := event.NewDecoder(strings.NewReader(stream))
	for {
		e, err := d.Decode()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("type=%s id=%s data=%q\n", e.Type, e.ID, e.Data)
	}
	fmt.Println("reconnect after", d.Retry(), "with Last-Event-ID", d.LastEventID())
	// Output:
	// type=greeting id=1 data="hello"
	// type=message id=1 data="line one\nline two"
	// type=close id=1 data=""
	// reconnect after 5s with Last-Event-ID 1
}

// Scan reads events without copying them: the View lends the Decoder's
// bytes until the next Scan, so a program that parses the data (here as
// JSON) allocates nothing for the event itself.
func ExampleDecoder_Scan() {
	stream := "event: price\nid: 1\ndata: {\"symbol\":\"ECHO\",\"price\":17.5}\n\n" +
		": heartbeat\n\n" +
		"data: {\"symbol\":\"ECHO\",\"price\":17.25}\n\n"
	d := event.NewDecoder(strings.NewReader(stream))
	for d.Scan() {
		v := d.View()
		var q struct {
			Symbol string
			Price  float64
		}
		if err := json.Unmarshal(v.Data, &q); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("type=%s id=%s %s at %.2f\n", v.Type, v.ID, q.Symbol, q.Price)
	}
	if err := d.Err(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// type=price id=1 ECHO at 17.50
	// type=message id=1 ECHO at 17.25
}
