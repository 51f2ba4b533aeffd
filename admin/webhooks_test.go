package admin_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/jobs/webhook"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// fakeLookup resolves the test's names without DNS.
func fakeLookup(_ context.Context, host string) ([]netip.Addr, error) {
	switch host {
	case "hooks.example.com":
		return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
	case "internal.example.com":
		return []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.1.2.3")}, nil
	}
	return nil, fmt.Errorf("no such host %s", host)
}

func newWebhookBox(t *testing.T) *secret.Box {
	t.Helper()
	box, err := secret.NewBox([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return box
}

type apiClient struct {
	t   *testing.T
	url string
}

func (c apiClient) do(method, path, body string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func TestWebhooksAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		box := newWebhookBox(t)
		svc := &admin.Service{Store: st, Webhooks: admin.Webhooks{Box: box, LookupIP: fakeLookup}}
		srv := httptest.NewServer((&admin.API{Service: svc, Auth: admin.NewAuth(token)}).Handler())
		t.Cleanup(srv.Close)
		c := apiClient{t, srv.URL}
		acme, _ := st.CreateOrg(ctx, "Acme")
		other, _ := st.CreateOrg(ctx, "Other")
		orgPath := "/api/v1/orgs/" + acme.ID + "/webhooks"

		code, raw := c.do("POST", orgPath, `{"url":"https://hooks.example.com/in","eventTypes":["member.provisioned"],"description":"crm"}`)
		if code != 201 {
			t.Fatalf("create = %d %s", code, raw)
		}
		var created admin.WebhookWithSecret
		if err := json.Unmarshal([]byte(raw), &created); err != nil {
			t.Fatal(err)
		}
		key, ok := strings.CutPrefix(created.Secret, "whsec_")
		if b, err := base64.StdEncoding.DecodeString(key); !ok || err != nil || len(b) < 24 {
			t.Errorf("secret %q is not whsec_ + base64 of 24+ bytes", created.Secret)
		}
		if created.OrgID == nil || *created.OrgID != acme.ID || !created.Enabled || created.EventTypes[0] != lifecycle.EventMemberProvisioned {
			t.Errorf("created = %+v", created.WebhookView)
		}
		// Sealed at rest: the row holds no clear secret, and opens to it.
		row, err := st.WebhookEndpoint(ctx, "", created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(row.Secret), key) {
			t.Error("secret stored in clear")
		}
		if got, err := admin.OpenWebhookSecret(box, row); err != nil || got != created.Secret {
			t.Errorf("open sealed secret = %q, %v", got, err)
		}

		// Never shown again: not in a GET, a list or the audit trail.
		for _, p := range []string{orgPath, orgPath + "/" + created.ID, "/api/v1/webhooks", "/api/v1/webhooks/" + created.ID} {
			code, raw := c.do("GET", p, "")
			if code != 200 || strings.Contains(raw, key) || strings.Contains(raw, `"secret"`) || !strings.Contains(raw, created.ID) {
				t.Errorf("GET %s = %d %s", p, code, raw)
			}
		}

		// Another organization does not see it.
		otherPath := "/api/v1/orgs/" + other.ID + "/webhooks/" + created.ID
		for _, m := range []string{"GET", "PATCH", "DELETE"} {
			if code, raw := c.do(m, otherPath, `{}`); code != 404 {
				t.Errorf("%s %s = %d %s, want 404", m, otherPath, code, raw)
			}
		}
		if code, _ := c.do("POST", otherPath+"/rotate-secret", ""); code != 404 {
			t.Errorf("rotate through another org = %d, want 404", code)
		}
		if code, raw := c.do("GET", "/api/v1/orgs/"+other.ID+"/webhooks", ""); code != 200 || strings.Contains(raw, created.ID) {
			t.Errorf("other org's list = %d %s", code, raw)
		}

		// Rotate: a new secret, once; the old one no longer opens.
		code, raw = c.do("POST", orgPath+"/"+created.ID+"/rotate-secret", "")
		var rotated admin.WebhookWithSecret
		if json.Unmarshal([]byte(raw), &rotated); code != 200 || rotated.Secret == "" || rotated.Secret == created.Secret {
			t.Fatalf("rotate = %d %s", code, raw)
		}
		row, _ = st.WebhookEndpoint(ctx, "", created.ID)
		if got, _ := admin.OpenWebhookSecret(box, row); got != rotated.Secret {
			t.Errorf("after rotation the stored secret is %q, want the new one", got)
		}

		// Patch: off, then on again clears failure state.
		code, raw = c.do("PATCH", orgPath+"/"+created.ID, `{"enabled":false,"eventTypes":[]}`)
		if code != 200 || !strings.Contains(raw, `"enabled":false`) || !strings.Contains(raw, `"eventTypes":[]`) {
			t.Errorf("patch = %d %s", code, raw)
		}

		// A global endpoint: orgId null, listed globally only.
		code, raw = c.do("POST", "/api/v1/webhooks", `{"url":"http://127.0.0.1:9/hook"}`)
		var global admin.WebhookWithSecret
		if json.Unmarshal([]byte(raw), &global); code != 201 || global.OrgID != nil || !strings.Contains(raw, `"orgId":null`) {
			t.Fatalf("create global = %d %s", code, raw)
		}
		if _, raw := c.do("GET", orgPath, ""); strings.Contains(raw, global.ID) {
			t.Error("a global endpoint is listed under an organization")
		}

		if code, _ := c.do("DELETE", orgPath+"/"+created.ID, ""); code != 204 {
			t.Errorf("delete = %d", code)
		}
		if code, _ := c.do("GET", "/api/v1/webhooks/"+created.ID, ""); code != 404 {
			t.Errorf("GET deleted = %d, want 404", code)
		}

		// The audit trail has each action, and no secret.
		var actions []string
		for _, org := range []string{acme.ID, ""} {
			evs, err := st.AuditEvents(ctx, org, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				b, _ := json.Marshal(e)
				for _, s := range []string{created.Secret, rotated.Secret, global.Secret} {
					if strings.Contains(string(b), strings.TrimPrefix(s, "whsec_")) {
						t.Errorf("audit event %s carries a secret", e.Action)
					}
				}
				if e.EntityType == "webhook" {
					actions = append(actions, e.Action)
				}
			}
		}
		// Newest first: acme's, then the global one's.
		want := "webhook.delete webhook.update webhook.rotate_secret webhook.create webhook.create"
		if got := strings.Join(actions, " "); got != want {
			t.Errorf("audit actions = %q, want %q", got, want)
		}
	})
}

