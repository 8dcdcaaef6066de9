package doortest

// This file tests the end of a server: http.Server.Shutdown ends every
// open stream with the close event, promptly, and the streams learn why.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
	"github.com/echosse/echo-sse/sse"
)

// testShutdown: Shutdown of a server with open, idle streams returns
// without waiting for its deadline, and only once every stream has
// written its close event and ended: the Counters given to the door say
// so the moment it returns, for streams whose handler returned and for
// streams whose handler still runs. Each client gets the close event and
// the end of the response; each stream ends with ErrShutdown.
func testShutdown(t *testing.T, d Door) {
	const clients = 60
	counters := new(sse.Counters)
	streams := make(chan *sse.Stream, clients)
	r := serve(t, d, Config{Config: sse.Config{Counters: counters}}, streamsTo(streams, func(s *sse.Stream, req *http.Request) error {
		if req.URL.Query().Has("hold") {
			<-s.Done() // the handler runs until the stream ends
		}
		return nil // the stream stays open, idle, until something ends it
	}))
	var decs []*event.Decoder
	for i := range clients {
		path := "/events"
		if i%2 == 1 {
			path += "?hold"
		}
		res := r.get(t, path)
		expectStream(t, res) // the stream is open, and known to its server
		decs = append(decs, event.NewDecoder(res.Body))
	}
	var opened []*sse.Stream
	for range clients {
		opened = append(opened, receive(t, streams, "a stream"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	start := time.Now()
	if err := r.srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown after %v: %v", time.Since(start), err)
	}
	st := counters.Stats()
	if strings.HasSuffix(d.Name, "/takeover") {
		// http.Server.Shutdown does not track a connection taken over:
		// it may return before such streams have written their last
		// frame (Config.Takeover says so). They write it promptly.
		for deadline := time.Now().Add(waitLimit); st.Open != 0 && time.Now().Before(deadline); st = counters.Stats() {
			time.Sleep(time.Millisecond)
		}
	}
	if st.Open != 0 || st.Ended[sse.EndShutdown] != clients {
		t.Errorf("when Shutdown returned, %d streams were open and %d of %d had ended with the shutdown frame", st.Open, st.Ended[sse.EndShutdown], clients)
	}
	for _, dec := range decs {
		expectEvent(t, dec, "close", "")
		expectEnd(t, dec)
	}
	for _, s := range opened {
		expectReason(t, ended(t, s), sse.ErrShutdown)
	}
}
