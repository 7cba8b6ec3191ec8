// Package jobs is the contract the control plane (scheduler, nomad) and the
// data plane (runtime, connectors) share: the connector specification as MSK
// Connect describes it, its validation, what a worker is handed, the metrics
// and status messages workers publish, and the NATS subject and KV names.
//
// It imports the standard library only, so both planes can depend on it
// without depending on each other.
package jobs
