package connect

import (
	"encoding/json"
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

func TestAsInt64AndAsFloat64(t *testing.T) {
	for _, c := range []struct {
		v   any
		n   int64
		nOK bool
		f   float64
		fOK bool
	}{
		{int8(-8), -8, true, -8, true},
		{int16(16), 16, true, 16, true},
		{int32(-32), -32, true, -32, true},
		{int64(1) << 62, 1 << 62, true, 1 << 62, true},
		{7, 7, true, 7, true},
		{json.Number("123"), 123, true, 123, true},
		{json.Number("1.5"), 0, false, 1.5, true},
		{json.Number("1e400"), 0, false, 0, false},
		{json.Number("9223372036854775808"), 0, false, 9223372036854775808, true},
		{2.0, 0, false, 2, true},
		{float32(0.5), 0, false, 0.5, true},
		{uint8(1), 0, false, 0, false},
		{"1", 0, false, 0, false},
		{true, 0, false, 0, false},
		{nil, 0, false, 0, false},
	} {
		if n, ok := AsInt64(c.v); ok != c.nOK || (ok && n != c.n) {
			t.Errorf("AsInt64(%#v) = %d, %v; want %d, %v", c.v, n, ok, c.n, c.nOK)
		}
		if f, ok := AsFloat64(c.v); ok != c.fOK || (ok && f != c.f) {
			t.Errorf("AsFloat64(%#v) = %v, %v; want %v, %v", c.v, f, ok, c.f, c.fOK)
		}
	}
}

func TestDecimalFromRat(t *testing.T) {
	for _, c := range []struct {
		text  string
		scale int32
		want  string // "" when it does not fit
	}{{"12.34", 2, "12.34"}, {"12.34", 4, "12.3400"}, {"12.345", 2, ""}, {"-0.5", 1, "-0.5"}, {"1200", -2, "1200"}, {"1250", -2, ""}, {"1/4", 2, "0.25"}, {"1/3", 9, ""}} {
		r, _ := new(big.Rat).SetString(c.text)
		d, ok := DecimalFromRat(r, c.scale)
		if ok != (c.want != "") || (ok && (d.String() != c.want || d.Scale != c.scale)) {
			t.Errorf("DecimalFromRat(%s, %d) = %v, %v; want %q", c.text, c.scale, d, ok, c.want)
		}
	}
}
