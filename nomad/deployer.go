package nomad

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/hashicorp/nomad/api"
	"github.com/rs/zerolog"
)

// Config configures a Deployer.
type Config struct {
	// Client talks to Nomad. When nil, NewDeployer makes one from Nomad.
	Client *api.Client
	// Nomad is how to reach Nomad when Client is nil.
	Nomad ClientConfig
	// Render is how every connector's job is rendered; its Namespace and
	// Region are also where the Deployer reads and writes.
	Render RenderConfig
	Logger zerolog.Logger
	// Timeout bounds each call to Nomad (default 30 s), so a Nomad that
	// accepts connections but never answers cannot stall the reconciler.
	Timeout time.Duration
	// CrashLoopAfter is how many restarts of a worker in a row, each soon
	// after it started, make Observe report a crash loop (default 3).
	CrashLoopAfter int
	// StableAfter is how long a worker must run for its last restart not to
	// count (default 1 m).
	StableAfter time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// WatchWait is how long each blocking query of Watch waits for a
	// change (default DefaultWatchWait).
	WatchWait time.Duration
	// ObserveMaxAge is how long Observe may answer a failing observation
	// from the cache Watch keeps when nothing changed (default
	// DefaultObserveMaxAge); ObserveRecheck how long any other (default
	// DefaultObserveRecheck).
	ObserveMaxAge, ObserveRecheck time.Duration
}

// Validate reports every problem with the configuration.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Render.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Timeout < 0 || c.StableAfter < 0 || c.CrashLoopAfter < 0 || c.WatchWait < 0 || c.ObserveMaxAge < 0 || c.ObserveRecheck < 0 {
		errs = append(errs, errors.New("timeouts and counts must not be negative"))
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.CrashLoopAfter == 0 {
		c.CrashLoopAfter = 3
	}
	if c.StableAfter == 0 {
		c.StableAfter = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.WatchWait == 0 {
		c.WatchWait = DefaultWatchWait
	}
	if c.ObserveMaxAge == 0 {
		c.ObserveMaxAge = DefaultObserveMaxAge
	}
	if c.ObserveRecheck == 0 {
		c.ObserveRecheck = DefaultObserveRecheck
	}
}

// Deployer runs connectors as Nomad jobs. Its methods have the shape and
// meaning of scheduler.Deployer (see scheduler/deployer.go) on this
// package's Deployment and Observation. Nomad is the state, so any replica
// can take over and a restart loses nothing: what it keeps between calls
// while Watch runs only spares it asking Nomad again.
type Deployer struct {
	cfg   Config
	log   zerolog.Logger
	watch *watchState
}

// NewDeployer checks the configuration and returns a Deployer.
func NewDeployer(cfg Config) (*Deployer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("nomad deployer: %w", err)
	}
	cfg.setDefaults()
	if cfg.Client == nil {
		c, err := NewClient(cfg.Nomad)
		if err != nil {
			return nil, fmt.Errorf("nomad deployer: %w", err)
		}
		cfg.Client = c
	}
	return &Deployer{cfg: cfg, log: cfg.Logger, watch: newWatchState()}, nil
}

// Observation is what the Deployer sees of one connector's job.
type Observation struct {
	// Deployed is false when no job runs under the name (none, or stopped).
	Deployed bool
	// Workers is the group's count; Alive how many allocations run now.
	Workers, Alive int
	// IDs maps a worker index (NOMAD_ALLOC_INDEX) to the ID of the running
	// allocation at that index, which the worker reports as its
	// jobs.EnvWorkerID.
	IDs map[int]string
	// CrashLoop is set when a worker keeps exiting soon after it starts.
	CrashLoop bool
	// PlacementFailed is set when Nomad cannot place some workers (no node
	// has room, or none is eligible).
	PlacementFailed bool
	// RolloutFailed is set when Nomad failed the deployment of the job's
	// current version (its workers did not become healthy in time) and
	// neither of the above explains it.
	RolloutFailed bool
	// Reason says what is wrong, in words a person can act on, when one of
	// the flags is set. It holds no counters or times that change on every
	// crash, so it can be stored when it changes.
	Reason string
}

