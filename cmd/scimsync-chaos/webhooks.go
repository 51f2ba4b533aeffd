package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// CreateWebhook adds an endpoint of every organization and returns its
// signing secret.
func (a *Admin) CreateWebhook(ctx context.Context, url string) (string, error) {
	var w struct {
		Secret string `json:"secret"`
	}
	err := a.call(ctx, "POST", "/webhooks", map[string]any{"url": url, "description": "chaos", "enabled": true}, &w, http.StatusCreated)
	return w.Secret, err
}

// WebhookSink is an application receiving the change feed by webhook: it
// verifies each delivery, keeps each event once, and fails a share of
// deliveries on purpose so that scimsync's retries are exercised too.
type WebhookSink struct {
	URL string

	srv      *http.Server
	wh       *standardwebhooks.Webhook
	failRate float64

	mu        sync.Mutex
	rng       *rand.Rand
	events    map[string]map[int64]FeedEvent // by org and sequence
	seen      map[string]bool                // event ids
	maxSeq    map[string]int64
	Delivered int // kept
	Repeats   int // the same event again: at least once
	Failed    int // answered 500 on purpose
	Refused   int // signature or body refused
	disorder  []Divergence
}

// StartWebhookSink listens on loopback; Secure must be called with the
// endpoint's secret before deliveries are accepted.
func StartWebhookSink(seed uint64, failRate float64) (*WebhookSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &WebhookSink{URL: "http://" + ln.Addr().String() + "/events", failRate: failRate, rng: rand.New(rand.NewPCG(seed, 2)),
		events: map[string]map[int64]FeedEvent{}, seen: map[string]bool{}, maxSeq: map[string]int64{}}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Secure sets the secret deliveries are verified with.
func (s *WebhookSink) Secure(secret string) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.wh = wh
	s.mu.Unlock()
	return nil
}

func (s *WebhookSink) Close() { s.srv.Close() }

func (s *WebhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	var ev FeedEvent
	switch {
	case err != nil || s.wh == nil || s.wh.Verify(body, r.Header) != nil:
		s.Refused++
		w.WriteHeader(http.StatusUnauthorized)
		return
	case json.Unmarshal(body, &ev) != nil || ev.ID != r.Header.Get("webhook-id"):
		s.Refused++
		w.WriteHeader(http.StatusBadRequest)
		return
	case s.rng.Float64() < s.failRate:
		s.Failed++
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if s.seen[ev.ID] {
		s.Repeats++
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// A new event must come after every event of its organization seen so
	// far: deliveries are in sequence order.
	if ev.Sequence < s.maxSeq[ev.OrgID] {
		s.disorder = append(s.disorder, Divergence{Check: "webhooks", Org: ev.OrgID, Subject: "order",
			Detail: fmt.Sprintf("event %d (%s) arrived after event %d", ev.Sequence, ev.Type, s.maxSeq[ev.OrgID])})
	}
	s.maxSeq[ev.OrgID] = max(s.maxSeq[ev.OrgID], ev.Sequence)
	s.seen[ev.ID] = true
	if s.events[ev.OrgID] == nil {
		s.events[ev.OrgID] = map[int64]FeedEvent{}
	}
	s.events[ev.OrgID][ev.Sequence] = ev
	s.Delivered++
	w.WriteHeader(http.StatusNoContent)
}

// Await waits until the sink holds an organization's events 1 to latest,
// and returns them in sequence order; at the deadline it returns what it
// has, which CheckFeed then reports.
func (s *WebhookSink) Await(ctx context.Context, org string, latest int64, timeout time.Duration) []FeedEvent {
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		got := s.events[org]
		whole := int64(len(got)) >= latest
		var out []FeedEvent
		if whole || time.Now().After(deadline) || ctx.Err() != nil {
			for _, seq := range slices.Sorted(maps.Keys(got)) {
				out = append(out, got[seq])
			}
			s.mu.Unlock()
			return out
		}
		s.mu.Unlock()
		time.Sleep(200 * time.Millisecond)
	}
}

// Disorder returns the deliveries that came out of sequence order.
func (s *WebhookSink) Disorder() []Divergence {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.disorder)
}
