package nomad

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// Task event types whose messages say why a worker stopped. Nomad names the
// first five in package api; the hook ones (templates, artifacts, identity)
// it does not.
var failureEvents = map[string]bool{
	api.TaskTerminated:             true,
	api.TaskDriverFailure:          true,
	api.TaskSetupFailure:           true,
	api.TaskArtifactDownloadFailed: true,
	api.TaskFailedValidation:       true,
	"Task hook failed":             true,
	"Template":                     true,
}

// maxReasonMessages bounds how many task event messages a reason quotes.
const maxReasonMessages = 3

// crashLoop returns why a worker keeps exiting, or "". A worker keeps
// exiting when its task has restarted CrashLoopAfter times and is not
// running, or last restarted less than StableAfter ago; or when at least two
// allocations of the current job version at its index have failed. The
// lowest such index is reported, so the reason is stable.
func (d *Deployer) crashLoop(allocs []*api.AllocationListStub, version uint64) string {
	now := d.cfg.Now()
	failed := map[int][]*api.AllocationListStub{}
	crashing := map[int]*api.AllocationListStub{}
	for _, a := range allocs {
		if a.TaskGroup != GroupName {
			continue
		}
		idx, ok := allocIndex(a.Name)
		if !ok {
			continue
		}
		if a.ClientStatus == api.AllocClientStatusFailed && a.JobVersion == version {
			failed[idx] = append(failed[idx], a)
			continue
		}
		if a.DesiredStatus != api.AllocDesiredStatusRun {
			continue
		}
		ts := a.TaskStates[TaskName]
		if ts == nil || ts.Restarts < uint64(d.cfg.CrashLoopAfter) {
			continue
		}
		if ts.State != "running" || now.Sub(ts.LastRestart) < d.cfg.StableAfter {
			if o := crashing[idx]; o == nil || a.CreateIndex > o.CreateIndex {
				crashing[idx] = a
			}
		}
	}
	for idx, fs := range failed {
		if len(fs) >= 2 {
			sort.Slice(fs, func(i, j int) bool { return fs[i].CreateIndex > fs[j].CreateIndex })
			if _, ok := crashing[idx]; !ok {
				crashing[idx] = fs[0]
			}
		}
	}
	if len(crashing) == 0 {
		return ""
	}
	idxs := make([]int, 0, len(crashing))
	for i := range crashing {
		idxs = append(idxs, i)
	}
	sort.Ints(idxs)
	a := crashing[idxs[0]]
	msgs := failureMessages(a.TaskStates[TaskName])
	if len(msgs) == 0 {
		return fmt.Sprintf("worker %d keeps exiting soon after it starts; Nomad recorded no exit message (see `nomad alloc logs -stderr %s`)", idxs[0], a.ID)
	}
	return fmt.Sprintf("worker %d keeps exiting soon after it starts: %s", idxs[0], strings.Join(msgs, "; "))
}

var digits = regexp.MustCompile(`[0-9]+`)

