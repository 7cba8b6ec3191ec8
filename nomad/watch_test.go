package nomad

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// startWatch runs dep.Watch until the test ends and waits until it is in
// sync with Nomad.
func startWatch(t *testing.T, dep *Deployer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := dep.Watch(ctx); err != nil {
			t.Errorf("watch: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		dep.watch.mu.Lock()
		ok := dep.watch.inSync()
		dep.watch.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("watch not in sync after 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitChange waits for name on dep.Changes.
func waitChange(t *testing.T, dep *Deployer, name string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case got := <-dep.Changes():
			if got == name {
				return
			}
		case <-timeout:
			t.Fatalf("no change of %s announced", name)
		}
	}
}

// drain empties dep.Changes (the first sync announces every job).
func drain(dep *Deployer) {
	for {
		select {
		case <-dep.Changes():
		default:
			return
		}
	}
}

func (f *fakeNomad) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[key]
}

func TestWatchBlocksWithIndexAndWait(t *testing.T) {
	f := newFakeNomad(t)
	dep := newTestDeployer(t, f.start(t).URL)
	dep.cfg.WatchWait = 300 * time.Millisecond
	ctx := ctxT(t)
	d := testDeployment()
	startWatch(t, dep)
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitChange(t, dep, d.Name)
	id := JobID(d.Name)
	drain(dep)
	f.setAllocs(id, alloc("a0", id, 0, 0, api.AllocClientStatusRunning, api.AllocDesiredStatusRun, 200))
	waitChange(t, dep, d.Name)

	// Quiet for a while: each source re-asks once per wait, no more.
	before := map[string]int{}
	for _, p := range []string{"/v1/jobs", "/v1/allocations", "/v1/deployments"} {
		before[p] = f.count("GET " + p)
	}
	time.Sleep(time.Second)
	for p, n := range before {
		if got := f.count("GET "+p) - n; got > 5 {
			t.Errorf("%s asked %d times in 1s with a 300ms wait: polling, not blocking", p, got)
		}
	}
	f.mu.Lock()
	blocking := append([]string(nil), f.blocking...)
	f.mu.Unlock()
	for _, p := range []string{"/v1/jobs", "/v1/allocations", "/v1/deployments"} {
		found := false
		for _, b := range blocking {
			if strings.HasPrefix(b, p+" index=") && !strings.HasPrefix(b, p+" index=0 ") && strings.HasSuffix(b, "wait=300ms") {
				found = true
			}
		}
		if !found {
			t.Errorf("no blocking query of %s with a non-zero index and wait=300ms in %q", p, blocking)
		}
	}
}

func TestObserveAnswersFromTheWatchCache(t *testing.T) {
	f := newFakeNomad(t)
	dep := newTestDeployer(t, f.start(t).URL)
	dep.cfg.WatchWait = time.Second
	ctx := ctxT(t)
	d := withWorkers(testDeployment(), 1)
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	startWatch(t, dep)
	id := JobID(d.Name)
	info := "GET /v1/job/" + id

	obs, err := dep.Observe(ctx, d.Name)
	if err != nil || !obs.Deployed || obs.Alive != 0 {
		t.Fatalf("first observe = %+v, %v", obs, err)
	}
	n := f.count(info)
	for range 5 {
		if _, err := dep.Observe(ctx, d.Name); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.count(info) - n; got != 0 {
		t.Errorf("observe read the job %d more times with nothing changed; want answers from the cache", got)
	}

	// A change in Nomad invalidates the cache and is announced.
	drain(dep)
	f.setAllocs(id, alloc("a0", id, 0, 0, api.AllocClientStatusRunning, api.AllocDesiredStatusRun, 200))
	waitChange(t, dep, d.Name)
	obs, err = dep.Observe(ctx, d.Name)
	if err != nil || obs.Alive != 1 || obs.IDs[0] != "a0" {
		t.Fatalf("observe after the allocation started = %+v, %v", obs, err)
	}
	if f.count(info) == n {
		t.Error("observe after a change answered from the stale cache")
	}

	// The Deployer's own writes invalidate at once, before the watch sees them.
	if err := dep.Apply(ctx, withWorkers(d, 2)); err != nil {
		t.Fatal(err)
	}
	if obs, err := dep.Observe(ctx, d.Name); err != nil || obs.Workers != 2 {
		t.Fatalf("observe right after a scale = %+v, %v", obs, err)
	}
}

func TestObserveWithoutWatchAsksNomad(t *testing.T) {
	f := newFakeNomad(t)
	dep := newTestDeployer(t, f.start(t).URL)
	ctx := ctxT(t)
	d := testDeployment()
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	info := "GET /v1/job/" + JobID(d.Name)
	n := f.count(info)
	for range 3 {
		if _, err := dep.Observe(ctx, d.Name); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.count(info) - n; got != 3 {
		t.Errorf("observe without a watch read the job %d times, want 3", got)
	}
}

func TestWatchOutageFallsBackToNomad(t *testing.T) {
	f := newFakeNomad(t)
	srv := f.start(t)
	dep := newTestDeployer(t, srv.URL)
	dep.cfg.WatchWait = 200 * time.Millisecond
	ctx := ctxT(t)
	d := testDeployment()
	if err := dep.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	startWatch(t, dep)
	if _, err := dep.Observe(ctx, d.Name); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections()
	srv.Close()
	// Once a watch query fails the cache is dropped: Observe must not
	// claim a state it cannot know.
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, err := dep.Observe(ctx, d.Name); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("observe kept answering from the cache with nomad gone")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pass is one reconcile pass of the reconciler over the named deployments:
// Apply, then Observe, each.
func pass(t testing.TB, ctx context.Context, dep *Deployer, ds []Deployment) {
	t.Helper()
	for _, d := range ds {
		if err := dep.Apply(ctx, d); err != nil {
			t.Fatalf("apply %s: %v", d.Name, err)
		}
		if _, err := dep.Observe(ctx, d.Name); err != nil {
			t.Fatalf("observe %s: %v", d.Name, err)
		}
	}
}

// TestIdlePassAsksNomadNothing: with the watch in sync, a reconcile pass
// (Apply then Observe per connector, List for orphans) over connectors
// whose jobs did not change sends Nomad no request at all (the watch's own
// blocking queries aside); a change to one connector's allocations costs
// requests for that connector only.
func TestIdlePassAsksNomadNothing(t *testing.T) {
	f := newFakeNomad(t)
	dep := newTestDeployer(t, f.start(t).URL)
	dep.cfg.WatchWait = time.Second
	ctx := ctxT(t)
	var ds []Deployment
	for _, name := range []string{"a-conn", "b-conn", "c-conn"} {
		d := withWorkers(testDeployment(), 1)
		d.Name, d.Spec.Connector = name, name
		ds = append(ds, d)
	}
	startWatch(t, dep)
	pass(t, ctx, dep, ds) // creates the jobs
	// Passes until the watch has seen Ferry's own writes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		before := f.passRequests()
		pass(t, ctx, dep, ds)
		if _, err := dep.List(ctx); err != nil {
			t.Fatal(err)
		}
		if f.passRequests() == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("passes still ask nomad after 5s: %v", f.requests)
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := f.passRequests()
	for range 5 {
		pass(t, ctx, dep, ds)
		if names, err := dep.List(ctx); err != nil || len(names) != 3 {
			t.Fatalf("list = %v, %v", names, err)
		}
	}
	if n := f.passRequests() - before; n != 0 {
		t.Errorf("5 idle passes over 3 connectors sent %d requests, want 0", n)
	}

	// A change to b's allocations: b is looked at again, a is not.
	info := func(name string) int { return f.count("GET /v1/job/" + JobID(name)) }
	infoA, infoB := info("a-conn"), info("b-conn")
	drain(dep)
	id := JobID("b-conn")
	f.setAllocs(id, alloc("b0", id, 0, 0, api.AllocClientStatusRunning, api.AllocDesiredStatusRun, 300))
	waitChange(t, dep, "b-conn")
	pass(t, ctx, dep, ds)
	if info("b-conn") == infoB {
		t.Error("a change to b's allocations did not make observe look again")
	}
	if info("a-conn") != infoA {
		t.Error("a change to b's allocations made a be read again")
	}
}
