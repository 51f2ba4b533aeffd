package store

import "time"

// Org is an organization: one tenant.
type Org struct {
	ID                string `gorm:"column:id;primaryKey" json:"id"`
	Name              string `gorm:"column:name" json:"name"`
	SCIMEnabled       bool   `gorm:"column:scim_enabled" json:"scimEnabled"`
	ReconcileSchedule string `gorm:"column:reconcile_schedule" json:"reconcileSchedule"`
	// FullReconcileSchedule says when a run of an organization whose
	// connector offers deltas pulls in full all the same.
	FullReconcileSchedule string    `gorm:"column:full_reconcile_schedule" json:"fullReconcileSchedule"`
	RoleMapping           JSONMap   `gorm:"column:role_mapping" json:"roleMapping"`
	CreatedAt             time.Time `gorm:"column:created_at" json:"createdAt"`
	UpdatedAt             time.Time `gorm:"column:updated_at" json:"updatedAt"`
}

func (Org) TableName() string { return "organizations" }

// SCIMToken is a bearer token for an organization's SCIM endpoint. Only the
// hash of the token is kept.
type SCIMToken struct {
	ID          string     `gorm:"column:id;primaryKey"`
	OrgID       string     `gorm:"column:org_id"`
	Description string     `gorm:"column:description"`
	TokenHash   string     `gorm:"column:token_hash"`
	CreatedAt   time.Time  `gorm:"column:created_at"`
	ExpiresAt   *time.Time `gorm:"column:expires_at"`
	RevokedAt   *time.Time `gorm:"column:revoked_at"`
	LastUsedAt  *time.Time `gorm:"column:last_used_at"`
}

func (SCIMToken) TableName() string { return "scim_tokens" }

