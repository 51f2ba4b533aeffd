package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/app"
	"github.com/scimsync/scimsync/config"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/store"
)

const reconcileUsage = "reconcile --org ID [--dry-run] [--json] [--allow-mass-deprovision [--confirmed-removals N] [--confirmed-losses DIGEST]] [--full]"

// reconcileCmd runs one reconciliation in this process (no worker needed)
// and prints its plan. It exits 0 when the run succeeded (a dry run
// included) and 1 when it failed or was blocked.
func reconcileCmd(ctx context.Context, args []string, out, errOut io.Writer, getenv env) error {
	fs := newFlagSet("reconcile", reconcileUsage, errOut)
	orgID := fs.String("org", "", "organization id (required)")
	dryRun := fs.Bool("dry-run", false, "plan and print the plan; change nothing")
	asJSON := fs.Bool("json", false, "print the run and its plan as JSON")
	allow := fs.Bool("allow-mass-deprovision", false, "confirm a plan that the deprovision guard blocks")
	confirmed := fs.Int("confirmed-removals", -1, "with --allow-mass-deprovision: the deprovisions and removals reviewed; a plan with more is blocked again")
	losses := fs.String("confirmed-losses", "", "with --allow-mass-deprovision: the reviewed plan's guard.losses (from --json); a plan taking away others is blocked again")
	full := fs.Bool("full", false, "pull the IdP in full where a delta would do")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *orgID == "" {
		return usageError{"--org is required"}
	}
	if (*confirmed >= 0 || *losses != "") && !*allow {
		return usageError{"--confirmed-removals and --confirmed-losses bound --allow-mass-deprovision: give it too"}
	}
	if *losses != "" && !reconciler.IsLossesDigest(*losses) {
		return usageError{"--confirmed-losses takes a blocked plan's guard.losses: 64 hex digits"}
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return err
	}
	log := newLogger(errOut, max(cfg.LogLevel, slog.LevelWarn))
	r, done, err := app.OpenReconciler(ctx, cfg, log, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	defer done()

	progress := &progressPrinter{w: errOut}
	opts := reconciler.Options{DryRun: *dryRun, AllowMassDeprovision: *allow, Full: *full, Trigger: reconciler.TriggerCLI, Progress: progress.print}
	if *confirmed >= 0 {
		opts.ConfirmedRemovals = confirmed
	}
	opts.ConfirmedLosses = *losses
	run, err := r.Reconcile(ctx, *orgID, opts)
	progress.finish()
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("organization %q not found", *orgID)
		}
		return err
	}
	if *asJSON {
		err = printRunJSON(ctx, out, r.Store, run)
	} else {
		err = printRunTable(ctx, out, r.Store, run)
	}
	if err != nil {
		return err
	}
	switch run.Status {
	case store.RunFailed:
		return fmt.Errorf("run %s failed: %s", run.ID, run.Error)
	case store.RunBlocked:
		return fmt.Errorf("run %s blocked: %s", run.ID, run.Error)
	}
	return nil
}

// progressPrinter shows a long pull's progress on stderr, at most once a
// second.
type progressPrinter struct {
	w    io.Writer
	last time.Time
	p    reconciler.Progress
}

func (pp *progressPrinter) print(p reconciler.Progress) {
	pp.p = p
	if time.Since(pp.last) < time.Second {
		return
	}
	pp.last = time.Now()
	pp.line()
}

func (pp *progressPrinter) line() {
	p := pp.p
	fmt.Fprintf(pp.w, "reconcile: %d pages fetched (%s): %d users, %d groups, %d group members\n", p.Pages, p.Phase, p.Users, p.Groups, p.Members)
}

func (pp *progressPrinter) finish() {
	if !pp.last.IsZero() {
		pp.line()
	}
}

func printRunTable(ctx context.Context, out io.Writer, st *store.Store, run store.SyncRun) error {
	var plan reconciler.Plan
	_ = json.Unmarshal([]byte(run.Plan), &plan) // a plan that does not parse shows as zeros
	kind := ""
	if run.DryRun {
		kind = " (dry run: nothing was changed)"
	}
	fmt.Fprintf(out, "Run %s: %s%s\n", run.ID, run.Status, kind)
	if run.Error != "" {
		fmt.Fprintf(out, "  %s\n", run.Error)
	}
	if p := plan.Pull; p != nil {
		if p.Mode == store.PullDelta {
			fmt.Fprintf(out, "Pulled changes from %s in %d requests: %d users, %d deleted; %d groups, %d deleted; %d joins, %d leaves\n",
				p.Source, run.IdPRequests, p.Users, p.DeletedUsers, p.Groups, p.DeletedGroups, p.GroupMembers, p.Leaves)
		} else {
			fmt.Fprintf(out, "Pulled from %s in full: %d pages (%d requests), %d users, %d groups, %d group members\n",
				p.Source, p.Pages, run.IdPRequests, p.Users, p.Groups, p.GroupMembers)
		}
	}
	if g := plan.Guard; g.Tripped && run.DryRun && !g.Confirmed {
		fmt.Fprintf(out, "The deprovision guard would block this plan: %s.\nApply it with --allow-mass-deprovision.\n", g.Reason)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLAN\tCOUNT")
	for _, c := range []struct {
		name string
		n    int
	}{
		{"provision", plan.Provision}, {"update", plan.Update}, {"deprovision", plan.Deprovision}, {"remove", plan.Remove},
		{"resendInvite", plan.ResendInvite}, {"groupChanges", plan.GroupChanges}, {"skip", plan.Skip}, {"keep", plan.Keep},
	} {
		fmt.Fprintf(tw, "%s\t%d\n", c.name, c.n)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tENTITY\tDETAIL")
	err := st.EachSyncRunItem(ctx, run.OrgID, run.ID, func(items []store.SyncRunItem) error {
		for _, it := range items {
			fmt.Fprintf(tw, "%s\t%s %s\t%s\n", it.Action, it.EntityType, it.EntityID, it.Detail)
		}
		return tw.Flush() // per batch, so memory stays flat
	})
	if err != nil {
		return err
	}
	return tw.Flush()
}

// printRunJSON prints {"run": …, "items": […]}, streaming the items.
func printRunJSON(ctx context.Context, out io.Writer, st *store.Store, run store.SyncRun) error {
	head, err := json.Marshal(admin.ViewSyncRun(run))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "{\"run\":%s,\"items\":[", head)
	first := true
	err = st.EachSyncRunItem(ctx, run.OrgID, run.ID, func(items []store.SyncRunItem) error {
		var buf bytes.Buffer
		for _, it := range items {
			if !first {
				buf.WriteString(",")
			}
			first = false
			b, err := json.Marshal(admin.SyncRunItemView{Action: it.Action, EntityType: it.EntityType, EntityID: it.EntityID, Detail: it.Detail})
			if err != nil {
				return err
			}
			buf.Write(b)
		}
		_, err := out.Write(buf.Bytes())
		return err
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, "]}")
	return err
}
