// Package config owns scimsync's runtime configuration: the environment
// variables and flags of SPEC.md, their defaults, and the checks that turn a
// bad setting into one clear message at start.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Var describes one setting: its environment variable, the flag of `serve`
// that overrides it, its default and what it means.
type Var struct {
	Env     string
	Flag    string
	Default string
	Usage   string
}

// Vars lists every setting. The README table and the docker-compose check are
// kept honest against this list.
var Vars = []Var{
	{"SCIMSYNC_HTTP_ADDR", "http-addr", "127.0.0.1:8080", "listen address"},
	{"SCIMSYNC_PUBLIC_URL", "public-url", "", "base of the SCIM URL and of invite links (default http:// + listen address)"},
	{"DATABASE_URL", "database-url", "sqlite://scimsync.db", "sqlite://PATH (embedded, pure Go) or postgres://…"},
	{"REDIS_URL", "redis-url", "", "redis://, rediss://, redis-sentinel:// or redis-cluster:// (default: embedded in-memory Redis)"},
	{"SCIMSYNC_ADMIN_TOKEN", "admin-token", "", "bearer token of the admin API and dashboard (default: generated on first start, printed once, stored hashed)"},
	{"SCIMSYNC_SECRET_KEY", "secret-key", "", "32-byte key (hex or base64) that encrypts IdP credentials (default: generated into the data directory)"},
	{"SCIMSYNC_DATA_DIR", "data-dir", "", "where a generated secret key is kept (default: the SQLite database's directory, else the working directory)"},
	{"SMTP_URL", "smtp-url", "", "smtp://user:pass@host:port (STARTTLS when offered) or smtps://; empty: mail is recorded, not sent"},
	{"SCIMSYNC_MAIL_FROM", "mail-from", "scimsync <no-reply@localhost>", "sender of invite e-mails"},
	{"SCIMSYNC_RECONCILE_SCHEDULE", "reconcile-schedule", "@every 1h", "default cron spec for organizations without their own"},
	{"SCIMSYNC_INVITE_TTL", "invite-ttl", "168h", "how long an invite link stays valid"},
	{"SCIMSYNC_INVITE_RESEND_AFTER", "invite-resend-after", "24h", "re-send an unaccepted invite after this long"},
	{"SCIMSYNC_INVITE_MAX_SENDS", "invite-max-sends", "5", "then stop re-sending"},
	{"SCIMSYNC_DEPROVISION_GUARD", "deprovision-guard", "10%", "block a reconciliation that would deprovision or remove more than this share of members (and more than 5)"},
	{"SCIMSYNC_LOG_LEVEL", "log-level", "info", "debug, info, warn or error"},
	{"SCIMSYNC_SHUTDOWN_TIMEOUT", "shutdown-timeout", "30s", "how long in-flight requests and jobs may take to finish on SIGTERM"},
	{"SCIMSYNC_RECONCILE_STALE_AFTER", "reconcile-stale-after", "2m", "how long a running reconciliation may go without marking itself alive (it does so every quarter of this) before another run takes it for abandoned (its process died)"},
	{"SCIMSYNC_EVENT_RETENTION", "event-retention", "720h", "how long the change feed keeps an event (30 days); a reader whose cursor falls behind it is told to resync"},
	{"SCIMSYNC_WEBHOOK_ALLOW_PRIVATE", "webhook-allow-private", "false", "accept webhook URLs whose host resolves to a private, link-local or unspecified address (loopback is always accepted)"},
	{"SCIMSYNC_CONSOLE_IDLE_TIMEOUT", "console-idle-timeout", "30m", "an operator console session ends after this long without a request"},
	{"SCIMSYNC_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client that console sign-in failures are counted by (default: none; the peer address counts)"},
	{"SCIMSYNC_METRICS_ADDR", "metrics-addr", "", "worker and scheduler roles: serve /metrics, /healthz and /readyz on this address (default: none)"},
	{"SCIMSYNC_DB_MAX_CONNS", "db-max-conns", "0", "database connections each process may hold (0: on Postgres four per CPU and at least 8, on SQLite 8); a request waits for one when all are busy"},
	{"SCIMSYNC_DEBUG_ADDR", "debug-addr", "", "serve /debug/pprof/ (CPU, heap, goroutine, block and mutex profiles, runtime trace) and /debug/dbpool on this loopback address (default: none)"},
}

