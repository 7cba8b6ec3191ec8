package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/plugins"
	"github.com/ferryhq/ferry/scheduler/store"
)

const fieldConfig = "connectorConfiguration"

// createConnector validates a CreateConnector request completely, then
// stores the connector (revision 1) and its CREATING status.
//
// Plugin checks: the plugin must exist, be ACTIVE and have the revision
// named. For the built-in plugin the Catalog must provide connector.class
// and accept the configuration; for a custom plugin its manifest must list
// connector.class (its configuration rules are in the plugin's binary,
// which the control plane never runs: the worker checks them).
func (s *Server) createConnector(w http.ResponseWriter, r *http.Request, _ string) error {
	var spec jobs.ConnectorSpec
	if err := decodeBody(w, r, &spec); err != nil {
		return err
	}
	ctx := r.Context()
	p := jobs.ValidateSpec(&spec)
	refs, err := s.checkReferences(ctx, &spec)
	if err != nil {
		return err
	}
	p = append(p, refs...)
	if len(p) > 0 {
		return invalid("CreateConnector request", p)
	}

	id := s.cfg.NewID()
	arn := s.arn(jobs.KindConnector, spec.ConnectorName, id)
	tags := spec.Tags
	spec.Tags = nil // tags live in the tags bucket, where TagResource changes them
	now := s.cfg.Now().UTC()
	c := jobs.Connector{Spec: spec, Arn: arn, CreationTime: now, Revision: 1}
	if _, err := s.st.Connectors.Create(ctx, spec.ConnectorName, c); err != nil {
		if errors.Is(err, store.ErrExists) {
			return conflict("a connector named %q already exists", spec.ConnectorName)
		}
		return fmt.Errorf("create connector %q: %w", spec.ConnectorName, err)
	}
	st := jobs.ConnectorStatus{State: jobs.StateCreating, Workers: spec.Capacity.InitialWorkers(), Updated: now}
	if _, err := s.st.Status.Put(ctx, spec.ConnectorName, st); err != nil {
		return fmt.Errorf("store status of connector %q: %w", spec.ConnectorName, err)
	}
	if len(tags) > 0 {
		if _, err := s.st.Tags.Put(ctx, id, tags); err != nil {
			return fmt.Errorf("store tags of connector %q: %w", spec.ConnectorName, err)
		}
	}
	s.log.Info().Str("connector", spec.ConnectorName).Str("arn", arn).Msg("connector created")
	return writeJSON(w, map[string]string{
		"connectorArn":   arn,
		"connectorName":  spec.ConnectorName,
		"connectorState": jobs.StateCreating,
	})
}

// checkReferences checks what ValidateSpec cannot: the plugin and worker
// configuration named exist at those revisions, and the built-in plugin
// provides the connector class. Only a store failure is returned as error.
func (s *Server) checkReferences(ctx context.Context, spec *jobs.ConnectorSpec) (jobs.Problems, error) {
	var p jobs.Problems
	if len(spec.Plugins) == 1 && spec.Plugins[0].CustomPlugin.CustomPluginArn != "" {
		ref := spec.Plugins[0].CustomPlugin
		const f = "plugins[0].customPlugin"
		pl, err := s.getPlugin(ctx, ref.CustomPluginArn, f+".customPluginArn")
		var ae *apiError
		switch {
		case err == nil:
			switch st := pl.Value.State; {
			case st == plugins.StateCreating:
				p.Add(f+".customPluginArn", "custom plugin %q is CREATING, not ACTIVE: its file is still being checked; try again once it is ACTIVE", pl.Value.Name)
			case st == plugins.StateCreateFailed && pl.Value.StateDescription != nil:
				p.Add(f+".customPluginArn", "custom plugin %q is CREATE_FAILED, not ACTIVE: %s", pl.Value.Name, pl.Value.StateDescription.Message)
			case st != pluginActive:
				p.Add(f+".customPluginArn", "custom plugin %q is %s, not ACTIVE", pl.Value.Name, st)
			}
			if ref.Revision >= 1 && ref.Revision != pl.Value.Revision {
				p.Add(f+".revision", "custom plugin %q has no revision %d (its revision is %d)", pl.Value.Name, ref.Revision, pl.Value.Revision)
			}
			p = append(p, s.checkConfig(&pl.Value, spec.ConnectorConfiguration)...)
		case errors.As(err, &ae) && ae.status < 500:
			if isNotFound(err) {
				p.Add(f+".customPluginArn", "custom plugin %s does not exist", ref.CustomPluginArn)
			} else {
				p.Add(f+".customPluginArn", "%s", strings.TrimPrefix(ae.msg, f+".customPluginArn: "))
			}
		default:
			return nil, err
		}
	}
	if wc := spec.WorkerConfiguration; wc != nil && wc.WorkerConfigurationArn != "" {
		const f = "workerConfiguration"
		e, err := s.getWorkerConfig(ctx, wc.WorkerConfigurationArn, f+".workerConfigurationArn")
		var ae *apiError
		switch {
		case err == nil:
			if _, ok := e.Value.Revision(wc.Revision); wc.Revision >= 1 && !ok {
				p.Add(f+".revision", "worker configuration %q has no revision %d (latest is %d)", e.Value.Name, wc.Revision, e.Value.Latest().Revision)
			}
		case errors.As(err, &ae) && ae.status < 500:
			if isNotFound(err) {
				p.Add(f+".workerConfigurationArn", "worker configuration %s does not exist", wc.WorkerConfigurationArn)
			} else {
				p.Add(f+".workerConfigurationArn", "%s", strings.TrimPrefix(ae.msg, f+".workerConfigurationArn: "))
			}
		default:
			return nil, err
		}
	}
	return p, nil
}