// Failing reports whether the connector's workers cannot run as asked:
// what scheduler.Observation calls a crash loop.
func (o Observation) Failing() bool { return o.CrashLoop || o.PlacementFailed || o.RolloutFailed }

func (d *Deployer) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.cfg.Timeout)
}

func (d *Deployer) query(ctx context.Context) *api.QueryOptions {
	q := &api.QueryOptions{Namespace: d.cfg.Render.Namespace, Region: d.cfg.Render.Region}
	return q.WithContext(ctx)
}

func (d *Deployer) write(ctx context.Context) *api.WriteOptions {
	w := &api.WriteOptions{Namespace: d.cfg.Render.Namespace, Region: d.cfg.Render.Region}
	return w.WithContext(ctx)
}

// itemJobIndex is the variable item in which Apply records the
// JobModifyIndex it left the job at (not read by the job's template).
const itemJobIndex = "ferry_job_index"

// isNotFound reports whether Nomad answered 404. Only Nomad's answer
// counts: a connection error never means "not there".
func isNotFound(err error) bool {
	var ure api.UnexpectedResponseError
	return errors.As(err, &ure) && ure.HasStatusCode() && ure.StatusCode() == http.StatusNotFound
}

// Apply makes the connector's job match dep. It writes the variable, then:
// registers the job if there is none (EnforceIndex with index 0, so two
// replicas can never both create it); registers it again if it changed, was
// stopped or was edited outside Ferry (EnforceIndex on the index it read,
// so a write in between fails instead of being lost; PreserveCounts when
// the count is already right, so a config change never undoes a scale
// decision, else the new count in the same write); and scales the group
// when only the count differs, which adds or removes workers without
// replacing the others. A changed revision or restart generation changes
// the job's meta, which makes Nomad replace every allocation, one at a time.
//
// While Watch is in sync and neither the job nor the variable moved since
// Apply last left them as asked, Apply asks Nomad nothing.
//
// Its errors are *Error when they say something about Nomad: Permanent
// (Nomad refused, or the job is not Ferry's) or Unavailable.
func (d *Deployer) Apply(ctx context.Context, dep Deployment) error {
	job, items, err := render(dep, d.cfg.Render)
	if err != nil {
		return &Error{Err: fmt.Errorf("apply: %w", err), permanent: true}
	}
	path := VariablePath(dep.Name)
	want := appliedState{hash: job.Meta[MetaJobHash], count: dep.Workers, varDigest: itemsDigest(items)}
	if d.watch.unchanged(dep.Name, *job.ID, path, want) {
		return nil
	}
	st, wrote, err := d.apply(ctx, dep, job, path, items)
	if wrote {
		// Observe must look again: its cache predates this write.
		d.watch.forget(dep.Name)
	}
	if err != nil {
		d.watch.dropApplied(dep.Name)
		return classify(fmt.Errorf("apply %q: %w", dep.Name, err))
	}
	st.hash, st.count, st.varDigest = want.hash, want.count, want.varDigest
	d.watch.setApplied(dep.Name, st)
	return nil
}

