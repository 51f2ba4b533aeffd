package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"
)

// answer is one HTTP exchange's result.
type answer struct {
	Status int
	Body   []byte
	Err    error // transport error: no answer
}

// outcome classifies a write's answer: 2xx acknowledged; 4xx rejected; a
// refused connection never reached a server, so it is rejected too; any
// other lost answer or a 5xx may or may not have committed.
func (a answer) outcome() Outcome {
	switch {
	case a.Err != nil && errors.Is(a.Err, syscall.ECONNREFUSED):
		return Rejected
	case a.Err != nil:
		return Unknown
	case a.Status >= 200 && a.Status < 300:
		return Acked
	case a.Status >= 400 && a.Status < 500:
		return Rejected
	}
	return Unknown
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func do(ctx context.Context, method, u, token string, body any) answer {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{Err: err}
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return answer{Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{Status: resp.StatusCode, Err: err}
	}
	return answer{Status: resp.StatusCode, Body: b}
}

// Admin calls the admin API on whichever api process answers.
type Admin struct {
	Bases []string // http://host:port
	Token string
}

// call retries across api processes until one answers with a status
// other than 5xx, or the deadline; admin calls here are idempotent or
// made only while nothing is being killed.
func (a *Admin) call(ctx context.Context, method, path string, body, out any, want ...int) error {
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for i := 0; time.Now().Before(deadline); i++ {
		base := a.Bases[i%len(a.Bases)]
		ans := do(ctx, method, base+"/api/v1"+path, a.Token, body)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case ans.Err != nil:
			last = ans.Err.Error()
		case ans.Status >= 500:
			last = fmt.Sprintf("%d %s", ans.Status, ans.Body)
		case slices.Contains(want, ans.Status):
			if out != nil {
				if err := json.Unmarshal(ans.Body, out); err != nil {
					return fmt.Errorf("%s %s: decode: %w", method, path, err)
				}
			}
			return nil
		default:
			return fmt.Errorf("%s %s: %d %s", method, path, ans.Status, ans.Body)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s %s: no api answered: %s", method, path, last)
}

type orgView struct {
	ID string `json:"id"`
}

func (a *Admin) CreateOrg(ctx context.Context, name string) (string, error) {
	var o orgView
	err := a.call(ctx, "POST", "/orgs", map[string]string{"name": name}, &o, http.StatusCreated)
	return o.ID, err
}

func (a *Admin) PatchOrg(ctx context.Context, org string, body map[string]any) error {
	return a.call(ctx, "PATCH", "/orgs/"+org, body, nil, http.StatusOK)
}

func (a *Admin) SCIMToken(ctx context.Context, org string) (string, error) {
	var t struct {
		Token string `json:"token"`
	}
	err := a.call(ctx, "POST", "/orgs/"+org+"/scim-tokens", map[string]any{"description": "chaos"}, &t, http.StatusCreated)
	return t.Token, err
}

func (a *Admin) PutConnector(ctx context.Context, org string, body any) error {
	return a.call(ctx, "PUT", "/orgs/"+org+"/connector", body, nil, http.StatusOK, http.StatusCreated)
}

// Member is a member as the admin API lists it.
type Member struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	Invites   int    `json:"inviteSends"`
}

func (a *Admin) Members(ctx context.Context, org string) ([]Member, error) {
	return pages(ctx, a, "/orgs/"+org+"/members", func(p *struct {
		Items []Member `json:"members"`
		Next  string   `json:"next"`
	}) ([]Member, string) {
		return p.Items, p.Next
	})
}

// pages reads every page of an admin listing that pages by ?after=.
func pages[T, P any](ctx context.Context, a *Admin, path string, items func(*P) ([]T, string)) ([]T, error) {
	var all []T
	after := ""
	for {
		var page P
		if err := a.call(ctx, "GET", path+"?limit=1000&after="+url.QueryEscape(after), nil, &page, http.StatusOK); err != nil {
			return nil, err
		}
		got, next := items(&page)
		all = append(all, got...)
		if next == "" {
			return all, nil
		}
		after = next
	}
}

// LocalGroup is a local group as the admin API lists it.
type LocalGroup struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Members []struct {
		Email string `json:"email"`
	} `json:"members"`
}

func (a *Admin) Groups(ctx context.Context, org string) ([]LocalGroup, error) {
	return pages(ctx, a, "/orgs/"+org+"/groups", func(p *struct {
		Items []LocalGroup `json:"groups"`
		Next  string       `json:"next"`
	}) ([]LocalGroup, string) {
		return p.Items, p.Next
	})
}

