package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/app"
	"github.com/scimsync/scimsync/broker"
	"github.com/scimsync/scimsync/config"
	"github.com/scimsync/scimsync/inbound"
	"github.com/scimsync/scimsync/invalidation"
	"github.com/scimsync/scimsync/store"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// env reads an environment variable.
type env func(string) string

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, out, errOut io.Writer, getenv env) error
}

func commands() []command {
	return []command{
		{"serve", "run everything in one process: HTTP (SCIM, admin API, dashboard, metrics), worker and scheduler", roleCommand("serve", app.All)},
		{"api", "run the HTTP role only", roleCommand("api", app.Roles{API: true})},
		{"worker", "run the job worker role only", roleCommand("worker", app.Roles{Worker: true})},
		{"scheduler", "run the scheduler role only", roleCommand("scheduler", app.Roles{Scheduler: true})},
		{"migrate", "apply database migrations and exit", migrateCmd},
		{"org", "manage organizations: org create --name NAME", orgCmd},
		{"scim", "toggle an organization's SCIM endpoint: scim enable|disable --org ID", scimCmd},
		{"scim-token", "create a SCIM bearer token: scim-token create --org ID [--description D] [--ttl-days N]", scimTokenCmd},
		{"reconcile", "run one reconciliation now: " + reconcileUsage, reconcileCmd},
		{"webhook", "receive webhook deliveries, verify them and print their events: " + webhookListenUsage, webhookCmd},
	}
}

// usageError is a mistake in how the command was called: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, out, errOut io.Writer, getenv env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(out)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], out, errOut, getenv)
		switch {
		case err == nil || errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.Is(err, config.ErrUsage), errors.As(err, new(usageError)), errors.Is(err, admin.ErrInvalid):
			fmt.Fprintf(errOut, "scimsync %s: %v\n", c.name, err)
			return exitUsage
		default:
			fmt.Fprintf(errOut, "scimsync %s: %v\n", c.name, err)
			return exitError
		}
	}
	fmt.Fprintf(errOut, "scimsync: unknown command %q\n\n", args[0])
	printUsage(errOut)
	return exitUsage
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: scimsync COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'scimsync COMMAND --help' for a command's flags. Settings come from the")
	fmt.Fprintln(w, "environment (see README.md); serve and the role commands also take them as flags.")
}

