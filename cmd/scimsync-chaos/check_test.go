package main

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPossible(t *testing.T) {
	active := State{Exists: true, Active: true, GivenName: "Ada", Groups: []string{}}
	tests := []struct {
		name string
		ops  []Op
		want []State
	}{
		{"acked create", []Op{{Kind: OpCreate, Value: "Ada"}}, []State{active}},
		{"unknown create may or may not exist", []Op{{Kind: OpCreate, Value: "Ada", Outcome: Unknown}}, []State{{}, active}},
		{"rejected write is not applied", []Op{{Kind: OpCreate, Value: "Ada"}, {Kind: OpDeactivate, Outcome: Rejected}}, []State{active}},
		{"acked writes apply in order", []Op{{Kind: OpCreate, Value: "Ada"}, {Kind: OpJoin, Value: "b"}, {Kind: OpJoin, Value: "a"}, {Kind: OpLeave, Value: "b"}, {Kind: OpRename, Value: "Grace"}},
			[]State{{Exists: true, Active: true, GivenName: "Grace", Groups: []string{"a"}}}},
		{"unknown deactivate then acked rename", []Op{{Kind: OpCreate, Value: "Ada"}, {Kind: OpDeactivate, Outcome: Unknown}, {Kind: OpRename, Value: "Grace"}},
			[]State{{Exists: true, Active: true, GivenName: "Grace", Groups: []string{}}, {Exists: true, GivenName: "Grace", Groups: []string{}}}},
		{"acked delete", []Op{{Kind: OpCreate, Value: "Ada"}, {Kind: OpJoin, Value: "a"}, {Kind: OpDelete}}, []State{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Possible(tt.ops)
			if !ok {
				t.Fatal("Possible gave up")
			}
			eq := cmp.Comparer(func(a, b State) bool { return a.Equal(b) })
			if diff := cmp.Diff(tt.want, got, eq); diff != "" {
				t.Errorf("Possible (-want +got):\n%s", diff)
			}
		})
	}
	many := []Op{{Kind: OpCreate, Value: "x"}}
	for range maxUnknown + 1 {
		many = append(many, Op{Kind: OpRename, Value: "y", Outcome: Unknown})
	}
	if _, ok := Possible(many); ok {
		t.Error("Possible enumerated more unknown writes than it should")
	}
}

func TestCheckWritesFindsLostWrite(t *testing.T) {
	users := []ModelUser{
		{UserName: "a@x", Ops: []Op{{Kind: OpCreate, Value: "A"}, {Kind: OpDeactivate}}},
		{UserName: "b@x", Ops: []Op{{Kind: OpCreate, Value: "B"}, {Kind: OpJoin, Value: "g", Outcome: Unknown}}},
		{UserName: "c@x", Ops: []Op{{Kind: OpCreate, Value: "C", Outcome: Unknown}}},
	}
	consistent := map[string]State{
		"a@x": {Exists: true, GivenName: "A", Groups: []string{}},
		"b@x": {Exists: true, Active: true, GivenName: "B", Groups: []string{"g"}},
	}
	if d := CheckWrites("o", users, consistent); len(d) != 0 {
		t.Fatalf("consistent state reported: %v", d)
	}
	tests := []struct {
		name string
		dir  map[string]State
		want string
	}{
		{"acknowledged deactivate lost", map[string]State{
			"a@x": {Exists: true, Active: true, GivenName: "A", Groups: []string{}},
			"b@x": consistent["b@x"]}, "a@x"},
		{"acknowledged user gone", map[string]State{"b@x": consistent["b@x"]}, "a@x"},
		{"user nobody wrote", map[string]State{"a@x": consistent["a@x"], "b@x": consistent["b@x"], "z@x": {Exists: true, Active: true}}, "z@x"},
		{"unknown create with a state it never had", map[string]State{"a@x": consistent["a@x"], "b@x": consistent["b@x"],
			"c@x": {Exists: true, Active: false, GivenName: "C", Groups: []string{}}}, "c@x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := CheckWrites("o", users, tt.dir)
			if len(d) != 1 || d[0].Subject != tt.want {
				t.Fatalf("divergences = %v, want one about %s", d, tt.want)
			}
		})
	}
}

