// Package converge makes an organization's local state (memberships, local
// groups) match its directory state (what the IdP says), entity by entity.
// It decides provisioning, and keeps the last admin, per entity, and it is
// the only code that applies those decisions: the job handlers call it for
// SCIM changes and for the reconciler's repairs alike. The reconciler's
// set-based plan (store.PlanUsers and the reconciler's last-admin keep)
// mirrors the same decisions in SQL, to preview and count a whole
// organization's changes without loading it; TestDecisionAgreement pins
// both to one table of cases on every backend.
//
// Every call reads both sides and writes only what differs, so it acts on
// the state it finds, never on the event that caused the call: running it
// twice, late, out of order or concurrently leaves the same state. Each call
// is split into a pure decision per entity (a Plan, which a dry run can
// show) and its application inside one transaction that holds the rows it
// decided on. Users are converged in batches (ApplyUsers): the facts of
// the whole batch are read with a few set-based queries and its creations
// written set-based, while every decision is the single user's; converging
// one user is the batch of one.
//
// Each change a transaction applies appends its event to the
// organization's change feed (store.AppendEvents) as that transaction's
// last write; a converge that changes nothing appends none.
package converge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

// Actor is the audit actor of every converge change.
const Actor = "converge"

// Inviter decides an invite inside converge's transaction. It returns the
// outbox row that queues the invite's e-mail, which converge adds in the
// same transaction, or false when the decision (membership, sendNumber) is
// already recorded.
//
// DecideFirst records the first decision (send number 1) of memberships
// created in the same transaction, all at once.
type Inviter interface {
	Decide(ctx context.Context, tx *store.Store, orgID, membershipID string, sendNumber int) (store.OutboxRow, bool, error)
	DecideFirst(ctx context.Context, tx *store.Store, orgID string, membershipIDs []string) ([]store.OutboxRow, error)
}

// Converger converges users and groups.
type Converger struct {
	Store   *store.Store
	Invites Inviter
	// Notify, when set, is called after a commit that queued an invite in
	// the outbox, so the relay need not wait for its next poll.
	Notify func()
}

// maxAttempts bounds the retries of a transaction that lost a race on a
// unique key (a concurrent converge created the row first) or hit a
// deadlock: the next attempt reads the winner's rows and decides again.
const maxAttempts = 5

// inTx runs fn in a transaction, again when it lost a race. Converge
// commits do not wait for the disk: a converge lost to a database crash is
// made again by the next converge of the entity or by the reconciler, and
// whatever depended on it (an invite e-mail's claim) commits durably and so
// flushes it first.
func (c *Converger) inTx(ctx context.Context, fn func(tx *store.Store) error) error {
	return c.retryTx(ctx, true, fn)
}

// retryTx runs fn in a transaction, again when it lost a race; relax lets
// the commit skip waiting for the disk (see inTx).
func (c *Converger) retryTx(ctx context.Context, relax bool, fn func(tx *store.Store) error) error {
	for attempt := 1; ; attempt++ {
		err := c.Store.Tx(ctx, func(tx *store.Store) error {
			if relax {
				if err := tx.RelaxDurability(ctx); err != nil {
					return err
				}
			}
			return fn(tx)
		})
		if err == nil || attempt == maxAttempts || ctx.Err() != nil ||
			!(errors.Is(err, store.ErrConflict) || store.IsTransient(err)) {
			return err
		}
	}
}

// bulk collects the writes of a transaction that are made set-based just
// before it commits: its provisions (users and memberships to create), its
// audit events, the outbox rows of its invites, and the group links of the
// members it created. Outbox rows written last also
// keep the relay lag (measured from a row's creation) close to the time
// from commit.
type bulk struct {
	// actor is the audit actor of the events, Actor when empty.
	actor      string
	provisions []UserPlan
	events     []store.AuditEvent
	outbox     []store.OutboxRow
	// links maps the directory user of each new membership to it, in
	// organization linkOrg (a batch is one organization's).
	links   map[string]string
	linkOrg string
	// changes are the events of the transaction's changes, appended last
	// (store.AppendEvents), in organization changeOrg.
	changes   []store.Change
	changeOrg string
}

// change queues the event of a change of local state.
func (t *bulk) change(orgID string, c store.Change) {
	if t.changeOrg == "" {
		t.changeOrg = orgID
	}
	if orgID != t.changeOrg {
		panic("converge: one transaction changes two organizations")
	}
	t.changes = append(t.changes, c)
}

// memberEvent queues the event of a decision applied to a member, if the
// decision has one and a field the admin API shows changed.
func (t *bulk) memberEvent(orgID string, d lifecycle.Decision, memberID string, changed []string) {
	typ := d.EventType()
	if typ == "" || typ == lifecycle.EventMemberUpdated && !slices.ContainsFunc(changed, shownField) {
		return
	}
	t.change(orgID, store.Change{Type: typ, EntityType: store.EntityMember, EntityID: memberID})
}

// shownField says a changed field is one of the member as the admin API
// shows it; the shared users row's e-mail is not.
func shownField(f string) bool { return f != "userEmail" }

func (t *bulk) add(orgID string, d lifecycle.Decision, entityType, entityID string, detail ...string) {
	var parts []string
	for _, d := range detail {
		if d != "" {
			parts = append(parts, d)
		}
	}
	actor := t.actor
	if actor == "" {
		actor = Actor
	}
	t.events = append(t.events, store.AuditEvent{
		OrgID: orgID, Actor: actor, Action: d.AuditAction(), EntityType: entityType, EntityID: entityID,
		Outcome: string(d.Outcome()), Detail: strings.Join(parts, "; "),
	})
}

// link queues the group links of a new membership.
func (t *bulk) link(orgID, directoryUserID, membershipID string) {
	if t.links == nil {
		t.links, t.linkOrg = map[string]string{}, orgID
	}
	if orgID != t.linkOrg {
		panic("converge: one transaction links members of two organizations")
	}
	t.links[directoryUserID] = membershipID
}

func (t *bulk) flush(ctx context.Context, tx *store.Store) error {
	// Groups converged before these users could not link them; link them
	// now, so the order of user and group jobs does not matter. Last, so
	// that the share locks on their directory groups are held only while
	// the transaction finishes.
	links, err := tx.LinkMembershipsToGroups(ctx, t.linkOrg, t.links)
	if err != nil {
		return err
	}
	for _, l := range links {
		t.change(l.OrgID, store.Change{Type: lifecycle.EventGroupMemberAdded, EntityType: store.EntityGroup, EntityID: l.GroupID, MemberID: l.MembershipID})
	}
	if err := tx.AddAuditEvents(ctx, t.events); err != nil {
		return err
	}
	if len(t.outbox) > 0 {
		if err := tx.AddOutbox(ctx, t.outbox...); err != nil {
			return err
		}
	}
	// Last: its counter row orders the organization's commits.
	return tx.AppendEvents(ctx, t.changeOrg, t.changes)
}

func changedDetail(fields []string) string {
	if len(fields) == 0 {
		return ""
	}
	return "changed " + strings.Join(fields, ", ")
}

// notFoundAsNil turns ErrNotFound into a nil pointer: absence is a state
// converge acts on, not a failure.
func notFoundAsNil[T any](v T, err error) (*T, error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
