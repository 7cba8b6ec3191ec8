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
