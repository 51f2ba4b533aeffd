// Package app assembles scimsync's parts from a checked configuration and
// runs the roles a command asks for (api, worker, scheduler, or all of them)
// under one context, with graceful shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/broker"
	"github.com/scimsync/scimsync/config"
	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/console"
	"github.com/scimsync/scimsync/inbound"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/invalidation"
	"github.com/scimsync/scimsync/jobs"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/ops"
	"github.com/scimsync/scimsync/source"
	"github.com/scimsync/scimsync/store"
)

// Roles says which parts a process runs.
type Roles struct {
	API, Worker, Scheduler bool
}

// All is what `serve` runs.
var All = Roles{API: true, Worker: true, Scheduler: true}

func (r Roles) String() string {
	s := ""
	for _, x := range []struct {
		on   bool
		name string
	}{{r.API, "api"}, {r.Worker, "worker"}, {r.Scheduler, "scheduler"}} {
		if x.on {
			if s != "" {
				s += ","
			}
			s += x.name
		}
	}
	return s
}

// App holds the shared parts: database, Redis, metrics, credential box.
type App struct {
	Cfg      config.Config
	Log      *slog.Logger
	Store    *store.Store
	Broker   *broker.Broker
	Registry *prometheus.Registry
	Box      *secret.Box

	work jobParts
	// configureSCIM, when set, adjusts the SCIM server before its handler
	// is built (tests: its clock and cache TTL).
	configureSCIM func(*inbound.Server)
}

// Open connects to the database (migrating it) and to Redis, and loads the
// key that seals IdP credentials.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	st, n, err := OpenStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	db, _ := config.ParseDatabaseURL(cfg.DatabaseURL)
	log.Info("database ready", "driver", db.Driver, "migrations_applied", n, "schema_version", store.LatestSchemaVersion())

	box, err := loadBox(cfg, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	br, err := broker.Open(ctx, cfg.RedisURL, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &App{Cfg: cfg, Log: log, Store: st, Broker: br, Registry: ops.NewRegistry(), Box: box}, nil
}

// OpenStore opens the database cfg names and applies the migrations it
// lacks, returning how many it applied. log may be nil.
func OpenStore(ctx context.Context, cfg config.Config, log *slog.Logger) (*store.Store, int, error) {
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Logger: log, MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return nil, 0, err
	}
	n, err := st.Migrate(ctx)
	if err != nil {
		st.Close()
		return nil, 0, err
	}
	return st, n, nil
}

func loadBox(cfg config.Config, log *slog.Logger) (*secret.Box, error) {
	var key []byte
	if cfg.SecretKey != "" {
		k, err := secret.ParseKey(cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("%w: SCIMSYNC_SECRET_KEY: %v", config.ErrUsage, err)
		}
		key = k
	} else {
		path := filepath.Join(cfg.DataDir, "secret.key")
		k, created, err := secret.LoadOrCreateKeyFile(path)
		if err != nil {
			return nil, err
		}
		if created {
			log.Warn("generated SCIMSYNC_SECRET_KEY into the data directory; keep it with the database, IdP credentials cannot be read without it", "path", path)
		}
		key = k
	}
	return secret.NewBox(key)
}

// Close releases the database and Redis.
func (a *App) Close() {
	a.Broker.Close()
	a.Store.Close()
}

// AdminService is the operator actions bound to this app.
func (a *App) AdminService() *admin.Service {
	return &admin.Service{Store: a.Store, PublicURL: a.Cfg.PublicURL, Connectors: a.Connectors(), Converger: a.jobs().converger,
		Webhooks: admin.Webhooks{Box: a.Box, AllowPrivate: a.Cfg.WebhookAllowPrivate, Resender: a.jobs().deliver}}
}

// Connectors opens this app's organizations' connectors: the admin API's
// for its test connection, the reconciler's for its pulls.
func (a *App) Connectors() *source.Opener {
	return newOpener(a.Store, a.Box, a.Log)
}

func newOpener(st *store.Store, box *secret.Box, log *slog.Logger) *source.Opener {
	return &source.Opener{Store: st, Box: box, Options: connectors.Options{Logger: log.With("component", "connector")}}
}

