package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// TestInviteAcceptIsPublic checks that the accept routes answer without the
// admin token, with the same refusal for every bad token.
func TestInviteAcceptIsPublic(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := newTestServer(t, b, brokertest.Open(t))
			ctx := context.Background()
			a := s.app
			org, err := a.Store.CreateOrg(ctx, "Acme")
			if err != nil {
				t.Fatal(err)
			}
			u := store.DirectoryUser{OrgID: org.ID, Source: "scim", UserName: "ada", Email: "ada@example.com", Active: true}
			if err := a.Store.CreateDirectoryUser(ctx, &u); err != nil {
				t.Fatal(err)
			}
			p := a.jobs()
			if _, err := p.converger.ConvergeUser(ctx, org.ID, u.ID); err != nil {
				t.Fatal(err)
			}
			m, _ := a.Store.MembershipByDirectoryUser(ctx, org.ID, u.ID)
			invs, _ := a.Store.Invites(ctx, org.ID, m.ID)
			// No SMTP_URL: the e-mail is recorded, link and all.
			if out, err := p.invites.Send(ctx, org.ID, invs[0].ID); err != nil || out != invite.Recorded {
				t.Fatalf("Send = %q, %v", out, err)
			}
			rec, _ := a.Store.MailByKey(ctx, org.ID, invite.MailKey(invs[0]))
			token := regexp.MustCompile(`ssi_[A-Za-z0-9_-]{43}`).FindString(rec.TextBody)
			link := invite.Link(a.Cfg.PublicURL, token)
			if token == "" || !strings.Contains(rec.TextBody, link) {
				t.Fatalf("recorded e-mail lacks the link:\n%s", rec.TextBody)
			}

			resp, err := http.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(page), `<form method="post" action="/invite/accept">`) {
				t.Fatalf("GET %s = %d\n%s", link, resp.StatusCode, page)
			}

			body := func(tok string) string { return fmt.Sprintf(`{"token":%q}`, tok) }
			for _, tt := range []struct {
				name, body string
				want       int
				code       string
			}{
				{"accept", body(token), 200, ""},
				{"used", body(token), 404, "invite_invalid"},
				{"wrong", body("ssi_" + strings.Repeat("x", 43)), 404, "invite_invalid"},
				{"malformed", `{"token":`, 400, "invalid_json"},
				{"too large", `{"token":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "too_large"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					code, m, _ := s.do(t, call{method: "POST", path: "/api/v1/invites/accept", body: tt.body})
					if code != tt.want {
						t.Fatalf("status %d %v, want %d", code, m, tt.want)
					}
					if tt.code != "" && m["error"].(map[string]any)["code"] != tt.code {
						t.Errorf("error %v, want code %s", m["error"], tt.code)
					}
				})
			}
			if m, _ := a.Store.MembershipByDirectoryUser(ctx, org.ID, u.ID); m.Status != lifecycle.StatusActive {
				t.Errorf("status %q after accept, want active", m.Status)
			}
			// Admin routes still need the token.
			if code, _, _ := s.do(t, call{method: "GET", path: "/api/v1/orgs"}); code != 401 {
				t.Errorf("admin API without token = %d, want 401", code)
			}
		})
	}
}

// TestRunWorkerConverges runs the worker role and the relay as the binary
// does and checks that a directory change reaches local state.
func TestRunWorkerConverges(t *testing.T) {
	b := storetest.Backends()[0]
	s := newTestServer(t, b, brokertest.Open(t))
	a := s.app
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, Roles{Worker: true}, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()

	org, err := a.Store.CreateOrg(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	u := store.DirectoryUser{OrgID: org.ID, Source: "scim", UserName: "ada", Email: "ada@example.com", Active: true}
	err = a.Store.Tx(ctx, func(tx *store.Store) error {
		if err := tx.CreateDirectoryUser(ctx, &u); err != nil {
			return err
		}
		return tx.AddOutbox(ctx, task.ConvergeUserRow(org.ID, u.ID, false))
	})
	if err != nil {
		t.Fatal(err)
	}
	a.NotifyOutbox()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m, err := a.Store.MembershipByDirectoryUser(ctx, org.ID, u.ID)
		if err == nil && m.InviteSends == 1 && m.LastInvitedAt != nil {
			invs, _ := a.Store.Invites(ctx, org.ID, m.ID)
			if len(invs) == 1 && invs[0].SentAt != nil {
				break // converged, and the invite e-mail recorded
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("directory user not converged by the worker")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
