package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/internal/weburl"
	"github.com/scimsync/scimsync/jobs/webhook"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

type env struct {
	st  *store.Store
	clk *clock.Fake
	box *secret.Box
	d   *webhook.Deliverer
	log *bytes.Buffer
}

func each(t *testing.T, fn func(t *testing.T, e env)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			clk := clock.NewFake(time.Now()) // signatures are checked against the wall clock
			st := storetest.Open(t, b, store.Options{Clock: clk})
			box, err := secret.NewBox([]byte(strings.Repeat("k", 32)))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, nil))
			// Loopback receivers: private addresses are refused anyway.
			d := &webhook.Deliverer{Store: st, Box: box, Clock: clk, Log: log}
			fn(t, env{st, clk, box, d, &buf})
		})
	}
}

func (e env) endpoint(t *testing.T, orgID *string, url string, types ...string) store.WebhookEndpoint {
	t.Helper()
	ep := store.WebhookEndpoint{ID: store.NewID(), OrgID: orgID, URL: url, EventTypes: types, Enabled: true}
	ep.Secret = e.box.Seal([]byte(testSecret), []byte(ep.ID))
	if err := e.st.CreateWebhookEndpoint(context.Background(), &ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

// events appends n events to org, each of entity "e<i%3>", alternating
// member.updated and member.activated.
func (e env) events(t *testing.T, orgID string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		typ := lifecycle.EventMemberUpdated
		if i%2 == 1 {
			typ = lifecycle.EventMemberActivated
		}
		if err := e.st.Tx(ctx, func(tx *store.Store) error {
			return tx.AppendEvents(ctx, orgID, []store.Change{{Type: typ, EntityType: store.EntitySyncRun, EntityID: fmt.Sprint("e", i%3), Data: map[string]int{"i": i}}})
		}); err != nil {
			t.Fatal(err)
		}
	}
}

type received struct {
	id   string
	seq  int64
	body string
}

// receiver verifies every request's signature and records it; answer
// decides each answer by the request's number (from 1).
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	n      int
	got    []received
	answer func(n int, w http.ResponseWriter, r *http.Request)
	// anyTime skips the timestamp check (the fake clock was advanced).
	anyTime bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	wh, _ := standardwebhooks.NewWebhook(testSecret)
	verify := wh.Verify
	if rc.anyTime {
		verify = wh.VerifyIgnoringTimestamp
	}
	if err := verify(body, r.Header); err != nil {
		rc.t.Errorf("signature does not verify: %v", err)
	}
	if !strings.HasPrefix(r.Header.Get("webhook-signature"), "v1,") {
		rc.t.Errorf("webhook-signature = %q", r.Header.Get("webhook-signature"))
	}
	var seq int64
	fmt.Sscanf(string(body[bytes.Index(body, []byte(`"sequence":`))+len(`"sequence":`):]), "%d", &seq)
	rc.mu.Lock()
	rc.n++
	n := rc.n
	rc.got = append(rc.got, received{r.Header.Get("webhook-id"), seq, string(body)})
	rc.mu.Unlock()
	if rc.answer != nil {
		rc.answer(n, w, r)
	}
}

