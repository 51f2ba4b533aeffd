// Package reconciler is scimsync's safety net: on a schedule, it refreshes
// an organization's directory state from its IdP, diffs it against local
// state in the database, records the plan on a sync run, and enqueues the
// converge jobs that repair every difference, within guards that keep a
// partial listing or a mass removal from ever deprovisioning anyone.
package reconciler
