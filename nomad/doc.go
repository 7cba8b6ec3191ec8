// Package nomad runs connectors as Nomad jobs: it renders a connector's
// deployment into an *api.Job (pure, golden-tested), registers, scales and
// deregisters it, and reports how its allocations are doing.
//
// It is the only package of Ferry that imports github.com/hashicorp/nomad/api.
// The scheduler never sees a Nomad type: cmd/ferry adapts the scheduler's
// Deployment and Observation to this package's own types.
//
// One connector is one job, "ferry-<connector>", with one group "workers"
// (count = worker count) and one task "worker". The worker's spec is rendered
// by a template block into the task's secrets directory; its secret
// configuration values, and the two values that change with the worker count
// (workers and tasksMax), live in the Nomad Variable "nomad/jobs/ferry-<name>",
// which the task may read through its workload identity. That way secrets are
// never part of the job, and a scale decision changes the variable and the
// count but never the job, so it adds or removes workers without replacing
// the others.
//
// cmd/ferry adapts a scheduler.Deployment field for field (Name, Arn,
// Revision, Restarts, Workers, Mcu, Spec, plus Autoscaling for the scaling
// bounds), and an Observation back with CrashLoop = o.Failing(): a crash
// loop, a placement failure or a failed rollout, explained by o.Reason.
//
// Deployer.Watch (run on the leader) follows the job list, allocations,
// deployments and variables of ferry- jobs with blocking queries; while it
// is in sync Apply, List and Observe answer from what it saw, so an idle
// reconcile pass asks Nomad nothing, and Changes announces the connectors
// whose jobs changed. Errors are *Error when they say what retrying can do:
// Permanent (Nomad refused) or Unavailable (Nomad unreachable).
//
// What the Ferry server's Nomad token needs: submit-job, read-job and
// scale-job (list-jobs, read-job-scaling) in the namespace, variables
// read/write/destroy/list on nomad/jobs/ferry-*, and optionally node read
// (for the free capacity in placement messages); see
// nomad/deploy/ferry-server.policy.hcl. Workers need no policy: a job's
// tasks may read nomad/jobs/<job ID> through their workload identity.
package nomad