func TestDeliverFailsThenRecovers(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		ctx := context.Background()
		org, _ := e.st.CreateOrg(ctx, "Acme")
		rc := &receiver{t: t, answer: func(n int, w http.ResponseWriter, _ *http.Request) {
			switch n {
			case 3, 4:
				w.WriteHeader(500)
			case 7:
				time.Sleep(300 * time.Millisecond) // past the client's timeout
			}
		}}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		e.d.Client = webhook.NewClient(false)
		e.d.Client.Timeout = 100 * time.Millisecond
		ep := e.endpoint(t, nil, srv.URL)
		e.events(t, org.ID, 10)

		fails := 0
		for range 10 {
			err := e.d.Deliver(ctx, ep.ID, org.ID)
			if err == nil {
				break
			}
			if !errors.Is(err, webhook.ErrDelivery) {
				t.Fatal(err)
			}
			fails++
		}
		if fails != 3 {
			t.Errorf("Deliver failed %d times, want 3 (two 500s, a timeout)", fails)
		}
		// Every event, in sequence order; a repeat only as a re-send of the
		// event just tried, with the same webhook-id.
		var next int64 = 1
		ids := map[int64]string{}
		for i, r := range rc.got {
			if old, ok := ids[r.seq]; ok && old != r.id {
				t.Errorf("sequence %d sent with ids %s and %s", r.seq, old, r.id)
			}
			ids[r.seq] = r.id
			switch r.seq {
			case next:
				next++
			case next - 1: // a re-send
			default:
				t.Fatalf("request %d carries sequence %d, want %d or %d", i, r.seq, next, next-1)
			}
		}
		if next != 11 {
			t.Errorf("delivered through %d, want 10", next-1)
		}
		if cur, _ := e.st.WebhookCursor(ctx, ep.ID, org.ID); cur != 10 {
			t.Errorf("cursor = %d, want 10", cur)
		}
		dels, _ := e.st.WebhookDeliveries(ctx, ep.ID, 0, 100)
		if len(dels) != len(rc.got) {
			t.Errorf("%d attempts recorded, %d received", len(dels), len(rc.got))
		}
		var codes []string
		for i := len(dels) - 1; i >= 0; i-- {
			codes = append(codes, fmt.Sprintf("%d/%d", dels[i].Sequence, dels[i].StatusCode))
		}
		if got := strings.Join(codes[:6], " "); got != "1/200 2/200 3/500 3/500 3/200 4/200" {
			t.Errorf("attempts = %s", got)
		}
		if dels[len(dels)-4].Attempt != 2 {
			t.Errorf("second attempt at sequence 3 numbered %d", dels[len(dels)-4].Attempt)
		}
		// Nothing new: nothing sent.
		before := len(rc.got)
		if err := e.d.Deliver(ctx, ep.ID, org.ID); err != nil || len(rc.got) != before {
			t.Errorf("Deliver with nothing new = %v, sent %d", err, len(rc.got)-before)
		}
	})
}

func TestDeliverFilters(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		ctx := context.Background()
		acme, _ := e.st.CreateOrg(ctx, "Acme")
		other, _ := e.st.CreateOrg(ctx, "Other")
		rc := &receiver{t: t}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		ep := e.endpoint(t, &acme.ID, srv.URL, lifecycle.EventMemberActivated)
		e.events(t, acme.ID, 6)
		e.events(t, other.ID, 3)
		for _, org := range []string{acme.ID, other.ID} {
			if err := e.d.Deliver(ctx, ep.ID, org); err != nil {
				t.Fatal(err)
			}
		}
		var seqs []int64
		for _, r := range rc.got {
			if !strings.Contains(r.body, `"type":"member.activated"`) || !strings.Contains(r.body, acme.ID) {
				t.Errorf("received %s", r.body)
			}
			seqs = append(seqs, r.seq)
		}
		if fmt.Sprint(seqs) != "[2 4 6]" {
			t.Errorf("sequences = %v, want [2 4 6]", seqs)
		}
		if cur, _ := e.st.WebhookCursor(ctx, ep.ID, acme.ID); cur != 6 {
			t.Errorf("cursor = %d, want 6 (past the skipped types)", cur)
		}
	})
}

func TestDeliverRedirectAndBigAnswer(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		ctx := context.Background()
		org, _ := e.st.CreateOrg(ctx, "Acme")
		target := &receiver{t: t}
		tsrv := httptest.NewServer(target)
		defer tsrv.Close()
		redirect := httptest.NewServer(http.RedirectHandler(tsrv.URL, http.StatusTemporaryRedirect))
		defer redirect.Close()
		e.events(t, org.ID, 1)
		ep := e.endpoint(t, nil, redirect.URL)
		if err := e.d.Deliver(ctx, ep.ID, org.ID); !errors.Is(err, webhook.ErrDelivery) {
			t.Errorf("Deliver to a redirect = %v, want a failure", err)
		}
		if len(target.got) != 0 {
			t.Error("the redirect was followed")
		}

		big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Repeat([]byte("x"), 10<<20))
		}))
		defer big.Close()
		ep2 := e.endpoint(t, nil, big.URL)
		if err := e.d.Deliver(ctx, ep2.ID, org.ID); err != nil {
			t.Fatal(err)
		}
		dels, _ := e.st.WebhookDeliveries(ctx, ep2.ID, 0, 10)
		if len(dels) != 1 || len(dels[0].Response) != webhook.MaxExcerpt || dels[0].StatusCode != 200 {
			t.Errorf("deliveries = %d, excerpt %d bytes", len(dels), len(dels[0].Response))
		}
	})
}