// LocalState is an organization's members (by e-mail) with their groups.
func (a *Admin) LocalState(ctx context.Context, org string) (map[string]LocalMember, error) {
	ms, err := a.Members(ctx, org)
	if err != nil {
		return nil, err
	}
	gs, err := a.Groups(ctx, org)
	if err != nil {
		return nil, err
	}
	out := make(map[string]LocalMember, len(ms))
	for _, m := range ms {
		out[strings.ToLower(m.Email)] = LocalMember{Status: m.Status, FirstName: m.FirstName, Groups: []string{}}
	}
	for _, g := range gs {
		for _, gm := range g.Members {
			e := strings.ToLower(gm.Email)
			m, ok := out[e]
			if !ok {
				m = LocalMember{Status: "(not a member)", Groups: []string{}}
			}
			m.Groups = append(m.Groups, g.Name)
			slices.Sort(m.Groups)
			out[e] = m
		}
	}
	return out, nil
}

// Reconcile queues a run and returns its id. A full run pulls the IdP in
// full, where a delta would do.
func (a *Admin) Reconcile(ctx context.Context, org string, allowMass, full bool) (string, error) {
	var r struct {
		RunID string `json:"runId"`
	}
	err := a.call(ctx, "POST", "/orgs/"+org+"/reconcile", map[string]any{"allowMassDeprovision": allowMass, "full": full}, &r, http.StatusAccepted)
	return r.RunID, err
}

// SyncRun is a run as the admin API shows it.
type SyncRun struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Trigger   string    `json:"trigger"`
	Error     string    `json:"error"`
	CreatedAt time.Time `json:"createdAt"`
}

func (a *Admin) SyncRun(ctx context.Context, org, id string) (SyncRun, error) {
	var r SyncRun
	err := a.call(ctx, "GET", "/orgs/"+org+"/sync-runs/"+id, nil, &r, http.StatusOK)
	return r, err
}

func (a *Admin) SyncRuns(ctx context.Context, org string) ([]SyncRun, error) {
	var all []SyncRun
	before := ""
	for {
		var page struct {
			Runs []SyncRun `json:"runs"`
		}
		if err := a.call(ctx, "GET", "/orgs/"+org+"/sync-runs?limit=100&before="+url.QueryEscape(before), nil, &page, http.StatusOK); err != nil {
			return nil, err
		}
		all = append(all, page.Runs...)
		if len(page.Runs) < 100 {
			return all, nil
		}
		before = page.Runs[len(page.Runs)-1].ID
	}
}

// SCIM is a SCIM client of one organization over several api processes.
type SCIM struct {
	Bases []string // http://host:port
	Token string
}

func (s *SCIM) url(base, path string) string { return base + "/scim/v2" + path }

const (
	userSchema  = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group"
	patchSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

func patchOp(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{patchSchema}, "Operations": ops}
}

// Write sends one user write to the api process base and returns its
// answer; for a create, the new id.
func (s *SCIM) Write(ctx context.Context, base string, u *ModelUser, op Op, groupIDs map[string]string) (answer, string) {
	switch op.Kind {
	case OpCreate:
		ans := do(ctx, "POST", s.url(base, "/Users"), s.Token, map[string]any{
			"schemas": []string{userSchema}, "userName": u.UserName, "externalId": "ext-" + u.UserName,
			"name":   map[string]string{"givenName": op.Value, "familyName": "Chaos"},
			"emails": []map[string]any{{"value": u.UserName, "primary": true, "type": "work"}},
			"active": true,
		})
		var created struct {
			ID string `json:"id"`
		}
		if ans.outcome() == Acked {
			_ = json.Unmarshal(ans.Body, &created)
		}
		return ans, created.ID
	case OpRename:
		return do(ctx, "PATCH", s.url(base, "/Users/"+u.ID), s.Token, patchOp(map[string]any{"op": "replace", "path": "name.givenName", "value": op.Value})), ""
	case OpDeactivate, OpActivate:
		return do(ctx, "PATCH", s.url(base, "/Users/"+u.ID), s.Token, patchOp(map[string]any{"op": "replace", "path": "active", "value": op.Kind == OpActivate})), ""
	case OpDelete:
		return do(ctx, "DELETE", s.url(base, "/Users/"+u.ID), s.Token, nil), ""
	case OpJoin:
		return do(ctx, "PATCH", s.url(base, "/Groups/"+groupIDs[op.Value]), s.Token, patchOp(map[string]any{"op": "add", "path": "members", "value": []map[string]string{{"value": u.ID}}})), ""
	case OpLeave:
		return do(ctx, "PATCH", s.url(base, "/Groups/"+groupIDs[op.Value]), s.Token, patchOp(map[string]any{"op": "remove", "path": `members[value eq "` + u.ID + `"]`})), ""
	}
	return answer{Err: fmt.Errorf("unknown op %s", op.Kind)}, ""
}

