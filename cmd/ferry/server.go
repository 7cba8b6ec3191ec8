package main

import (
	"context"
	"os"

	"github.com/ferryhq/ferry/nomad"
)

// runServer runs the control plane against NATS (state, worker metrics) and
// Nomad (workers). One server per cluster for now: leader election for
// several replicas comes with the Nomad issue.
func runServer(ctx context.Context, cfg serverConfig) error {
	log := cfg.Log.newLogger(os.Stderr, nil).With().Str("service", "ferry-server").Logger()
	driver, cmd := "exec", cfg.WorkerCommand
	if cfg.WorkerImage != "" {
		driver, cmd = "docker", ""
	}
	d, err := nomad.NewDeployer(nomad.Config{
		Nomad: nomad.ClientConfig{Address: cfg.Nomad, Namespace: cfg.NomadNamespace, Region: cfg.NomadRegion},
		Render: nomad.RenderConfig{
			Namespace: cfg.NomadNamespace, Region: cfg.NomadRegion, Datacenters: cfg.Datacenters,
			Driver: driver, WorkerCommand: cmd, Image: cfg.WorkerImage, MHzPerVCPU: cfg.MHzPerVCPU,
		},
		Logger: log.With().Str("component", "nomad").Logger(),
	})
	if err != nil {
		return err
	}
	return runControlPlane(ctx, controlPlaneConfig{
		Listen: cfg.Listen, ListenFlag: "listen",
		Region: cfg.Region, Account: cfg.Account,
		NATSURL: cfg.NATS, WorkerNATSURL: cfg.WorkerNATS,
		Deployer:        nomadDeployer{d},
		MetricsInterval: cfg.MetricsInterval,
		Logger:          log,
		Ready: func(addr, _ string) {
			log.Info().Str("api", "http://"+addr).Msg("ferry server ready")
		},
	})
}
