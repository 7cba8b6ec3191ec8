package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/runtime/connect"
	"github.com/ferryhq/ferry/scheduler"
	"github.com/ferryhq/ferry/scheduler/api"
	"github.com/ferryhq/ferry/scheduler/autoscale"
	"github.com/ferryhq/ferry/scheduler/plugins"
	"github.com/ferryhq/ferry/scheduler/store"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// controlPlaneConfig is what `ferry dev` and `ferry server` share: the MSK
// Connect API, the store and the reconciler, over a Deployer.
type controlPlaneConfig struct {
	Listen          string
	ListenFlag      string // the flag that sets Listen, for error messages
	Region, Account string
	NATSURL         string // where state lives
	WorkerNATSURL   string // what workers are told
	Replicas        int    // JetStream replicas of the KV buckets
	Deployer        scheduler.Deployer
	// DeployerChanges, if set, names connectors whose deployment changed,
	// so the reconciler looks at them at once.
	DeployerChanges <-chan string
	// DeployerWatch, if set, follows the deployer's platform (Nomad's
	// blocking queries) for as long as this replica leads: the reconciler
	// is its only user, so the other replicas need not ask Nomad anything.
	DeployerWatch   func(ctx context.Context) error
	WorkerDefaults  map[string]string
	MetricsInterval time.Duration
	// AssumeExecutionRole hands workers each connector's service execution
	// role (scheduler.Config.AssumeExecutionRole).
	AssumeExecutionRole bool
	// Autoscaler tunes the autoscaler (zero fields take its defaults).
	Autoscaler autoscale.Settings
	// PluginS3 is how the server reads custom plugin files from S3.
	PluginS3 plugins.S3Config
	// PluginURL is the base URL at which workers' deployers (Nomad clients,
	// the local executor) reach this server's plugin files; empty derives
	// it from the API's listen address.
	PluginURL string
	// TempDir holds plugin files while they are checked (default the
	// system's).
	TempDir string
	Logger  zerolog.Logger
	// Ready, if set, is called once the API listens, with the built-in
	// plugin's ARN.
	Ready func(addr, builtinPluginArn string)
}

