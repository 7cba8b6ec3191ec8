package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ferryhq/ferry/nomad"
	"github.com/ferryhq/ferry/scheduler"
	"github.com/ferryhq/ferry/scheduler/local"
	"github.com/rs/zerolog"
)

// newLocalExecutor runs workers as child processes of this ferry binary.
func newLocalExecutor(dataDir string, log zerolog.Logger) (*local.Executor, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the ferry binary to run workers: %w", err)
	}
	return local.New(local.Config{
		Command:     []string{exe, "worker"},
		DataDir:     filepath.Join(dataDir, "workers"),
		Logger:      log.With().Str("component", "local-executor").Logger(),
		KillTimeout: 15 * time.Second,
	})
}

// nomadDeployer adapts the nomad package's Deployer to the scheduler's
// interface; the two packages do not import each other.
type nomadDeployer struct{ d *nomad.Deployer }

var _ scheduler.Deployer = nomadDeployer{}

func (n nomadDeployer) Apply(ctx context.Context, d scheduler.Deployment) error {
	nd := nomad.Deployment{
		Name: d.Name, Arn: d.Arn, Revision: d.Revision, Restarts: d.Restarts,
		Workers: d.Workers, Mcu: d.Mcu, Spec: d.Spec, Autoscaling: d.Autoscaling, Reason: d.Reason,
	}
	if p := d.Plugin; p != nil {
		// Nomad fetches the checked ZIP from the Ferry API and refuses it
		// unless its MD5 is the one recorded when the plugin was checked.
		nd.Plugin = &nomad.PluginArtifact{Source: p.URL, Checksum: "md5:" + p.Md5, Binary: p.Binary}
	}
	return n.d.Apply(ctx, nd)
}

func (n nomadDeployer) Remove(ctx context.Context, name string) error { return n.d.Remove(ctx, name) }

func (n nomadDeployer) List(ctx context.Context) ([]string, error) { return n.d.List(ctx) }

func (n nomadDeployer) Observe(ctx context.Context, name string) (scheduler.Observation, error) {
	o, err := n.d.Observe(ctx, name)
	if err != nil {
		return scheduler.Observation{}, err
	}
	return scheduler.Observation{
		Deployed: o.Deployed, Workers: o.Workers, Alive: o.Alive, IDs: o.IDs,
		CrashLoop: o.CrashLoop || o.RolloutFailed, PlacementFailed: o.PlacementFailed, Reason: o.Reason,
	}, nil
}
