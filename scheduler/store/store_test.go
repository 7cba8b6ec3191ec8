package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/store"
	"github.com/ferryhq/ferry/scheduler/store/storetest"
)

func TestBucketLifecycle(t *testing.T) {
	st, _ := storetest.Open(t)
	ctx := context.Background()
	b := st.Connectors

	if _, err := b.Get(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: %v, want ErrNotFound", err)
	}
	rev, err := b.Create(ctx, "a", jobs.Connector{Arn: "arn-a", Revision: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, "a", jobs.Connector{}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("create twice: %v, want ErrExists", err)
	}
	rev2, err := b.Update(ctx, "a", jobs.Connector{Arn: "arn-a", Revision: 2}, rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Update(ctx, "a", jobs.Connector{Revision: 3}, rev); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	e, err := b.Get(ctx, "a")
	if err != nil || e.Value.Revision != 2 || e.Revision != rev2 {
		t.Fatalf("get after update = %+v, %v", e, err)
	}
	if _, err := b.Create(ctx, "b", jobs.Connector{Arn: "arn-b"}); err != nil {
		t.Fatal(err)
	}
	list, err := b.List(ctx, "")
	if err != nil || len(list) != 2 || list[0].Key != "a" || list[1].Key != "b" {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if err := b.Delete(ctx, "a", rev); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale delete: %v, want ErrConflict", err)
	}
	if err := b.Delete(ctx, "a", rev2); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	// A deleted key can be created again (a connector re-created under its name).
	if _, err := b.Create(ctx, "a", jobs.Connector{Arn: "arn-a2"}); err != nil {
		t.Fatalf("re-create: %v", err)
	}
	list, _ = b.List(ctx, "")
	if len(list) != 2 {
		t.Fatalf("list after re-create has %d entries", len(list))
	}
}

func TestModifyIsAtomicUnderContention(t *testing.T) {
	st, _ := storetest.Open(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	const n = 20
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.Status.Modify(ctx, "c", true, func(s *jobs.ConnectorStatus) error {
				s.Workers++
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	e, err := st.Status.Get(ctx, "c")
	if err != nil || e.Value.Workers != n {
		t.Fatalf("workers = %d (%v), want %d: a concurrent modify was lost", e.Value.Workers, err, n)
	}
	sentinel := errors.New("abort")
	if _, err := st.Status.Modify(ctx, "c", false, func(s *jobs.ConnectorStatus) error { s.Workers = 0; return sentinel }); !errors.Is(err, sentinel) {
		t.Fatalf("aborted modify: %v", err)
	}
	if e, _ := st.Status.Get(ctx, "c"); e.Value.Workers != n {
		t.Fatal("aborted modify wrote")
	}
}

func TestWatchSignalsChanges(t *testing.T) {
	st, _ := storetest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := st.Connectors.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Connectors.Put(ctx, "x", jobs.Connector{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no change signalled")
	}
}

func TestStateSurvivesServerRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	srv, nc := storetest.NATS(t, dir)
	st, err := store.OpenConn(ctx, nc, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Plugins.Create(ctx, "p", store.Plugin{Name: "p", Revision: 1}); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv.Shutdown()
	srv.WaitForShutdown()

	_, nc2 := storetest.NATS(t, dir)
	st2, err := store.OpenConn(ctx, nc2, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := st2.Plugins.Get(ctx, "p")
	if err != nil || e.Value.Name != "p" {
		t.Fatalf("after restart: %+v, %v", e, err)
	}
}
