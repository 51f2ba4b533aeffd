package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scimsync/scimsync/connectors/okta/oktafake"
)

// scimDriver makes random SCIM writes to one organization through every
// api process, one write at a time per user, recording each in the model.
type scimDriver struct {
	org    string
	scim   *SCIM
	model  *Model
	watch  *DeprovisionWatch
	groups []string          // names
	gids   map[string]string // name → SCIM id
	prefix string

	mu    sync.Mutex
	users []*liveUser // users ops may still target
	next  int
	ops   atomic.Int64
	byOp  map[OpKind]*[3]int64 // acked, unknown, rejected
}

type liveUser struct {
	ModelUser
	busy    bool
	deleted bool
	active  bool
	groups  map[string]bool
}

func newSCIMDriver(org string, scim *SCIM, model *Model, watch *DeprovisionWatch, groups []string, gids map[string]string, prefix string) *scimDriver {
	d := &scimDriver{org: org, scim: scim, model: model, watch: watch, groups: groups, gids: gids, prefix: prefix, byOp: map[OpKind]*[3]int64{}}
	for _, k := range []OpKind{OpCreate, OpRename, OpDeactivate, OpActivate, OpDelete, OpJoin, OpLeave} {
		d.byOp[k] = new([3]int64)
	}
	return d
}

// pick chooses the next write from rng: a create, or a write to an idle
// known user.
func (d *scimDriver) pick(rng *rand.Rand) (*liveUser, Op) {
	d.mu.Lock()
	defer d.mu.Unlock()
	idle := make([]*liveUser, 0, len(d.users))
	for _, u := range d.users {
		if !u.busy && !u.deleted && u.ID != "" {
			idle = append(idle, u)
		}
	}
	if len(idle) < 8 || rng.IntN(100) < 15 {
		d.next++
		u := &liveUser{ModelUser: ModelUser{UserName: fmt.Sprintf("%s-%04d@chaos.example", d.prefix, d.next)}, busy: true, active: true, groups: map[string]bool{}}
		d.users = append(d.users, u)
		return u, Op{Kind: OpCreate, Value: givenName(rng)}
	}
	u := idle[rng.IntN(len(idle))]
	u.busy = true
	g := d.groups[rng.IntN(len(d.groups))]
	switch r := rng.IntN(100); {
	case r < 25:
		return u, Op{Kind: OpRename, Value: givenName(rng)}
	case r < 40:
		if u.active {
			return u, Op{Kind: OpDeactivate}
		}
		return u, Op{Kind: OpActivate}
	case r < 47:
		return u, Op{Kind: OpDelete}
	default:
		if u.groups[g] {
			return u, Op{Kind: OpLeave, Value: g}
		}
		return u, Op{Kind: OpJoin, Value: g}
	}
}

func givenName(rng *rand.Rand) string {
	names := []string{"Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Edsger", "Radia"}
	return fmt.Sprintf("%s%d", names[rng.IntN(len(names))], rng.IntN(1000))
}

// step makes one write and records what came of it.
func (d *scimDriver) step(ctx context.Context, rng *rand.Rand, bases []string) {
	u, op := d.pick(rng)
	if op.Kind == OpDeactivate || op.Kind == OpDelete {
		d.watch.Touch(d.org, u.UserName)
	}
	base := bases[rng.IntN(len(bases))]
	ans, id := d.scim.Write(ctx, base, &u.ModelUser, op, d.gids)
	op.Outcome = ans.outcome()
	if op.Outcome == Unknown {
		// What it did is unknown: the user may now be anything its writes
		// allow, so the watch must not blame a deprovision on the product.
		d.watch.Touch(d.org, u.UserName)
	}
	d.model.Record(u.UserName, op)
	d.ops.Add(1)
	d.byOp[op.Kind][op.Outcome]++

	d.mu.Lock()
	defer d.mu.Unlock()
	u.busy = false
	switch {
	case op.Kind == OpCreate && op.Outcome == Acked:
		u.ID = id
		d.model.SetID(u.UserName, id)
	case op.Kind == OpCreate:
		u.deleted = true // never targeted again; it may or may not exist
		if op.Outcome == Rejected {
			d.users = slices.DeleteFunc(d.users, func(x *liveUser) bool { return x == u })
		}
	case op.Outcome == Unknown && op.Kind == OpDelete:
		u.deleted = true
	case op.Outcome == Acked && op.Kind == OpDelete:
		u.deleted = true
	case op.Outcome != Rejected:
		// After an unknown write too the flags follow it, for choosing the
		// next write; the model carries both branches.
		switch op.Kind {
		case OpDeactivate:
			u.active = false
		case OpActivate:
			u.active = true
		case OpJoin:
			u.groups[op.Value] = true
		case OpLeave:
			delete(u.groups, op.Value)
		}
	}
}

