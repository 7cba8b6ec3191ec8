package scheduler

import (
	"context"
	"errors"

	"github.com/ferryhq/ferry/jobs"
)

// Deployer runs a connector's workers somewhere: child processes of the
// ferry process (scheduler/local) or Nomad allocations (nomad). The
// reconciler is its only caller and calls it from one goroutine.
//
// An error may say what retrying can do through methods the reconciler
// looks for with errors.As (so a deployer need not import this package):
// Permanent() bool, true when the platform refused the deployment and only
// a person can fix it (the connector turns FAILED with the error's
// message); Unavailable() bool, true when the platform cannot be reached
// or cannot serve (the reconciler stops the pass and backs off as a whole,
// rather than waiting out a timeout per connector).
type Deployer interface {
	// Apply makes the connector's workers match d. It is idempotent: a
	// changed Revision or Restarts replaces every worker; a changed Workers
	// count only adds or removes workers (the highest indexes go first).
	Apply(ctx context.Context, d Deployment) error
	// Remove stops every worker of the named connector and forgets it. It
	// succeeds when nothing is deployed under the name.
	Remove(ctx context.Context, name string) error
	// List returns the names of the connectors that have something deployed,
	// so the reconciler can remove what no connector record asks for.
	List(ctx context.Context) ([]string, error)
	// Observe reports how the named connector's workers are doing.
	Observe(ctx context.Context, name string) (Observation, error)
}

// Deployment is what one connector should run: a worker spec and how many
// workers run it.
type Deployment struct {
	Name     string // connector name
	Arn      string // connector ARN
	Revision int64  // spec revision; a change replaces the workers
	Restarts int64  // restart generation; a change replaces the workers
	Workers  int    // worker count
	Mcu      int    // MCUs per worker (1 MCU = 1 vCPU + 4 GiB)
	// Autoscaling is the connector's autoscaled capacity (nil when
	// provisioned), so a deployer can state the bounds to its platform.
	Autoscaling *jobs.AutoScaling
	// Reason says why the deployment changes, when an operation is in
	// progress (e.g. the autoscaler's "scale out from 2 to 4 workers: cpu
	// 91%"), for the platform's own record of a scale.
	Reason string
	// Spec is what every worker is handed. It carries secrets: never log it.
	Spec jobs.WorkerSpec
	// Plugin, when set, is the custom plugin whose worker binary runs
	// instead of the ferry binary (nil: Ferry's built-in connectors).
	Plugin *PluginArtifact
}

// PluginArtifact is a custom plugin's checked file as a deployer fetches it:
// a ZIP served by the Ferry API, pinned by its MD5, holding the worker
// executable at Binary.
type PluginArtifact struct {
	Name     string // plugin name
	Arn      string // plugin ARN
	Revision int64  // plugin revision
	// URL is where the ZIP is downloaded from (HTTP GET; the Ferry API's
	// plugins.FilePath).
	URL string
	// Md5 is the hex MD5 of the ZIP; a download that does not match it
	// must be refused.
	Md5  string
	Size int64
	// Binary is the path of the worker executable inside the ZIP; it is
	// run with the same arguments and environment as `ferry worker`.
	Binary string
}

// Observation is what a Deployer sees of one connector's workers.
type Observation struct {
	// Deployed is false when nothing runs under the name.
	Deployed bool
	// Workers is the worker count asked for; Alive how many run right now.
	Workers, Alive int
	// IDs maps a worker index to the id (jobs.EnvWorkerID) of the
	// incarnation the deployer runs at that index, when it knows it. The
	// reconciler then believes only statuses from those incarnations.
	IDs map[int]string
	// CrashLoop is set when workers keep exiting soon after they start;
	// PlacementFailed when the platform has no room for some of them.
	// Reason then says why in words a person can act on (e.g. the last
	// lines a worker wrote to stderr, or the capacity asked and free).
	CrashLoop       bool
	PlacementFailed bool
	Reason          string
}

// permanent reports whether err says the deployment was refused and only a
// person can fix it (see Deployer).
func permanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// unavailable reports whether err says the platform cannot be reached or
// cannot serve (see Deployer).
func unavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}
