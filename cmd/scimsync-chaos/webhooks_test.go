package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestWebhookSink(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	s, err := StartWebhookSink(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Secure(secret); err != nil {
		t.Fatal(err)
	}
	signer, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	send := func(ev FeedEvent, sign bool) int {
		t.Helper()
		body, _ := json.Marshal(ev)
		req, _ := http.NewRequest("POST", s.URL, bytes.NewReader(body))
		now := time.Now()
		req.Header.Set("webhook-id", ev.ID)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		sig, _ := signer.Sign(ev.ID, now, body)
		if !sign {
			sig = "v1,bm90IGEgc2lnbmF0dXJl"
		}
		req.Header.Set("webhook-signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ev := func(seq int64) FeedEvent {
		return FeedEvent{ID: "e" + strconv.FormatInt(seq, 10), OrgID: "o1", Type: "member.provisioned", Sequence: seq, Data: json.RawMessage(`{}`)}
	}
	for _, tt := range []struct {
		ev   FeedEvent
		sign bool
		want int
	}{
		{ev(1), true, 204},
		{ev(2), false, 401}, // forged: not kept
		{ev(2), true, 204},
		{ev(2), true, 204}, // a repeat
		{ev(4), true, 204},
		{ev(3), true, 204}, // out of order
	} {
		if got := send(tt.ev, tt.sign); got != tt.want {
			t.Errorf("event %d signed %t: %d, want %d", tt.ev.Sequence, tt.sign, got, tt.want)
		}
	}
	got := s.Await(context.Background(), "o1", 4, time.Second)
	if len(got) != 4 || got[0].Sequence != 1 || got[3].Sequence != 4 {
		t.Errorf("kept %v, want events 1 to 4", got)
	}
	if s.Delivered != 4 || s.Repeats != 1 || s.Refused != 1 {
		t.Errorf("delivered %d, repeats %d, refused %d; want 4, 1, 1", s.Delivered, s.Repeats, s.Refused)
	}
	if d := s.Disorder(); len(d) != 1 || d[0].Detail != "event 3 (member.provisioned) arrived after event 4" {
		t.Errorf("disorder %v, want event 3 after 4", d)
	}
}