// Config is the checked configuration. The zero value is not valid; use Load.
type Config struct {
	HTTPAddr          string
	PublicURL         string
	DatabaseURL       string
	RedisURL          string
	AdminToken        string
	SecretKey         string
	DataDir           string
	SMTPURL           string
	MailFrom          string
	ReconcileSchedule string
	InviteTTL         time.Duration
	InviteResendAfter time.Duration
	InviteMaxSends    int
	// DeprovisionGuard is a fraction in [0,1].
	DeprovisionGuard float64
	LogLevel         slog.Level
	ShutdownTimeout  time.Duration
	// MetricsAddr is where a process without the api role serves its
	// metrics and health; empty: nowhere.
	MetricsAddr string
	// DebugAddr is a loopback address for profiles and pool statistics;
	// empty: none.
	DebugAddr string
	// DBMaxConns caps the database pool; 0 leaves the store's default.
	DBMaxConns int
	// ReconcileStaleAfter is when a silent running run counts as abandoned.
	ReconcileStaleAfter time.Duration
	// EventRetention is how long events are kept.
	EventRetention time.Duration
	// WebhookAllowPrivate lets webhooks reach private addresses.
	WebhookAllowPrivate bool
	// ConsoleIdleTimeout ends an idle console session.
	ConsoleIdleTimeout time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed; none by default.
	TrustedProxies []netip.Prefix
}

// ErrUsage marks configuration errors: the command exits 2 on them.
var ErrUsage = errors.New("invalid configuration")

// Bind registers a flag for every setting on fs, defaulting to the value in
// the environment (looked up by getenv) or the built-in default. The returned
// function, called after fs.Parse, builds and checks the Config.
func Bind(fs *flag.FlagSet, getenv func(string) string) func() (Config, error) {
	vals := make(map[string]*string, len(Vars))
	for _, v := range Vars {
		def := v.Default
		if e := getenv(v.Env); e != "" {
			def = e
		}
		vals[v.Env] = fs.String(v.Flag, def, v.Usage+" ($"+v.Env+")")
	}
	return func() (Config, error) {
		m := make(map[string]string, len(vals))
		for k, p := range vals {
			m[k] = strings.TrimSpace(*p)
		}
		return parse(m)
	}
}

// FromEnv builds the Config from the environment alone, for commands other
// than serve and the role commands.
func FromEnv(getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("env", flag.ContinueOnError)
	build := Bind(fs, getenv)
	return build()
}