// apply is Apply asking Nomad, with the rendered job and the items of the
// variable at path. It returns the job's and the variable's indexes as it
// leaves them, and whether it wrote anything.
func (d *Deployer) apply(ctx context.Context, dep Deployment, job *api.Job, path string, items map[string]string) (appliedState, bool, error) {
	var st appliedState
	id := *job.ID
	log := d.log.With().Str("connector", dep.Name).Str("job", id).Logger()
	cur, err := d.info(ctx, id)
	if err != nil {
		return st, false, err
	}
	// Checked before the variable is written: a job under this ID can read
	// the variable, so a job that is not Ferry's must not get the secrets.
	if cur != nil && cur.Meta[MetaConnector] != dep.Name {
		return st, false, &Error{Err: fmt.Errorf("job %s exists and is not this connector's (meta %s=%q): rename or remove that job", id, MetaConnector, cur.Meta[MetaConnector]), permanent: true}
	}
	curVar, err := d.peekVariable(ctx, path)
	if err != nil {
		return st, false, err
	}
	// ours is the JobModifyIndex Ferry last left the job at, recorded in
	// the variable (so any replica knows it): a job whose index moved
	// while its meta did not was edited outside Ferry.
	var ours uint64
	if curVar != nil {
		ours, _ = strconv.ParseUint(curVar.Items[itemJobIndex], 10, 64)
	}
	wrote := false
	// The variable first: the template of a new or updated job reads it.
	if curVar == nil || !sameItems(curVar.Items, items) {
		put := maps.Clone(items)
		if cur != nil && ours != 0 {
			put[itemJobIndex] = curVar.Items[itemJobIndex]
		}
		if curVar, err = d.putVariable(ctx, path, put, curVar); err != nil {
			return st, wrote, err
		}
		wrote = true
	}

	var jobIndex uint64
	switch {
	case cur == nil:
		if err := d.register(ctx, job, &api.RegisterOptions{EnforceIndex: true, ModifyIndex: 0}); err != nil {
			return st, true, fmt.Errorf("create job: %w", err)
		}
		wrote = true
		log.Info().Int("workers", dep.Workers).Int64("revision", dep.Revision).Msg("job registered")
		if jobIndex, err = d.jobIndex(ctx, id); err != nil {
			return st, wrote, err
		}
	default:
		count, hasGroup := groupCount(cur)
		var modifyIndex uint64
		if cur.JobModifyIndex != nil {
			modifyIndex = *cur.JobModifyIndex
		}
		why := changed(cur, job)
		if why == "" && ours != 0 && modifyIndex != ours {
			why = "job edited outside ferry"
		}
		switch {
		case why != "":
			// PreserveCounts keeps the count Nomad has. When that differs
			// from the count asked for (or the group is new), the job is
			// registered with the new count instead: dep.Workers is the
			// latest scale decision, and a Scale call right after this
			// register would be refused while the deployment it starts is
			// active.
			opts := &api.RegisterOptions{EnforceIndex: true, ModifyIndex: modifyIndex, PreserveCounts: true}
			if !hasGroup || count != dep.Workers {
				opts.PreserveCounts = false
			}
			if err := d.register(ctx, job, opts); err != nil {
				return st, wrote, fmt.Errorf("update job: %w", err)
			}
			wrote = true
			log.Info().Str("why", why).Int64("revision", dep.Revision).Int64("restarts", dep.Restarts).Int("workers", dep.Workers).Msg("job updated")
			// Read back: Nomad's answer carries another index when the
			// job it was sent equals the one it has.
			if jobIndex, err = d.jobIndex(ctx, id); err != nil {
				return st, wrote, err
			}
		case count != dep.Workers:
			jobIndex, err = d.scale(ctx, id, dep)
			if isActiveDeployment(err) {
				// Nomad refuses to scale a job while a deployment runs (a
				// rollout of the previous revision): register the job with
				// the new count instead, which Nomad accepts and folds into
				// a new deployment.
				log.Debug().Msg("scale blocked by an active deployment, registering the new count")
				if err = d.register(ctx, job, &api.RegisterOptions{EnforceIndex: true, ModifyIndex: modifyIndex}); err == nil {
					jobIndex, err = d.jobIndex(ctx, id)
				}
			}
			wrote = true
			if err != nil {
				return st, wrote, err
			}
			log.Info().Int("from", count).Int("workers", dep.Workers).Msg("job scaled")
		default:
			jobIndex = modifyIndex
		}
	}
	if strconv.FormatUint(jobIndex, 10) != curVar.Items[itemJobIndex] {
		put := maps.Clone(curVar.Items)
		put[itemJobIndex] = strconv.FormatUint(jobIndex, 10)
		if curVar, err = d.putVariable(ctx, path, put, curVar); err != nil {
			return st, wrote, err
		}
		wrote = true
	}
	return appliedState{jobIndex: jobIndex, varIndex: curVar.ModifyIndex}, wrote, nil
}

// isActiveDeployment reports whether Nomad refused a scale because a
// deployment of the job is active.
func isActiveDeployment(err error) bool {
	var ure api.UnexpectedResponseError
	return errors.As(err, &ure) && ure.HasStatusCode() && ure.StatusCode() == http.StatusBadRequest &&
		strings.Contains(ure.Body(), "active deployment")
}