func TestDeliverRefusesPrivateAtDial(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		ctx := context.Background()
		org, _ := e.st.CreateOrg(ctx, "Acme")
		e.events(t, org.ID, 1)
		ep := e.endpoint(t, nil, "http://10.255.255.1:9/hook")
		err := e.d.Deliver(ctx, ep.ID, org.ID)
		if !errors.Is(err, webhook.ErrDelivery) {
			t.Fatalf("Deliver = %v", err)
		}
		dels, _ := e.st.WebhookDeliveries(ctx, ep.ID, 0, 10)
		if len(dels) != 1 || !strings.Contains(dels[0].Error, weburl.ErrPrivate.Error()) {
			t.Errorf("deliveries = %+v, want one refused as private", dels)
		}
		// Allowed, the dial is attempted.
		c := webhook.NewClient(true)
		ctx2, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx2, "GET", "http://10.255.255.1:9/", nil)
		if _, err := c.Do(req); err != nil && strings.Contains(err.Error(), weburl.ErrPrivate.Error()) {
			t.Errorf("allowed client: %v", err)
		}
	})
}

func TestDisableAfterADayOfFailures(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		ctx := context.Background()
		org, _ := e.st.CreateOrg(ctx, "Acme")
		rc := &receiver{t: t, anyTime: true, answer: func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		ep := e.endpoint(t, &org.ID, srv.URL)
		e.events(t, org.ID, 2)
		for _, step := range []time.Duration{0, 12 * time.Hour, 11 * time.Hour} {
			e.clk.Advance(step)
			if err := e.d.Deliver(ctx, ep.ID, org.ID); !errors.Is(err, webhook.ErrDelivery) {
				t.Fatalf("Deliver = %v", err)
			}
		}
		got, _ := e.st.WebhookEndpoint(ctx, "", ep.ID)
		if !got.Enabled || got.FailingSince == nil {
			t.Fatalf("after 23h: %+v", got)
		}
		e.clk.Advance(2 * time.Hour)
		if err := e.d.Deliver(ctx, ep.ID, org.ID); err != nil {
			t.Fatalf("the disabling Deliver = %v, want nil (nothing to retry)", err)
		}
		got, _ = e.st.WebhookEndpoint(ctx, "", ep.ID)
		if got.Enabled || !strings.Contains(got.DisabledReason, "status 503") {
			t.Errorf("after 25h: enabled=%t reason=%q", got.Enabled, got.DisabledReason)
		}
		if !strings.Contains(e.log.String(), "msg=webhook.disabled") || !strings.Contains(e.log.String(), "err=") ||
			strings.Contains(e.log.String(), strings.TrimPrefix(testSecret, "whsec_")) {
			t.Errorf("log = %s", e.log)
		}
		audit, _ := e.st.AuditEvents(ctx, org.ID, 0, 10)
		if len(audit) == 0 || audit[0].Action != "webhook.disable" {
			t.Errorf("audit = %+v", audit)
		}
		n := len(rc.got)
		if err := e.d.Deliver(ctx, ep.ID, org.ID); err != nil || len(rc.got) != n {
			t.Errorf("a disabled endpoint was sent to (%v)", err)
		}
		// A success in between starts the count afresh.
		rc.answer = nil
		ep2 := e.endpoint(t, &org.ID, srv.URL)
		e.st.MarkWebhookFailing(ctx, ep2.ID, e.clk.Now().Add(-30*time.Hour))
		if err := e.d.Deliver(ctx, ep2.ID, org.ID); err != nil {
			t.Fatal(err)
		}
		got, _ = e.st.WebhookEndpoint(ctx, "", ep2.ID)
		if !got.Enabled || got.FailingSince != nil {
			t.Errorf("after a success: enabled=%t failingSince=%v", got.Enabled, got.FailingSince)
		}
	})
}