func parse(m map[string]string) (Config, error) {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{env}, args...)...))
	}
	c := Config{
		HTTPAddr:          m["SCIMSYNC_HTTP_ADDR"],
		PublicURL:         strings.TrimRight(m["SCIMSYNC_PUBLIC_URL"], "/"),
		DatabaseURL:       m["DATABASE_URL"],
		RedisURL:          m["REDIS_URL"],
		AdminToken:        m["SCIMSYNC_ADMIN_TOKEN"],
		SecretKey:         m["SCIMSYNC_SECRET_KEY"],
		DataDir:           m["SCIMSYNC_DATA_DIR"],
		SMTPURL:           m["SMTP_URL"],
		MailFrom:          m["SCIMSYNC_MAIL_FROM"],
		ReconcileSchedule: m["SCIMSYNC_RECONCILE_SCHEDULE"],
		MetricsAddr:       m["SCIMSYNC_METRICS_ADDR"],
		DebugAddr:         m["SCIMSYNC_DEBUG_ADDR"],
	}

	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("SCIMSYNC_HTTP_ADDR", "%q is not host:port", c.HTTPAddr)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("SCIMSYNC_METRICS_ADDR", "%q is not host:port", c.MetricsAddr)
		}
	}
	if c.DebugAddr != "" {
		if err := checkLoopback(c.DebugAddr); err != nil {
			bad("SCIMSYNC_DEBUG_ADDR", "%v", err)
		}
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.HTTPAddr
	} else if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("SCIMSYNC_PUBLIC_URL", "%q must be an absolute http:// or https:// URL", c.PublicURL)
	}
	if _, err := ParseDatabaseURL(c.DatabaseURL); err != nil {
		bad("DATABASE_URL", "%v", err)
	}
	if c.RedisURL != "" {
		if err := checkRedisURL(c.RedisURL); err != nil {
			bad("REDIS_URL", "%v", err)
		}
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		bad("SCIMSYNC_ADMIN_TOKEN", "must be at least 16 characters")
	}
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
			bad("SMTP_URL", "must look like smtp://user:pass@host:port or smtps://…")
		}
	}
	if _, err := ParseSchedule(c.ReconcileSchedule); err != nil {
		bad("SCIMSYNC_RECONCILE_SCHEDULE", "%v", err)
	}
	dur := func(env string, dst *time.Duration) {
		d, err := time.ParseDuration(m[env])
		if err != nil || d <= 0 {
			bad(env, "%q is not a positive duration such as 24h or 30m", m[env])
			return
		}
		*dst = d
	}
	dur("SCIMSYNC_INVITE_TTL", &c.InviteTTL)
	dur("SCIMSYNC_INVITE_RESEND_AFTER", &c.InviteResendAfter)
	dur("SCIMSYNC_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	dur("SCIMSYNC_RECONCILE_STALE_AFTER", &c.ReconcileStaleAfter)
	dur("SCIMSYNC_EVENT_RETENTION", &c.EventRetention)
	dur("SCIMSYNC_CONSOLE_IDLE_TIMEOUT", &c.ConsoleIdleTimeout)
	if n, err := strconv.Atoi(m["SCIMSYNC_INVITE_MAX_SENDS"]); err != nil || n < 1 {
		bad("SCIMSYNC_INVITE_MAX_SENDS", "%q is not a whole number ≥ 1", m["SCIMSYNC_INVITE_MAX_SENDS"])
	} else {
		c.InviteMaxSends = n
	}
	if n, err := strconv.Atoi(m["SCIMSYNC_DB_MAX_CONNS"]); err != nil || n < 0 {
		bad("SCIMSYNC_DB_MAX_CONNS", "%q is not a whole number ≥ 0", m["SCIMSYNC_DB_MAX_CONNS"])
	} else {
		c.DBMaxConns = n
	}
	if g, err := ParseShare(m["SCIMSYNC_DEPROVISION_GUARD"]); err != nil {
		bad("SCIMSYNC_DEPROVISION_GUARD", "%v", err)
	} else {
		c.DeprovisionGuard = g
	}
	if err := c.LogLevel.UnmarshalText([]byte(m["SCIMSYNC_LOG_LEVEL"])); err != nil {
		bad("SCIMSYNC_LOG_LEVEL", "%q is not debug, info, warn or error", m["SCIMSYNC_LOG_LEVEL"])
	}
	if b, err := strconv.ParseBool(m["SCIMSYNC_WEBHOOK_ALLOW_PRIVATE"]); err != nil {
		bad("SCIMSYNC_WEBHOOK_ALLOW_PRIVATE", "%q is not true or false", m["SCIMSYNC_WEBHOOK_ALLOW_PRIVATE"])
	} else {
		c.WebhookAllowPrivate = b
	}
	if p, err := ParsePrefixes(m["SCIMSYNC_TRUSTED_PROXIES"]); err != nil {
		bad("SCIMSYNC_TRUSTED_PROXIES", "%v", err)
	} else {
		c.TrustedProxies = p
	}
	if c.DataDir == "" {
		c.DataDir = "."
		if db, err := ParseDatabaseURL(c.DatabaseURL); err == nil && db.Driver == "sqlite" && db.Path != ":memory:" {
			c.DataDir = filepath.Dir(db.Path)
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("%w:\n  %w", ErrUsage, joinIndented(errs))
	}
	return c, nil
}

func joinIndented(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

// Database is a parsed DATABASE_URL.
type Database struct {
	Driver string // "sqlite" or "postgres"
	// Path is the SQLite file (or ":memory:"); DSN is the Postgres URL.
	Path string
	DSN  string
}

// ParseDatabaseURL accepts sqlite://PATH and postgres:// (or postgresql://).
func ParseDatabaseURL(raw string) (Database, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return Database{}, fmt.Errorf("%q is not a URL; supported: sqlite://PATH or postgres://user@host:port/db", raw)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		if rest == "" {
			return Database{}, errors.New("sqlite:// needs a file path, e.g. sqlite://scimsync.db")
		}
		return Database{Driver: "sqlite", Path: rest}, nil
	case "postgres", "postgresql":
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return Database{}, fmt.Errorf("postgres URL must be postgres://user:pass@host:port/db")
		}
		return Database{Driver: "postgres", DSN: raw}, nil
	default:
		return Database{}, fmt.Errorf("unsupported database %q; supported: sqlite://PATH (embedded) or postgres://…", scheme)
	}
}

func checkRedisURL(raw string) error {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return fmt.Errorf("%q is not a URL", raw)
	}
	switch scheme {
	case "redis", "rediss", "redis-socket", "redis-sentinel", "redis-cluster":
		return nil
	}
	return fmt.Errorf("unsupported scheme %q; supported: redis://, rediss://, redis-socket://, redis-sentinel://, redis-cluster://", scheme)
}

var scheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule checks a cron spec: five fields, or a descriptor such as
// @hourly or @every 30m.
func ParseSchedule(spec string) (cron.Schedule, error) {
	s, err := scheduleParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%q is not a cron spec (five fields, @hourly, or @every 30m): %w", spec, err)
	}
	return s, nil
}

// ParseShare reads "10%" or "0.1" as a fraction in [0,1].
func ParseShare(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a share such as 10%% or 0.1", s)
	}
	if pct {
		f /= 100
	}
	if f < 0 || f > 1 {
		return 0, fmt.Errorf("%q is outside 0%%–100%%", s)
	}
	return f, nil
}

// ParsePrefixes reads a comma-separated list of CIDRs or single addresses
// (a single address is its own /32 or /128).
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or a CIDR such as 10.0.0.0/8", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// checkLoopback accepts host:port whose host is a loopback IP or
// localhost: profiles show request data and cost CPU, so they are never
// served to the network.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (127.0.0.1, [::1] or localhost)", addr)
	}
	return nil
}