// checkConfig checks a connector configuration against what the plugin
// provides: the built-in plugin's classes and their rules (Catalog), or
// the classes a custom plugin's manifest lists.
func (s *Server) checkConfig(pl *store.Plugin, cfg map[string]string) jobs.Problems {
	var p jobs.Problems
	if s.cfg.ConfigChecks != nil {
		// Checks of Ferry's own keys (e.g. ferry.autoscaler.*), whatever the plugin.
		for _, fe := range s.cfg.ConfigChecks(cfg) {
			p = append(p, jobs.FieldError{Field: fieldConfig + "." + fe.Field, Rule: fe.Rule})
		}
	}
	class := strings.TrimSpace(cfg["connector.class"])
	if pl != nil && pl.Manifested() && class != "" {
		classes := make([]string, 0, len(pl.Connectors))
		for _, c := range pl.Connectors {
			if c.Class == class {
				return p
			}
			classes = append(classes, c.Class)
		}
		p.Add(fieldConfig+".connector.class", "%q is not a connector custom plugin %s provides (its %s lists %s)",
			class, pl.Name, plugins.ManifestName, strings.Join(classes, ", "))
		return p
	}
	// A custom plugin recorded before Ferry read plugin files runs on the
	// ferry binary; any class is accepted for it, as it was then.
	if pl == nil || !pl.Builtin || s.cfg.Catalog == nil {
		return p
	}
	if class == "" {
		return p // ValidateSpec reports it
	}
	if !s.cfg.Catalog.Provides(class) {
		p.Add(fieldConfig+".connector.class", "%q is not a connector the built-in plugin %s provides", class, pl.Name)
		return p
	}
	for _, fe := range s.cfg.Catalog.ValidateConfig(class, cfg) {
		field := fe.Field
		if !strings.HasPrefix(field, fieldConfig) {
			field = fieldConfig + "." + field
		}
		p = append(p, jobs.FieldError{Field: field, Rule: fe.Rule})
	}
	return p
}

// connectorState is the state the API shows: DELETING once deletion was
// asked, else the reconciler's, CREATING until it has written one.
func connectorState(c jobs.Connector, st *jobs.ConnectorStatus) string {
	switch {
	case c.Deleting:
		return jobs.StateDeleting
	case st == nil || st.State == "":
		return jobs.StateCreating
	}
	return st.State
}

func (s *Server) status(ctx context.Context, name string) (*jobs.ConnectorStatus, error) {
	e, err := s.st.Status.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &e.Value, nil
}