func TestWebhookURLRule(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		tests := []struct {
			url          string
			allowPrivate bool
			ok           bool
		}{
			{"https://hooks.example.com/in", false, true},
			{"http://hooks.example.com/in", false, false},
			{"ftp://hooks.example.com/in", false, false},
			{"hooks.example.com/in", false, false},
			{"https://user:pw@hooks.example.com/in", false, false},
			{"http://127.0.0.1:8080/in", false, true},
			{"http://localhost/in", false, true},
			{"http://[::1]:9/in", false, true},
			{"https://10.0.0.5/in", false, false},
			{"https://192.168.1.1/in", false, false},
			{"https://169.254.169.254/latest", false, false},
			{"https://[fe80::1]/in", false, false},
			{"https://0.0.0.0/in", false, false},
			{"https://[::]/in", false, false},
			{"https://internal.example.com/in", false, false},
			{"https://nowhere.example.com/in", false, false},
			{"https://10.0.0.5/in", true, true},
			{"https://internal.example.com/in", true, true},
			{"http://10.0.0.5/in", true, false},
		}
		for _, tt := range tests {
			svc := &admin.Service{Store: st, Webhooks: admin.Webhooks{Box: newWebhookBox(t), LookupIP: fakeLookup, AllowPrivate: tt.allowPrivate}}
			u := tt.url
			_, err := svc.CreateWebhook(ctx, "", admin.WebhookInput{URL: &u})
			if (err == nil) != tt.ok {
				t.Errorf("create %s (allowPrivate=%t): err = %v, want ok=%t", tt.url, tt.allowPrivate, err, tt.ok)
			}
		}
		bad := []string{"member.nothing"}
		u := "https://hooks.example.com/in"
		svc := &admin.Service{Store: st, Webhooks: admin.Webhooks{Box: newWebhookBox(t), LookupIP: fakeLookup}}
		if _, err := svc.CreateWebhook(ctx, "", admin.WebhookInput{URL: &u, EventTypes: &bad}); err == nil {
			t.Error("an unknown event type was accepted")
		}
		if _, err := svc.CreateWebhook(ctx, "", admin.WebhookInput{}); err == nil {
			t.Error("a webhook without url was accepted")
		}
	})
}

func TestWebhookDeliveriesAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		box := newWebhookBox(t)
		d := &webhook.Deliverer{Store: st, Box: box}
		svc := &admin.Service{Store: st, Webhooks: admin.Webhooks{Box: box, Resender: d}}
		srv := httptest.NewServer((&admin.API{Service: svc, Auth: admin.NewAuth(token)}).Handler())
		t.Cleanup(srv.Close)
		c := apiClient{t, srv.URL}
		var ids []string
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ids = append(ids, r.Header.Get("webhook-id"))
			fmt.Fprint(w, "thanks")
		}))
		t.Cleanup(recv.Close)

		acme, _ := st.CreateOrg(ctx, "Acme")
		other, _ := st.CreateOrg(ctx, "Other")
		u := recv.URL
		hook, err := svc.CreateWebhook(ctx, acme.ID, admin.WebhookInput{URL: &u})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := st.Tx(ctx, func(tx *store.Store) error {
				return tx.AppendEvents(ctx, acme.ID, []store.Change{{Type: lifecycle.EventSyncRunFinished, EntityType: store.EntitySyncRun, EntityID: fmt.Sprint(i), Data: i}})
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Deliver(ctx, hook.ID, acme.ID); err != nil {
			t.Fatal(err)
		}
		base := "/api/v1/orgs/" + acme.ID + "/webhooks/" + hook.ID
		code, raw := c.do("GET", base+"/deliveries?limit=2", "")
		var page struct{ Deliveries []store.WebhookDelivery }
		if json.Unmarshal([]byte(raw), &page); code != 200 || len(page.Deliveries) != 2 || page.Deliveries[0].Sequence != 3 || page.Deliveries[0].Response != "thanks" {
			t.Fatalf("deliveries = %d %s", code, raw)
		}
		code, raw = c.do("GET", fmt.Sprintf("%s/deliveries?before=%d", base, page.Deliveries[1].ID), "")
		var rest struct{ Deliveries []store.WebhookDelivery }
		if json.Unmarshal([]byte(raw), &rest); code != 200 || len(rest.Deliveries) != 1 || rest.Deliveries[0].Sequence != 1 {
			t.Errorf("second page = %d %s", code, raw)
		}
		first := rest.Deliveries[0]
		code, raw = c.do("POST", fmt.Sprintf("%s/deliveries/%d/retry", base, first.ID), "")
		var again store.WebhookDelivery
		if json.Unmarshal([]byte(raw), &again); code != 200 || again.Attempt != 2 || again.EventID != first.EventID || again.StatusCode != 200 {
			t.Errorf("retry = %d %s", code, raw)
		}
		if len(ids) != 4 || ids[3] != first.EventID {
			t.Errorf("received ids %v, want the first re-sent last", ids)
		}
		for _, p := range []string{
			"/api/v1/orgs/" + other.ID + "/webhooks/" + hook.ID + "/deliveries",
			base + "/deliveries/999999/retry", base + "/deliveries/x/retry",
		} {
			m := "GET"
			if strings.HasSuffix(p, "retry") {
				m = "POST"
			}
			if code, raw := c.do(m, p, ""); code != 404 {
				t.Errorf("%s %s = %d %s, want 404", m, p, code, raw)
			}
		}
		if code, _ := c.do("GET", "/api/v1/webhooks/"+hook.ID+"/deliveries", ""); code != 200 {
			t.Errorf("global deliveries = %d", code)
		}
	})
}
