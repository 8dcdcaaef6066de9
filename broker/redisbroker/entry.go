package redisbroker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/echosse/echo-sse/broker"
	"github.com/echosse/echo-sse/event"
)

// maxIDLen is the longest event ID the backend accepts, and the longest
// Last-Event-ID it looks up, as the in-memory history.
const maxIDLen = 256

// entryID returns the stream entry ID of seq: milliseconds, a dash,
// microseconds within the millisecond.
func entryID(seq uint64) string {
	return strconv.FormatUint(seq/1000, 10) + "-" + strconv.FormatUint(seq%1000, 10)
}

// parseEntryID is entryID's reverse.
func parseEntryID(id string) (uint64, error) {
	ms, us, ok := strings.Cut(id, "-")
	if !ok {
		return 0, fmt.Errorf("redisbroker: malformed entry ID %q", id)
	}
	m, err1 := strconv.ParseUint(ms, 10, 64)
	u, err2 := strconv.ParseUint(us, 10, 64)
	if err1 != nil || err2 != nil || u >= 1000 || m > (1<<64-1)/1000 {
		return 0, fmt.Errorf("redisbroker: malformed entry ID %q", id)
	}
	return m*1000 + u, nil
}

// eventFields returns the fields of an entry that hold ev (see the key
// layout in scripts.go), after the given arguments.
func eventFields(args []any, ev event.Event) []any {
	if ev.ID != "" {
		args = append(args, "i", ev.ID)
	}
	if ev.Type != "" {
		args = append(args, "e", ev.Type)
	}
	switch d := ev.Data.(type) {
	case nil:
	case string:
		args = append(args, "d", d)
	case []byte:
		args = append(args, "d", d)
	case json.RawMessage:
		args = append(args, "d", []byte(d))
	}
	if ev.Retry != 0 {
		args = append(args, "r", strconv.FormatInt(int64(ev.Retry), 10))
	}
	if ev.Comment != "" {
		args = append(args, "c", ev.Comment)
	}
	return args
}

// entry is a stream entry read back.
type entry struct {
	id     string
	fields func(yield func(name, value string) bool)
}

// decode turns an entry into a message, with its event prepared, and
// returns the Seq of the message before it (field p).
func decode(e entry) (msg broker.Message, prev uint64, err error) {
	seq, err := parseEntryID(e.id)
	if err != nil {
		return msg, 0, err
	}
	msg.Seq = seq
	msg.Time = time.UnixMicro(int64(seq))
	var bad error
	for name, v := range e.fields {
		switch name {
		case "t":
			msg.Topic = v
		case "p":
			prev, bad = strconv.ParseUint(v, 10, 64)
		case "i":
			msg.Event.ID = v
		case "e":
			msg.Event.Type = v
		case "d":
			msg.Event.Data = v
		case "r":
			var ns int64
			ns, bad = strconv.ParseInt(v, 10, 64)
			msg.Event.Retry = time.Duration(ns)
		case "c":
			msg.Event.Comment = v
		}
		if bad != nil {
			return msg, 0, fmt.Errorf("redisbroker: entry %s: field %s: %w", e.id, name, bad)
		}
	}
	if msg.Topic == "" {
		return msg, 0, fmt.Errorf("redisbroker: entry %s has no topic", e.id)
	}
	if msg.Event.ID == "" {
		msg.Event.ID = strconv.FormatUint(seq, 10)
	}
	if msg.Event, err = msg.Event.Prepare(); err != nil {
		return msg, 0, fmt.Errorf("redisbroker: entry %s: %w", e.id, err)
	}
	return msg, prev, nil
}

// mapEntry is an entry as XREAD returns it.
func mapEntry(id string, values map[string]any) entry {
	return entry{id: id, fields: func(yield func(string, string) bool) {
		for k, v := range values {
			s, _ := v.(string)
			if !yield(k, s) {
				return
			}
		}
	}}
}

// luaEntries returns the entries of an XRANGE reply that went through a
// script: {{id, {name, value, ...}}, ...}.
func luaEntries(reply any) ([]entry, error) {
	list, ok := reply.([]any)
	if !ok {
		return nil, errBadReply
	}
	out := make([]entry, 0, len(list))
	for _, item := range list {
		pair, ok := item.([]any)
		if !ok || len(pair) != 2 {
			return nil, errBadReply
		}
		id, ok1 := pair[0].(string)
		fields, ok2 := pair[1].([]any)
		if !ok1 || !ok2 {
			return nil, errBadReply
		}
		out = append(out, entry{id: id, fields: func(yield func(string, string) bool) {
			for i := 0; i+1 < len(fields); i += 2 {
				k, _ := fields[i].(string)
				v, _ := fields[i+1].(string)
				if !yield(k, v) {
					return
				}
			}
		}})
	}
	return out, nil
}

var errBadReply = errors.New("redisbroker: unexpected reply from Redis")