// Usable reports whether the token may authenticate at now.
func (t SCIMToken) Usable(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// Connector is an organization's IdP connector. Credentials are sealed by the
// caller before they reach the store.
type Connector struct {
	OrgID       string `gorm:"column:org_id;primaryKey"`
	Type        string `gorm:"column:type"`
	Settings    string `gorm:"column:settings"`
	Credentials []byte `gorm:"column:credentials"`
	// Generation grows with every change of settings or credentials.
	Generation int64 `gorm:"column:generation"`
	// DeltaCursor is where the next delta pull starts, valid while
	// CursorGeneration is Generation; empty before the first full pull.
	DeltaCursor      string     `gorm:"column:delta_cursor"`
	CursorGeneration int64      `gorm:"column:cursor_generation"`
	LastFullAt       *time.Time `gorm:"column:last_full_at"`
	CreatedAt        time.Time  `gorm:"column:created_at"`
	UpdatedAt        time.Time  `gorm:"column:updated_at"`
}

func (Connector) TableName() string { return "connectors" }

// DirectoryUser is what the IdP says about one user of an organization,
// written by SCIM pushes and connector pulls. ID is the SCIM id.
type DirectoryUser struct {
	ID          string    `gorm:"column:id;primaryKey"`
	OrgID       string    `gorm:"column:org_id"`
	Source      string    `gorm:"column:source"`
	ExternalID  string    `gorm:"column:external_id"`
	UserName    string    `gorm:"column:user_name"`
	UserNameKey string    `gorm:"column:user_name_key"`
	Email       string    `gorm:"column:email"`
	EmailKey    string    `gorm:"column:email_key"`
	GivenName   string    `gorm:"column:given_name"`
	FamilyName  string    `gorm:"column:family_name"`
	DisplayName string    `gorm:"column:display_name"`
	Active      bool      `gorm:"column:active"`
	RawStatus   string    `gorm:"column:raw_status"`
	Attributes  string    `gorm:"column:attributes"`
	Version     int64     `gorm:"column:version"`
	Snapshot    int64     `gorm:"column:snapshot"`
	CreatedAt   time.Time `gorm:"column:created_at"`
	UpdatedAt   time.Time `gorm:"column:updated_at"`
}

func (DirectoryUser) TableName() string { return "directory_users" }

// DirectoryGroup is what the IdP says about one group.
type DirectoryGroup struct {
	ID             string    `gorm:"column:id;primaryKey"`
	OrgID          string    `gorm:"column:org_id"`
	Source         string    `gorm:"column:source"`
	ExternalID     string    `gorm:"column:external_id"`
	DisplayName    string    `gorm:"column:display_name"`
	DisplayNameKey string    `gorm:"column:display_name_key"`
	Attributes     string    `gorm:"column:attributes"`
	Version        int64     `gorm:"column:version"`
	Snapshot       int64     `gorm:"column:snapshot"`
	CreatedAt      time.Time `gorm:"column:created_at"`
	UpdatedAt      time.Time `gorm:"column:updated_at"`
}

func (DirectoryGroup) TableName() string { return "directory_groups" }

// DirectoryGroupMember says that the IdP puts a directory user in a group.
type DirectoryGroupMember struct {
	OrgID    string `gorm:"column:org_id"`
	GroupID  string `gorm:"column:group_id;primaryKey"`
	UserID   string `gorm:"column:user_id;primaryKey"`
	Snapshot int64  `gorm:"column:snapshot"`
}

func (DirectoryGroupMember) TableName() string { return "directory_group_members" }

// User is a person of the application, shared across organizations.
type User struct {
	ID        string    `gorm:"column:id;primaryKey"`
	Email     string    `gorm:"column:email"`
	EmailKey  string    `gorm:"column:email_key"`
	CreatedAt time.Time `gorm:"column:created_at"`
	UpdatedAt time.Time `gorm:"column:updated_at"`
}

func (User) TableName() string { return "users" }

// Membership is a user's place in an organization: the local state that
// converge keeps in step with the directory.
type Membership struct {
	ID              string     `gorm:"column:id;primaryKey" json:"id"`
	OrgID           string     `gorm:"column:org_id" json:"-"`
	UserID          string     `gorm:"column:user_id" json:"userId"`
	DirectoryUserID string     `gorm:"column:directory_user_id" json:"-"`
	Status          string     `gorm:"column:status" json:"status"`
	Role            string     `gorm:"column:role" json:"role"`
	Email           string     `gorm:"column:email" json:"email"`
	FirstName       string     `gorm:"column:first_name" json:"firstName"`
	LastName        string     `gorm:"column:last_name" json:"lastName"`
	Source          string     `gorm:"column:source" json:"source"`
	ExternalID      string     `gorm:"column:external_id" json:"externalId"`
	InviteSends     int        `gorm:"column:invite_sends" json:"inviteSends"`
	LastInvitedAt   *time.Time `gorm:"column:last_invited_at" json:"lastInvitedAt"`
	DeprovisionedAt *time.Time `gorm:"column:deprovisioned_at" json:"deprovisionedAt,omitempty"`
	CreatedAt       time.Time  `gorm:"column:created_at" json:"createdAt"`
	UpdatedAt       time.Time  `gorm:"column:updated_at" json:"updatedAt"`
}

func (Membership) TableName() string { return "org_memberships" }

// Group is an organization's local group, mirrored from a directory group.
type Group struct {
	ID               string    `gorm:"column:id;primaryKey"`
	OrgID            string    `gorm:"column:org_id"`
	DirectoryGroupID string    `gorm:"column:directory_group_id"`
	Name             string    `gorm:"column:name"`
	Source           string    `gorm:"column:source"`
	ExternalID       string    `gorm:"column:external_id"`
	CreatedAt        time.Time `gorm:"column:created_at"`
	UpdatedAt        time.Time `gorm:"column:updated_at"`
}

func (Group) TableName() string { return "local_groups" }

// GroupMember puts a membership in a local group.
type GroupMember struct {
	OrgID        string    `gorm:"column:org_id"`
	GroupID      string    `gorm:"column:group_id;primaryKey"`
	MembershipID string    `gorm:"column:membership_id;primaryKey"`
	CreatedAt    time.Time `gorm:"column:created_at"`
}

func (GroupMember) TableName() string { return "local_group_members" }

// Invite is one invitation e-mail decision for a pending member. Only the
// hash of its token is kept.
type Invite struct {
	ID           string     `gorm:"column:id;primaryKey"`
	OrgID        string     `gorm:"column:org_id"`
	MembershipID string     `gorm:"column:membership_id"`
	TokenHash    string     `gorm:"column:token_hash"`
	SendNumber   int        `gorm:"column:send_number"`
	CreatedAt    time.Time  `gorm:"column:created_at"`
	ExpiresAt    time.Time  `gorm:"column:expires_at"`
	SentAt       *time.Time `gorm:"column:sent_at"`
	AcceptedAt   *time.Time `gorm:"column:accepted_at"`
	SupersededAt *time.Time `gorm:"column:superseded_at"`
}

func (Invite) TableName() string { return "invites" }

// OutboxRow is work committed together with a directory change, waiting to
// be relayed into the job queue.
type OutboxRow struct {
	ID        int64      `gorm:"column:id;primaryKey;autoIncrement"`
	OrgID     string     `gorm:"column:org_id"`
	TaskType  string     `gorm:"column:task_type"`
	TaskID    string     `gorm:"column:task_id"`
	Queue     string     `gorm:"column:queue"`
	Payload   []byte     `gorm:"column:payload"`
	CreatedAt time.Time  `gorm:"column:created_at"`
	SentAt    *time.Time `gorm:"column:sent_at"`
	Attempts  int        `gorm:"column:attempts"`
	LastError string     `gorm:"column:last_error"`
}

func (OutboxRow) TableName() string { return "outbox" }

// SyncRun is one reconciliation of an organization.
type SyncRun struct {
	ID                   string `gorm:"column:id;primaryKey"`
	OrgID                string `gorm:"column:org_id"`
	Status               string `gorm:"column:status"`
	DryRun               bool   `gorm:"column:dry_run"`
	AllowMassDeprovision bool   `gorm:"column:allow_mass_deprovision"`
	Trigger              string `gorm:"column:trigger_kind"`
	Plan                 string `gorm:"column:plan"`
	PagesFetched         int    `gorm:"column:pages_fetched"`
	Error                string `gorm:"column:error"`
	// Snapshot numbers the organization's runs; the directory rows the
	// run's pull writes carry it. 0 until the run starts.
	Snapshot int64 `gorm:"column:snapshot"`
	// Slot is the schedule slot (Unix seconds) a scheduled run is for, 0
	// for any other run. An organization's slot runs once.
	Slot       int64      `gorm:"column:slot"`
	CreatedAt  time.Time  `gorm:"column:created_at"`
	StartedAt  *time.Time `gorm:"column:started_at"`
	FinishedAt *time.Time `gorm:"column:finished_at"`
	// HeartbeatAt is when a running run last showed progress; a run
	// silent for long is taken to be abandoned.
	HeartbeatAt *time.Time `gorm:"column:heartbeat_at"`
	// FullRequested: the operator asked for a full pull.
	FullRequested bool `gorm:"column:full_requested"`
	// PullMode is PullFull or PullDelta, empty for a run without a pull;
	// CursorBefore and CursorAfter the delta cursor the run started from
	// and the one it leaves; IdPRequests the requests its pull sent.
	PullMode     string `gorm:"column:pull_mode"`
	CursorBefore string `gorm:"column:cursor_before"`
	CursorAfter  string `gorm:"column:cursor_after"`
	IdPRequests  int64  `gorm:"column:idp_requests"`
	// ConfirmedRemovals and ConfirmedGroupDeletions, when set, bound what
	// AllowMassDeprovision confirms: the plan the operator reviewed.
	ConfirmedRemovals       *int `gorm:"column:confirmed_removals"`
	ConfirmedGroupDeletions *int `gorm:"column:confirmed_group_deletions"`
	// ConfirmedLosses, when set, is the losses digest of the plan the
	// operator reviewed (a Guard's Losses): a plan whose losses differ is
	// not confirmed by it.
	ConfirmedLosses string `gorm:"column:confirmed_losses"`
}

// Pull modes of a run.
const (
	PullFull  = "full"
	PullDelta = "delta"
)

func (SyncRun) TableName() string { return "sync_runs" }

// SyncRunItem is one planned change of a sync run.
type SyncRunItem struct {
	ID         int64  `gorm:"column:id;primaryKey;autoIncrement"`
	RunID      string `gorm:"column:run_id"`
	OrgID      string `gorm:"column:org_id"`
	Action     string `gorm:"column:action"`
	EntityType string `gorm:"column:entity_type"`
	EntityID   string `gorm:"column:entity_id"`
	Detail     string `gorm:"column:detail"`
}

func (SyncRunItem) TableName() string { return "sync_run_items" }

// AuditEvent records who changed what, when, and through which path.
type AuditEvent struct {
	ID         int64     `gorm:"column:id;primaryKey;autoIncrement" json:"id"`
	OrgID      string    `gorm:"column:org_id" json:"-"`
	Actor      string    `gorm:"column:actor" json:"actor"`
	Action     string    `gorm:"column:action" json:"action"`
	EntityType string    `gorm:"column:entity_type" json:"entityType"`
	EntityID   string    `gorm:"column:entity_id" json:"entityId"`
	Outcome    string    `gorm:"column:outcome" json:"outcome,omitempty"`
	Detail     string    `gorm:"column:detail" json:"detail,omitempty"`
	CreatedAt  time.Time `gorm:"column:created_at" json:"createdAt"`
}

func (AuditEvent) TableName() string { return "audit_events" }

// MailMessage is an e-mail recorded instead of sent (no SMTP configured), or
// the record that a send with this idempotency key happened.
type MailMessage struct {
	ID             int64     `gorm:"column:id;primaryKey;autoIncrement"`
	OrgID          string    `gorm:"column:org_id"`
	IdempotencyKey string    `gorm:"column:idempotency_key"`
	Recipient      string    `gorm:"column:recipient"`
	Subject        string    `gorm:"column:subject"`
	TextBody       string    `gorm:"column:text_body"`
	HTMLBody       string    `gorm:"column:html_body"`
	Status         string    `gorm:"column:status"`
	CreatedAt      time.Time `gorm:"column:created_at"`
}

func (MailMessage) TableName() string { return "mail_log" }

// setting is a process-wide key/value, such as the generated admin token's
// hash.
type setting struct {
	Key       string    `gorm:"column:key;primaryKey"`
	Value     string    `gorm:"column:value"`
	UpdatedAt time.Time `gorm:"column:updated_at"`
}

func (setting) TableName() string { return "settings" }
