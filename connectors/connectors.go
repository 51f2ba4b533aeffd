// Package connectors owns the pull side of directory sync: reading users,
// groups and group members from identity-provider APIs.
//
// Each IdP has its own package (okta, jumpcloud, entra, google) that turns
// the IdP's API into a [Directory], and registers itself under its type name
// so that [Open] can build one from the settings and credentials an organization
// stored through the admin API. The command decides which exist: it imports
// the connectors it offers (cmd/scimsync: connectors/all, every one of
// them); libraries import none.
//
// A Directory streams: it hands its caller one page at a time and keeps
// nothing once the caller returns, so memory stays flat however large the
// directory is (Okta's keeps the ids it listed while it lists its
// deactivated users apart). A listing either completes (nil after the last
// page) or fails; a partial listing never looks complete, which is what lets
// the reconciler treat a user missing from a completed listing as gone.
//
// A user the IdP deactivates or suspends is still listed, with Active false:
// it is deprovisioned and keeps its group links, as when a SCIM push sets
// active to false. Only a user the IdP deleted is missing, and removed.
package connectors

import "context"

// User is an IdP user, normalized across IdPs.
type User struct {
	ExternalID string // the IdP's stable id for the user
	UserName   string // login name (Okta login, JumpCloud username, Entra userPrincipalName)
	Email      string // may be empty when the IdP has none
	GivenName  string
	FamilyName string
	Active     bool   // the IdP lets the user sign in (see each connector for its mapping)
	RawStatus  string // the IdP's own status, kept for display and audit
}

// Group is an IdP group.
type Group struct {
	ExternalID string
	Name       string
}

// Directory streams an IdP's users, groups and group members page by page.
// ListUsers lists every user the IdP has, whatever its status, each once;
// ListGroupMembers lists a group's deactivated members too.
//
// Each method either completes, returning nil after fn has seen the last
// page, or returns an error; a partial listing never looks complete. An error
// returned by fn stops the listing and is returned wrapped; so does the
// cancellation of ctx. Pages belong to fn: a Directory does not reuse them.
// Methods are safe for concurrent use. A Directory caches nothing between
// listings, so each listing reads the IdP afresh. A user whose state
// changes while a listing runs may be handed over twice; the later sighting
// is the newer.
type Directory interface {
	ListUsers(ctx context.Context, fn func(page []User) error) error
	ListGroups(ctx context.Context, fn func(page []Group) error) error
	ListGroupMembers(ctx context.Context, groupExternalID string, fn func(userExternalIDs []string) error) error
	// TestConnection checks that the settings and credentials work. Wrong
	// credentials give an error matching ErrUnauthorized that carries the
	// IdP's own message.
	TestConnection(ctx context.Context) error
}
