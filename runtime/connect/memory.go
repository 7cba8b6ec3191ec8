package connect

import (
	"context"
	"sync"
)

// MemoryBudget is a byte allowance for the records a task buffers in
// memory. The runtime derives one per worker from its MCUs (docs/memory.md)
// and hands each sink task its share in the context of Start
// (MemoryBudgetFrom). A task takes bytes before it holds them and gives them
// back when it lets them go; when TryTake says no, it spills to disk or makes
// its records durable rather than grow. A budget may be a share of a parent:
// taking from it takes from the parent too, so tasks that each stay within
// their share also stay within the worker's.
//
// A MemoryBudget is safe for concurrent use.
type MemoryBudget struct {
	parent *MemoryBudget
	mu     sync.Mutex
	limit  int64
	used   int64
}

// NewMemoryBudget returns a budget of limit bytes (at least 0).
func NewMemoryBudget(limit int64) *MemoryBudget {
	return &MemoryBudget{limit: max(limit, 0)}
}

// Share returns a budget of at most limit bytes drawn from b.
func (b *MemoryBudget) Share(limit int64) *MemoryBudget {
	return &MemoryBudget{parent: b, limit: max(limit, 0)}
}

// TryTake takes n bytes if they fit in b (and in its parents) and reports
// whether it did.
func (b *MemoryBudget) TryTake(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < 0 || b.used+n > b.limit {
		return false
	}
	if b.parent != nil && !b.parent.TryTake(n) {
		return false
	}
	b.used += n
	return true
}

// Release gives back n bytes taken earlier.
func (b *MemoryBudget) Release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used = max(b.used-n, 0)
	b.mu.Unlock()
	if b.parent != nil {
		b.parent.Release(n)
	}
}

// Limit returns the bytes b allows.
func (b *MemoryBudget) Limit() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit
}

// InUse returns the bytes taken from b and not yet released.
func (b *MemoryBudget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

type memoryBudgetKey struct{}

// WithMemoryBudget returns ctx carrying b; the runtime uses it for the
// context of SinkTask.Start.
func WithMemoryBudget(ctx context.Context, b *MemoryBudget) context.Context {
	return context.WithValue(ctx, memoryBudgetKey{}, b)
}

// MemoryBudgetFrom returns the budget ctx carries, or nil (a task started
// outside Ferry's runtime picks its own).
func MemoryBudgetFrom(ctx context.Context) *MemoryBudget {
	b, _ := ctx.Value(memoryBudgetKey{}).(*MemoryBudget)
	return b
}

// BufferReporter is implemented by a SinkTask that accounts for the
// memory it buffers records in, normally by drawing on the MemoryBudget it
// was started with. BufferedBytes returns the bytes it holds now; it is
// called from the goroutine that calls Put. Without it, the runtime counts
// the bytes of the records it handed to Put that PreCommit has not yet
// reported durable. Either figure above the task's share pauses fetching
// for the task's partitions until it falls back.
type BufferReporter interface {
	BufferedBytes() int64
}