func TestCheckLocal(t *testing.T) {
	dir := map[string]State{
		"act@x":   {Exists: true, Active: true, GivenName: "A", Groups: []string{"g"}},
		"ina@x":   {Exists: true, GivenName: "I", Groups: []string{}},
		"gone@x":  {},
		"never@x": {Exists: true, GivenName: "N", Groups: []string{}}, // inactive before it was provisioned
	}
	good := map[string]LocalMember{
		"act@x": {Status: statusPending, FirstName: "A", Groups: []string{"g"}},
		"ina@x": {Status: statusDeprovisioned, FirstName: "I", Groups: []string{}},
	}
	never := func(email string) bool { return email != "never@x" }
	if d := CheckLocal("o", dir, good, never); len(d) != 0 {
		t.Fatalf("matching state reported: %v", d)
	}
	with := func(email string, m LocalMember) map[string]LocalMember {
		out := map[string]LocalMember{}
		for k, v := range good {
			out[k] = v
		}
		out[email] = m
		return out
	}
	without := func(email string) map[string]LocalMember {
		out := with(email, LocalMember{})
		delete(out, email)
		return out
	}
	tests := []struct {
		name  string
		local map[string]LocalMember
		want  string
	}{
		{"active in directory, deprovisioned locally", with("act@x", LocalMember{Status: statusDeprovisioned, FirstName: "A", Groups: []string{"g"}}), "deprovisioned locally"},
		{"inactive in directory, active locally", with("ina@x", LocalMember{Status: statusActive, FirstName: "I", Groups: []string{}}), "active locally"},
		{"deleted in directory, still a member", with("gone@x", LocalMember{Status: statusDeprovisioned, Groups: []string{}}), "gone from the directory"},
		{"member missing", without("act@x"), "no local member"},
		{"deprovisioned member removed", without("ina@x"), "no local member"},
		{"group drift", with("act@x", LocalMember{Status: statusActive, FirstName: "A", Groups: []string{}}), "groups"},
		{"name drift", with("act@x", LocalMember{Status: statusActive, FirstName: "B", Groups: []string{"g"}}), "given name"},
		{"stranger", with("who@x", LocalMember{Status: statusActive, Groups: []string{}}), "never had"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := CheckLocal("o", dir, tt.local, never)
			if len(d) != 1 || !strings.Contains(d[0].Detail, tt.want) {
				t.Fatalf("divergences = %v, want one saying %q", d, tt.want)
			}
		})
	}
	// Once seen as a member, an inactive user must stay as a deprovisioned one.
	if d := CheckLocal("o", dir, good, func(string) bool { return true }); len(d) != 1 || d[0].Subject != "never@x" {
		t.Errorf("a once-provisioned inactive user gone missing: divergences = %v", d)
	}
}

func TestDeprovisionWatch(t *testing.T) {
	w := NewDeprovisionWatch()
	if d := w.Observe("o", map[string]string{"a@x": statusPending, "b@x": statusActive, "c@x": statusPending}); len(d) != 0 {
		t.Fatalf("first sample: %v", d)
	}
	w.Touch("o", "C@x") // a deactivate was sent for c
	d := w.Observe("o", map[string]string{"a@x": statusDeprovisioned, "c@x": statusDeprovisioned})
	want := map[string]string{"a@x": "deprovisioned while active", "b@x": "removed while active"}
	if len(d) != len(want) {
		t.Fatalf("divergences = %v, want %d", d, len(want))
	}
	for _, x := range d {
		if !strings.Contains(x.Detail, want[x.Subject]) {
			t.Errorf("%s: %q, want %q", x.Subject, x.Detail, want[x.Subject])
		}
	}
	if d := w.Observe("o", map[string]string{"a@x": statusDeprovisioned}); len(d) != 0 {
		t.Errorf("reported again: %v", d)
	}
	if d := w.Observe("other", map[string]string{}); len(d) != 0 {
		t.Errorf("another organization's sample blamed o's members: %v", d)
	}
}

