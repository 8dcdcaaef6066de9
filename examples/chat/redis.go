package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/echosse/echo-sse/broker/redisbroker"
)

// With -redis, several chat servers share one room: the broker keeps the
// messages in Redis Streams (package redisbroker), so that a message
// posted on any server reaches the pages of every server, and GET
// /api/messages reads the conversation from there. The number of pages
// online is the sum of every server's count, which each server keeps in a
// Redis hash with an expiry, so that a server that dies stops counting.

const (
	// redisPrefix is the Config.Prefix of the room's broker backend.
	redisPrefix = "chat"

	// onlineKey is the hash of the servers' counts: server ID -> "count
	// expiry" (expiry in Unix milliseconds). It is in the backend's hash
	// slot.
	onlineKey = "{" + redisPrefix + "}:online"

	// onlineTTL is how long a server's count holds unless it renews it;
	// it renews it every third of that.
	onlineTTL = 30 * time.Second
)

// sharedRoom is what a server keeps of the room in Redis.
type sharedRoom struct {
	client  *redis.Client
	backend *redisbroker.Backend
	id      string // this server's field in onlineKey

	quit chan struct{} // closed by stop
	done chan struct{} // closed when renew returns
}

func newSharedRoom(client *redis.Client, cfg redisbroker.Config) (*sharedRoom, error) {
	backend, err := redisbroker.New(client, cfg)
	if err != nil {
		return nil, err
	}
	return &sharedRoom{
		client:  client,
		backend: backend,
		id:      rand.Text(),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

// online records that this server has n pages open, and returns the
// number of pages open on all servers. It forgets the servers whose count
// expired.
func (r *sharedRoom) online(ctx context.Context, n int) (int, error) {
	now := time.Now()
	if err := r.client.HSet(ctx, onlineKey, r.id, fmt.Sprintf("%d %d", n, now.Add(onlineTTL).UnixMilli())).Err(); err != nil {
		return 0, err
	}
	counts, err := r.client.HGetAll(ctx, onlineKey).Result()
	if err != nil {
		return 0, err
	}
	total := 0
	for id, v := range counts {
		count, expiry, _ := strings.Cut(v, " ")
		c, err1 := strconv.Atoi(count)
		ms, err2 := strconv.ParseInt(expiry, 10, 64)
		if err1 != nil || err2 != nil || ms < now.UnixMilli() {
			r.client.HDel(ctx, onlineKey, id)
			continue
		}
		total += c
	}
	return total, nil
}

// recent returns the last n chat messages, and the event ID to resume
// from after them.
func (r *sharedRoom) recent(ctx context.Context, n int) ([]message, string, error) {
	msgs, lastID, err := r.backend.Recent(ctx, topicChat, n)
	if err != nil {
		return nil, "", err
	}
	out := make([]message, 0, len(msgs))
	for _, msg := range msgs {
		var m message
		if data, ok := msg.Event.Data.(string); ok && json.Unmarshal([]byte(data), &m) == nil {
			m.ID = msg.Event.ID
			out = append(out, m)
		}
	}
	return out, lastID, nil
}

// renew calls tick every third of onlineTTL until stop: the server renews
// its count, and publishes the total if it changed (a server died, say).
func (r *sharedRoom) renew(tick func()) {
	defer close(r.done)
	t := time.NewTicker(onlineTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			tick()
		case <-r.quit:
			return
		}
	}
}

// stop stops renew, and removes this server's count.
func (r *sharedRoom) stop(ctx context.Context) error {
	close(r.quit)
	<-r.done
	return r.client.HDel(ctx, onlineKey, r.id).Err()
}
