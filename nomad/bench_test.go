package nomad

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
	"github.com/rs/zerolog"
)

// BenchmarkRender measures rendering one connector's job and variable.
func BenchmarkRender(b *testing.B) {
	d := testDeployment()
	cfg := RenderConfig{WorkerCommand: "/usr/local/bin/ferry"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(d, cfg); err != nil {
			b.Fatal(err)
		}
		if _, err := RenderVariable(d, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply1000 measures creating 1,000 connectors and then one
// reconcile pass over all of them (Apply with nothing to change), against
// the fake Nomad through the real client.
func BenchmarkApply1000(b *testing.B) {
	for b.Loop() {
		f := newFakeNomad(b)
		srv := f.start(b)
		client, err := api.NewClient(&api.Config{Address: srv.URL})
		if err != nil {
			b.Fatal(err)
		}
		dep, err := NewDeployer(Config{Client: client, Render: RenderConfig{WorkerCommand: "/bin/ferry"}, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		ctx := b.Context()
		for pass := 0; pass < 2; pass++ {
			for i := range 1000 {
				d := testDeployment()
				d.Name = fmt.Sprintf("c-%04d", i)
				d.Spec.Connector = d.Name
				if err := dep.Apply(ctx, d); err != nil {
					b.Fatal(err)
				}
			}
		}
		srv.Close()
	}
}

// BenchmarkIdlePass1000 measures one idle reconcile pass over 1,000
// running connectors against the fake, as the reconciler makes it every 2 s
// and on every notice: Apply (nothing to change), then Observe, for each,
// and List once. It reports the Nomad requests a pass sends, without and
// with Watch (whose own blocking queries are not counted): with the watch
// in sync an idle pass asks Nomad nothing.
func BenchmarkIdlePass1000(b *testing.B) {
	for _, watched := range []bool{false, true} {
		b.Run(fmt.Sprintf("watch=%t", watched), func(b *testing.B) {
			f := newFakeNomad(b)
			srv := f.start(b)
			client, err := api.NewClient(&api.Config{Address: srv.URL})
			if err != nil {
				b.Fatal(err)
			}
			dep, err := NewDeployer(Config{Client: client, Render: RenderConfig{WorkerCommand: "/bin/ferry"}, Logger: zerolog.Nop(), WatchWait: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			ds := make([]Deployment, 1000)
			for i := range ds {
				d := testDeployment()
				d.Name = fmt.Sprintf("c-%04d", i)
				d.Spec.Connector = d.Name
				ds[i] = d
			}
			if watched {
				wctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { defer close(done); _ = dep.Watch(wctx) }()
				defer func() { cancel(); <-done }()
				for {
					dep.watch.mu.Lock()
					ok := dep.watch.inSync()
					dep.watch.mu.Unlock()
					if ok {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
			onePass := func() {
				pass(b, ctx, dep, ds)
				if _, err := dep.List(ctx); err != nil {
					b.Fatal(err)
				}
			}
			onePass() // creates the jobs
			// Until the watch has seen the creations (or, without it, once).
			for prev := -1; ; {
				n := f.passRequests()
				onePass()
				if !watched || f.passRequests() == n || f.passRequests()-n == prev {
					break
				}
				prev = f.passRequests() - n
				time.Sleep(10 * time.Millisecond)
			}
			b.ResetTimer()
			start, passes := f.passRequests(), 0
			for b.Loop() {
				onePass()
				passes++
			}
			b.ReportMetric(float64(f.passRequests()-start)/float64(passes), "nomad-requests/pass")
		})
	}
}
