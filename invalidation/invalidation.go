// Package invalidation carries an operator's changes to SCIM access (a
// token revoked, an organization's SCIM switched off or on) to every
// process that caches SCIM token verdicts, over Redis pub/sub.
//
// Guarantees:
//
//   - In the process that made the change, the cache is dropped before
//     Invalidate returns, so the very next request there sees the change.
//   - Every other process drops it when the message arrives, which takes
//     milliseconds while Redis is up.
//   - A message that cannot be published (Redis down) never fails the
//     change; the caches' TTL then bounds how long other processes miss it.
//   - A subscriber that lost its connection may have missed messages, so
//     whenever its subscription is (re)established it drops its whole cache.
//
// Messages name the organization and token, and an unexpected message only
// costs a cache drop: a cached verdict is a copy of the database, so
// forgetting too much is always safe, and forgetting too little never is.
package invalidation

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scimsync/scimsync/broker"
)

// ChannelName is the pub/sub channel's name within a deployment's
// namespace (broker.Broker.Channel).
const ChannelName = "scim-auth-invalidate"

// DefaultPublishTimeout bounds how long Invalidate waits for Redis.
const DefaultPublishTimeout = time.Second

// Cache is what a process remembers about SCIM tokens: inbound.Server.
type Cache interface {
	// Forget drops one token of an organization, or with tokenID empty
	// all the organization's tokens.
	Forget(orgID, tokenID string)
	// ForgetAll drops every token.
	ForgetAll()
}

// message is what goes over the channel. TokenID empty means every token
// of the organization.
type message struct {
	OrgID   string `json:"orgId"`
	TokenID string `json:"tokenId,omitempty"`
}

// Bus publishes changes and applies the ones it hears to its cache.
type Bus struct {
	// Client is the Redis connection.
	Client redis.UniversalClient
	// Channel is the full channel name (broker.Broker.Channel(ChannelName)).
	Channel string
	// Local is this process's cache, dropped synchronously by Invalidate
	// and by the messages Run hears. Nil in a process that caches nothing
	// (the command line), which has no reason to Run.
	Local Cache
	// Log receives publish failures and resubscriptions.
	Log *slog.Logger
	// PublishTimeout bounds a publish (default DefaultPublishTimeout).
	PublishTimeout time.Duration
}

// New returns the bus of a deployment's Redis. local is this process's
// cache, or nil.
func New(br *broker.Broker, local Cache, log *slog.Logger) *Bus {
	return &Bus{Client: br.Client(), Channel: br.Channel(ChannelName), Local: local, Log: log}
}

// Invalidate makes a change to a token (tokenID) or to an organization's
// SCIM switch (tokenID empty) take effect: at once in this process, and
// in the others when they hear of it. It never fails: a publish that does
// not get through is logged, and the other processes' cache TTL bounds it.
func (b *Bus) Invalidate(ctx context.Context, orgID, tokenID string) {
	if b.Local != nil {
		b.Local.Forget(orgID, tokenID)
	}
	// The change is committed: tell the others even if the caller has gone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.publishTimeout())
	defer cancel()
	if err := b.publish(ctx, message{OrgID: orgID, TokenID: tokenID}); err != nil {
		b.log().WarnContext(ctx, "could not tell other processes of a SCIM token change; they apply it when their cache expires",
			"org_id", orgID, "token_id", tokenID, "err", err)
	}
}

func (b *Bus) publish(ctx context.Context, m message) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("publish invalidation: %w", err)
	}
	if err := b.Client.Publish(ctx, b.Channel, raw).Err(); err != nil {
		return fmt.Errorf("publish invalidation: %w", err)
	}
	return nil
}

// Run listens on the channel and applies what it hears to Local until ctx
// ends. go-redis reconnects and resubscribes by itself (it also pings an
// idle subscription to notice a dead connection); each confirmation of the
// subscription, the first included, drops the whole cache, since messages
// sent while no subscription stood are lost.
func (b *Bus) Run(ctx context.Context) {
	ps := b.Client.Subscribe(ctx, b.Channel)
	defer ps.Close()
	ch := ps.ChannelWithSubscriptions()
	subscribed := false
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			b.apply(ctx, m, &subscribed)
		}
	}
}

func (b *Bus) apply(ctx context.Context, m any, subscribed *bool) {
	switch m := m.(type) {
	case *redis.Subscription:
		if m.Kind != "subscribe" {
			return
		}
		if *subscribed {
			b.log().WarnContext(ctx, "resubscribed to SCIM token changes after a lost connection; dropping every cached token verdict")
		}
		*subscribed = true
		b.Local.ForgetAll()
	case *redis.Message:
		var msg message
		if err := json.Unmarshal([]byte(m.Payload), &msg); err != nil || msg.OrgID == "" {
			// Unreadable: something changed, but not what. Forgetting
			// everything is always safe.
			b.log().WarnContext(ctx, "unreadable SCIM token change; dropping every cached token verdict", "channel", m.Channel)
			b.Local.ForgetAll()
			return
		}
		b.Local.Forget(msg.OrgID, msg.TokenID)
	}
}

func (b *Bus) publishTimeout() time.Duration {
	if b.PublishTimeout > 0 {
		return b.PublishTimeout
	}
	return DefaultPublishTimeout
}

func (b *Bus) log() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return b.Log
}