// runControlPlane serves the API and runs the reconciler until ctx ends.
func runControlPlane(ctx context.Context, cfg controlPlaneConfig) error {
	log := cfg.Logger
	nc, err := nats.Connect(cfg.NATSURL,
		nats.Name("ferry-control-plane"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn().Err(err).Msg("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info().Msg("nats reconnected") }),
	)
	if err != nil {
		return fmt.Errorf("connect to nats %s: %w", cfg.NATSURL, err)
	}
	defer nc.Close()

	st, err := openStore(ctx, nc, cfg.Replicas, log)
	if err != nil {
		return err
	}
	pluginFiles, err := plugins.NewS3(ctx, cfg.PluginS3)
	if err != nil {
		return err
	}
	srv, err := api.New(api.Config{
		Store: st, Region: cfg.Region, Account: cfg.Account,
		Catalog:      registryCatalog{connect.Default()},
		ConfigChecks: autoscale.ConfigProblems,
		PluginFiles:  pluginFiles,
		Logger:       log.With().Str("component", "api").Logger(),
	})
	if err != nil {
		return err
	}
	if err := srv.Bootstrap(ctx); err != nil {
		return fmt.Errorf("register the built-in plugin: %w", err)
	}
	recCfg := scheduler.Config{
		Store: st, Conn: nc, Deployer: cfg.Deployer,
		Logger:              log,
		NatsURL:             cfg.WorkerNATSURL,
		WorkerDefaults:      cfg.WorkerDefaults,
		MetricsInterval:     cfg.MetricsInterval,
		AssumeExecutionRole: cfg.AssumeExecutionRole,
		Changes:             cfg.DeployerChanges,
	}
	if _, err := scheduler.New(recCfg); err != nil {
		return err
	}
	scalerCfg := autoscale.Config{
		Store: st, Conn: nc, Settings: cfg.Autoscaler,
		Logger: log,
	}
	if _, err := autoscale.New(scalerCfg); err != nil {
		return err
	}
	checkerCfg := plugins.CheckerConfig{Store: st, Source: pluginFiles, Logger: log, TempDir: cfg.TempDir}
	if _, err := plugins.NewChecker(checkerCfg); err != nil {
		return err
	}
	// Only the replica holding the lock reconciles; every replica serves
	// the API.
	leader, err := scheduler.NewLeader(scheduler.LeaderConfig{
		Conn: nc, Replicas: cfg.Replicas,
		Logger: log.With().Str("component", "leader").Logger(),
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		if errors.Is(err, syscallEADDRINUSE) {
			return fmt.Errorf("the API cannot listen on %s: the address is in use (is another ferry running?); choose another with --%s", cfg.Listen, cfg.ListenFlag)
		}
		return fmt.Errorf("the API cannot listen on %s: %w", cfg.Listen, err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	recCfg.PluginURL = cfg.PluginURL
	if recCfg.PluginURL == "" {
		recCfg.PluginURL = pluginURLFor(ln.Addr())
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("api: %w", err)
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		err := leader.Run(runCtx, func(lctx context.Context) error {
			// A fresh reconciler per term: nothing a former term believed
			// carries over.
			rec, err := scheduler.New(recCfg)
			if err != nil {
				return err
			}
			// The autoscaler runs only where the reconciler runs; a fresh
			// one per term recovers cooldowns and a scale in flight from
			// the operations its predecessor recorded.
			sc, err := autoscale.New(scalerCfg)
			if err != nil {
				return err
			}
			// Custom plugins are checked on the leader too; a plugin left
			// CREATING by a former term is checked by this one.
			pc, err := plugins.NewChecker(checkerCfg)
			if err != nil {
				return err
			}
			runs := []func(context.Context) error{rec.Run, sc.Run, pc.Run}
			if cfg.DeployerWatch != nil {
				runs = append(runs, cfg.DeployerWatch)
			}
			return runTogether(lctx, runs...)
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			errs <- fmt.Errorf("reconciler: %w", err)
			cancel()
		}
	}()
	log.Info().Str("addr", ln.Addr().String()).Str("plugin_url", recCfg.PluginURL).Msg("msk connect api listening")
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String(), srv.BuiltinPluginArn())
	}
	<-runCtx.Done()
	shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	_ = hs.Shutdown(shutdownCtx)
	cancel()
	wg.Wait()
	close(errs)
	return <-errs // nil when closed and empty
}

// pluginURLFor is the base URL of plugin files on a server listening on
// addr: the address itself, or this host's name when it listens on every
// interface.
func pluginURLFor(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// openStore opens the KV buckets, waiting for NATS (JetStream) to answer.
func openStore(ctx context.Context, nc *nats.Conn, replicas int, log zerolog.Logger) (*store.Store, error) {
	delay := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := store.OpenConn(octx, nc, store.Options{Replicas: replicas})
		cancel()
		if err == nil {
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		log.Warn().Err(err).Int("attempt", attempt).Msg("state store not reachable yet (is NATS running with JetStream?); retrying")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		if delay < 10*time.Second {
			delay *= 2
		}
	}
}

// registryCatalog tells the API which classes the built-in plugin provides
// and checks their configurations, from the connector registry.
type registryCatalog struct{ reg *connect.Registry }

var _ api.Catalog = registryCatalog{}

func (c registryCatalog) Provides(class string) bool {
	_, ok := c.reg.Lookup(class)
	return ok
}

func (c registryCatalog) ValidateConfig(class string, cfg map[string]string) []jobs.FieldError {
	err := c.reg.ValidateConfig(class, cfg)
	if err == nil {
		return nil
	}
	var ces connect.ConfigErrors
	if errors.As(err, &ces) {
		out := make([]jobs.FieldError, 0, len(ces))
		for _, ce := range ces {
			out = append(out, jobs.FieldError{Field: ce.Key, Rule: ce.Message})
		}
		return out
	}
	return []jobs.FieldError{{Field: "connector.class", Rule: strings.TrimSpace(err.Error())}}
}

// runTogether runs long-lived parts until ctx ends or one of them returns;
// then it stops the others, waits for all, and returns the first error.
func runTogether(ctx context.Context, runs ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(runs))
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- run(ctx)
			cancel()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
