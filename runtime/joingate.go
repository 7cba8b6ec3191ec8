package runtime

import (
	"context"
	"sync"
	"time"
)

// joinGateWait bounds how long a sink task holds its first poll for the
// worker's other tasks to join the group.
const joinGateWait = 5 * time.Second

// joinGateSettle is how long the tasks still hold their first poll once
// the last one joined: a cooperative rebalance hands a newcomer its
// partitions in a second round, right after the first, once their previous
// owner has let them go.
const joinGateSettle = 300 * time.Millisecond

// joinGate holds the first poll of the sink tasks a worker starts together
// until each of them has joined the consumer group. Without it the task
// that joins first is handed every partition and starts consuming; when
// the next task joins, a cooperative rebalance takes half of them back and
// what the first had buffered but not made durable is read again by the
// new owner. Kafka delays an empty group's first rebalance
// (group.initial.rebalance.delay.ms) so that members starting together
// land in it; this does the same within a worker whatever the broker does
// (kfake, in ferry dev and the tests, completes the first join at once).
// Only the worker's first share takes part, once each: a restarted task,
// or one a new task share adds, polls at once.
type joinGate struct {
	mu      sync.Mutex
	members map[int]bool // first-share tasks that have not joined yet
	settle  bool         // more than one task takes part
	waited  map[int]bool // first-share tasks that have already waited
	open    chan struct{}
}

func newJoinGate(ids []int) *joinGate {
	g := &joinGate{members: map[int]bool{}, waited: map[int]bool{}, open: make(chan struct{})}
	if len(ids) < 2 {
		close(g.open)
		return g
	}
	for _, id := range ids {
		g.members[id] = true
	}
	g.settle = true
	return g
}

// joined records that task id has its first assignment (possibly empty),
// or that its first incarnation ended without one.
func (g *joinGate) joined(id int) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.members[id] {
		return
	}
	delete(g.members, id)
	if len(g.members) == 0 {
		close(g.open)
	}
}

// wait holds task id's first poll until every first-share task joined,
// max passed or ctx is done; later calls return at once.
func (g *joinGate) wait(ctx context.Context, id int, max time.Duration) {
	if g == nil {
		return
	}
	g.mu.Lock()
	if g.waited[id] {
		g.mu.Unlock()
		return
	}
	g.waited[id] = true
	g.mu.Unlock()
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-g.open:
		if g.settle {
			s := time.NewTimer(joinGateSettle)
			defer s.Stop()
			select {
			case <-s.C:
			case <-ctx.Done():
			}
		}
	case <-t.C:
	case <-ctx.Done():
	}
}