// failureMessages returns the distinct messages of the task's latest failure
// events, oldest first.
func failureMessages(ts *api.TaskState) []string {
	if ts == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for i := len(ts.Events) - 1; i >= 0 && len(out) < maxReasonMessages; i-- {
		ev := ts.Events[i]
		if ev == nil || !failureEvents[ev.Type] {
			continue
		}
		m := eventMessage(ev)
		// Retries of one failure differ only in numbers (a temp dir, a
		// port): say it once.
		k := digits.ReplaceAllString(m, "#")
		if m == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, m)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func eventMessage(ev *api.TaskEvent) string {
	if ev.DisplayMessage != "" {
		return ev.DisplayMessage
	}
	switch ev.Type {
	case api.TaskTerminated:
		m := fmt.Sprintf("Exit Code: %d", ev.ExitCode)
		if ev.Signal != 0 {
			m += fmt.Sprintf(", Signal: %d", ev.Signal)
		}
		if ev.Message != "" {
			m += fmt.Sprintf(", Exit Message: %q", ev.Message)
		}
		return m
	case api.TaskDriverFailure:
		return firstNonEmpty(ev.DriverError, ev.Message)
	case api.TaskSetupFailure:
		return firstNonEmpty(ev.SetupError, ev.Message)
	case api.TaskArtifactDownloadFailed:
		return firstNonEmpty(ev.DownloadError, ev.Message)
	case api.TaskFailedValidation:
		return firstNonEmpty(ev.ValidationError, ev.Message)
	}
	return ev.Message
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// placement returns why some of the job's workers cannot be placed, or ""
// when none waits for a node. It reads the job summary (how many are
// queued) and the newest evaluation that failed to place the group.
func (d *Deployer) placement(ctx context.Context, id string, job *api.Job) (string, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	sum, _, err := d.cfg.Client.Jobs().Summary(id, d.query(ctx))
	if isNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read summary of %s: %w", id, err)
	}
	queued := sum.Summary[GroupName].Queued
	if queued == 0 {
		return "", nil
	}
	evals, _, err := d.cfg.Client.Jobs().Evaluations(id, d.query(ctx))
	if err != nil && !isNotFound(err) {
		return "", fmt.Errorf("list evaluations of %s: %w", id, err)
	}
	sort.Slice(evals, func(i, j int) bool { return evals[i].CreateIndex > evals[j].CreateIndex })
	var m *api.AllocationMetric
	for _, e := range evals {
		if fm := e.FailedTGAllocs[GroupName]; fm != nil {
			m = fm
			break
		}
	}
	if m == nil {
		// Queued, but no evaluation has failed yet: placement is under way.
		return "", nil
	}
	return placementReason(queued, jobAsk(job), m, d.freeCapacity(ctx, job)), nil
}

// capacity is what the nodes a job may run on have free, as far as the
// server's token can see.
type capacity struct {
	nodes         int
	cpuMHz, memMB int64 // summed over the nodes
	maxCPU        int64 // the most CPU (MHz) free on one node
	maxMem        int64 // the most memory (MB) free on one node
	cores         int   // reservable cores free, summed
	maxCores      int   // the most reservable cores free on one node
	mhzPerVCPU    int64
	reserveCores  bool
}

// maxCapacityNodes bounds how many nodes freeCapacity reads the
// allocations of (one request each).
const maxCapacityNodes = 32

// freeCapacity adds up what the ready, eligible nodes of the job's node
// pool and datacenters have free: their resources less what is reserved
// and what their live allocations hold. It needs node:read; without it (or
// with more than maxCapacityNodes nodes, or none) it returns nil and the
// reason goes without it. Allocations in namespaces the token cannot read
// are not seen, so the figure is an upper bound then.
func (d *Deployer) freeCapacity(ctx context.Context, job *api.Job) *capacity {
	q := d.query(ctx)
	q.Params = map[string]string{"resources": "true"}
	nodes, _, err := d.cfg.Client.Nodes().List(q)
	if err != nil {
		d.log.Debug().Err(err).Msg("cannot list nodes for the placement message")
		return nil
	}
	pool := api.NodePoolDefault
	if job.NodePool != nil && *job.NodePool != "" {
		pool = *job.NodePool
	}
	c := &capacity{mhzPerVCPU: int64(d.cfg.Render.mhzPerVCPU()), reserveCores: d.cfg.Render.ReserveCores}
	for _, n := range nodes {
		if n.Status != api.NodeStatusReady || n.SchedulingEligibility != api.NodeSchedulingEligible || n.NodeResources == nil {
			continue
		}
		if pool != api.NodePoolAll && n.NodePool != pool || !inDatacenters(n.Datacenter, job.Datacenters) {
			continue
		}
		if c.nodes == maxCapacityNodes {
			return nil
		}
		c.nodes++
		cpu, mem := n.NodeResources.Cpu.CpuShares, n.NodeResources.Memory.MemoryMB
		cores := len(n.NodeResources.Cpu.ReservableCpuCores)
		if r := n.ReservedResources; r != nil {
			cpu -= int64(r.Cpu.CpuShares)
			mem -= int64(r.Memory.MemoryMB)
		}
		allocs, _, err := d.cfg.Client.Nodes().Allocations(n.ID, d.query(ctx))
		if err != nil {
			d.log.Debug().Err(err).Msg("cannot list a node's allocations for the placement message")
			return nil
		}
		for _, a := range allocs {
			if a.DesiredStatus != api.AllocDesiredStatusRun || a.ClientStatus == api.AllocClientStatusComplete ||
				a.ClientStatus == api.AllocClientStatusFailed || a.ClientStatus == api.AllocClientStatusLost || a.AllocatedResources == nil {
				continue
			}
			for _, t := range a.AllocatedResources.Tasks {
				cpu -= t.Cpu.CpuShares
				mem -= t.Memory.MemoryMB
				cores -= len(t.Cpu.ReservedCores)
			}
		}
		cpu, mem, cores = max(cpu, 0), max(mem, 0), max(cores, 0)
		c.cpuMHz += cpu
		c.memMB += mem
		c.cores += cores
		c.maxCPU, c.maxMem, c.maxCores = max(c.maxCPU, cpu), max(c.maxMem, mem), max(c.maxCores, cores)
	}
	if c.nodes == 0 {
		return nil
	}
	return c
}

// inDatacenters reports whether dc matches one of the job's datacenter
// patterns (globs; none means every datacenter).
func inDatacenters(dc string, patterns []string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, dc); ok {
			return true
		}
	}
	return false
}

