package connect

import "context"

type executionRoleKey struct{}

// WithServiceExecutionRole returns ctx carrying the connector's service
// execution role (an IAM role ARN). The runtime hands it to Start when the
// server has workers assume each connector's role, as MSK Connect does
// (ferry server --assume-execution-role).
func WithServiceExecutionRole(ctx context.Context, roleARN string) context.Context {
	return context.WithValue(ctx, executionRoleKey{}, roleARN)
}

// ServiceExecutionRoleFrom returns the role ctx carries, or "". A connector
// that calls AWS and has no credentials of its own configured assumes it
// through STS, with the worker's default credentials as the source, as MSK
// Connect's connectors act as their service execution role.
func ServiceExecutionRoleFrom(ctx context.Context) string {
	r, _ := ctx.Value(executionRoleKey{}).(string)
	return r
}
