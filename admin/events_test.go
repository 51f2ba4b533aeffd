package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

type eventsPage struct {
	Events    []store.EventView `json:"events"`
	NextAfter int64             `json:"nextAfter"`
	Error     struct {
		Code           string `json:"code"`
		Message        string `json:"message"`
		LatestSequence int64  `json:"latestSequence"`
	} `json:"error"`
}

func TestEventsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		srv := httptest.NewServer((&admin.API{Service: &admin.Service{Store: st}, Auth: admin.NewAuth(token)}).Handler())
		t.Cleanup(srv.Close)
		get := func(path string) (int, eventsPage) {
			t.Helper()
			req, _ := http.NewRequest("GET", srv.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var p eventsPage
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("GET %s: body %q: %v", path, raw, err)
			}
			return resp.StatusCode, p
		}

		acme, _ := st.CreateOrg(ctx, "Acme")
		other, _ := st.CreateOrg(ctx, "Other")
		// Five events of Acme, alternating two types, one of Other.
		for i := range 5 {
			typ := lifecycle.EventSyncRunFinished
			if i%2 == 1 {
				typ = lifecycle.EventSyncRunBlocked
			}
			if err := st.Tx(ctx, func(tx *store.Store) error {
				return tx.AppendEvents(ctx, acme.ID, []store.Change{{Type: typ, EntityType: store.EntitySyncRun, EntityID: fmt.Sprint("run", i), Data: map[string]int{"n": i}}})
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Tx(ctx, func(tx *store.Store) error {
			return tx.AppendEvents(ctx, other.ID, []store.Change{{Type: lifecycle.EventSyncRunFinished, EntityType: store.EntitySyncRun, EntityID: "theirs", Data: 1}})
		}); err != nil {
			t.Fatal(err)
		}
		base := "/api/v1/orgs/" + acme.ID + "/events"

		code, p := get(base)
		if code != http.StatusOK || len(p.Events) != 5 || p.NextAfter != 5 {
			t.Fatalf("GET events = %d, %d events, nextAfter %d; want 5 and 5", code, len(p.Events), p.NextAfter)
		}
		e := p.Events[2]
		if e.Sequence != 3 || e.OrgID != acme.ID || e.Type != lifecycle.EventSyncRunFinished || string(e.Data) != `{"n":2}` || e.ID == "" || e.CreatedAt.IsZero() {
			t.Errorf("third event = %+v", e)
		}

		// Paging by the cursor alone visits every event once, in order.
		var seqs []int64
		for after := int64(0); ; {
			code, p := get(fmt.Sprintf("%s?limit=2&after=%d", base, after))
			if code != http.StatusOK {
				t.Fatalf("page after %d: %d", after, code)
			}
			for _, e := range p.Events {
				seqs = append(seqs, e.Sequence)
			}
			if len(p.Events) == 0 {
				break
			}
			after = p.NextAfter
		}
		if fmt.Sprint(seqs) != "[1 2 3 4 5]" {
			t.Errorf("paged sequences %v", seqs)
		}

		code, p = get(base + "?types=sync_run.blocked")
		if code != http.StatusOK || len(p.Events) != 2 || p.Events[0].Sequence != 2 || p.Events[1].Sequence != 4 || p.NextAfter != 5 {
			t.Errorf("types filter = %d %+v", code, p)
		}
		// A filtered page that is short still moves the cursor to the latest.
		code, p = get(base + "?types=member.removed")
		if code != http.StatusOK || len(p.Events) != 0 || p.NextAfter != 5 {
			t.Errorf("filter matching nothing = %d %+v, want none and nextAfter 5", code, p)
		}

		for _, q := range []string{"?types=member.exploded", "?types=sync_run.blocked,,", "?limit=0", "?limit=1001", "?after=-1", "?after=x"} {
			if code, p := get(base + q); code != http.StatusBadRequest || p.Error.Code != "invalid_request" {
				t.Errorf("GET events%s = %d %+v, want 400", q, code, p.Error)
			}
		}
		if code, _ := get("/api/v1/orgs/nope/events"); code != http.StatusNotFound {
			t.Errorf("unknown org = %d, want 404", code)
		}
		code, p = get("/api/v1/orgs/" + other.ID + "/events")
		if code != http.StatusOK || len(p.Events) != 1 || p.Events[0].OrgID != other.ID || p.Events[0].Sequence != 1 {
			t.Errorf("other org's feed = %d %+v, want its one event", code, p)
		}

		// Purge everything: a cursor behind the purge is gone; one at it is not.
		if _, err := st.PurgeEvents(ctx, st.Now().Add(time.Hour), 3); err != nil {
			t.Fatal(err)
		}
		code, p = get(base + "?after=1")
		if code != http.StatusGone || p.Error.Code != "cursor_expired" || p.Error.LatestSequence != 5 ||
			!strings.Contains(p.Error.Message, "/api/v1/orgs/"+acme.ID+"/members") {
			t.Errorf("after a purge, cursor 1 = %d %+v; want 410 naming the members list and latest 5", code, p.Error)
		}
		purged, err := st.EventCursor(ctx, acme.ID)
		if err != nil || purged.PurgedThrough < 1 {
			t.Fatalf("cursor %+v, %v", purged, err)
		}
		code, p = get(fmt.Sprintf("%s?after=%d", base, purged.PurgedThrough))
		if code != http.StatusOK {
			t.Errorf("cursor at the purge = %d %+v, want 200", code, p.Error)
		}
	})
}