func newFlagSet(name, usage string, errOut io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("scimsync "+name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {
		fmt.Fprintf(errOut, "Usage: scimsync %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func roleCommand(name string, roles app.Roles) func(context.Context, []string, io.Writer, io.Writer, env) error {
	return func(ctx context.Context, args []string, out, errOut io.Writer, getenv env) error {
		fs := newFlagSet(name, name+" [flags]", errOut)
		build := config.Bind(fs, getenv)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		cfg, err := build()
		if err != nil {
			return err
		}
		log := newLogger(errOut, cfg.LogLevel)
		broker.RouteLibraryLogs(log)
		a, err := app.Open(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer a.Close()
		return a.Run(ctx, roles, errOut)
	}
}

func migrateCmd(ctx context.Context, args []string, out, errOut io.Writer, getenv env) error {
	fs := newFlagSet("migrate", "migrate [flags]", errOut)
	build := config.Bind(fs, getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := build()
	if err != nil {
		return err
	}
	st, n, err := app.OpenStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(out, "applied %d migration(s); schema version %d\n", n, store.LatestSchemaVersion())
	return nil
}

// openService opens the database named by the environment for the
// one-shot management commands.
func openService(ctx context.Context, getenv env) (*admin.Service, func(), error) {
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return nil, nil, err
	}
	st, _, err := app.OpenStore(ctx, cfg, nil)
	if err != nil {
		return nil, nil, err
	}
	return &admin.Service{Store: st, PublicURL: cfg.PublicURL}, func() { st.Close() }, nil
}

// tellServers makes svc tell the processes serving SCIM, over Redis, of
// the changes it makes to SCIM access, since they cache token checks. An
// embedded Redis lives inside the serving process and cannot be reached
// from here: without REDIS_URL this does nothing, and they apply a change
// when their cache expires.
func tellServers(ctx context.Context, svc *admin.Service, cfg config.Config, errOut io.Writer) (func(), error) {
	if cfg.RedisURL == "" {
		return func() {}, nil
	}
	br, err := broker.Open(ctx, cfg.RedisURL, nil)
	if err != nil {
		return nil, err
	}
	svc.Invalidate = invalidation.New(br, nil, newLogger(errOut, cfg.LogLevel))
	return func() { br.Close() }, nil
}

// subcommand splits "VERB [flags]" and checks the verb.
func subcommand(args []string, verbs ...string) (string, []string, error) {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return "", nil, usageError{"expected one of: " + strings.Join(verbs, ", ")}
	}
	if len(args) == 0 {
		return "", nil, usageError{"expected one of: " + strings.Join(verbs, ", ")}
	}
	for _, v := range verbs {
		if args[0] == v {
			return v, args[1:], nil
		}
	}
	return "", nil, usageError{fmt.Sprintf("unknown subcommand %q; expected one of: %s", args[0], strings.Join(verbs, ", "))}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func orgNotFound(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("organization %q not found", id)
	}
	return err
}

func orgCmd(ctx context.Context, args []string, out, errOut io.Writer, getenv env) error {
	if _, rest, err := subcommand(args, "create"); err != nil {
		fmt.Fprintln(errOut, "Usage: scimsync org create --name NAME")
		return err
	} else {
		args = rest
	}
	fs := newFlagSet("org create", "org create --name NAME", errOut)
	name := fs.String("name", "", "organization name (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return usageError{"--name is required"}
	}
	svc, done, err := openService(ctx, getenv)
	if err != nil {
		return err
	}
	defer done()
	o, err := svc.CreateOrg(ctx, *name)
	if err != nil {
		return err
	}
	return printJSON(out, svc.ViewOrg(o))
}

func scimCmd(ctx context.Context, args []string, out, errOut io.Writer, getenv env) error {
	verb, rest, err := subcommand(args, "enable", "disable")
	if err != nil {
		fmt.Fprintln(errOut, "Usage: scimsync scim enable|disable --org ID")
		return err
	}
	fs := newFlagSet("scim "+verb, "scim "+verb+" --org ID", errOut)
	orgID := fs.String("org", "", "organization id (required)")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if *orgID == "" {
		return usageError{"--org is required"}
	}
	svc, done, err := openService(ctx, getenv)
	if err != nil {
		return err
	}
	defer done()
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return err
	}
	stop, err := tellServers(ctx, svc, cfg, errOut)
	if err != nil {
		return err
	}
	defer stop()
	o, err := svc.SetSCIMEnabled(ctx, *orgID, verb == "enable")
	if err != nil {
		return orgNotFound(*orgID, err)
	}
	if cfg.RedisURL == "" {
		fmt.Fprintf(errOut, "REDIS_URL is not set: a running scimsync applies this within %s, when its cache of SCIM token checks expires\n", inbound.DefaultAuthCacheTTL)
	}
	return printJSON(out, svc.ViewOrg(o))
}

func scimTokenCmd(ctx context.Context, args []string, out, errOut io.Writer, getenv env) error {
	_, rest, err := subcommand(args, "create")
	if err != nil {
		fmt.Fprintln(errOut, "Usage: scimsync scim-token create --org ID [--description D] [--ttl-days N]")
		return err
	}
	fs := newFlagSet("scim-token create", "scim-token create --org ID [--description D] [--ttl-days N]", errOut)
	orgID := fs.String("org", "", "organization id (required)")
	desc := fs.String("description", "", "what the token is for, e.g. the IdP")
	ttl := fs.Int("ttl-days", 0, "days until the token expires (0: never)")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if *orgID == "" {
		return usageError{"--org is required"}
	}
	svc, done, err := openService(ctx, getenv)
	if err != nil {
		return err
	}
	defer done()
	t, err := svc.CreateSCIMToken(ctx, *orgID, *desc, *ttl)
	if err != nil {
		return orgNotFound(*orgID, err)
	}
	fmt.Fprintf(out, "SCIM URL: %s\nToken:    %s\n\nThe token is shown only now; it is stored hashed.\n", t.SCIMURL, t.Token)
	return nil
}
