package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/store/storetest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

const testTTL = time.Second

// election runs candidates on one NATS server and records who leads.
type election struct {
	t       *testing.T
	url     string
	active  atomic.Int32 // candidates inside fn right now
	overlap atomic.Bool  // ever more than one
	mu      sync.Mutex
	leader  string // the one inside fn, "" when none
	wg      sync.WaitGroup
}

type candidate struct {
	id     string
	nc     *nats.Conn
	l      *Leader
	cancel context.CancelFunc
	done   chan error
}

func newElection(t *testing.T) *election {
	s, _ := storetest.NATS(t, "")
	e := &election{t: t, url: s.ClientURL()}
	t.Cleanup(e.wg.Wait)
	return e
}

func (e *election) start(id string) *candidate {
	e.t.Helper()
	nc, err := nats.Connect(e.url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	l, err := NewLeader(LeaderConfig{Conn: nc, ID: id, TTL: testTTL, Logger: zerolog.Nop()})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &candidate{id: id, nc: nc, l: l, cancel: cancel, done: make(chan error, 1)}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		c.done <- l.Run(ctx, func(lctx context.Context) error {
			if e.active.Add(1) > 1 {
				e.overlap.Store(true)
			}
			e.mu.Lock()
			e.leader = id
			e.mu.Unlock()
			<-lctx.Done()
			e.mu.Lock()
			if e.leader == id {
				e.leader = ""
			}
			e.mu.Unlock()
			e.active.Add(-1)
			return nil
		})
	}()
	e.t.Cleanup(func() { cancel(); nc.Close() })
	return c
}

// waitLeader waits until some candidate other than not leads and returns it.
func (e *election) waitLeader(within time.Duration, not string) string {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		id := e.leader
		e.mu.Unlock()
		if id != "" && id != not {
			return id
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no leader other than %q within %s", not, within)
	return ""
}

func TestLeaderExactlyOneLeads(t *testing.T) {
	e := newElection(t)
	a, b := e.start("a"), e.start("b")
	first := e.waitLeader(2*testTTL, "")
	// Hold for a few renewals: the same one leads, the other never enters.
	time.Sleep(3 * testTTL)
	if e.overlap.Load() {
		t.Fatal("two candidates led at once")
	}
	if got := e.waitLeader(time.Second, ""); got != first {
		t.Fatalf("leader changed from %s to %s without a failure", first, got)
	}
	if a.l.IsLeader() == b.l.IsLeader() {
		t.Fatalf("IsLeader: a=%v b=%v, want exactly one", a.l.IsLeader(), b.l.IsLeader())
	}
}

func TestLeaderStopHandsOver(t *testing.T) {
	e := newElection(t)
	cs := map[string]*candidate{"a": e.start("a"), "b": e.start("b")}
	first := e.waitLeader(2*testTTL, "")
	start := time.Now()
	cs[first].cancel()
	if err := <-cs[first].done; err != nil {
		t.Fatalf("run of stopped leader: %v", err)
	}
	second := e.waitLeader(2*testTTL, first)
	took := time.Since(start)
	t.Logf("takeover after stop: %s", took)
	if took > testTTL/3 {
		t.Errorf("takeover after a clean stop took %s; the follower should see the release at once", took)
	}
	if e.overlap.Load() {
		t.Fatal("two candidates led at once")
	}
	if cs[second].l.IsLeader() != true || cs[first].l.IsLeader() {
		t.Fatal("IsLeader does not follow the election")
	}
}

func TestLeaderKilledIsReplacedWithinTwoTTL(t *testing.T) {
	e := newElection(t)
	cs := map[string]*candidate{"a": e.start("a"), "b": e.start("b")}
	first := e.waitLeader(2*testTTL, "")
	start := time.Now()
	// Killing the leader's connection is what a crashed process looks
	// like to NATS: no release, the lock must expire.
	cs[first].nc.Close()
	second := e.waitLeader(2*testTTL+testTTL/2, first)
	t.Logf("takeover after kill: %s", time.Since(start))
	if e.overlap.Load() {
		t.Fatal("two candidates led at once")
	}
	if second == first {
		t.Fatal("the killed leader still leads")
	}
}

func TestLeaderStepsDownWhenRenewalFails(t *testing.T) {
	_, nc := storetest.NATS(t, "")
	l, err := NewLeader(LeaderConfig{Conn: nc, ID: "a", TTL: testTTL, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	entered := make(chan struct{}, 4)
	lost := make(chan struct{}, 4)
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, func(lctx context.Context) error {
			entered <- struct{}{}
			<-lctx.Done()
			lost <- struct{}{}
			return nil
		})
	}()
	select {
	case <-entered:
	case <-time.After(2 * testTTL):
		t.Fatal("never led")
	}
	// Someone else overwrites the lock: the revision moves, so the next
	// renewal (an Update at the old revision) fails.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, jobs.KVLocks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "reconciler", []byte("intruder")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(testTTL):
		t.Fatal("leader did not step down after its renewal failed")
	}
	if l.IsLeader() {
		t.Fatal("IsLeader after stepping down")
	}
	// The intruder's lock is not ours to delete: it stays until it expires,
	// and then we lead again.
	if e, err := kv.Get(ctx, "reconciler"); err != nil || string(e.Value()) != "intruder" {
		t.Fatalf("lock after step-down: %v, %v; want the intruder's", e, err)
	}
	select {
	case <-entered:
	case <-time.After(3 * testTTL):
		t.Fatal("did not lead again once the intruder's lock expired")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestLeaderReturnsFnError(t *testing.T) {
	_, nc := storetest.NATS(t, "")
	l, err := NewLeader(LeaderConfig{Conn: nc, TTL: testTTL, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = l.Run(context.Background(), func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("run: %v, want boom", err)
	}
	// The lock was released: a second candidate takes it at once.
	l2, _ := NewLeader(LeaderConfig{Conn: nc, TTL: testTTL, Logger: zerolog.Nop()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = l2.Run(ctx, func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("second candidate: %v, want it to lead and return boom", err)
	}
}

func TestLeaderConfigValidate(t *testing.T) {
	c := LeaderConfig{TTL: time.Millisecond, Replicas: -1}
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"nats connection", "ttl", "replicas"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