// EnsureGroup creates a group by name, or finds it when an earlier
// attempt's answer was lost, and returns its id.
func (s *SCIM) EnsureGroup(ctx context.Context, name string) (string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		base := s.Bases[i%len(s.Bases)]
		var list struct {
			Resources []struct {
				ID string `json:"id"`
			} `json:"Resources"`
		}
		ans := do(ctx, "GET", s.url(base, "/Groups?filter="+url.QueryEscape(`displayName eq "`+name+`"`)), s.Token, nil)
		if ans.Err == nil && ans.Status == http.StatusOK && json.Unmarshal(ans.Body, &list) == nil && len(list.Resources) > 0 {
			return list.Resources[0].ID, nil
		}
		ans = do(ctx, "POST", s.url(base, "/Groups"), s.Token, map[string]any{"schemas": []string{groupSchema}, "displayName": name})
		if ans.outcome() == Acked {
			var g struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(ans.Body, &g); err == nil && g.ID != "" {
				return g.ID, nil
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return "", fmt.Errorf("create SCIM group %s: no api answered", name)
}

// Directory reads the organization's whole SCIM directory: users by
// userName (lowercased) with their groups.
func (s *SCIM) Directory(ctx context.Context) (map[string]State, error) {
	type user struct {
		ID       string `json:"id"`
		UserName string `json:"userName"`
		Active   bool   `json:"active"`
		Name     struct {
			GivenName string `json:"givenName"`
		} `json:"name"`
	}
	type group struct {
		DisplayName string `json:"displayName"`
		Members     []struct {
			Value string `json:"value"`
		} `json:"members"`
	}
	var users []user
	var groups []group
	if err := s.list(ctx, "/Users", func(raw json.RawMessage) error {
		var u user
		err := json.Unmarshal(raw, &u)
		users = append(users, u)
		return err
	}); err != nil {
		return nil, err
	}
	if err := s.list(ctx, "/Groups", func(raw json.RawMessage) error {
		var g group
		err := json.Unmarshal(raw, &g)
		groups = append(groups, g)
		return err
	}); err != nil {
		return nil, err
	}
	byID := map[string]string{}
	out := map[string]State{}
	for _, u := range users {
		key := strings.ToLower(u.UserName)
		byID[u.ID] = key
		out[key] = State{Exists: true, Active: u.Active, GivenName: u.Name.GivenName, Groups: []string{}}
	}
	for _, g := range groups {
		for _, m := range g.Members {
			key, ok := byID[m.Value]
			if !ok {
				return nil, fmt.Errorf("SCIM group %s lists member %s, which is no user", g.DisplayName, m.Value)
			}
			st := out[key]
			st.Groups = append(st.Groups, g.DisplayName)
			slices.Sort(st.Groups)
			out[key] = st
		}
	}
	return out, nil
}

func (s *SCIM) list(ctx context.Context, path string, each func(json.RawMessage) error) error {
	for start := 1; ; {
		var page struct {
			TotalResults int               `json:"totalResults"`
			Resources    []json.RawMessage `json:"Resources"`
		}
		ans := do(ctx, "GET", s.url(s.Bases[0], fmt.Sprintf("%s?startIndex=%d&count=100", path, start)), s.Token, nil)
		if ans.Err != nil || ans.Status != http.StatusOK {
			return fmt.Errorf("SCIM GET %s: %d %v %s", path, ans.Status, ans.Err, ans.Body)
		}
		if err := json.Unmarshal(ans.Body, &page); err != nil {
			return fmt.Errorf("SCIM GET %s: %w", path, err)
		}
		for _, r := range page.Resources {
			if err := each(r); err != nil {
				return err
			}
		}
		start += len(page.Resources)
		if len(page.Resources) == 0 || start > page.TotalResults {
			return nil
		}
	}
}
