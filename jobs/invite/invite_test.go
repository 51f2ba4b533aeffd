package invite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/internal/jobstest"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/jobs/mail"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// env is an organization with invite service and converger on one store.
type env struct {
	store *store.Store
	clock *clock.Fake
	org   *jobstest.Org
	inv   *invite.Service
	conv  *converge.Converger
}

func newEnv(t *testing.T, b storetest.Backend, sender mail.Sender) *env {
	t.Helper()
	c := clock.NewFake(time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC))
	s := storetest.Open(t, b, store.Options{Clock: c})
	inv := &invite.Service{Store: s, Mail: sender, Log: jobstest.Discard,
		Config: invite.Config{PublicURL: "https://app.test", TTL: 7 * 24 * time.Hour, ResendAfter: 24 * time.Hour, MaxSends: 3}}
	return &env{store: s, clock: c, org: jobstest.NewOrg(t, s), inv: inv, conv: &converge.Converger{Store: s, Invites: inv}}
}

func eachEnv(t *testing.T, sender func() mail.Sender, fn func(t *testing.T, e *env)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			var s mail.Sender
			if sender != nil {
				s = sender()
			}
			fn(t, newEnv(t, b, s))
		})
	}
}

// provision creates an active directory user and converges it; it returns
// the membership and its latest invite.
func (e *env) provision(t *testing.T, userName string) (store.Membership, store.Invite) {
	t.Helper()
	u := e.org.AddUser(userName, userName+"@example.com")
	if _, err := e.conv.ConvergeUser(context.Background(), e.org.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	m := e.org.MustMember(u.ID)
	return m, e.latest(t, m.ID)
}

func (e *env) latest(t *testing.T, membershipID string) store.Invite {
	t.Helper()
	invs := e.org.Invites(membershipID)
	if len(invs) == 0 {
		t.Fatal("no invite")
	}
	return invs[len(invs)-1]
}

// send sends an invite in record mode and returns the token from the
// recorded e-mail.
func (e *env) send(t *testing.T, inv store.Invite) string {
	t.Helper()
	out, err := e.inv.Send(context.Background(), e.org.ID, inv.ID)
	if err != nil || out != invite.Recorded {
		t.Fatalf("Send = %q, %v; want recorded", out, err)
	}
	rec, err := e.store.MailByKey(context.Background(), e.org.ID, invite.MailKey(inv))
	if err != nil {
		t.Fatal(err)
	}
	return jobstest.Token(t, rec.TextBody)
}

func TestAcceptRefusesAlike(t *testing.T) {
	eachEnv(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		_, used := e.provision(t, "used")
		usedTok := e.send(t, used)
		if acc, err := e.inv.Accept(ctx, usedTok); err != nil || acc.Status != lifecycle.StatusActive {
			t.Fatalf("first Accept = %+v, %v", acc, err)
		}
		m, old := e.provision(t, "superseded")
		oldTok := e.send(t, old)
		newTok := e.send(t, mustIssue(t, e, m.ID, 2))
		_, expiring := e.provision(t, "expired")
		expiredTok := e.send(t, expiring)
		_, unsent := e.provision(t, "unsent") // its e-mail never went out

		refuse := func(name, token string) {
			t.Run(name, func(t *testing.T) {
				if _, err := e.inv.Accept(ctx, token); err != invite.ErrInvalid {
					t.Errorf("Accept = %v, want exactly ErrInvalid", err)
				}
			})
		}
		refuse("wrong", "ssi_"+strings.Repeat("A", 43))
		refuse("not a token", "hello")
		refuse("too long", "ssi_"+strings.Repeat("A", 500))
		refuse("used", usedTok)
		refuse("superseded", oldTok)
		if unsent.SentAt != nil {
			t.Fatal("invite marked sent before its e-mail")
		}

		e.clock.Advance(7*24*time.Hour + time.Second)
		refuse("expired", expiredTok)
		refuse("newest, expired", newTok)
	})
}

