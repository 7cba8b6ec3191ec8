package connect

import (
	"math/big"
	"strings"
	"testing"
)

// Config provider references are left to the worker: a typed key holding
// one is not refused at create time, a bad literal still is.
func TestValidateSkipsConfigReferences(t *testing.T) {
	reg := NewRegistry()
	if err := reg.Register(Plugin{Class: "s", Kind: Sink, NewSinkTask: func() SinkTask { return nil },
		Config: []ConfigField{{Name: "port", Type: TypeInt, Required: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := reg.ValidateConfig("s", map[string]string{"topics": "a", "port": "${env:PORT}", "tasks.max": "${file:/etc/x.properties:tasks}"}); err != nil {
		t.Errorf("references refused: %v", err)
	}
	err := reg.ValidateConfig("s", map[string]string{"topics": "a", "port": "eighty"})
	if err == nil || !strings.Contains(err.Error(), "port: must be an integer") {
		t.Errorf("bad literal: %v", err)
	}
	for v, want := range map[string]bool{"${env:X}": true, "a${dir:/d:f}b": true, "${x}": false, "$env:X": false, "plain": false} {
		if HasConfigReference(v) != want {
			t.Errorf("HasConfigReference(%q) = %v", v, !want)
		}
	}
}

func TestDecimalString(t *testing.T) {
	for _, c := range []struct {
		unscaled int64
		scale    int32
		want     string
	}{{-12340, 3, "-12.340"}, {5, 3, "0.005"}, {-5, 1, "-0.5"}, {123, 0, "123"}, {12, -2, "1200"}, {0, 2, "0.00"}} {
		if got := (Decimal{Unscaled: big.NewInt(c.unscaled), Scale: c.scale}).String(); got != c.want {
			t.Errorf("Decimal{%d, %d} = %q, want %q", c.unscaled, c.scale, got, c.want)
		}
	}
}
