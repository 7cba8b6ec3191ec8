package nomad

import (
	"fmt"
	"testing"

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
