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
	// DefaultObserveMaxAge bounds how long Observe answers from its cache
	// without a change: a crash loop ends by time alone (StableAfter).
	DefaultObserveMaxAge = 30 * time.Second
	// changesBuffer is how many connector names Changes holds; more are
	// dropped, which costs nothing since the reconciler also ticks.
	changesBuffer = 256
)

// watchSource is one of the lists Watch follows with blocking queries.
// list returns a fingerprint per job ID; a job whose fingerprint changes
// (appears, disappears) is invalidated.
type watchSource struct {
	name string
	list func(q *api.QueryOptions) (map[string]string, *api.QueryMeta, error)
}

// watchState is the Deployer's cache of observations, valid while every
// source is in sync with Nomad.
type watchState struct {
	mu      sync.Mutex
	running bool
	synced  map[string]bool // source → its last query succeeded
	cache   map[string]cachedObservation
	gen     map[string]uint64 // connector → invalidation generation
	changes chan string
}

type cachedObservation struct {
	obs Observation
	at  time.Time
	gen uint64
}

func newWatchState() *watchState {
	return &watchState{
		synced: map[string]bool{}, cache: map[string]cachedObservation{},
		gen: map[string]uint64{}, changes: make(chan string, changesBuffer),
	}
}

// Changes delivers the names of connectors whose job, allocations or
// deployments changed in Nomad, while Watch runs, so the reconciler can look
// at them before its next tick. Names are dropped when nobody reads.
func (d *Deployer) Changes() <-chan string { return d.watch.changes }

// Watch follows the job list, allocations and deployments of Ferry's jobs
// with blocking queries (WaitIndex/WaitTime) until ctx ends, and keeps
// Observe's cache honest: while every query is in sync, Observe answers a
// connector's observation from the cache until something of its job
// changes (or DefaultObserveMaxAge passes); otherwise it asks Nomad.
func (d *Deployer) Watch(ctx context.Context) error {
	w := d.watch
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return fmt.Errorf("nomad watch: already running")
	}
	w.running = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running = false
		w.synced = map[string]bool{}
		w.cache = map[string]cachedObservation{}
		w.mu.Unlock()
	}()

	sources := []watchSource{
		{"jobs", d.watchJobs},
		{"allocations", d.watchAllocations},
		{"deployments", d.watchDeployments},
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
			log.Warn().Err(err).Dur("retry_in", backoff).Msg("nomad watch failed; observe asks nomad directly meanwhile")
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
		w.cache = map[string]cachedObservation{}
	}
}

func (w *watchState) inSync() bool {
	if !w.running {
		return false
	}
	for _, s := range []string{"jobs", "allocations", "deployments"} {
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
		name, ok := connectorOf(id)
		if !ok {
			continue
		}
		w.mu.Lock()
		delete(w.cache, name)
		w.gen[name]++
		w.mu.Unlock()
		select {
		case w.changes <- name:
		default:
		}
	}
}

// cached returns the cached observation of name, if it may be used, and
// the generation a fresh one must be stored under.
func (w *watchState) cached(name string, now time.Time, maxAge time.Duration) (Observation, bool, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.inSync() {
		return Observation{}, false, 0
	}
	c, ok := w.cache[name]
	if ok && c.gen == w.gen[name] && now.Sub(c.at) < maxAge {
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

// connectorOf reverses JobID.
func connectorOf(jobID string) (string, bool) {
	name, ok := strings.CutPrefix(jobID, JobPrefix)
	return name, ok && jobs.ValidName(name)
}

func (d *Deployer) watchJobs(q *api.QueryOptions) (map[string]string, *api.QueryMeta, error) {
	q.Prefix = JobPrefix
	stubs, meta, err := d.cfg.Client.Jobs().List(q)
	if err != nil {
		return nil, nil, fmt.Errorf("list jobs: %w", err)
	}
	out := make(map[string]string, len(stubs))
	for _, s := range stubs {
		fp := fmt.Sprintf("%d/%d/%t/%s", s.ModifyIndex, s.JobModifyIndex, s.Stop, s.Status)
		if s.JobSummary != nil {
			if g, ok := s.JobSummary.Summary[GroupName]; ok {
				fp += fmt.Sprintf("/q%d s%d r%d f%d l%d", g.Queued, g.Starting, g.Running, g.Failed, g.Lost)
			}
		}
		out[s.ID] = fp
	}
	return out, meta, nil
}

func (d *Deployer) watchAllocations(q *api.QueryOptions) (map[string]string, *api.QueryMeta, error) {
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

func joinSorted(parts map[string][]string) map[string]string {
	out := make(map[string]string, len(parts))
	for id, ps := range parts {
		sort.Strings(ps)
		out[id] = strings.Join(ps, ",")
	}
	return out
}