func TestTokenWorksOnceUnderConcurrency(t *testing.T) {
	eachEnv(t, nil, func(t *testing.T, e *env) {
		m, inv := e.provision(t, "ada")
		tok := e.send(t, inv)
		var wg sync.WaitGroup
		var mu sync.Mutex
		okCount := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.inv.Accept(context.Background(), tok)
				if err != nil && !errors.Is(err, invite.ErrInvalid) {
					t.Error(err)
				}
				if err == nil {
					mu.Lock()
					okCount++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if okCount != 1 {
			t.Errorf("%d accepts succeeded, want 1", okCount)
		}
		if got := e.org.MustMember(m.DirectoryUserID); got.Status != lifecycle.StatusActive {
			t.Errorf("status %q, want active", got.Status)
		}
	})
}

func TestAcceptHTTP(t *testing.T) {
	eachEnv(t, nil, func(t *testing.T, e *env) {
		mux := http.NewServeMux()
		invite.Routes(mux, e.inv, jobstest.Discard)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		_, inv := e.provision(t, "ada")
		tok := e.send(t, inv)

		post := func(path, contentType string, body io.Reader) (int, string) {
			t.Helper()
			resp, err := http.Post(srv.URL+path, contentType, body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		jsonBody := func(tok string) io.Reader { return strings.NewReader(fmt.Sprintf(`{"token":%q}`, tok)) }

		code, body := post("/api/v1/invites/accept", "application/json", jsonBody(tok))
		var acc invite.Accepted
		if code != http.StatusOK || json.Unmarshal([]byte(body), &acc) != nil || acc.Status != "active" {
			t.Fatalf("accept = %d %s", code, body)
		}
		// Every kind of bad token gets the very same answer.
		m, old := e.provision(t, "carol")
		supersededTok := e.send(t, old)
		e.send(t, mustIssue(t, e, m.ID, 2))
		_, exp := e.provision(t, "dave")
		expiredTok := e.send(t, exp)
		e.clock.Advance(7*24*time.Hour + time.Second)
		type answer struct {
			Code int
			Body string
		}
		want := answer{http.StatusNotFound, ""}
		for name, bad := range map[string]string{"used": tok, "wrong": "ssi_" + strings.Repeat("B", 43), "superseded": supersededTok, "expired": expiredTok} {
			var got answer
			got.Code, got.Body = post("/api/v1/invites/accept", "application/json", jsonBody(bad))
			if want.Body == "" {
				want.Body = got.Body
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s token (-want +got):\n%s", name, diff)
			}
		}

		for _, tt := range []struct {
			name string
			body io.Reader
			want int
		}{
			{"malformed", strings.NewReader(`{"token":`), http.StatusBadRequest},
			{"no token", strings.NewReader(`{}`), http.StatusBadRequest},
			{"too large", io.MultiReader(strings.NewReader(`{"token":"`), bytes.NewReader(bytes.Repeat([]byte("a"), 1<<20+1)), strings.NewReader(`"}`)), http.StatusRequestEntityTooLarge},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if code, body := post("/api/v1/invites/accept", "application/json", tt.body); code != tt.want {
					t.Errorf("status %d (%s), want %d", code, body, tt.want)
				}
			})
		}

		_, inv2 := e.provision(t, "erin")
		formTok := e.send(t, inv2)

		// The e-mail's link shows a page whose form posts the token.
		resp, err := http.Get(invite.Link(srv.URL, formTok))
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `value="`+formTok+`"`) ||
			resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("GET link = %d %v\n%s", resp.StatusCode, resp.Header, page)
		}
		if m := e.org.Invites(inv2.MembershipID); m[0].AcceptedAt != nil {
			t.Fatal("GET used the invite")
		}
		code, body = post(invite.AcceptPath, "application/x-www-form-urlencoded", strings.NewReader(url.Values{"token": {formTok}}.Encode()))
		if code != http.StatusOK || !strings.Contains(body, "all set") {
			t.Errorf("form accept = %d\n%s", code, body)
		}
		code, body = post(invite.AcceptPath, "application/x-www-form-urlencoded", strings.NewReader(url.Values{"token": {formTok}}.Encode()))
		if code != http.StatusNotFound || strings.Contains(body, formTok) {
			t.Errorf("form accept again = %d\n%s", code, body)
		}
		big := "token=" + strings.Repeat("a", 1<<20+1)
		if code, _ := post(invite.AcceptPath, "application/x-www-form-urlencoded", strings.NewReader(big)); code != http.StatusRequestEntityTooLarge {
			t.Errorf("large form = %d, want 413", code)
		}
	})
}

func TestSendDue(t *testing.T) {
	eachEnv(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		m, inv := e.provision(t, "ada")
		e.send(t, inv)
		done, _ := e.provision(t, "bob")
		e.send(t, e.latest(t, done.ID))
		if _, err := e.inv.Accept(ctx, e.send(t, mustIssue(t, e, done.ID, 2))); err != nil {
			t.Fatal(err)
		}

		due := func() []invite.Due {
			t.Helper()
			d, err := e.inv.Due(ctx, e.org.ID, e.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		if got := due(); len(got) != 0 {
			t.Errorf("due right after sending: %v", got)
		}
		sends := 1
		for range 5 {
			e.clock.Advance(25 * time.Hour)
			want := []invite.Due{{MembershipID: m.ID, SendNumber: sends + 1}}
			if sends >= e.inv.Config.MaxSends {
				want = nil
			}
			if diff := cmp.Diff(want, due()); diff != "" {
				t.Errorf("Due after %d sends (-want +got):\n%s", sends, diff)
			}
			got, err := e.inv.SendDue(ctx, e.org.ID, e.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("SendDue after %d sends (-want +got):\n%s", sends, diff)
			}
			// A concurrent or repeated call adds nothing.
			if again, err := e.inv.SendDue(ctx, e.org.ID, e.clock.Now()); err != nil || len(again) != 0 {
				t.Errorf("SendDue again = %v, %v", again, err)
			}
			for _, d := range got {
				e.send(t, e.latest(t, d.MembershipID))
				sends++
			}
		}
		if got := len(e.org.Invites(m.ID)); got != e.inv.Config.MaxSends {
			t.Errorf("invites = %d, want MaxSends = %d", got, e.inv.Config.MaxSends)
		}
	})
}

func mustIssue(t *testing.T, e *env, membershipID string, n int) store.Invite {
	t.Helper()
	if ok, err := e.inv.Issue(context.Background(), e.store, e.org.ID, membershipID, n); err != nil || !ok {
		t.Fatalf("Issue = %v, %v", ok, err)
	}
	return e.latest(t, membershipID)
}
