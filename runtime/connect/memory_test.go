package connect

import (
	"context"
	"testing"
)

func TestMemoryBudgetShares(t *testing.T) {
	worker := NewMemoryBudget(100)
	a, b := worker.Share(60), worker.Share(60)
	if !a.TryTake(60) {
		t.Fatal("a share refused bytes within itself and its parent")
	}
	if a.TryTake(1) {
		t.Error("a share gave more than its limit")
	}
	if b.TryTake(41) {
		t.Error("a share gave more than its parent had left")
	}
	if !b.TryTake(40) {
		t.Fatal("a share refused what its parent had left")
	}
	if worker.InUse() != 100 || a.InUse() != 60 || b.InUse() != 40 {
		t.Fatalf("in use: worker %d, a %d, b %d", worker.InUse(), a.InUse(), b.InUse())
	}
	if b.InUse() != 40 || b.Limit() != 60 {
		t.Errorf("b: %d of %d", b.InUse(), b.Limit())
	}
	a.Release(60)
	if worker.InUse() != 40 || a.InUse() != 0 {
		t.Errorf("after release: worker %d, a %d", worker.InUse(), a.InUse())
	}
	if !b.TryTake(20) || b.TryTake(1) {
		t.Error("b's own limit not kept once its parent has room")
	}
	if a.TryTake(-1) {
		t.Error("negative take accepted")
	}
}

func TestMemoryBudgetInContext(t *testing.T) {
	if MemoryBudgetFrom(context.Background()) != nil {
		t.Error("a budget out of an empty context")
	}
	b := NewMemoryBudget(7)
	if got := MemoryBudgetFrom(WithMemoryBudget(context.Background(), b)); got != b {
		t.Errorf("got %p, want %p", got, b)
	}
}
