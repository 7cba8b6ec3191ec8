package connect

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Transform is a single message transform (Kafka Connect's
// Transformation): it changes one record at a time, between the converter
// and the task. Apply returns the record to pass on, or nil to drop it (as
// Filter does). It may change rec in place and return it. A transform is
// used from one goroutine at a time.
//
// A transform that changes a key or value the record has a schema for
// (Record.KeySchema, ValueSchema) sets the schema that describes the new
// value, as Kafka's transforms do (schemas are shared between records:
// make a new one, never change one in place), or nil when it cannot. The
// runtime encodes a changed key or value with its schema.
type Transform interface {
	Apply(rec *Record) (*Record, error)
}

// Predicate decides whether a transform applies to a record (Kafka
// Connect's Predicate).
type Predicate interface {
	Test(rec *Record) bool
}

// TransformPlugin is one transform class. New configures an instance from
// the transform's own properties (the "transforms.<alias>." prefix
// stripped); it must be pure (no I/O), because the control plane calls it to
// validate a connector configuration. Its errors should be ConfigErrors
// keyed by the option name (e.g. "field"); the caller adds the prefix.
type TransformPlugin struct {
	Class string
	Doc   string
	New   func(props map[string]string) (Transform, error)
}

// PredicatePlugin is one predicate class, configured like a transform.
type PredicatePlugin struct {
	Class string
	Doc   string
	New   func(props map[string]string) (Predicate, error)
}

// Framework keys of transforms and predicates.
const (
	KeyTransforms = "transforms"
	KeyPredicates = "predicates"
)

// RegisterTransform adds a transform class to r.
func (r *Registry) RegisterTransform(p TransformPlugin) error {
	if p.Class == "" || p.New == nil {
		return fmt.Errorf("register transform %q: class and New are required", p.Class)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.transforms == nil {
		r.transforms = map[string]TransformPlugin{}
	}
	if _, ok := r.transforms[p.Class]; ok {
		return fmt.Errorf("register transform %q: already registered", p.Class)
	}
	r.transforms[p.Class] = p
	return nil
}

// RegisterPredicate adds a predicate class to r.
func (r *Registry) RegisterPredicate(p PredicatePlugin) error {
	if p.Class == "" || p.New == nil {
		return fmt.Errorf("register predicate %q: class and New are required", p.Class)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.predicates == nil {
		r.predicates = map[string]PredicatePlugin{}
	}
	if _, ok := r.predicates[p.Class]; ok {
		return fmt.Errorf("register predicate %q: already registered", p.Class)
	}
	r.predicates[p.Class] = p
	return nil
}

// LookupTransform finds a transform class in r, else in the default
// registry (where the runtime registers the built-in transforms), so private
// registries of tests know the built-ins too.
func (r *Registry) LookupTransform(class string) (TransformPlugin, bool) {
	r.mu.RLock()
	p, ok := r.transforms[strings.TrimSpace(class)]
	r.mu.RUnlock()
	if !ok && r != defaultRegistry {
		return defaultRegistry.LookupTransform(class)
	}
	return p, ok
}

// LookupPredicate finds a predicate class in r, else in the default registry.
func (r *Registry) LookupPredicate(class string) (PredicatePlugin, bool) {
	r.mu.RLock()
	p, ok := r.predicates[strings.TrimSpace(class)]
	r.mu.RUnlock()
	if !ok && r != defaultRegistry {
		return defaultRegistry.LookupPredicate(class)
	}
	return p, ok
}

// TransformClasses lists the transform classes r knows (with the default
// registry's), sorted.
func (r *Registry) TransformClasses() []string {
	return classNames(r, func(reg *Registry) map[string]TransformPlugin { return reg.transforms })
}

// PredicateClasses lists the predicate classes r knows (with the default
// registry's), sorted.
func (r *Registry) PredicateClasses() []string {
	return classNames(r, func(reg *Registry) map[string]PredicatePlugin { return reg.predicates })
}

// classNames collects the keys of one of r's maps and the default
// registry's, sorted.
func classNames[V any](r *Registry, of func(*Registry) map[string]V) []string {
	seen := map[string]bool{}
	for _, reg := range []*Registry{r, defaultRegistry} {
		reg.mu.RLock()
		for c := range of(reg) {
			seen[c] = true
		}
		reg.mu.RUnlock()
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Stage is one configured transform of a chain, with its optional
// predicate.
type Stage struct {
	Alias     string
	Class     string
	Transform Transform
	Predicate Predicate // nil: always applies
	Negate    bool
}

// Chain is the configured transforms of a connector, in order.
type Chain []Stage

// Apply runs rec through every stage whose predicate matches. It returns nil
// when a stage drops the record; errors name the stage.
func (c Chain) Apply(rec *Record) (*Record, error) {
	for _, s := range c {
		if s.Predicate != nil && s.Predicate.Test(rec) == s.Negate {
			continue
		}
		out, err := s.Transform.Apply(rec)
		if err != nil {
			return nil, &TransformError{Alias: s.Alias, Class: s.Class, Err: err}
		}
		if out == nil {
			return nil, nil
		}
		rec = out
	}
	return rec, nil
}

// ApplySource runs a source record through the chain, as Kafka Connect
// does before producing it. The record the transforms see has Offset -1 and
// the Timestamp of sr (zero if unset); nil means a transform dropped it.
func (c Chain) ApplySource(sr *SourceRecord, ts time.Time) (*SourceRecord, error) {
	if len(c) == 0 {
		return sr, nil
	}
	rec := &Record{Topic: sr.Topic, Partition: -1, Offset: -1, Timestamp: ts, Key: sr.Key, Value: sr.Value,
		KeySchema: sr.KeySchema, ValueSchema: sr.ValueSchema, Headers: sr.Headers}
	if sr.Partition != nil {
		rec.Partition = *sr.Partition
	}
	out, err := c.Apply(rec)
	if err != nil || out == nil {
		return nil, err
	}
	res := *sr
	res.Topic, res.Key, res.Value, res.Headers = out.Topic, out.Key, out.Value, out.Headers
	// The transforms keep each schema in step with its value.
	res.KeySchema, res.ValueSchema = out.KeySchema, out.ValueSchema
	if sr.Partition != nil || out.Partition >= 0 {
		p := out.Partition
		res.Partition = &p
	}
	return &res, nil
}

// TransformError is a record a transform of a chain failed on.
type TransformError struct {
	Alias, Class string
	Err          error
}

// Error names the transform and the cause.
func (e *TransformError) Error() string {
	return fmt.Sprintf("transform %q (%s): %v", e.Alias, e.Class, e.Err)
}

// Unwrap returns the cause.
func (e *TransformError) Unwrap() error { return e.Err }

// subProps returns the properties under prefix, the prefix stripped.
func subProps(cfg map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range cfg {
		if strings.HasPrefix(k, prefix) {
			out[strings.TrimPrefix(k, prefix)] = v
		}
	}
	return out
}

// prefixErrors adds err to es, its keys under prefix.
func prefixErrors(es *ConfigErrors, prefix string, err error) {
	if ces, ok := err.(ConfigErrors); ok {
		for _, ce := range ces {
			es.add(prefix+ce.Key, "%s", ce.Message)
		}
		return
	}
	if ce, ok := err.(*ConfigError); ok {
		es.add(prefix+ce.Key, "%s", ce.Message)
		return
	}
	es.add(strings.TrimSuffix(prefix, "."), "%s", err.Error())
}

// BuildChain configures the transforms and predicates cfg names
// (transforms=a,b; transforms.a.type=...; predicates=p; ...). It returns
// every problem as ConfigErrors keyed by the full configuration key.
func (r *Registry) BuildChain(cfg map[string]string) (Chain, error) {
	var es ConfigErrors
	preds := map[string]Predicate{}
	for _, alias := range SplitList(cfg[KeyPredicates]) {
		prefix := KeyPredicates + "." + alias + "."
		if _, dup := preds[alias]; dup {
			es.add(KeyPredicates, "predicate alias %q is listed twice", alias)
			continue
		}
		class := strings.TrimSpace(cfg[prefix+"type"])
		if class == "" {
			es.add(prefix+"type", "is required")
			continue
		}
		pp, ok := r.LookupPredicate(class)
		if !ok {
			es.add(prefix+"type", "unknown predicate %q; available: %s", class, strings.Join(r.PredicateClasses(), ", "))
			continue
		}
		props := subProps(cfg, prefix)
		delete(props, "type")
		p, err := pp.New(props)
		if err != nil {
			prefixErrors(&es, prefix, err)
			continue
		}
		preds[alias] = p
	}
	var chain Chain
	seen := map[string]bool{}
	for _, alias := range SplitList(cfg[KeyTransforms]) {
		prefix := KeyTransforms + "." + alias + "."
		if seen[alias] {
			es.add(KeyTransforms, "transform alias %q is listed twice", alias)
			continue
		}
		seen[alias] = true
		st := Stage{Alias: alias}
		if name := strings.TrimSpace(cfg[prefix+"predicate"]); name != "" {
			p, ok := preds[name]
			if !ok {
				if !containsStr(SplitList(cfg[KeyPredicates]), name) {
					es.add(prefix+"predicate", "predicate %q is not defined in predicates", name)
				}
				// else: the predicate itself is broken; reported above
			}
			st.Predicate = p
		}
		if v, ok := cfg[prefix+"negate"]; ok {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "true":
				st.Negate = true
			case "false", "":
			default:
				es.add(prefix+"negate", "must be true or false, got %q", v)
			}
		}
		class := strings.TrimSpace(cfg[prefix+"type"])
		if class == "" {
			es.add(prefix+"type", "is required")
			continue
		}
		tp, ok := r.LookupTransform(class)
		if !ok {
			es.add(prefix+"type", "unknown transform %q; available: %s", class, strings.Join(r.TransformClasses(), ", "))
			continue
		}
		props := subProps(cfg, prefix)
		for _, k := range []string{"type", "predicate", "negate"} {
			delete(props, k)
		}
		t, err := tp.New(props)
		if err != nil {
			prefixErrors(&es, prefix, err)
			continue
		}
		st.Class, st.Transform = tp.Class, t
		chain = append(chain, st)
	}
	if len(es) > 0 {
		return nil, es
	}
	return chain, nil
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