// Handler is the whole HTTP surface: SCIM, admin API, operator console,
// dashboard, metrics, health. Until the returned close function is called, it also listens
// for SCIM token changes made by other processes; close stops that and
// the dashboard's Redis client.
func (a *App) Handler(auth *admin.Auth) (http.Handler, func() error) {
	httpm := ops.NewHTTPMetrics(a.Registry)
	a.Registry.MustRegister(ops.NewQueueCollector(asynq.NewInspector(a.Broker.Opt)))

	scim := &inbound.Server{Store: a.Store, Log: a.Log.With("component", "scim"), PublicURL: a.Cfg.PublicURL, Notify: a.NotifyOutbox}
	if a.configureSCIM != nil {
		a.configureSCIM(scim)
	}
	// The admin API drops this process's cached verdicts itself, before it
	// answers, and tells the other processes over Redis.
	bus := invalidation.New(a.Broker, scim, a.Log.With("component", "invalidation"))
	svc := a.AdminService()
	svc.Invalidate = bus

	cons := &console.Console{Service: svc, Auth: auth, Redis: a.Broker.Client(), Log: a.Log.With("component", "console"),
		IdleTimeout: a.Cfg.ConsoleIdleTimeout, Secure: strings.HasPrefix(a.Cfg.PublicURL, "https://"), MonitoringPath: ops.MonitoringPath,
		TrustedProxies: a.Cfg.TrustedProxies}

	mux := http.NewServeMux()
	a.healthRoutes(mux)
	// The dashboard takes a console session as well as the admin token.
	mon, closeMon := ops.Monitoring(a.Broker.Opt, cons)
	mux.Handle(ops.MonitoringPath, mon)
	mux.Handle(console.Prefix, cons.Handler())
	mux.Handle("/api/v1/", (&admin.API{Service: svc, Auth: auth, Log: a.Log}).Handler())
	invite.Routes(mux, a.jobs().invites, a.Log.With("component", "invite")) // public: the token is the credential
	mux.Handle(inbound.Prefix+"/", scim.Handler())

	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		bus.Run(ctx)
	}()
	return httpm.Wrap(mux), func() error {
		cancel()
		<-listening
		return closeMon()
	}
}

// Run runs roles until ctx ends, then shuts them down gracefully: the HTTP
// server stops accepting and lets in-flight requests finish; the worker
// lets running tasks finish; each within the shutdown timeout.
func (a *App) Run(ctx context.Context, roles Roles, announce io.Writer) error {
	a.Log.Info("starting", "roles", roles.String())
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		cancel()
	}

	if roles.API {
		auth, err := admin.LoadAuth(ctx, a.Store, a.Cfg.AdminToken, announce)
		if err != nil {
			return err
		}
		h, closeMon := a.Handler(auth)
		defer closeMon()
		ln, err := net.Listen("tcp", a.Cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", a.Cfg.HTTPAddr, err)
		}
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
			BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		}
		a.Log.Info("http listening", "addr", ln.Addr().String(), "public_url", a.Cfg.PublicURL, "scim_url", a.AdminService().SCIMURL())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fail(fmt.Errorf("http server: %w", err))
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), a.Cfg.ShutdownTimeout)
			defer scancel()
			if err := srv.Shutdown(sctx); err != nil {
				a.Log.Warn("http shutdown did not finish in time", "err", err)
			}
		}()
	}

	if roles.Worker {
		srv := asynq.NewServer(a.Broker.Opt, jobs.ServerConfig(a.Log, 0, a.Cfg.ShutdownTimeout))
		mux := asynq.NewServeMux()
		if err := a.registerJobs(mux); err != nil {
			return err
		}
		if err := srv.Start(mux); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		a.Log.Info("worker started", "queues", jobs.QueueWeights)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ctx.Done()
			// Shutdown waits for running tasks up to ShutdownTimeout.
			srv.Shutdown()
		}()
	}

	if roles.API || roles.Worker {
		a.startRelay(ctx, &wg)
	}

	if roles.Scheduler {
		a.startScheduler(ctx, &wg)
	}

	if !roles.API && a.Cfg.MetricsAddr != "" {
		if err := a.startMetrics(ctx, &wg, fail); err != nil {
			cancel()
			wg.Wait()
			return err
		}
	}

	if a.Cfg.DebugAddr != "" {
		if err := a.startDebug(ctx, &wg, fail); err != nil {
			cancel()
			wg.Wait()
			return err
		}
	}

	<-ctx.Done()
	a.Log.Info("shutting down", "timeout", a.Cfg.ShutdownTimeout.String())
	wg.Wait()
	a.Log.Info("stopped")
	return errors.Join(errs...)
}
