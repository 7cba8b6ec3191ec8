// Package transforms implements Kafka Connect's built-in single message
// transforms and predicates (org.apache.kafka.connect.transforms.*) with
// their class names, options, defaults and semantics, on the Go values the
// converters produce: schemaless maps, or values with a Connect schema
// (JsonConverter with schemas.enable=true, source records that carry one),
// whose schema each transform keeps in step as Kafka's do (schema.go).
//
// The package registers every class in connect.Default() when it is
// imported; the runtime imports it, so the worker and the control plane
// (through Registry.ValidateConfig) both know the built-ins.
package transforms

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/runtime/connect"
)

// Prefix is the package of Kafka Connect's transforms.
const (
	Prefix          = "org.apache.kafka.connect.transforms."
	PredicatePrefix = Prefix + "predicates."
)

func init() {
	if err := Register(connect.Default()); err != nil {
		panic(err)
	}
}

// Register adds every built-in transform and predicate to reg.
func Register(reg *connect.Registry) error {
	for _, p := range Plugins() {
		if err := reg.RegisterTransform(p); err != nil {
			return err
		}
	}
	for _, p := range PredicatePlugins() {
		if err := reg.RegisterPredicate(p); err != nil {
			return err
		}
	}
	return nil
}

// keyed makes the $Key and $Value variants of a transform.
func keyed(name, doc string, mk func(o *opts, s side) connect.Transform) []connect.TransformPlugin {
	var out []connect.TransformPlugin
	for _, s := range []side{keySide, valueSide} {
		out = append(out, connect.TransformPlugin{
			Class: Prefix + name + "$" + s.String(),
			Doc:   doc + " (record " + strings.ToLower(s.String()) + ")",
			New:   build(func(o *opts) connect.Transform { return mk(o, s) }),
		})
	}
	return out
}

func single(name, doc string, mk func(o *opts) connect.Transform) connect.TransformPlugin {
	return connect.TransformPlugin{Class: Prefix + name, Doc: doc, New: build(mk)}
}

func build(mk func(o *opts) connect.Transform) func(map[string]string) (connect.Transform, error) {
	return func(props map[string]string) (connect.Transform, error) {
		o := &opts{props: props}
		t := mk(o)
		if len(o.es) > 0 {
			return nil, o.es
		}
		return t, nil
	}
}

// Plugins lists the built-in transforms.
func Plugins() []connect.TransformPlugin {
	var out []connect.TransformPlugin
	out = append(out, keyed("InsertField", "insert record metadata or a static value as fields", newInsertField)...)
	out = append(out, keyed("ReplaceField", "filter and rename fields", newReplaceField)...)
	out = append(out, keyed("MaskField", "replace fields with a type's empty value or a replacement", newMaskField)...)
	out = append(out, keyed("Cast", "cast fields or the whole value to another type", newCast)...)
	out = append(out, keyed("ExtractField", "replace the value with one of its fields", newExtractField)...)
	out = append(out, keyed("HoistField", "wrap the value in a map under a field", newHoistField)...)
	out = append(out, keyed("Flatten", "flatten nested maps, joining names with a delimiter", newFlatten)...)
	out = append(out, keyed("TimestampConverter", "convert timestamps between unix, string, Date, Time and Timestamp", newTimestampConverter)...)
	out = append(out, keyed("HeaderFrom", "move or copy fields into headers", newHeaderFrom)...)
	out = append(out,
		single("ValueToKey", "replace the key with a map of fields of the value", newValueToKey),
		single("TimestampRouter", "route to a topic named from the topic and the record timestamp", newTimestampRouter),
		single("RegexRouter", "rename the topic with a regular expression", newRegexRouter),
		single("Filter", "drop records (with a predicate, those it matches)", func(*opts) connect.Transform { return filter{} }),
		single("InsertHeader", "add a header with a literal value", newInsertHeader),
		single("DropHeaders", "remove headers by name", newDropHeaders),
	)
	return out
}

// side is the part of the record a $Key or $Value transform works on.
type side bool

const (
	keySide   side = true
	valueSide side = false
)

func (s side) String() string {
	if s == keySide {
		return "Key"
	}
	return "Value"
}

func (s side) get(r *connect.Record) any {
	if s == keySide {
		return r.Key
	}
	return r.Value
}

// set replaces the key or value; the raw bytes no longer match, so they are
// dropped and the runtime re-encodes them with the converter.
func (s side) set(r *connect.Record, v any) {
	if s == keySide {
		r.Key, r.RawKey = v, nil
	} else {
		r.Value, r.RawValue = v, nil
	}
}

// requireMap is Kafka's Requirements.requireMap.
func requireMap(v any, purpose string) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("only Map objects supported in absence of schema for [%s], found: %s", purpose, typeName(v))
	}
	return m, nil
}

func typeName(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// opts reads a transform's options, collecting every problem.
type opts struct {
	props map[string]string
	es    connect.ConfigErrors
}

func (o *opts) bad(key, format string, args ...any) {
	o.es = append(o.es, &connect.ConfigError{Key: key, Message: fmt.Sprintf(format, args...)})
}

func (o *opts) has(key string) bool {
	_, ok := o.props[key]
	return ok
}

// str returns the option, or def when absent.
func (o *opts) str(key, def string) string {
	if v, ok := o.props[key]; ok {
		return v
	}
	return def
}

// required returns a non-empty option or records that it is missing.
func (o *opts) required(key string) string {
	v, ok := o.props[key]
	if !ok {
		o.bad(key, "missing required configuration %q which has no default value", key)
		return ""
	}
	if strings.TrimSpace(v) == "" {
		o.bad(key, "must not be empty")
	}
	return v
}

func (o *opts) list(key string) []string { return connect.SplitList(o.props[key]) }

// requiredList returns a non-empty list or records the problem.
func (o *opts) requiredList(key string) []string {
	if !o.has(key) {
		o.bad(key, "missing required configuration %q which has no default value", key)
		return nil
	}
	l := o.list(key)
	if len(l) == 0 {
		o.bad(key, "must be a non-empty list")
	}
	return l
}

func (o *opts) boolean(key string, def bool) bool {
	v, ok := o.props[key]
	if !ok {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true
	case "false":
		return false
	}
	o.bad(key, "invalid value %s for configuration %s: expected value to be either true or false", v, key)
	return def
}

func (o *opts) oneOf(key, def string, values ...string) string {
	v := strings.TrimSpace(o.str(key, def))
	for _, ok := range values {
		if v == ok {
			return v
		}
	}
	o.bad(key, "invalid value %s for configuration %s: must be one of %s", v, key, strings.Join(values, ", "))
	return def
}

func (o *opts) regex(key string) *regexp.Regexp {
	v := o.required(key)
	if v == "" {
		return nil
	}
	re, err := regexp.Compile(`^(?:` + v + `)$`)
	if err != nil {
		o.bad(key, "invalid regex %q: %v", v, err)
		return nil
	}
	return re
}

func (o *opts) integer(key string) (int64, bool) {
	v, ok := o.props[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		o.bad(key, "must be an integer, got %q", v)
		return 0, false
	}
	return n, true
}

// filter is org.apache.kafka.connect.transforms.Filter: it drops every
// record it is applied to (use a predicate to choose which).
type filter struct{}

var _ connect.Transform = filter{}

func (filter) Apply(*connect.Record) (*connect.Record, error) { return nil, nil }
