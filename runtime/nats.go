package runtime

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// DialNATS connects to NATS for a worker's reports the way the data path
// needs it: it returns at once even if NATS is down, reconnects forever in
// the background, and buffers little while disconnected, so publishing never
// blocks and never fails the worker.
func DialNATS(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectBufSize(1<<20),
		nats.Timeout(2*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	return nc, nil
}
