package scheduler

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/plugins"
	"github.com/ferryhq/ferry/scheduler/store"
)

// errInvalid marks a rendering problem the user has to fix (a missing
// worker configuration revision, an unreadable properties file); the
// connector fails with it instead of being retried.
var errInvalid = errors.New("invalid configuration")

// renderSpec builds the WorkerSpec for a connector running workers workers.
func (r *Reconciler) renderSpec(ctx context.Context, c jobs.Connector, workers int) (jobs.WorkerSpec, error) {
	spec := c.Spec
	cfg := make(map[string]string, len(r.cfg.WorkerDefaults)+len(spec.ConnectorConfiguration))
	for k, v := range r.cfg.WorkerDefaults {
		cfg[k] = v
	}
	for k, v := range spec.ConnectorConfiguration {
		cfg[k] = v
	}
	ws := jobs.WorkerSpec{
		Connector:        spec.ConnectorName,
		ConnectorArn:     c.Arn,
		Revision:         c.RunRevision(),
		Class:            strings.TrimSpace(cfg["connector.class"]),
		Config:           cfg,
		BootstrapServers: spec.KafkaCluster.ApacheKafkaCluster.BootstrapServers,
		Mcu:              spec.Capacity.Mcu(),
		Workers:          workers,
		TasksMax:         jobs.TasksMax(spec.Capacity, cfg, workers),
		NatsURL:          r.cfg.NatsURL,
		MetricsInterval:  r.cfg.MetricsInterval.String(),
	}
	if r.cfg.AssumeExecutionRole {
		ws.ServiceExecutionRoleArn = spec.ServiceExecutionRoleArn
	}
	if ws.Class == "" {
		return ws, fmt.Errorf("%w: connectorConfiguration has no connector.class", errInvalid)
	}
	if ref := spec.WorkerConfiguration; ref != nil && ref.WorkerConfigurationArn != "" {
		props, err := r.workerProperties(ctx, ref)
		if err != nil {
			return ws, err
		}
		ws.WorkerProperties = props
	}
	return ws, nil
}

// workerProperties decodes the referenced worker configuration revision.
func (r *Reconciler) workerProperties(ctx context.Context, ref *jobs.WorkerConfigurationRef) (map[string]string, error) {
	arn, err := jobs.ParseARN(ref.WorkerConfigurationArn)
	if err != nil {
		return nil, fmt.Errorf("%w: worker configuration: %v", errInvalid, err)
	}
	wc, err := r.findWorkerConfig(ctx, arn)
	if err != nil {
		return nil, err
	}
	rev, ok := wc.Revision(ref.Revision)
	if !ok {
		return nil, fmt.Errorf("%w: worker configuration %s has no revision %d", errInvalid, ref.WorkerConfigurationArn, ref.Revision)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rev.PropertiesFileContent))
	if err != nil {
		return nil, fmt.Errorf("%w: worker configuration %s revision %d: properties are not base64: %v", errInvalid, ref.WorkerConfigurationArn, ref.Revision, err)
	}
	props, err := jobs.ParseProperties(string(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: worker configuration %s revision %d: %v", errInvalid, ref.WorkerConfigurationArn, ref.Revision, err)
	}
	return props, nil
}

// findWorkerConfig looks the worker configuration up by its name (the
// likely key) and falls back to scanning for its ARN, so the reconciler does
// not depend on how the API keys the bucket.
func (r *Reconciler) findWorkerConfig(ctx context.Context, arn jobs.ARN) (store.WorkerConfiguration, error) {
	want := arn.String()
	for _, key := range []string{arn.Name, arn.ID} {
		e, err := r.cfg.Store.WorkerConfigs.Get(ctx, key)
		if err == nil && e.Value.Arn == want {
			return e.Value, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.WorkerConfiguration{}, fmt.Errorf("get worker configuration: %w", err)
		}
	}
	all, err := r.cfg.Store.WorkerConfigs.List(ctx, "")
	if err != nil {
		return store.WorkerConfiguration{}, fmt.Errorf("list worker configurations: %w", err)
	}
	for _, e := range all {
		if e.Value.Arn == want {
			return e.Value, nil
		}
	}
	return store.WorkerConfiguration{}, fmt.Errorf("%w: worker configuration %s does not exist", errInvalid, want)
}

// pluginArtifact returns the custom plugin whose binary the connector's
// workers run, or nil for the built-in plugin (and for a custom plugin
// recorded before Ferry read plugin files, which runs on the ferry binary).
func (r *Reconciler) pluginArtifact(ctx context.Context, c jobs.Connector) (*PluginArtifact, error) {
	if len(c.Spec.Plugins) == 0 || c.Spec.Plugins[0].CustomPlugin.CustomPluginArn == "" {
		return nil, nil
	}
	ref := c.Spec.Plugins[0].CustomPlugin.CustomPluginArn
	arn, err := jobs.ParseARN(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: custom plugin: %v", errInvalid, err)
	}
	e, err := r.cfg.Store.Plugins.Get(ctx, arn.Name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && e.Value.Arn != ref) {
		return nil, fmt.Errorf("%w: custom plugin %s does not exist", errInvalid, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("get custom plugin: %w", err)
	}
	pl := e.Value
	if !pl.Manifested() {
		return nil, nil
	}
	if pl.State != plugins.StateActive {
		return nil, fmt.Errorf("%w: custom plugin %s is %s, not ACTIVE", errInvalid, pl.Name, pl.State)
	}
	if r.cfg.PluginURL == "" {
		return nil, fmt.Errorf("%w: custom plugin %s cannot be fetched: this Ferry server has no plugin URL (ferry server --plugin-url)", errInvalid, pl.Name)
	}
	return &PluginArtifact{
		Name: pl.Name, Arn: pl.Arn, Revision: pl.Revision,
		URL: strings.TrimRight(r.cfg.PluginURL, "/") + plugins.FilePath(pl.Name, arn.ID, pl.Revision),
		Md5: pl.FileMd5, Size: pl.FileSize, Binary: pl.Binary,
	}, nil
}
