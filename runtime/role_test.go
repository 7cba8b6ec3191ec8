package runtime

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// roleTask records the service execution role its Start was handed.
type roleTask struct {
	recordingTask
	mu   *sync.Mutex
	seen *[]string
}

func (t *roleTask) Start(ctx context.Context, cfg map[string]string) error {
	t.mu.Lock()
	*t.seen = append(*t.seen, connect.ServiceExecutionRoleFrom(ctx))
	t.mu.Unlock()
	return t.recordingTask.Start(ctx, cfg)
}

// The worker hands its tasks the connector's service execution role when
// the spec carries one, and none otherwise.
func TestTasksGetTheServiceExecutionRole(t *testing.T) {
	addr := newCluster(t, 1, "t")
	for _, role := range []string{"arn:aws:iam::123456789012:role/c", ""} {
		var mu sync.Mutex
		var seen []string
		reg := sinkRegistry(t, func() connect.SinkTask {
			return &roleTask{recordingTask: recordingTask{rec: newRecorder()}, mu: &mu, seen: &seen}
		})
		spec := testSpec("role", addr, 2, 1, map[string]string{"topics": "t"})
		spec.ServiceExecutionRoleArn = role
		w := startWorker(t, spec, 0, reg)
		eventually(t, 20*time.Second, "both tasks started", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(seen) == 2
		})
		w.stop(t)
		for _, got := range seen {
			if got != role {
				t.Errorf("task started with role %q, want %q", got, role)
			}
		}
	}
}