func TestCheckMailFindsDuplicates(t *testing.T) {
	link := func(tok string) string { return "http://127.0.0.1:1/invite/accept?token=ssi_" + tok }
	msgs := []SentMail{{"a@x", link("1")}, {"a@x", link("2")}, {"b@x", link("3")}}
	if d := CheckMail(msgs, map[string]int{"a@x": 2, "b@x": 1}); len(d) != 0 {
		t.Fatalf("one e-mail per decision reported: %v", d)
	}
	tests := []struct {
		name   string
		msgs   []SentMail
		claims map[string]int
		want   []string
	}{
		{"same link twice", append(msgs, SentMail{"b@x", link("3")}), map[string]int{"a@x": 2, "b@x": 2}, []string{"delivered 2 times"}},
		{"more e-mails than decisions", msgs, map[string]int{"a@x": 1, "b@x": 1}, []string{"2 invite e-mails delivered, 1 send decisions"}},
		{"e-mail with no decision", msgs, map[string]int{"a@x": 2}, []string{"1 invite e-mails delivered, 0 send decisions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := CheckMail(tt.msgs, tt.claims)
			if len(d) != len(tt.want) {
				t.Fatalf("divergences = %v, want %v", d, tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(d[i].Detail, w) {
					t.Errorf("divergence %d = %q, want %q", i, d[i].Detail, w)
				}
				if strings.Contains(d[i].Subject, "ssi_3") {
					t.Errorf("report leaks a token: %s", d[i].Subject)
				}
			}
		})
	}
}

func TestCheckSchedule(t *testing.T) {
	at := func(sec int) time.Time { return time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC) }
	per, slots, explained, d := CheckSchedule([]Enqueue{
		{"s1", "o1", "t1", at(1)}, {"s2", "o1", "t2", at(11)}, {"s1", "o2", "t1", at(1)},
	}, nil)
	if len(d) != 0 || len(explained) != 0 || slots != 3 || per["s1"] != 2 || per["s2"] != 1 {
		t.Fatalf("per=%v slots=%d explained=%v d=%v", per, slots, explained, d)
	}
	twice := []Enqueue{{"s2", "o1", "t1", at(3)}, {"s1", "o1", "t1", at(1)}}
	_, slots, explained, d = CheckSchedule(twice, []time.Time{at(0), at(5)})
	if slots != 1 || len(explained) != 0 || len(d) != 1 || !strings.Contains(d[0].Detail, "enqueued again by s2") {
		t.Fatalf("a slot enqueued by both schedulers, no Redis loss between: slots=%d explained=%v d=%v", slots, explained, d)
	}
	_, _, explained, d = CheckSchedule(twice, []time.Time{at(2)})
	if len(d) != 0 || len(explained) != 1 {
		t.Fatalf("Redis lost the task ids between the enqueues: explained=%v d=%v", explained, d)
	}
}

func TestPlanFaults(t *testing.T) {
	d := 2 * time.Minute
	a := PlanFaults(rand.New(rand.NewPCG(7, 3)), d)
	b := PlanFaults(rand.New(rand.NewPCG(7, 3)), d)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("same seed, different plans:\n%s", diff)
	}
	kinds := map[string]bool{}
	for i, f := range a {
		kinds[f.Kind] = true
		if f.At < d/20 || f.At > d*85/100 {
			t.Errorf("fault %v outside the window", f)
		}
		if i > 0 && a[i-1].At > f.At {
			t.Errorf("plan not in time order at %d", i)
		}
	}
	if len(kinds) != len(faultEvery) {
		t.Errorf("plan has kinds %v, want all %d", kinds, len(faultEvery))
	}
}
