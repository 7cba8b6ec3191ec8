package all

import (
	"testing"

	"github.com/ferryhq/ferry/connectors/datagen"
	"github.com/ferryhq/ferry/connectors/s3sink"
	"github.com/ferryhq/ferry/runtime/connect"
)

func TestRegistered(t *testing.T) {
	for _, name := range []string{s3sink.Class, "S3SinkConnector", "ferry.s3sink"} {
		if p, ok := connect.Default().Lookup(name); !ok || p.Class != s3sink.Class {
			t.Errorf("default registry lookup %q = %v, %v", name, p.Class, ok)
		}
	}
	for _, name := range []string{datagen.Class, "DatagenConnector", "ferry.datagen"} {
		if p, ok := connect.Default().Lookup(name); !ok || p.Class != datagen.Class || p.Kind != connect.Source {
			t.Errorf("default registry lookup %q = %v, %v", name, p.Class, ok)
		}
	}
	reg := connect.NewRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := Register(reg); err == nil {
		t.Error("registering twice succeeded")
	}
	if got := reg.Classes(); len(got) != len(Plugins()) {
		t.Errorf("classes %v", got)
	}
}