// changed says why a registered job must be registered again, or "".
func changed(cur, want *api.Job) string {
	switch {
	case cur.Stop != nil && *cur.Stop:
		return "job was stopped"
	case cur.Meta[MetaRevision] != want.Meta[MetaRevision]:
		return "new revision"
	case cur.Meta[MetaRestarts] != want.Meta[MetaRestarts]:
		return "restart"
	case cur.Meta[MetaJobHash] != want.Meta[MetaJobHash]:
		return "job changed"
	}
	if _, ok := groupCount(cur); !ok {
		return "job has no group " + GroupName
	}
	return ""
}

func groupCount(job *api.Job) (int, bool) {
	for _, g := range job.TaskGroups {
		if g.Name != nil && *g.Name == GroupName {
			if g.Count == nil {
				return 0, true
			}
			return *g.Count, true
		}
	}
	return 0, false
}

func (d *Deployer) info(ctx context.Context, id string) (*api.Job, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	job, _, err := d.cfg.Client.Jobs().Info(id, d.query(ctx))
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", id, err)
	}
	return job, nil
}

func (d *Deployer) register(ctx context.Context, job *api.Job, opts *api.RegisterOptions) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	if _, _, err := d.cfg.Client.Jobs().RegisterOpts(job, opts, d.write(ctx)); err != nil {
		return fmt.Errorf("register job %s: %w", *job.ID, err)
	}
	return nil
}

// scale sets the group's count and returns the job's new JobModifyIndex
// (a new count is a new job version).
func (d *Deployer) scale(ctx context.Context, id string, dep Deployment) (uint64, error) {
	sctx, cancel := d.ctx(ctx)
	defer cancel()
	n := dep.Workers
	meta := map[string]any{MetaConnector: dep.Name, MetaRevision: strconv.FormatInt(dep.Revision, 10)}
	msg := fmt.Sprintf("ferry: %d workers", n)
	if dep.Reason != "" {
		msg = "ferry: " + dep.Reason
	}
	resp, _, err := d.cfg.Client.Jobs().Scale(id, GroupName, &n, msg, false, meta, d.write(sctx))
	if err != nil {
		return 0, fmt.Errorf("scale job %s to %d: %w", id, n, err)
	}
	if resp == nil || resp.JobModifyIndex == 0 {
		// Read it back, on the caller's context (the scale's is spent).
		return d.jobIndex(ctx, id)
	}
	return resp.JobModifyIndex, nil
}

// jobIndex reads the job's JobModifyIndex.
func (d *Deployer) jobIndex(ctx context.Context, id string) (uint64, error) {
	job, err := d.info(ctx, id)
	if err != nil {
		return 0, err
	}
	if job == nil || job.JobModifyIndex == nil {
		return 0, fmt.Errorf("job %s vanished right after it was registered", id)
	}
	return *job.JobModifyIndex, nil
}

// peekVariable reads a variable, nil when there is none.
func (d *Deployer) peekVariable(ctx context.Context, path string) (*api.Variable, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	v, _, err := d.cfg.Client.Variables().Peek(path, d.query(ctx))
	if err != nil {
		return nil, fmt.Errorf("read variable %s: %w", path, err)
	}
	return v, nil
}

