package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func feed(t *testing.T, evs ...any) []FeedEvent {
	t.Helper()
	var out []FeedEvent
	for i := 0; i < len(evs); i += 2 {
		b, err := json.Marshal(evs[i+1])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, FeedEvent{Type: evs[i].(string), Sequence: int64(i/2 + 1), Data: b})
	}
	return out
}

func TestCheckFeed(t *testing.T) {
	ann := feedMember{ID: "m1", UserID: "u1", Status: statusPending, Email: "ann@x", FirstName: "Ann"}
	annActive := ann
	annActive.Status = statusActive
	bob := feedMember{ID: "m2", UserID: "u2", Status: statusPending, Email: "bob@x", FirstName: "Bob"}
	eng := map[string]any{"id": "g1", "name": "Eng", "members": []any{}}
	link := func(m feedMember) map[string]any {
		return map[string]any{"group": map[string]any{"id": "g1"}, "member": m}
	}
	group := func(name string, emails ...string) LocalGroup {
		g := LocalGroup{ID: "g1", Name: name}
		for _, e := range emails {
			g.Members = append(g.Members, struct {
				Email string `json:"email"`
			}{e})
		}
		return g
	}
	member := func(m feedMember) Member {
		return Member{ID: m.ID, Status: m.Status, Email: m.Email, FirstName: m.FirstName}
	}
	base := []any{"member.provisioned", ann, "member.provisioned", bob, "group.created", eng,
		"group.member_added", link(ann), "group.member_added", link(bob), "member.activated", annActive}
	for _, tt := range []struct {
		name    string
		events  []FeedEvent
		members []Member
		groups  []LocalGroup
		want    []string // substrings of the divergences, in order
	}{
		{"the feed rebuilds the lists", feed(t, base...),
			[]Member{member(annActive), member(bob)}, []LocalGroup{group("Eng", "ann@x", "bob@x")}, nil},
		{"a removal takes the member out of its groups", feed(t, append(base, "member.removed", bob)...),
			[]Member{member(annActive)}, []LocalGroup{group("Eng", "ann@x")}, nil},
		{"a missed update", feed(t, base[:10]...),
			[]Member{member(annActive), member(bob)}, []LocalGroup{group("Eng", "ann@x", "bob@x")}, []string{"the feed says pending_setup"}},
		{"a member the feed never had", feed(t, "member.provisioned", ann, "group.created", eng, "group.member_added", link(ann), "member.activated", annActive),
			[]Member{member(annActive), member(bob)}, []LocalGroup{group("Eng", "ann@x")}, []string{"bob@x: a member (pending_setup) the feed never provisioned"}},
		{"a missed link", feed(t, base[:8]...),
			[]Member{member(ann), member(bob)}, []LocalGroup{group("Eng", "ann@x", "bob@x")}, []string{`the feed says "Eng" [ann@x]`}},
		{"a missed deletion", feed(t, base...),
			[]Member{member(annActive), member(bob)}, nil, []string{"in the feed but not in the groups list"}},
		{"a gap in the sequence", func() []FeedEvent { e := feed(t, base...); e[3].Sequence = 5; return e }(),
			[]Member{member(annActive), member(bob)}, []LocalGroup{group("Eng", "ann@x", "bob@x")}, []string{"has sequence 5, want 4"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckFeed("acme", tt.events, tt.members, tt.groups)
			if len(got) != len(tt.want) {
				t.Fatalf("divergences %v, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i].String(), w) {
					t.Errorf("divergence %d = %s, want it to say %q", i, got[i], w)
				}
			}
		})
	}
}