// String words the free capacity, e.g. "cluster has 3 vCPU (6000 MHz) /
// 20480 MB free on 3 nodes, at most 1 vCPU (2000 MHz) / 8192 MB on one".
func (c *capacity) String() string {
	if c.reserveCores {
		return fmt.Sprintf("cluster has %d cores / %d MB free on %d %s, at most %d cores / %d MB on one",
			c.cores, c.memMB, c.nodes, plural(c.nodes, "node", "nodes"), c.maxCores, c.maxMem)
	}
	return fmt.Sprintf("cluster has %d vCPU (%d MHz) / %d MB free on %d %s, at most %d vCPU (%d MHz) / %d MB on one",
		c.cpuMHz/c.mhzPerVCPU, c.cpuMHz, c.memMB, c.nodes, plural(c.nodes, "node", "nodes"), c.maxCPU/c.mhzPerVCPU, c.maxCPU, c.maxMem)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ask is what one worker of a job reserves.
type ask struct {
	mcu int
	mhz int // 0 when it reserves whole cores
}

// jobAsk reads what one worker reserves from the job: its MCUs from its
// memory, and its CPU.
func jobAsk(job *api.Job) ask {
	for _, g := range job.TaskGroups {
		if g.Name == nil || *g.Name != GroupName {
			continue
		}
		for _, t := range g.Tasks {
			if t.Name != TaskName || t.Resources == nil {
				continue
			}
			var a ask
			if t.Resources.MemoryMB != nil {
				a.mcu = *t.Resources.MemoryMB / MBPerMcu
			}
			if t.Resources.CPU != nil && (t.Resources.Cores == nil || *t.Resources.Cores == 0) {
				a.mhz = *t.Resources.CPU
			}
			return a
		}
	}
	return ask{}
}

// placementReason words Nomad's placement metrics (and the free capacity,
// when known) for a person, e.g. "placement failed: 2 workers × 4 MCU need
// 8 vCPU (16000 MHz) / 32768 MB; cluster has 6 vCPU (12000 MHz) / 20480 MB
// free on 3 nodes, at most 2 vCPU (4000 MHz) / 8192 MB on one; nodes
// exhausted: cpu (3 of 3 nodes)".
func placementReason(queued int, a ask, m *api.AllocationMetric, free *capacity) string {
	var b strings.Builder
	fmt.Fprintf(&b, "placement failed: %d %s × %d MCU need %d vCPU", queued, plural(queued, "worker", "workers"), a.mcu, queued*a.mcu)
	if a.mhz > 0 {
		fmt.Fprintf(&b, " (%d MHz)", queued*a.mhz)
	}
	fmt.Fprintf(&b, " / %d MB", queued*a.mcu*MBPerMcu)
	if free != nil {
		b.WriteString("; " + free.String())
	}
	if m.NodesEvaluated == 0 && m.NodesExhausted == 0 {
		pool := m.NodePool
		if pool == "" {
			pool = "default"
		}
		fmt.Fprintf(&b, "; no ready node in the job's datacenters (node pool %q, %d nodes in pool)", pool, m.NodesInPool)
	}
	if dims := sortedKeys(m.DimensionExhausted); len(dims) > 0 || m.NodesExhausted > 0 {
		if len(dims) == 0 {
			dims = []string{"resources"}
		}
		fmt.Fprintf(&b, "; nodes exhausted: %s (%d of %d nodes)", strings.Join(dims, ", "), m.NodesExhausted, m.NodesEvaluated)
	}
	filtered := map[string]int{}
	for _, fm := range []map[string]int{m.ConstraintFiltered, m.ClassFiltered} {
		for k, v := range fm {
			filtered[k] += v
		}
	}
	if keys := sortedKeys(filtered); len(keys) > 0 {
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s (%d)", k, filtered[k])
		}
		fmt.Fprintf(&b, "; nodes filtered out: %s", strings.Join(parts, ", "))
	}
	if len(m.QuotaExhausted) > 0 {
		q := append([]string(nil), m.QuotaExhausted...)
		sort.Strings(q)
		fmt.Fprintf(&b, "; quota exhausted: %s", strings.Join(q, ", "))
	}
	return b.String()
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		if v > 0 {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