func TestResend(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		ctx := context.Background()
		org, _ := e.st.CreateOrg(ctx, "Acme")
		rc := &receiver{t: t}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		ep := e.endpoint(t, nil, srv.URL)
		e.events(t, org.ID, 3)
		if err := e.d.Deliver(ctx, ep.ID, org.ID); err != nil {
			t.Fatal(err)
		}
		dels, _ := e.st.WebhookDeliveries(ctx, ep.ID, 0, 10)
		second := dels[1]
		rec, err := e.d.Resend(ctx, ep, second)
		if err != nil || rec.Attempt != 2 || rec.Sequence != 2 || rec.StatusCode != 200 {
			t.Fatalf("Resend = %+v, %v", rec, err)
		}
		last := rc.got[len(rc.got)-1]
		if last.id != second.EventID || last.seq != 2 {
			t.Errorf("re-sent %s/%d, want %s/2", last.id, last.seq, second.EventID)
		}
		if cur, _ := e.st.WebhookCursor(ctx, ep.ID, org.ID); cur != 3 {
			t.Errorf("cursor moved to %d", cur)
		}
	})
}

// A delivery stopped part way (shutdown, task timeout) keeps the attempts
// the endpoint accepted, committed in groups, and does not count as the
// endpoint's failure; the next one goes on from the first not accepted.
func TestDeliverStoppedKeepsWhatWasAccepted(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		org, _ := e.st.CreateOrg(ctx, "Acme")
		const stopAt = 150 // past one commit group, inside the next
		rc := &receiver{t: t, answer: func(n int, _ http.ResponseWriter, r *http.Request) {
			if n != stopAt {
				return
			}
			// Answer only once the sender has given up on this request;
			// an answer racing the stop could be read as accepted.
			cancel()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
				t.Error("the stopped sender did not drop its request")
			}
		}}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		ep := e.endpoint(t, nil, srv.URL)
		e.events(t, org.ID, 250)

		err := e.d.Deliver(ctx, ep.ID, org.ID)
		if !errors.Is(err, context.Canceled) || errors.Is(err, webhook.ErrDelivery) {
			t.Fatalf("stopped Deliver = %v, want context.Canceled, not a delivery failure", err)
		}
		bg := context.Background()
		if cur, _ := e.st.WebhookCursor(bg, ep.ID, org.ID); cur != stopAt-1 {
			t.Errorf("cursor = %d, want %d", cur, stopAt-1)
		}
		if dels, _ := e.st.WebhookDeliveries(bg, ep.ID, 0, 500); len(dels) != stopAt-1 {
			t.Errorf("%d attempts recorded, want the %d accepted", len(dels), stopAt-1)
		}
		if got, _ := e.st.WebhookEndpoint(bg, "", ep.ID); got.FailingSince != nil || !got.Enabled {
			t.Errorf("endpoint after a stop: failing since %v, enabled %v", got.FailingSince, got.Enabled)
		}

		if err := e.d.Deliver(bg, ep.ID, org.ID); err != nil {
			t.Fatal(err)
		}
		if cur, _ := e.st.WebhookCursor(bg, ep.ID, org.ID); cur != 250 {
			t.Errorf("cursor = %d, want 250", cur)
		}
		// The interrupted event is sent again with its id, then the rest.
		if a, b := rc.got[stopAt-1], rc.got[stopAt]; a.seq != stopAt || b.seq != stopAt || a.id != b.id {
			t.Errorf("after the stop: %d/%s then %d/%s, want %d twice with one id", a.seq, a.id, b.seq, b.id, stopAt)
		}
		if len(rc.got) != 251 {
			t.Errorf("%d requests, want 250 and one re-send", len(rc.got))
		}
	})
}
