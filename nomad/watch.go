package nomad

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/hashicorp/nomad/api"
)

// Defaults of the watch.
const (
	// DefaultWatchWait is how long one blocking query may wait for a change.
	DefaultWatchWait = 5 * time.Minute
	// DefaultObserveMaxAge bounds how long Observe answers a failing
	// observation from its cache without a change: a crash loop ends by
	// time alone (StableAfter).
	DefaultObserveMaxAge = 30 * time.Second
	// DefaultObserveRecheck bounds how long Observe answers any other
	// observation from its cache without a change: nothing but a change in
	// Nomad can alter it, so this is only a safety net.
	DefaultObserveRecheck = 5 * time.Minute
	// changesBuffer is how many connector names Changes holds; more are
	// dropped, which costs nothing since the reconciler also ticks.
	changesBuffer = 256
)

// Names of the watch's sources.
const (
	srcJobs        = "jobs"
	srcAllocations = "allocations"
	srcDeployments = "deployments"
	srcVariables   = "variables"
)

var watchSources = []string{srcJobs, srcAllocations, srcDeployments, srcVariables}

// ferryJobFilter keeps a list query to Ferry's jobs (a go-bexpr expression
// Nomad evaluates server side), so a change re-downloads only their entries.
var ferryJobFilter = fmt.Sprintf("JobID matches %q", "^"+JobPrefix)

// watchSource is one of the lists Watch follows with blocking queries.
// list returns a fingerprint per job ID; a job whose fingerprint changes
// (appears, disappears) is invalidated.
type watchSource struct {
	name string
	list func(q *api.QueryOptions) (map[string]string, *api.QueryMeta, error)
}

// watchState is what the Deployer knows of Nomad between calls, valid
// while every source of Watch is in sync with Nomad: the job list (so Apply
// and List need not read it), the variables' indexes, the observations of
// Observe, and what Apply last left each connector's job and variable at.
type watchState struct {
	mu      sync.Mutex
	running bool
	synced  map[string]bool // source → its last query succeeded
	// jobs is the latest job list (by job ID), vars the latest modify
	// index of each variable (by path).
	jobs map[string]jobStub
	vars map[string]uint64
	// names maps job IDs to connector names, from the job list's meta (a
	// long name's job ID cannot be reversed otherwise).
	names   map[string]string
	cache   map[string]cachedObservation
	gen     map[string]uint64 // connector → invalidation generation
	applied map[string]appliedState
	changes chan string
}

// jobStub is what the job list says of one job.
type jobStub struct {
	connector      string // meta ferry_connector, "" when there is none
	hasMeta        bool
	jobModifyIndex uint64
	stop           bool
}

// appliedState is what Apply last left a connector's job and variable at,
// in this term of the watch: while the job list and the variable list still
// show these indexes and Apply is asked for the same job, count and
// variable items, it has nothing to do and asks Nomad nothing.
type appliedState struct {
	jobIndex  uint64 // JobModifyIndex of the job
	hash      string // the job's MetaJobHash
	count     int    // the group's count
	varIndex  uint64 // ModifyIndex of the variable
	varDigest string // digest of the variable's items as rendered
}

type cachedObservation struct {
	obs Observation
	at  time.Time
	gen uint64
}

func newWatchState() *watchState {
	return &watchState{
		synced: map[string]bool{}, jobs: map[string]jobStub{}, vars: map[string]uint64{},
		names: map[string]string{}, cache: map[string]cachedObservation{},
		gen: map[string]uint64{}, applied: map[string]appliedState{},
		changes: make(chan string, changesBuffer),
	}
}

// Changes delivers the names of connectors whose job, allocations,
// deployments or variable changed in Nomad, while Watch runs, so the
// reconciler can look at them before its next tick. Names are dropped when
// nobody reads.
func (d *Deployer) Changes() <-chan string { return d.watch.changes }

// Watch follows the job list, allocations, deployments and variables of
// Ferry's jobs with blocking queries (WaitIndex/WaitTime) until ctx ends.
// While every query is in sync, Apply, List and Observe answer from what it
// saw: an idle reconcile pass asks Nomad nothing. Run it only where the
// reconciler runs (the leader): what Apply remembers is kept for one run of
// Watch, so a replica that was leader before starts afresh.
func (d *Deployer) Watch(ctx context.Context) error {
	w := d.watch
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return fmt.Errorf("nomad watch: already running")
	}
	w.running = true
	w.reset()
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running = false
		w.reset()
		w.mu.Unlock()
	}()

	sources := []watchSource{
		{srcJobs, d.watchJobs},
		{srcAllocations, d.watchAllocations},
		{srcDeployments, d.watchDeployments},
		{srcVariables, d.watchVariables},
	}
	var wg sync.WaitGroup
	for _, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.follow(ctx, s)
		}()
	}
	wg.Wait()
	return nil
}

