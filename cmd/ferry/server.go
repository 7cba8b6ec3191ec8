package main

import (
	"context"
	"os"

	"github.com/ferryhq/ferry/nomad"
	"github.com/ferryhq/ferry/scheduler/plugins"
)

// runServer runs the control plane against NATS (state, worker metrics) and
// Nomad (workers). Any number of servers may run: all serve the API, the
// one holding the leader lock reconciles.
func runServer(ctx context.Context, cfg serverConfig) error {
	log := cfg.Log.newLogger(os.Stderr, nil).With().Str("service", "ferry-server").Logger()
	cp := controlPlaneConfig{
		Listen: cfg.Listen, ListenFlag: "listen",
		Region: cfg.Region, Account: cfg.Account,
		NATSURL: cfg.NATS, WorkerNATSURL: cfg.WorkerNATS,
		Replicas:            cfg.NATSReplicas,
		MetricsInterval:     cfg.MetricsInterval,
		Autoscaler:          cfg.Autoscaler,
		PluginURL:           cfg.PluginURL,
		AssumeExecutionRole: cfg.AssumeExecutionRole,
		PluginS3: plugins.S3Config{
			Endpoint: cfg.PluginS3Endpoint, Region: cfg.PluginS3Region, PathStyle: cfg.PluginS3PathStyle,
		},
		Logger: log,
		Ready: func(addr, _ string) {
			log.Info().Str("api", "http://"+addr).Msg("ferry server ready")
		},
	}
	if cfg.Nomad == "" {
		// No Nomad: the same control plane over the local executor, workers
		// as child processes of this server (one machine, as in ferry dev).
		x, err := newLocalExecutor(cfg.DataDir, log)
		if err != nil {
			return err
		}
		log.Info().Str("data_dir", cfg.DataDir).Msg("workers run as child processes (no --nomad)")
		xctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = x.Run(xctx)
		}()
		defer func() { stop(); <-done }()
		cp.Deployer = x
		return runControlPlane(ctx, cp)
	}
	cmd, image := cfg.WorkerCommand, cfg.WorkerImage
	var artifact *nomad.WorkerArtifact
	switch {
	case cfg.Driver == nomad.DriverDocker:
		cmd = ""
	case cfg.WorkerArtifact != "":
		// Nomad fetches the ferry binary for every worker: no command to
		// install on the clients.
		cmd, image = "", ""
		artifact = &nomad.WorkerArtifact{Source: cfg.WorkerArtifact, Checksum: cfg.WorkerArtifactChecksum, Binary: cfg.WorkerArtifactBinary}
	default:
		image = ""
	}
	d, err := nomad.NewDeployer(nomad.Config{
		Nomad: nomad.ClientConfig{
			Address: cfg.Nomad, Token: cfg.NomadToken,
			Namespace: cfg.NomadNamespace, Region: cfg.NomadRegion,
			CACert: cfg.NomadCACert, ClientCert: cfg.NomadClientCert, ClientKey: cfg.NomadClientKey,
			TLSServerName: cfg.NomadTLSServerName,
		},
		Render: nomad.RenderConfig{
			Namespace: cfg.NomadNamespace, Region: cfg.NomadRegion,
			Datacenters: cfg.Datacenters, NodePool: cfg.NodePool,
			Driver: cfg.Driver, WorkerCommand: cmd, Image: image, WorkerArtifact: artifact,
			MHzPerVCPU: cfg.MHzPerVCPU, ReserveCores: cfg.ReserveCores,
		},
		Logger: log.With().Str("component", "nomad").Logger(),
	})
	if err != nil {
		return err
	}
	log.Info().Str("nomad", cfg.Nomad).Str("namespace", cfg.NomadNamespace).Str("driver", cfg.Driver).
		Bool("token", cfg.NomadToken != "").Msg("workers run as nomad jobs")
	cp.Deployer, cp.DeployerChanges, cp.DeployerWatch = nomadDeployer{d}, d.Changes(), d.Watch
	return runControlPlane(ctx, cp)
}
