package transforms

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/runtime/connect"
)

// insertField is InsertField$Key / InsertField$Value.
type insertField struct {
	side                                                     side
	topic, partition, offset, timestamp, static, staticValue string
	hasStaticValue                                           bool
}

var _ connect.Transform = (*insertField)(nil)

// fieldName strips the "!" (required) and "?" (optional) suffixes Kafka
// accepts on inserted field names; they only matter for schemas.
func fieldName(v string) string {
	v = strings.TrimSpace(v)
	return strings.TrimSuffix(strings.TrimSuffix(v, "!"), "?")
}

func newInsertField(o *opts, s side) connect.Transform {
	t := &insertField{
		side:      s,
		topic:     fieldName(o.str("topic.field", "")),
		partition: fieldName(o.str("partition.field", "")),
		offset:    fieldName(o.str("offset.field", "")),
		timestamp: fieldName(o.str("timestamp.field", "")),
		static:    fieldName(o.str("static.field", "")),
	}
	t.staticValue, t.hasStaticValue = o.props["static.value"]
	return t
}

func (t *insertField) Apply(r *connect.Record) (*connect.Record, error) {
	v := t.side.get(r)
	if v == nil {
		return r, nil // tombstones pass unchanged, as in Kafka
	}
	m, err := requireMap(v, "field insertion")
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(m)+5)
	for k, x := range m {
		out[k] = x
	}
	if t.topic != "" {
		out[t.topic] = r.Topic
	}
	if t.partition != "" && r.Partition >= 0 {
		out[t.partition] = r.Partition
	}
	if t.offset != "" {
		if r.Offset < 0 {
			return nil, fmt.Errorf("only SinkRecord supported for [field insertion], found: SourceRecord")
		}
		out[t.offset] = r.Offset
	}
	if t.timestamp != "" && !r.Timestamp.IsZero() {
		out[t.timestamp] = r.Timestamp.UnixMilli()
	}
	if t.static != "" && t.hasStaticValue {
		out[t.static] = t.staticValue
	}
	t.side.set(r, out)
	return r, nil
}

// replaceField is ReplaceField$Key / ReplaceField$Value.
type replaceField struct {
	side             side
	include, exclude map[string]bool
	renames          map[string]string
}

var _ connect.Transform = (*replaceField)(nil)

func setOf(l []string) map[string]bool {
	m := make(map[string]bool, len(l))
	for _, s := range l {
		m[s] = true
	}
	return m
}

func newReplaceField(o *opts, s side) connect.Transform {
	t := &replaceField{side: s, renames: map[string]string{}}
	// exclude/include replaced blacklist/whitelist (KIP-629); the old names
	// are still read when the new ones are absent.
	ex, in := "exclude", "include"
	if !o.has(ex) && o.has("blacklist") {
		ex = "blacklist"
	}
	if !o.has(in) && o.has("whitelist") {
		in = "whitelist"
	}
	t.exclude, t.include = setOf(o.list(ex)), setOf(o.list(in))
	for _, m := range o.list("renames") {
		parts := strings.Split(m, ":")
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			o.bad("renames", "invalid rename mapping: %s", m)
			continue
		}
		t.renames[parts[0]] = parts[1]
	}
	return t
}

func (t *replaceField) Apply(r *connect.Record) (*connect.Record, error) {
	v := t.side.get(r)
	if v == nil {
		return r, nil
	}
	m, err := requireMap(v, "field replacement")
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		if t.exclude[k] || (len(t.include) > 0 && !t.include[k]) {
			continue
		}
		if n, ok := t.renames[k]; ok {
			k = n
		}
		out[k] = x
	}
	t.side.set(r, out)
	return r, nil
}

// maskField is MaskField$Key / MaskField$Value.
type maskField struct {
	side        side
	fields      []string
	replacement *string
}

var _ connect.Transform = (*maskField)(nil)

func newMaskField(o *opts, s side) connect.Transform {
	t := &maskField{side: s, fields: o.requiredList("fields")}
	if v, ok := o.props["replacement"]; ok {
		if v == "" {
			o.bad("replacement", "string may not be empty")
		}
		t.replacement = &v
	}
	return t
}

func (t *maskField) Apply(r *connect.Record) (*connect.Record, error) {
	// As in Kafka, a null key or value is an error (no tombstone pass-through).
	m, err := requireMap(t.side.get(r), "mask fields")
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		out[k] = x
	}
	for _, f := range t.fields {
		mv, err := t.mask(m[f])
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", f, err)
		}
		out[f] = mv
	}
	t.side.set(r, out)
	return r, nil
}

