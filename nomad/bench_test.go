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

// BenchmarkObserve1000 measures one reconcile pass of Observe over 1,000
// running connectors against the fake, without and with Watch, and reports
// the Nomad requests a pass costs: with the watch in sync a pass that
// finds nothing changed asks Nomad nothing.
func BenchmarkObserve1000(b *testing.B) {
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
			names := make([]string, 1000)
			for i := range names {
				d := testDeployment()
				d.Name = fmt.Sprintf("c-%04d", i)
				d.Spec.Connector = d.Name
				names[i] = d.Name
				if err := dep.Apply(ctx, d); err != nil {
					b.Fatal(err)
				}
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
			total := func() int {
				f.mu.Lock()
				defer f.mu.Unlock()
				n := 0
				for _, c := range f.requests {
					n += c
				}
				return n
			}
			b.ResetTimer()
			start, passes := total(), 0
			for b.Loop() {
				for _, n := range names {
					if _, err := dep.Observe(ctx, n); err != nil {
						b.Fatal(err)
					}
				}
				passes++
			}
			b.ReportMetric(float64(total()-start)/float64(passes), "nomad-requests/pass")
		})
	}
}
