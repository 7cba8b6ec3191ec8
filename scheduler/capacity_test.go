package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/store"
)

// A capacity update that only changes the worker count (the API moves
// Revision but not WorkersRevision) adds a worker and leaves the running
// ones alone; the operation completes once the new worker runs.
func TestCountOnlyUpdateKeepsRunningWorkers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	x := e.executor()
	e.run(x, nil)

	arn := e.create(spec("grow", 2, nil))
	e.waitStatus("grow", 20*time.Second, state(jobs.StateRunning))
	before := pidsOf(x, "grow")
	if len(before) != 2 {
		t.Fatalf("processes before: %v", before)
	}

	ce, err := e.st.Connectors.Get(ctx, "grow")
	if err != nil {
		t.Fatal(err)
	}
	c := ce.Value
	origin := c.Spec.Capacity
	c.Spec.Capacity = jobs.Capacity{ProvisionedCapacity: &jobs.ProvisionedCapacity{McuCount: 1, WorkerCount: 3}}
	c.WorkersRevision = c.RunRevision()
	c.Revision++
	if _, err := e.st.Connectors.Update(ctx, "grow", c, ce.Revision); err != nil {
		t.Fatal(err)
	}
	a, _ := jobs.ParseARN(arn)
	opArn := jobs.ARN{Region: a.Region, Account: a.Account, Kind: jobs.KindConnectorOperation, Name: "grow", ID: a.ID, Sub: "op1"}.String()
	key := store.OperationKey("grow", "op1")
	if _, err := e.st.Operations.Create(ctx, key, store.Operation{
		Arn: opArn, ID: "op1", ConnectorArn: arn, ConnectorName: "grow", Type: store.OpUpdateWorkerSetting,
		State: store.OpInProgress, TargetRevision: c.RunRevision(), OriginCapacity: &origin, TargetCapacity: &c.Spec.Capacity,
		Steps: []store.Step{{Type: store.StepUpdateWorkerSetting, State: store.StepInProgress}}, CreationTime: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Status.Modify(ctx, "grow", false, func(s *jobs.ConnectorStatus) error {
		s.State, s.Operation = jobs.StateUpdating, opArn
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	st := e.waitStatus("grow", 20*time.Second, func(s jobs.ConnectorStatus) bool {
		return s.State == jobs.StateRunning && s.Workers == 3
	})
	if st.Revision != 1 {
		t.Fatalf("workers run revision %d, want 1 (a count change replaces no worker)", st.Revision)
	}
	after := pidsOf(x, "grow")
	if len(after) != 3 {
		t.Fatalf("processes after: %v", after)
	}
	for idx, pid := range before {
		if after[idx] != pid {
			t.Errorf("worker %d was replaced (pid %d → %d) by a count-only update", idx, pid, after[idx])
		}
	}
	waitFor(t, "operation complete", 10*time.Second, func() bool {
		op, err := e.st.Operations.Get(ctx, key)
		return err == nil && op.Value.State == store.OpComplete
	})
}