// mask returns the type's empty value, or the replacement parsed as the
// value's type (numbers and strings only, as in Kafka).
func (t *maskField) mask(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if t.replacement == nil {
		switch v.(type) {
		case bool:
			return false, nil
		case json.Number:
			return json.Number("0"), nil
		case float64:
			return float64(0), nil
		case float32:
			return float32(0), nil
		case int8:
			return int8(0), nil
		case int16:
			return int16(0), nil
		case int32:
			return int32(0), nil
		case int64:
			return int64(0), nil
		case int:
			return 0, nil
		case string:
			return "", nil
		case time.Time:
			return time.UnixMilli(0).UTC(), nil
		case []any:
			return []any{}, nil
		case map[string]any:
			return map[string]any{}, nil
		case []byte:
			return []byte{}, nil
		}
		return nil, fmt.Errorf("cannot mask value of type %T", v)
	}
	rep := *t.replacement
	numErr := func() error { return fmt.Errorf("unable to convert %s (string) to number", rep) }
	switch v.(type) {
	case string:
		return rep, nil
	case json.Number:
		if _, err := strconv.ParseFloat(rep, 64); err != nil {
			return nil, numErr()
		}
		return json.Number(rep), nil
	case float64, float32:
		f, err := strconv.ParseFloat(rep, 64)
		if err != nil {
			return nil, numErr()
		}
		return castTo(f, "float64")
	case int8, int16, int32, int64, int:
		n, err := strconv.ParseInt(rep, 10, 64)
		if err != nil {
			return nil, numErr()
		}
		return castTo(n, typeKind(v))
	}
	return nil, fmt.Errorf("cannot mask value of type %T with a custom replacement", v)
}

// extractField is ExtractField$Key / ExtractField$Value.
type extractField struct {
	side side
	path []string
}

var _ connect.Transform = (*extractField)(nil)

func newExtractField(o *opts, s side) connect.Transform {
	f := o.required("field")
	t := &extractField{side: s, path: []string{f}}
	// field.syntax.version=V2 (KIP-821) reads dots as nesting.
	if o.oneOf("field.syntax.version", "V1", "V1", "V2") == "V2" {
		t.path = strings.Split(f, ".")
	}
	return t
}

func (t *extractField) Apply(r *connect.Record) (*connect.Record, error) {
	var cur any = t.side.get(r)
	for _, p := range t.path {
		if cur == nil {
			break
		}
		m, err := requireMap(cur, "field extraction")
		if err != nil {
			return nil, err
		}
		cur = m[p]
	}
	t.side.set(r, cur)
	return r, nil
}

// hoistField is HoistField$Key / HoistField$Value.
type hoistField struct {
	side  side
	field string
}

var _ connect.Transform = (*hoistField)(nil)

func newHoistField(o *opts, s side) connect.Transform {
	return &hoistField{side: s, field: o.required("field")}
}

func (t *hoistField) Apply(r *connect.Record) (*connect.Record, error) {
	t.side.set(r, map[string]any{t.field: t.side.get(r)})
	return r, nil
}

// valueToKey is ValueToKey: the key becomes a map of the named fields of
// the value.
type valueToKey struct{ fields []string }

var _ connect.Transform = (*valueToKey)(nil)

func newValueToKey(o *opts) connect.Transform {
	return &valueToKey{fields: o.requiredList("fields")}
}

func (t *valueToKey) Apply(r *connect.Record) (*connect.Record, error) {
	m, err := requireMap(r.Value, "copying fields from value to key")
	if err != nil {
		return nil, err
	}
	key := make(map[string]any, len(t.fields))
	for _, f := range t.fields {
		key[f] = m[f]
	}
	keySide.set(r, key)
	return r, nil
}

// flatten is Flatten$Key / Flatten$Value.
type flatten struct {
	side      side
	delimiter string
}

var _ connect.Transform = (*flatten)(nil)

func newFlatten(o *opts, s side) connect.Transform {
	return &flatten{side: s, delimiter: o.str("delimiter", ".")}
}

func (t *flatten) Apply(r *connect.Record) (*connect.Record, error) {
	v := t.side.get(r)
	if v == nil {
		return r, nil
	}
	m, err := requireMap(v, "flattening")
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	t.flatten(out, "", m)
	t.side.set(r, out)
	return r, nil
}

func (t *flatten) flatten(out map[string]any, prefix string, m map[string]any) {
	for k, v := range m {
		name := k
		if prefix != "" {
			name = prefix + t.delimiter + k
		}
		if sub, ok := v.(map[string]any); ok {
			t.flatten(out, name, sub)
			continue
		}
		out[name] = v
	}
}
