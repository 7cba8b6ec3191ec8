package transforms

import (
	"fmt"
	"strings"

	"github.com/ferryhq/ferry/runtime/connect"
)

// headerFrom is HeaderFrom$Key / HeaderFrom$Value.
type headerFrom struct {
	side    side
	fields  []string
	headers []string
	move    bool
	cache   schemaCache
}

var _ connect.Transform = (*headerFrom)(nil)

func newHeaderFrom(o *opts, s side) connect.Transform {
	t := &headerFrom{side: s, fields: o.requiredList("fields"), headers: o.requiredList("headers")}
	if len(t.fields) != len(t.headers) && len(t.fields) > 0 && len(t.headers) > 0 {
		o.bad("fields", "'fields' config must have the same number of elements as 'headers' config")
	}
	if !o.has("operation") {
		o.bad("operation", "missing required configuration %q which has no default value", "operation")
	} else {
		t.move = o.oneOf("operation", "copy", "move", "copy") == "move"
	}
	return t
}

func (t *headerFrom) Apply(r *connect.Record) (*connect.Record, error) {
	op := "copy"
	if t.move {
		op = "move"
	}
	sc := t.side.schema(r)
	m, err := requireFields(sc, t.side.get(r), "header "+op)
	if err != nil {
		return nil, err
	}
	for _, f := range t.fields {
		if sc != nil && sc.Field(f) == nil {
			return nil, fmt.Errorf("field %q is not in the %s's schema", f, strings.ToLower(t.side.String()))
		}
	}
	for i, f := range t.fields {
		r.Headers = append(r.Headers, connect.Header{Key: t.headers[i], Data: m[f]})
	}
	if !t.move {
		return r, nil
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		out[k] = x
	}
	for _, f := range t.fields {
		delete(out, f)
	}
	if sc == nil {
		t.side.set(r, out)
		return r, nil
	}
	// The moved fields leave the schema too (Kafka's moveSchema).
	upd, _ := t.cache.get(sc, func() (*connect.Schema, error) {
		moved := setOf(t.fields)
		s := structLike(sc)
		s.Optional = sc.Optional
		for _, f := range sc.Fields {
			if !moved[f.Name] {
				s.Fields = append(s.Fields, f)
			}
		}
		return s, nil
	})
	t.side.setWithSchema(r, upd, out)
	return r, nil
}

// insertHeader is InsertHeader: it adds a header whose value is the literal
// parsed as SimpleHeaderConverter would (true → boolean, 42 → integer, ...).
type insertHeader struct {
	header string
	value  any
}

var _ connect.Transform = (*insertHeader)(nil)

func newInsertHeader(o *opts) connect.Transform {
	t := &insertHeader{header: o.required("header")}
	if !o.has("value.literal") {
		o.bad("value.literal", "missing required configuration %q which has no default value", "value.literal")
	}
	t.value = connect.ParseString(o.str("value.literal", ""))
	return t
}

func (t *insertHeader) Apply(r *connect.Record) (*connect.Record, error) {
	r.Headers = append(r.Headers, connect.Header{Key: t.header, Data: t.value})
	return r, nil
}

// dropHeaders is DropHeaders: it removes every header with one of the names.
type dropHeaders struct{ names map[string]bool }

var _ connect.Transform = (*dropHeaders)(nil)

func newDropHeaders(o *opts) connect.Transform {
	return &dropHeaders{names: setOf(o.requiredList("headers"))}
}

func (t *dropHeaders) Apply(r *connect.Record) (*connect.Record, error) {
	kept := r.Headers[:0]
	for _, h := range r.Headers {
		if !t.names[h.Key] {
			kept = append(kept, h)
		}
	}
	r.Headers = kept
	return r, nil
}