// counts renders writes by kind and outcome.
func (d *scimDriver) counts() map[string][3]int64 {
	out := map[string][3]int64{}
	for k, v := range d.byOp {
		out[string(k)] = [3]int64{v[0], v[1], v[2]}
	}
	return out
}

// oktaDriver changes the Okta fake's directory and keeps the truth of it:
// every change is the fake's at once, so this is exactly what a complete
// pull returns.
type oktaDriver struct {
	org    string
	fake   *oktafake.Server
	watch  *DeprovisionWatch
	groups map[string]string // name → Okta id

	mu    sync.Mutex
	users map[string]*oktaUser // by Okta id
	order []string
	next  int
	ops   atomic.Int64
	byOp  map[string]int64
}

type oktaUser struct {
	id, email, first, status string
	deleted                  bool
	groups                   map[string]bool
}

func newOktaDriver(org string, fake *oktafake.Server, watch *DeprovisionWatch, groupNames []string) *oktaDriver {
	d := &oktaDriver{org: org, fake: fake, watch: watch, groups: map[string]string{}, users: map[string]*oktaUser{}, byOp: map[string]int64{}}
	for _, n := range groupNames {
		d.groups[n] = fake.AddGroup(n).ID
	}
	return d
}

func (d *oktaDriver) add(rng *rand.Rand) {
	d.next++
	email := fmt.Sprintf("okta-%04d@chaos.example", d.next)
	first := givenName(rng)
	u := d.fake.AddUser(oktafake.User{Email: email, FirstName: first, LastName: "Chaos"})
	d.users[u.ID] = &oktaUser{id: u.ID, email: email, first: first, status: oktafake.StatusActive, groups: map[string]bool{}}
	d.order = append(d.order, u.ID)
	d.byOp["add"]++
}

// Seed adds n users, each in a random group or none.
func (d *oktaDriver) Seed(rng *rand.Rand, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := slices.Sorted(maps.Keys(d.groups))
	for range n {
		d.add(rng)
		id := d.order[len(d.order)-1]
		if g := names[rng.IntN(len(names))]; rng.IntN(3) > 0 {
			d.fake.AddMember(d.groups[g], id)
			d.users[id].groups[g] = true
		}
	}
}

// Step makes one change in the IdP.
func (d *oktaDriver) Step(rng *rand.Rand) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ops.Add(1)
	var live []*oktaUser
	for _, id := range d.order {
		if u := d.users[id]; !u.deleted {
			live = append(live, u)
		}
	}
	if len(live) == 0 || rng.IntN(100) < 15 {
		d.add(rng)
		return
	}
	u := live[rng.IntN(len(live))]
	names := slices.Sorted(maps.Keys(d.groups))
	g := names[rng.IntN(len(names))]
	switch r := rng.IntN(100); {
	case r < 25:
		u.first = givenName(rng)
		first := u.first
		d.fake.UpdateUser(u.id, func(x *oktafake.User) { x.FirstName = first })
		d.byOp["rename"]++
	case r < 37:
		status := oktafake.StatusSuspended
		if u.status != oktafake.StatusActive {
			status = oktafake.StatusActive
		} else {
			d.watch.Touch(d.org, u.email)
		}
		u.status = status
		d.fake.SetStatus(u.id, status)
		d.byOp["status:"+strings.ToLower(status)]++
	case r < 41:
		d.watch.Touch(d.org, u.email)
		u.status = oktafake.StatusDeprovisioned
		d.fake.SetStatus(u.id, u.status)
		d.byOp["status:deprovisioned"]++
	case r < 45:
		d.watch.Touch(d.org, u.email)
		u.deleted = true
		d.fake.DeleteUser(u.id)
		d.byOp["delete"]++
	default:
		if u.groups[g] {
			delete(u.groups, g)
			d.fake.RemoveMember(d.groups[g], u.id)
			d.byOp["leave"]++
		} else {
			u.groups[g] = true
			d.fake.AddMember(d.groups[g], u.id)
			d.byOp["join"]++
		}
	}
}

// Directory is the IdP's state as a complete pull reads it, by e-mail:
// deleted users are absent; DEPROVISIONED ones, like SUSPENDED ones, are
// listed inactive and keep their groups.
func (d *oktaDriver) Directory() map[string]State {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]State{}
	for _, id := range d.order {
		u := d.users[id]
		if u.deleted {
			out[u.email] = State{}
			continue
		}
		out[u.email] = State{Exists: true, Active: u.status == oktafake.StatusActive, GivenName: u.first, Groups: slices.Sorted(maps.Keys(u.groups))}
	}
	return out
}

// pace sleeps about d, jittered by rng, or until ctx ends.
func pace(ctx context.Context, rng *rand.Rand, d time.Duration) bool {
	j := time.Duration(rng.Int64N(int64(d))) + d/2
	select {
	case <-ctx.Done():
		return false
	case <-time.After(j):
		return true
	}
}
