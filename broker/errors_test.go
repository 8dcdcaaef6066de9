package broker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/echosse/echo-sse/event"
)

func TestPublishError(t *testing.T) {
	cause := context.DeadlineExceeded
	var err error = &PublishError{Topic: "news", ID: "order-7", Err: errors.Join(ErrUnknownOutcome, cause)}
	if !errors.Is(err, ErrUnknownOutcome) || !errors.Is(err, cause) {
		t.Fatalf("%v: errors.Is does not find ErrUnknownOutcome and its cause", err)
	}
	var pe *PublishError
	if !errors.As(err, &pe) || pe.ID != "order-7" {
		t.Fatalf("errors.As: %+v", pe)
	}
	if got := err.Error(); !strings.Contains(got, `"order-7"`) || !strings.Contains(got, `"news"`) || !strings.Contains(got, "unknown") {
		t.Fatalf("Error() = %q", got)
	}
	if got := (&PublishError{Topic: "news", Err: ErrUnknownOutcome}).Error(); strings.Contains(got, `""`) {
		t.Fatalf("Error() without an ID = %q", got)
	}
}

// A backend's PublishError reaches the caller as it is; the in-memory
// history never returns one.
func TestPublishPassesPublishErrorOn(t *testing.T) {
	want := &PublishError{Topic: "news", Err: ErrUnknownOutcome}
	b, err := New(Config{Backend: &unknownBackend{Backend: newMemory(10, 0, time.Now), err: want}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	id, err := b.Publish(context.Background(), "news", event.Event{Data: "x"})
	var pe *PublishError
	if id != "" || !errors.As(err, &pe) || pe != want {
		t.Fatalf("Publish = %q, %v; want the backend's PublishError", id, err)
	}
	if st := b.Stats(); st.Published != 0 {
		t.Fatalf("stats %+v: an event of unknown outcome counted as published", st)
	}
}

type unknownBackend struct {
	Backend
	err error
}

func (f *unknownBackend) Publish(context.Context, string, event.Event) (Message, error) {
	return Message{}, f.err
}
