package nomad

import (
	"testing"

	"github.com/hashicorp/nomad/api"
)

// Retries of one failure (messages differing only in a temp dir's or a
// port's numbers) are said once; distinct failures are all said.
func TestFailureMessagesSayARetriedFailureOnce(t *testing.T) {
	ev := func(msg string) *api.TaskEvent {
		return &api.TaskEvent{Type: api.TaskArtifactDownloadFailed, DownloadError: msg}
	}
	ts := &api.TaskState{Events: []*api.TaskEvent{
		ev("Checksums did not match for /tmp/getter111/archive"),
		ev("Checksums did not match for /tmp/getter222/archive"),
		{Type: api.TaskTerminated, ExitCode: 1},
		ev("Checksums did not match for /tmp/getter333/archive"),
	}}
	got := failureMessages(ts)
	if len(got) != 2 || got[1] != "Checksums did not match for /tmp/getter333/archive" {
		t.Errorf("messages = %q, want the exit and the newest download failure once", got)
	}
}

// TestPlacementReasonSaysWhatIsFree: a placement failure names what the
// job's eligible nodes have free (their resources less reserved and less
// their live allocations), as the example does.
func TestPlacementReasonSaysWhatIsFree(t *testing.T) {
	f := newFakeNomad(t)
	dep := newTestDeployer(t, f.start(t).URL)
	ctx := ctxT(t)
	d := autoscaledDeployment() // 2 workers × 4 MCU
	id := JobID(d.Name)
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	node := func(id, pool, status string, mhz, mb int64) *api.NodeListStub {
		return &api.NodeListStub{ID: id, Datacenter: "dc1", NodePool: pool, Status: status, SchedulingEligibility: api.NodeSchedulingEligible,
			NodeResources:     &api.NodeResources{Cpu: api.NodeCpuResources{CpuShares: mhz}, Memory: api.NodeMemoryResources{MemoryMB: mb}},
			ReservedResources: &api.NodeReservedResources{Cpu: api.NodeReservedCpuResources{CpuShares: 0}, Memory: api.NodeReservedMemoryResources{MemoryMB: 1024}}}
	}
	running := func(mhz, mb int64) *api.Allocation {
		return &api.Allocation{DesiredStatus: "run", ClientStatus: "running", AllocatedResources: &api.AllocatedResources{
			Tasks: map[string]*api.AllocatedTaskResources{"t": {Cpu: api.AllocatedCpuResources{CpuShares: mhz}, Memory: api.AllocatedMemoryResources{MemoryMB: mb}}}}}
	}
	f.mu.Lock()
	f.nodes = []*api.NodeListStub{
		node("n1", "default", "ready", 8000, 17408), // 16384 MB after reserved
		node("n2", "default", "ready", 8000, 9216),  // 8192 MB
		node("n3", "default", "down", 8000, 33792),  // not ready: not counted
		node("n4", "gpu", "ready", 8000, 33792),     // another pool: not counted
	}
	f.nodeAllocs["n1"] = []*api.Allocation{running(6000, 12288), {DesiredStatus: "stop", ClientStatus: "complete"}}
	f.nodeAllocs["n2"] = []*api.Allocation{running(2000, 4096)}
	f.mu.Unlock()
	f.setPlacementFailure(id, 2, &api.Evaluation{ID: "e1", CreateIndex: 5, FailedTGAllocs: map[string]*api.AllocationMetric{GroupName: {
		NodesEvaluated: 2, NodesExhausted: 2, DimensionExhausted: map[string]int{"cpu": 2}}}})
	obs, err := dep.Observe(ctx, d.Name)
	if err != nil {
		t.Fatal(err)
	}
	want := "placement failed: 2 workers × 4 MCU need 8 vCPU (16000 MHz) / 32768 MB; cluster has 4 vCPU (8000 MHz) / 8192 MB free on 2 nodes, at most 3 vCPU (6000 MHz) / 4096 MB on one; nodes exhausted: cpu (2 of 2 nodes)"
	if !obs.PlacementFailed || obs.Reason != want {
		t.Errorf("reason = %s\nwant     %s", obs.Reason, want)
	}
}