func (s *Server) connectorView(e store.Entry[jobs.Connector], st *jobs.ConnectorStatus, full bool) connectorSummary {
	c := e.Value
	workers := c.Spec.Capacity.InitialWorkers()
	if st != nil && st.Workers > 0 {
		workers = st.Workers
	}
	v := connectorSummary{
		Capacity:                         describeCapacity(&c.Spec.Capacity, workers),
		ConnectorArn:                     c.Arn,
		ConnectorDescription:             c.Spec.ConnectorDescription,
		ConnectorName:                    c.Spec.ConnectorName,
		ConnectorState:                   connectorState(c, st),
		CreationTime:                     timestamp(c.CreationTime),
		CurrentVersion:                   strconv.FormatUint(e.Revision, 10),
		KafkaCluster:                     c.Spec.KafkaCluster,
		KafkaClusterClientAuthentication: c.Spec.KafkaClusterClientAuthentication,
		KafkaClusterEncryptionInTransit:  c.Spec.KafkaClusterEncryptionInTransit,
		KafkaConnectVersion:              c.Spec.KafkaConnectVersion,
		LogDelivery:                      c.Spec.LogDelivery,
		NetworkType:                      c.Spec.NetworkType,
		Plugins:                          c.Spec.Plugins,
		ServiceExecutionRoleArn:          c.Spec.ServiceExecutionRoleArn,
		WorkerConfiguration:              c.Spec.WorkerConfiguration,
	}
	if v.Plugins == nil {
		v.Plugins = []jobs.Plugin{}
	}
	if v.KafkaCluster.ApacheKafkaCluster.Vpc.Subnets == nil {
		v.KafkaCluster.ApacheKafkaCluster.Vpc.Subnets = []string{}
	}
	if full {
		v.ConnectorConfiguration = jobs.RedactConfig(c.Spec.ConnectorConfiguration)
		if st != nil {
			v.StateDescription = describeState(st.StateDescription)
		}
	}
	return v
}

func (s *Server) describeConnector(w http.ResponseWriter, r *http.Request, arn string) error {
	ctx := r.Context()
	_, e, err := s.getConnector(ctx, arn)
	if err != nil {
		return err
	}
	st, err := s.status(ctx, e.Key)
	if err != nil {
		return err
	}
	return writeJSON(w, s.connectorView(e, st, true))
}

func (s *Server) listConnectors(w http.ResponseWriter, r *http.Request, _ string) error {
	ctx := r.Context()
	q := r.URL.Query()
	max, err := maxResults(r)
	if err != nil {
		return err
	}
	entries, err := s.st.Connectors.List(ctx, q.Get("connectorNamePrefix"))
	if err != nil {
		return err
	}
	page, next, err := paginate(entries, func(e store.Entry[jobs.Connector]) string { return e.Key }, false, q.Get("nextToken"), max)
	if err != nil {
		return err
	}
	out := make([]connectorSummary, 0, len(page))
	for _, e := range page {
		st, err := s.status(ctx, e.Key)
		if err != nil {
			return err
		}
		out = append(out, s.connectorView(e, st, false))
	}
	resp := map[string]any{"connectors": out}
	if next != "" {
		resp["nextToken"] = next
	}
	return writeJSON(w, resp)
}

// parseVersion reads the currentVersion query parameter ("" when absent).
func parseVersion(r *http.Request) (uint64, bool, error) {
	v := r.URL.Query().Get("currentVersion")
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return 0, false, badRequest("currentVersion: %q is not a version this API issued (use currentVersion from DescribeConnector)", v)
	}
	return n, true, nil
}

type updateConnectorRequest struct {
	Capacity               *jobs.Capacity    `json:"capacity"`
	ConnectorConfiguration map[string]string `json:"connectorConfiguration"`
}