// reset forgets everything the watch knew; w.mu must be held.
func (w *watchState) reset() {
	w.synced = map[string]bool{}
	w.jobs = map[string]jobStub{}
	w.vars = map[string]uint64{}
	w.cache = map[string]cachedObservation{}
	w.applied = map[string]appliedState{}
}

// follow runs one source's blocking queries until ctx ends.
func (d *Deployer) follow(ctx context.Context, s watchSource) {
	log := d.log.With().Str("watch", s.name).Logger()
	var index uint64
	var prev map[string]string
	backoff := time.Second
	for ctx.Err() == nil {
		wait := d.cfg.WatchWait
		// Nomad adds up to wait/16 of jitter; then the answer must come.
		qctx, cancel := context.WithTimeout(ctx, wait+wait/16+d.cfg.Timeout)
		q := d.query(qctx)
		q.WaitIndex, q.WaitTime = index, wait
		fps, meta, err := s.list(q)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.watch.setSynced(s.name, false)
			log.Warn().Err(err).Dur("retry_in", backoff).Msg("nomad watch failed; apply and observe ask nomad directly meanwhile")
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = time.Second
		switch {
		case meta.LastIndex < index:
			// Nomad's index went back (a restored snapshot): start over.
			index = 0
		case meta.LastIndex == 0:
			index = 1
		default:
			index = meta.LastIndex
		}
		d.watch.diff(prev, fps)
		prev = fps
		d.watch.setSynced(s.name, true)
	}
}

func (w *watchState) setSynced(source string, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.synced[source] = ok
	if !ok {
		// What was seen can no longer be trusted: Apply and Observe ask
		// Nomad until the watch is back in sync, and start over then.
		w.cache = map[string]cachedObservation{}
		w.applied = map[string]appliedState{}
	}
}

// inSync reports whether every source is in sync; w.mu must be held.
func (w *watchState) inSync() bool {
	if !w.running {
		return false
	}
	for _, s := range watchSources {
		if !w.synced[s] {
			return false
		}
	}
	return true
}

// diff invalidates every job whose fingerprint changed and announces it.
func (w *watchState) diff(prev, cur map[string]string) {
	var changed []string
	for id, fp := range cur {
		if p, ok := prev[id]; !ok || p != fp {
			changed = append(changed, id)
		}
	}
	for id := range prev {
		if _, ok := cur[id]; !ok {
			changed = append(changed, id)
		}
	}
	sort.Strings(changed)
	for _, id := range changed {
		w.mu.Lock()
		name, ok := w.connectorFor(id)
		if ok {
			delete(w.cache, name)
			w.gen[name]++
		}
		w.mu.Unlock()
		if !ok {
			continue
		}
		select {
		case w.changes <- name:
		default:
		}
	}
}

// connectorFor maps a job ID to its connector: through the job list's meta,
// else by reversing JobID; w.mu must be held.
func (w *watchState) connectorFor(jobID string) (string, bool) {
	if name, ok := w.names[jobID]; ok {
		return name, true
	}
	return connectorOf(jobID)
}

// cached returns the cached observation of name, if it may be used, and
// the generation a fresh one must be stored under.
func (w *watchState) cached(name string, now time.Time, maxAge, recheck time.Duration) (Observation, bool, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.inSync() {
		return Observation{}, false, 0
	}
	c, ok := w.cache[name]
	age := now.Sub(c.at)
	if ok && c.gen == w.gen[name] && age < recheck && (!c.obs.Failing() || age < maxAge) {
		return c.obs, true, 0
	}
	return Observation{}, false, w.gen[name]
}

// store caches obs unless name was invalidated since gen was read.
func (w *watchState) store(name string, obs Observation, now time.Time, gen uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.inSync() || w.gen[name] != gen {
		return
	}
	w.cache[name] = cachedObservation{obs: obs, at: now, gen: gen}
}

// forget drops the cached observation of name: the Deployer itself
// changed its job.
func (w *watchState) forget(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.cache, name)
	w.gen[name]++
}

// unchanged reports whether Apply has nothing to do: the watch is in sync,
// and the job and variable are as Apply last left them and as asked.
func (w *watchState) unchanged(name, jobID, varPath string, want appliedState) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.inSync() {
		return false
	}
	st, ok := w.applied[name]
	if !ok || st.hash != want.hash || st.count != want.count || st.varDigest != want.varDigest {
		return false
	}
	j, ok := w.jobs[jobID]
	if !ok || j.stop || j.connector != name || j.jobModifyIndex != st.jobIndex {
		return false
	}
	vi, ok := w.vars[varPath]
	return ok && vi == st.varIndex
}

// setApplied remembers what Apply left the connector's job and variable
// at, while the watch runs.
func (w *watchState) setApplied(name string, st appliedState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running {
		w.applied[name] = st
	}
}

// dropApplied forgets what Apply left the connector at.
func (w *watchState) dropApplied(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.applied, name)
}

// removed forgets everything about a connector whose job is gone.
func (w *watchState) removed(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.cache, name)
	delete(w.applied, name)
	w.gen[name]++
}

