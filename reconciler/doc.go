// Package reconciler is scimsync's safety net: on a schedule, it refreshes
// an organization's directory state from its IdP, diffs it against local
// state in the database, records the plan on a sync run, and enqueues the
// converge jobs that repair every difference, within guards that keep a
// partial listing or a mass removal from ever deprovisioning anyone.
//
// A run (Reconciler.Reconcile) pulls, plans, then applies; what it may
// never do:
//
//   - act on a partial listing: a pull that fails in any way (an IdP error,
//     429s beyond the retry budget, a timeout, a cancelled context) marks the
//     run failed and applies nothing: no directory row is swept or
//     deactivated, no converge is queued;
//   - remove in bulk unconfirmed: a plan that deprovisions or removes more
//     than the guard's share of the members (or deletes that share of the
//     local groups), and more than GuardMinimum, is blocked until an operator
//     runs it again with AllowMassDeprovision;
//   - take away the last admin: the organization's last admin is never
//     deprovisioned, removed or demoted by a run, and its directory row is
//     kept (converge keeps the last admin too, whatever wakes it), until an
//     operator settles it (converge.Converger.SettleAdmin): the next run
//     then plans what the IdP says;
//   - provision by itself: it only queues converge jobs (package converge),
//     the one place where local state changes;
//   - run twice at once for an organization, or apply after it was taken
//     for abandoned.
//
// The Scheduler enqueues runs on each organization's cron schedule; any
// number of schedulers enqueue each run once, and a slot whose task is
// delivered again (Redis lost the task ids) still runs once.
package reconciler