// updateConnector changes either the capacity or the configuration of a
// RUNNING or FAILED connector at currentVersion. It writes the new spec
// (revision + 1), then the operation record, then the UPDATING status that
// points at the operation; the reconciler rolls the workers and finishes
// the operation.
func (s *Server) updateConnector(w http.ResponseWriter, r *http.Request, arn string) error {
	ctx := r.Context()
	version, ok, err := parseVersion(r)
	if err != nil {
		return err
	}
	if !ok {
		return badRequest("currentVersion: is required (the connector's currentVersion from DescribeConnector)")
	}
	var req updateConnectorRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if (req.Capacity == nil) == (req.ConnectorConfiguration == nil) {
		return badRequest("exactly one of capacity or connectorConfiguration must be given")
	}
	a, e, err := s.getConnector(ctx, arn)
	if err != nil {
		return err
	}
	cur := e.Value

	var p jobs.Problems
	next := cur
	opType := store.OpUpdateWorkerSetting
	if req.Capacity != nil {
		p = jobs.ValidateCapacity("capacity", *req.Capacity)
		next.Spec.Capacity = *req.Capacity
	} else {
		opType = store.OpUpdateConnectorConfiguration
		cfg := maps.Clone(req.ConnectorConfiguration)
		for k, v := range cfg {
			if v != jobs.Redacted {
				continue
			}
			if old, ok := cur.Spec.ConnectorConfiguration[k]; ok {
				cfg[k] = old // the client sent back what DescribeConnector redacted
			} else {
				p.Add(fieldConfig+"."+k, "is the redaction placeholder %s but the connector has no stored value to keep", jobs.Redacted)
			}
		}
		next.Spec.ConnectorConfiguration = cfg
		for _, fe := range jobs.ValidateSpec(&next.Spec) {
			if strings.HasPrefix(fe.Field, fieldConfig) {
				p = append(p, fe)
			}
		}
		if len(cur.Spec.Plugins) == 1 {
			pl, err := s.getPlugin(ctx, cur.Spec.Plugins[0].CustomPlugin.CustomPluginArn, "plugin")
			if err == nil {
				p = append(p, s.checkConfig(&pl.Value, cfg)...)
			} else if !isNotFound(err) {
				return err
			}
		}
	}
	if len(p) > 0 {
		return invalid("UpdateConnector request", p)
	}
	if version != e.Revision {
		return conflict("connector %s changed since version %d; its current version is %d", a.Name, version, e.Revision)
	}
	st, err := s.status(ctx, e.Key)
	if err != nil {
		return err
	}
	if state := connectorState(cur, st); state != jobs.StateRunning && state != jobs.StateFailed {
		return conflict("connector %s is %s; it can be updated only when RUNNING or FAILED", a.Name, state)
	}
	if req.Capacity != nil && reflect.DeepEqual(cur.Spec.Capacity, next.Spec.Capacity) {
		return badRequest("nothing would change: capacity is already as requested")
	}
	if req.ConnectorConfiguration != nil && maps.Equal(cur.Spec.ConnectorConfiguration, next.Spec.ConnectorConfiguration) {
		return badRequest("nothing would change: connectorConfiguration is already as requested")
	}

	next.Revision = cur.Revision + 1
	// Workers are replaced only when what they run changes: the
	// configuration or the worker size. A new count (or new autoscaling
	// bounds) adds or removes workers and leaves the others running.
	next.WorkersRevision = cur.RunRevision()
	if !maps.Equal(cur.Spec.ConnectorConfiguration, next.Spec.ConnectorConfiguration) ||
		cur.Spec.Capacity.Mcu() != next.Spec.Capacity.Mcu() {
		next.WorkersRevision = next.Revision
	}
	if _, err := s.st.Connectors.Update(ctx, e.Key, next, e.Revision); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return conflict("connector %s changed since version %d; describe it again for its current version", a.Name, version)
		}
		return fmt.Errorf("update connector %q: %w", a.Name, err)
	}

	now := s.cfg.Now().UTC()
	opID := s.cfg.NewID()
	opArn := jobs.ARN{Region: s.cfg.Region, Account: s.cfg.Account, Kind: jobs.KindConnectorOperation, Name: a.Name, ID: a.ID, Sub: opID}.String()
	workers := cur.Spec.Capacity.InitialWorkers()
	if st != nil && st.Workers > 0 {
		workers = st.Workers
	}
	op := store.Operation{
		Arn: opArn, ID: opID, ConnectorArn: cur.Arn, ConnectorName: a.Name,
		Type: opType, State: store.OpInProgress, TargetRevision: next.RunRevision(), CreationTime: now,
		Steps: []store.Step{
			{Type: store.StepInitializeUpdate, State: store.StepCompleted},
			{Type: store.StepValidateUpdate, State: store.StepCompleted},
			{Type: opType, State: store.StepInProgress}, // step names equal the op types
			{Type: store.StepFinalizeUpdate, State: store.StepPending},
		},
		OriginWorkers: workers,
	}
	if req.Capacity != nil {
		origin, target := cur.Spec.Capacity, next.Spec.Capacity
		op.OriginCapacity, op.TargetCapacity = &origin, &target
		op.TargetWorkers = target.ClampWorkers(workers)
	} else {
		op.OriginConfig, op.TargetConfig = cur.Spec.ConnectorConfiguration, next.Spec.ConnectorConfiguration
		op.TargetWorkers = workers
	}
	if _, err := s.st.Operations.Create(ctx, store.OperationKey(a.Name, opID), op); err != nil {
		return fmt.Errorf("store operation of connector %q: %w", a.Name, err)
	}
	if _, err := s.st.Status.Modify(ctx, e.Key, true, func(st *jobs.ConnectorStatus) error {
		st.State = jobs.StateUpdating
		st.Operation = opArn
		st.Updated = now
		return nil
	}); err != nil {
		return fmt.Errorf("store status of connector %q: %w", a.Name, err)
	}
	s.log.Info().Str("connector", a.Name).Str("operation", opID).Str("type", opType).Int64("revision", next.Revision).Msg("connector update started")
	return writeJSON(w, map[string]string{
		"connectorArn":          cur.Arn,
		"connectorState":        jobs.StateUpdating,
		"connectorOperationArn": opArn,
	})
}