// listed returns the connectors of the job list, sorted, when the watch is
// in sync and the list says whose every ferry- job is.
func (w *watchState) listed() ([]string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.inSync() {
		return nil, false
	}
	var names []string
	for id, j := range w.jobs {
		if !j.hasMeta {
			return nil, false
		}
		if isConnectorJob(id, j.connector) {
			names = append(names, j.connector)
		}
	}
	sort.Strings(names)
	return names, true
}

// connectorOf reverses JobID for names short enough to be kept whole.
func connectorOf(jobID string) (string, bool) {
	name, ok := strings.CutPrefix(jobID, JobPrefix)
	return name, ok && jobs.ValidName(name)
}

func (d *Deployer) watchJobs(q *api.QueryOptions) (map[string]string, *api.QueryMeta, error) {
	q.Prefix = JobPrefix
	stubs, meta, err := d.cfg.Client.Jobs().ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, q)
	if err != nil {
		return nil, nil, fmt.Errorf("list jobs: %w", err)
	}
	out := make(map[string]string, len(stubs))
	entries := make(map[string]jobStub, len(stubs))
	for _, s := range stubs {
		fp := fmt.Sprintf("%d/%d/%t/%s", s.ModifyIndex, s.JobModifyIndex, s.Stop, s.Status)
		if s.JobSummary != nil {
			if g, ok := s.JobSummary.Summary[GroupName]; ok {
				fp += fmt.Sprintf("/q%d s%d r%d f%d l%d", g.Queued, g.Starting, g.Running, g.Failed, g.Lost)
			}
		}
		out[s.ID] = fp
		entries[s.ID] = jobStub{connector: s.Meta[MetaConnector], hasMeta: len(s.Meta) > 0, jobModifyIndex: s.JobModifyIndex, stop: s.Stop}
	}
	w := d.watch
	w.mu.Lock()
	w.jobs = entries
	for id, e := range entries {
		if e.connector != "" {
			w.names[id] = e.connector
		}
	}
	w.mu.Unlock()
	return out, meta, nil
}

func (d *Deployer) watchAllocations(q *api.QueryOptions) (map[string]string, *api.QueryMeta, error) {
	// Only Ferry's, without task states: a task state change moves the
	// allocation's ModifyIndex, which is all the fingerprint needs.
	q.Filter = ferryJobFilter
	q.Params = map[string]string{"task_states": "false"}
	allocs, meta, err := d.cfg.Client.Allocations().List(q)
	if err != nil {
		return nil, nil, fmt.Errorf("list allocations: %w", err)
	}
	parts := map[string][]string{}
	for _, a := range allocs {
		if !strings.HasPrefix(a.JobID, JobPrefix) {
			continue
		}
		parts[a.JobID] = append(parts[a.JobID], fmt.Sprintf("%s:%d:%s:%s", a.ID, a.ModifyIndex, a.ClientStatus, a.DesiredStatus))
	}
	return joinSorted(parts), meta, nil
}

func (d *Deployer) watchDeployments(q *api.QueryOptions) (map[string]string, *api.QueryMeta, error) {
	q.Filter = ferryJobFilter
	deps, meta, err := d.cfg.Client.Deployments().List(q)
	if err != nil {
		return nil, nil, fmt.Errorf("list deployments: %w", err)
	}
	parts := map[string][]string{}
	for _, dep := range deps {
		if !strings.HasPrefix(dep.JobID, JobPrefix) {
			continue
		}
		parts[dep.JobID] = append(parts[dep.JobID], fmt.Sprintf("%s:%d:%s", dep.ID, dep.ModifyIndex, dep.Status))
	}
	return joinSorted(parts), meta, nil
}

// watchVariables follows the variables of Ferry's jobs (paths and modify
// indexes only; Nomad lists no items), so Apply notices a variable changed
// or deleted behind its back without reading each one.
func (d *Deployer) watchVariables(q *api.QueryOptions) (map[string]string, *api.QueryMeta, error) {
	vars, meta, err := d.cfg.Client.Variables().PrefixList(variablePrefix+JobPrefix, q)
	if err != nil {
		return nil, nil, fmt.Errorf("list variables: %w", err)
	}
	out := make(map[string]string, len(vars))
	idx := make(map[string]uint64, len(vars))
	for _, v := range vars {
		idx[v.Path] = v.ModifyIndex
		if id, ok := strings.CutPrefix(v.Path, variablePrefix); ok && !strings.Contains(id, "/") {
			out[id] = fmt.Sprintf("var:%d", v.ModifyIndex)
		}
	}
	w := d.watch
	w.mu.Lock()
	w.vars = idx
	w.mu.Unlock()
	return out, meta, nil
}

func joinSorted(parts map[string][]string) map[string]string {
	out := make(map[string]string, len(parts))
	for id, ps := range parts {
		sort.Strings(ps)
		out[id] = strings.Join(ps, ",")
	}
	return out
}