// putVariable writes items to the variable at path with check-and-set
// against cur (nil: it must not exist yet), so a concurrent writer makes
// this fail rather than be lost. It returns the variable as written.
func (d *Deployer) putVariable(ctx context.Context, path string, items map[string]string, cur *api.Variable) (*api.Variable, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	vars := d.cfg.Client.Variables()
	v := &api.Variable{Namespace: d.cfg.Render.Namespace, Path: path, Items: items}
	var out *api.Variable
	var err error
	if cur == nil {
		out, _, err = vars.CheckedCreate(v, d.write(ctx))
	} else {
		v.ModifyIndex = cur.ModifyIndex
		out, _, err = vars.CheckedUpdate(v, d.write(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("write variable %s: %w", path, err)
	}
	if out == nil {
		out = v
	}
	return out, nil
}

// sameItems reports whether a variable's items are the rendered ones (the
// item Ferry records the job index in aside).
func sameItems(have api.VariableItems, want map[string]string) bool {
	n := len(have)
	if _, ok := have[itemJobIndex]; ok {
		n--
	}
	if n != len(want) {
		return false
	}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// itemsDigest is a digest of a variable's items, so Apply can remember what
// it wrote without keeping the secrets.
func itemsDigest(items map[string]string) string {
	keys := slices.Sorted(maps.Keys(items))
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(items[k]), items[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Remove deregisters the connector's job with purge and deletes its
// variable. It succeeds when neither exists, and refuses to touch a job
// under the name that is not Ferry's.
func (d *Deployer) Remove(ctx context.Context, name string) error {
	if !jobs.ValidName(name) {
		return fmt.Errorf("remove: invalid connector name %q", name)
	}
	defer d.watch.removed(name)
	id := JobID(name)
	cur, err := d.info(ctx, id)
	if err != nil {
		return classify(fmt.Errorf("remove %q: %w", name, err))
	}
	if cur != nil {
		if owner := cur.Meta[MetaConnector]; owner != name {
			return &Error{Err: fmt.Errorf("remove %q: job %s is not this connector's (meta %s=%q)", name, id, MetaConnector, owner), permanent: true}
		}
		if err := d.deregister(ctx, id); err != nil {
			return classify(fmt.Errorf("remove %q: %w", name, err))
		}
		d.log.Info().Str("connector", name).Str("job", id).Msg("job deregistered")
	}
	if err := d.deleteVariable(ctx, VariablePath(name)); err != nil {
		return classify(fmt.Errorf("remove %q: %w", name, err))
	}
	return nil
}

func (d *Deployer) deregister(ctx context.Context, id string) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	_, _, err := d.cfg.Client.Jobs().DeregisterOpts(id, &api.DeregisterOptions{Purge: true}, d.write(ctx))
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("deregister job %s: %w", id, err)
	}
	return nil
}

func (d *Deployer) deleteVariable(ctx context.Context, path string) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	if _, err := d.cfg.Client.Variables().Delete(path, d.write(ctx)); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete variable %s: %w", path, err)
	}
	return nil
}

// List returns the names of the connectors that have a job (meta
// ferry_connector, ID JobID(name)), sorted. While Watch is in sync it
// answers from the job list the watch follows.
func (d *Deployer) List(ctx context.Context) ([]string, error) {
	if names, ok := d.watch.listed(); ok {
		return names, nil
	}
	names, err := d.list(ctx)
	return names, classify(err)
}

func (d *Deployer) list(ctx context.Context) ([]string, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	q := d.query(ctx)
	q.Prefix = JobPrefix
	stubs, _, err := d.cfg.Client.Jobs().ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, q)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	var names []string
	for _, s := range stubs {
		name := s.Meta[MetaConnector]
		if name == "" && len(s.Meta) == 0 {
			// A Nomad that does not list meta: read the job to know whose it is.
			job, err := d.info(ctx, s.ID)
			if err != nil {
				return nil, fmt.Errorf("list jobs: %w", err)
			}
			if job != nil {
				name = job.Meta[MetaConnector]
			}
		}
		if isConnectorJob(s.ID, name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// isConnectorJob reports whether the job with ID id, whose meta names
// connector name, is that connector's: List lists only those.
func isConnectorJob(id, name string) bool {
	return jobs.ValidName(name) && id == JobID(name)
}

// Observe reports how the connector's allocations are doing: how many run
// and their IDs by worker index, whether some cannot be placed (with what
// Nomad's placement metrics say), and whether a worker keeps exiting (with
// its task events' messages).
//
// While Watch runs and is in sync, Observe answers from its cache until
// something of the connector's job changes in Nomad.
func (d *Deployer) Observe(ctx context.Context, name string) (Observation, error) {
	if !jobs.ValidName(name) {
		return Observation{}, fmt.Errorf("observe: invalid connector name %q", name)
	}
	now := d.cfg.Now()
	obs, ok, gen := d.watch.cached(name, now, d.cfg.ObserveMaxAge, d.cfg.ObserveRecheck)
	if ok {
		return obs, nil
	}
	obs, err := d.observe(ctx, name)
	if err != nil {
		return Observation{}, classify(err)
	}
	d.watch.store(name, obs, now, gen)
	return obs, nil
}

// observe reads the connector's job, allocations, and when they fall short
// its summary, evaluations and latest deployment, from Nomad.
func (d *Deployer) observe(ctx context.Context, name string) (Observation, error) {
	id := JobID(name)
	job, err := d.info(ctx, id)
	if err != nil {
		return Observation{}, fmt.Errorf("observe %q: %w", name, err)
	}
	if job == nil || (job.Stop != nil && *job.Stop) || job.Meta[MetaConnector] != name {
		return Observation{}, nil
	}
	count, _ := groupCount(job)
	obs := Observation{Deployed: true, Workers: count, IDs: map[int]string{}}

	allocs, err := d.allocations(ctx, id)
	if err != nil {
		return Observation{}, fmt.Errorf("observe %q: %w", name, err)
	}
	var version uint64
	if job.Version != nil {
		version = *job.Version
	}
	crash := d.crashLoop(allocs, version)
	newest := map[int]*api.AllocationListStub{}
	pending := 0
	for _, a := range allocs {
		if a.TaskGroup != GroupName || a.DesiredStatus != api.AllocDesiredStatusRun {
			continue
		}
		switch a.ClientStatus {
		case api.AllocClientStatusPending:
			pending++
		case api.AllocClientStatusRunning:
			idx, ok := allocIndex(a.Name)
			if !ok {
				continue
			}
			if o := newest[idx]; o == nil || a.CreateIndex > o.CreateIndex {
				newest[idx] = a
			}
		}
	}
	for idx, a := range newest {
		obs.Alive++
		obs.IDs[idx] = a.ID
	}
	if crash != "" {
		obs.CrashLoop = true
		obs.Reason = crash
	}
	if obs.Alive+pending < count {
		reason, err := d.placement(ctx, id, job)
		if err != nil {
			return Observation{}, fmt.Errorf("observe %q: %w", name, err)
		}
		if reason != "" {
			obs.PlacementFailed = true
			if obs.Reason != "" {
				obs.Reason = reason + "; " + obs.Reason
			} else {
				obs.Reason = reason
			}
		}
	}
	if !obs.Failing() && obs.Alive < count {
		reason, err := d.rollout(ctx, id, job, version, allocs)
		if err != nil {
			return Observation{}, fmt.Errorf("observe %q: %w", name, err)
		}
		if reason != "" {
			obs.RolloutFailed, obs.Reason = true, reason
		}
	}
	return obs, nil
}

// rollout returns why the deployment of the job's current version failed,
// or "" when it did not (or there is none): Nomad's description, and the
// latest failure messages of a worker that is not running (e.g. a template
// that cannot read its variable).
func (d *Deployer) rollout(ctx context.Context, id string, job *api.Job, version uint64, allocs []*api.AllocationListStub) (string, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	dep, _, err := d.cfg.Client.Jobs().LatestDeployment(id, d.query(ctx))
	if isNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read latest deployment of %s: %w", id, err)
	}
	if dep == nil || dep.JobVersion != version || dep.Status != api.DeploymentStatusFailed {
		return "", nil
	}
	reason := fmt.Sprintf("rollout of revision %s failed: %s", job.Meta[MetaRevision], firstNonEmpty(dep.StatusDescription, "Nomad gave no reason"))
	sorted := append([]*api.AllocationListStub(nil), allocs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, a := range sorted {
		if a.TaskGroup != GroupName || a.JobVersion != version || a.ClientStatus == api.AllocClientStatusRunning {
			continue
		}
		if msgs := failureMessages(a.TaskStates[TaskName]); len(msgs) > 0 {
			idx, _ := allocIndex(a.Name)
			reason += fmt.Sprintf("; worker %d: %s", idx, strings.Join(msgs, "; "))
			break
		}
	}
	return reason, nil
}

func (d *Deployer) allocations(ctx context.Context, id string) ([]*api.AllocationListStub, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	allocs, _, err := d.cfg.Client.Jobs().Allocations(id, false, d.query(ctx))
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("list allocations of %s: %w", id, err)
	}
	return allocs, nil
}

// allocIndex parses the index out of an allocation name, "<job>.<group>[<index>]".
func allocIndex(name string) (int, bool) {
	open := strings.LastIndexByte(name, '[')
	if open < 0 || !strings.HasSuffix(name, "]") {
		return 0, false
	}
	n, err := strconv.Atoi(name[open+1 : len(name)-1])
	return n, err == nil && n >= 0
}
