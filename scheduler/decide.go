package scheduler

import (
	"fmt"
	"time"

	"github.com/ferryhq/ferry/jobs"
)

// Codes of the stateDescription of a FAILED connector (and the errorInfo of
// a failed update).
const (
	CodeWorkerFailed         = "WorkerFailed"
	CodeWorkerCrashLoop      = "WorkerCrashLoop"
	CodePlacementFailed      = "PlacementFailed"
	CodeStartTimeout         = "StartTimeout"
	CodeInvalidConfiguration = "InvalidConfiguration"
	// CodeDeploymentRejected: the platform (Nomad) refused the connector's
	// job, e.g. its ACL policy, a missing namespace, or a job of the same
	// name that is not Ferry's.
	CodeDeploymentRejected = "DeploymentRejected"
)

// facts is what one reconcile pass knows about a connector.
type facts struct {
	connector jobs.Connector
	status    jobs.ConnectorStatus
	workers   int        // the worker count it should run
	view      workerView // fresh worker statuses at connector.RunRevision()
	obs       Observation
	invalid   error     // a rendering problem the user must fix
	rejected  error     // the deployer refused the deployment (permanent)
	deployErr error     // the deployer failed this pass (transient)
	since     time.Time // when it entered CREATING/UPDATING at this revision
	now       time.Time
	timeout   time.Duration
}

// decision is what the reconciler should write.
type decision struct {
	status jobs.ConnectorStatus
	// opDone is set when the update in progress (status.Operation before
	// the decision) ends: opInfo nil means it completed.
	opDone bool
	opInfo *jobs.StateDescription
}

// decide is the connector state machine:
//
//	CREATING ─┬─ every worker RUNNING at the revision ─▶ RUNNING ◀─┐ recovered
//	UPDATING ─┤                                            │        │
//	          └─ a worker FAILED, a crash loop, ───────────┴──────▶ FAILED
//	             no room to place workers, a bad
//	             configuration, the deployment refused,
//	             or no RUNNING within the start timeout
//	             (pending only)
//
// An update's operation ends with the connector: UPDATE_COMPLETE when it
// reaches RUNNING, UPDATE_FAILED with the same description when it fails.
func decide(f facts) decision {
	st := f.status
	st.Workers = f.workers
	d := decision{}
	pending := st.State == jobs.StateCreating || st.State == jobs.StateUpdating
	fail := failure(f)
	if fail == nil && pending && f.view.Running < f.workers && f.now.Sub(f.since) > f.timeout {
		msg := fmt.Sprintf("%d of %d workers became RUNNING within %s", f.view.Running, f.workers, f.timeout)
		if f.obs.Deployed {
			msg += fmt.Sprintf(" (%d worker processes alive)", f.obs.Alive)
		}
		if f.view.Last != "" {
			msg += "; last worker message: " + f.view.Last
		}
		if f.deployErr != nil {
			msg += "; last deployment error: " + f.deployErr.Error()
		}
		fail = &jobs.StateDescription{Code: CodeStartTimeout, Message: msg}
	}
	switch {
	case fail != nil:
		st.State = jobs.StateFailed
		st.StateDescription = fail
		if st.Operation != "" {
			d.opDone, d.opInfo = true, fail
			st.Operation = ""
		}
	case f.workers > 0 && f.view.Running >= f.workers:
		st.State = jobs.StateRunning
		st.StateDescription = nil
		st.Revision = f.connector.RunRevision()
		if st.Operation != "" {
			d.opDone = true
			st.Operation = ""
		}
	case pending:
		// An update of a FAILED connector starts afresh.
		st.StateDescription = nil
	}
	d.status = st
	return d
}

// failure is why the connector's workers fail right now, if they do.
func failure(f facts) *jobs.StateDescription {
	switch {
	case f.invalid != nil:
		return &jobs.StateDescription{Code: CodeInvalidConfiguration, Message: f.invalid.Error()}
	case f.rejected != nil:
		return &jobs.StateDescription{Code: CodeDeploymentRejected, Message: f.rejected.Error()}
	case f.view.Failed != nil:
		msg := f.view.Failed.Message
		if msg == "" {
			msg = "the worker reported FAILED without a message"
		}
		return &jobs.StateDescription{Code: CodeWorkerFailed, Message: fmt.Sprintf("worker %d: %s", f.view.Failed.Index, msg)}
	case f.obs.PlacementFailed:
		msg := f.obs.Reason
		if msg == "" {
			msg = "no node has room for the workers"
		}
		return &jobs.StateDescription{Code: CodePlacementFailed, Message: msg}
	case f.obs.CrashLoop:
		msg := f.obs.Reason
		if msg == "" {
			msg = "workers keep exiting soon after they start"
		}
		return &jobs.StateDescription{Code: CodeWorkerCrashLoop, Message: msg}
	}
	return nil
}

// sameStatus reports whether two statuses say the same, ignoring Updated.
func sameStatus(a, b jobs.ConnectorStatus) bool {
	if a.State != b.State || a.Workers != b.Workers || a.Revision != b.Revision || a.Operation != b.Operation {
		return false
	}
	switch {
	case a.StateDescription == nil && b.StateDescription == nil:
		return true
	case a.StateDescription == nil || b.StateDescription == nil:
		return false
	}
	return *a.StateDescription == *b.StateDescription
}