// deleteConnector marks the connector Deleting (at currentVersion when
// given) and its status DELETING; the reconciler stops the workers and
// removes the records.
func (s *Server) deleteConnector(w http.ResponseWriter, r *http.Request, arn string) error {
	ctx := r.Context()
	version, pinned, err := parseVersion(r)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		a, e, err := s.getConnector(ctx, arn)
		if err != nil {
			return err
		}
		if !e.Value.Deleting {
			if pinned && version != e.Revision {
				return conflict("connector %s changed since version %d; its current version is %d", a.Name, version, e.Revision)
			}
			next := e.Value
			next.Deleting = true
			if _, err := s.st.Connectors.Update(ctx, e.Key, next, e.Revision); err != nil {
				if errors.Is(err, store.ErrConflict) && !pinned && attempt < 5 {
					continue // changed concurrently: read again
				}
				if errors.Is(err, store.ErrConflict) {
					return conflict("connector %s changed since version %d; describe it again for its current version", a.Name, e.Revision)
				}
				return fmt.Errorf("mark connector %q deleting: %w", a.Name, err)
			}
			s.log.Info().Str("connector", a.Name).Msg("connector deletion requested")
		}
		if _, err := s.st.Status.Modify(ctx, e.Key, true, func(st *jobs.ConnectorStatus) error {
			st.State = jobs.StateDeleting
			st.Updated = s.cfg.Now().UTC()
			return nil
		}); err != nil {
			return fmt.Errorf("store status of connector %q: %w", a.Name, err)
		}
		return writeJSON(w, map[string]string{"connectorArn": e.Value.Arn, "connectorState": jobs.StateDeleting})
	}
}

// restartConnector is Ferry's own operation: it bumps the connector's
// restart counter, which makes the reconciler restart every worker.
func (s *Server) restartConnector(w http.ResponseWriter, r *http.Request, arn string) error {
	ctx := r.Context()
	a, e, err := s.getConnector(ctx, arn)
	if err != nil {
		return err
	}
	if e.Value.Deleting {
		return conflict("connector %s is DELETING; it cannot be restarted", a.Name)
	}
	e, err = s.st.Connectors.Modify(ctx, e.Key, false, func(c *jobs.Connector) error {
		if arnID(c.Arn) != a.ID {
			return notFound("connector %s not found", arn)
		}
		if c.Deleting {
			return conflict("connector %s is DELETING; it cannot be restarted", a.Name)
		}
		c.Restarts++
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("connector %s not found", arn)
		}
		return err
	}
	st, err := s.status(ctx, e.Key)
	if err != nil {
		return err
	}
	s.log.Info().Str("connector", a.Name).Int64("restarts", e.Value.Restarts).Msg("connector restart requested")
	return writeJSON(w, map[string]string{"connectorArn": e.Value.Arn, "connectorState": connectorState(e.Value, st)})
}
