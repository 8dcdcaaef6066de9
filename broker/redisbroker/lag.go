package redisbroker

// This file owns Lag: how far this process's log reader is behind the log,
// for metrics. It is apart from the publish path (backend.go, scripts.go).

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker"
)

// MaxLag is the most messages [Backend.Lag] counts: a reader that far
// behind is far behind, and counting further would keep Redis busy for
// nothing.
const MaxLag = 10000

// lagScript counts the entries of the log after an entry ID, up to a
// limit, in batches of at most 1000, without sending them.
//
// KEYS: log. ARGV: the entry ID counted from (excluded), the limit.
// Returns the count.
var lagScript = redis.NewScript(`
local from, n, limit = '(' .. ARGV[1], 0, tonumber(ARGV[2])
while n < limit do
  local batch = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', math.min(1000, limit - n))
  if #batch == 0 then break end
  n = n + #batch
  from = '(' .. batch[#batch][1]
end
return n
`)

// Lag returns how many messages, published by any process, the log holds
// after the last one this process's reader has delivered to its broker:
// 0 when it has caught up. It counts them on Redis, with one script that
// reads the log from there on (at most MaxLag entries: a lag of MaxLag
// means at least that). It returns an error if the backend is not
// started, is closed, or Redis does not answer before ctx is done.
func (b *Backend) Lag(ctx context.Context) (int, error) {
	b.mu.Lock()
	started, last := b.started, b.delivered
	b.mu.Unlock()
	switch {
	case b.closed.Load():
		return 0, broker.ErrClosed
	case !started:
		return 0, errors.New("redisbroker: Lag needs a started backend")
	}
	feed := b.keys.log
	if b.interest {
		feed = b.keys.inbox + b.instance
	}
	n, err := lagScript.Run(ctx, b.client, []string{feed}, entryID(last), MaxLag).Int()
	if err != nil {
		return 0, fmt.Errorf("redisbroker: lag: %w", err)
	}
	return n, nil
}
