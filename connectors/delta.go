package connectors

import (
	"context"
	"errors"
	"sync/atomic"
)

// ErrCursorExpired says the IdP refused a delta cursor (too old, or its
// sync state is gone): the caller answers with a full pull.
var ErrCursorExpired = errors.New("the identity provider refused the delta cursor")

// Membership is one user's link to one group, by external ids.
type Membership struct {
	GroupExternalID string
	UserExternalID  string
}

// Delta is what changed in an IdP since a cursor, net of what happened in
// between: a user both changed and deleted is only deleted, a member who
// joined and left is only a leave.
type Delta struct {
	// Users were created or changed, deactivations included; each as the
	// IdP has it now.
	Users []User
	// DeletedUsers are external ids of users the IdP deleted.
	DeletedUsers []string
	// Groups were created or renamed.
	Groups []Group
	// DeletedGroups are external ids of groups the IdP deleted.
	DeletedGroups []string
	// Joins and Leaves are membership changes.
	Joins, Leaves []Membership
	// Pages is how many pages holding something the IdP answered with,
	// counted as a full listing's pages are: one per page handed over.
	Pages int
}

// Empty reports whether the delta holds no change.
func (d Delta) Empty() bool {
	return len(d.Users)+len(d.DeletedUsers)+len(d.Groups)+len(d.DeletedGroups)+len(d.Joins)+len(d.Leaves) == 0
}

// DeltaDirectory is a Directory whose IdP can say what changed since a
// cursor, so that a reconciliation need not list everything.
//
// Cursor marks now; taken before a full pull starts, it makes the next
// Changes replay whatever changed while the pull ran (applying a change
// twice is harmless). Changes returns what changed since cursor and the
// cursor to ask with next time; it either completes or fails, never
// returning part of a delta. A cursor the IdP refuses gives an error
// matching ErrCursorExpired. Cursors are opaque and hold no secret.
type DeltaDirectory interface {
	Directory
	Cursor(ctx context.Context) (string, error)
	Changes(ctx context.Context, cursor string) (Delta, string, error)
}

// AsDelta returns dir as a DeltaDirectory when its IdP offers deltas. A
// Directory that Open scoped to some groups ("groups" in its settings)
// offers none: the IdPs' deltas are not scoped the same way, so it is
// pulled in full.
func AsDelta(dir Directory) (DeltaDirectory, bool) {
	if w, ok := dir.(interface{ asDelta() (DeltaDirectory, bool) }); ok {
		return w.asDelta()
	}
	d, ok := dir.(DeltaDirectory)
	return d, ok
}

// asDelta keeps redaction on the deltas of a Directory that offers them.
func (r redacting) asDelta() (DeltaDirectory, bool) {
	d, ok := AsDelta(r.d)
	if !ok {
		return nil, false
	}
	return redactingDelta{redacting: r, delta: d}, true
}

type redactingDelta struct {
	redacting
	delta DeltaDirectory
}

func (r redactingDelta) Cursor(ctx context.Context) (string, error) {
	c, err := r.delta.Cursor(ctx)
	return c, redact(err, r.secrets)
}

func (r redactingDelta) Changes(ctx context.Context, cursor string) (Delta, string, error) {
	d, next, err := r.delta.Changes(ctx, cursor)
	return d, next, redact(err, r.secrets)
}

type requestsKey struct{}

// CountRequests returns a context under which connectors count each HTTP
// request they send (retries included) into the returned counter, so that
// a run can report what it cost the IdP.
func CountRequests(ctx context.Context) (context.Context, *atomic.Int64) {
	n := new(atomic.Int64)
	return context.WithValue(ctx, requestsKey{}, n), n
}

// CountRequest adds one request to ctx's counter, if it has one. A
// connector's transport calls it for every request it sends.
func CountRequest(ctx context.Context) {
	if n, ok := ctx.Value(requestsKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
}
