package connect

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Kind says whether a plugin is a sink or a source connector.
type Kind int

// Plugin kinds.
const (
	Sink Kind = iota + 1
	Source
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case Sink:
		return "sink"
	case Source:
		return "source"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Plugin is one connector: its class, the aliases it answers to, its
// configuration spec and a constructor for its tasks.
type Plugin struct {
	Class   string   // e.g. io.confluent.connect.s3.S3SinkConnector
	Aliases []string // e.g. S3SinkConnector
	Kind    Kind
	Doc     string
	Config  []ConfigField
	// Validate, if set, checks the configuration across keys (a value
	// another key requires, values that exclude each other), which the
	// per-key ConfigFields cannot say. ValidateConfig calls it after the
	// per-key checks with the defaults of Config filled in; it must report
	// every problem, each naming the key to change, and tolerate values the
	// per-key checks refuse. A plugin may use the same function when its
	// task starts, so create time and start apply one set of rules.
	Validate func(cfg map[string]string) ConfigErrors
	// NewSinkTask makes a fresh sink task (Kind Sink).
	NewSinkTask func() SinkTask
	// NewSourceTask makes a fresh source task (Kind Source).
	NewSourceTask func() SourceTask
}

// Registry maps connector classes and aliases to plugins. It is safe for
// concurrent use.
type Registry struct {
	mu      sync.RWMutex
	plugins map[string]*Plugin // by class
	names   map[string]string  // class and alias → class

	transforms map[string]TransformPlugin // by class
	predicates map[string]PredicatePlugin // by class
}

// NewRegistry returns an empty registry (tests use their own).
func NewRegistry() *Registry {
	return &Registry{plugins: map[string]*Plugin{}, names: map[string]string{}}
}

var defaultRegistry = NewRegistry()

// Default returns the process-wide registry connectors/all fills.
func Default() *Registry { return defaultRegistry }

// Register adds p to the default registry.
func Register(p Plugin) error { return defaultRegistry.Register(p) }

// Register adds a plugin. A class or alias may be registered once.
func (r *Registry) Register(p Plugin) error {
	if p.Class == "" {
		return fmt.Errorf("register plugin: class is required")
	}
	switch p.Kind {
	case Sink:
		if p.NewSinkTask == nil {
			return fmt.Errorf("register plugin %q: sink without NewSinkTask", p.Class)
		}
	case Source:
		if p.NewSourceTask == nil {
			return fmt.Errorf("register plugin %q: source without NewSourceTask", p.Class)
		}
	default:
		return fmt.Errorf("register plugin %q: kind must be Sink or Source", p.Class)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range append([]string{p.Class}, p.Aliases...) {
		if owner, ok := r.names[n]; ok {
			return fmt.Errorf("register plugin %q: name %q already registered by %q", p.Class, n, owner)
		}
	}
	pc := p
	r.plugins[p.Class] = &pc
	for _, n := range append([]string{p.Class}, p.Aliases...) {
		r.names[n] = p.Class
	}
	return nil
}

// Lookup finds a plugin by class or alias.
func (r *Registry) Lookup(classOrAlias string) (Plugin, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.names[strings.TrimSpace(classOrAlias)]
	if !ok {
		return Plugin{}, false
	}
	return *r.plugins[c], true
}

// Classes lists the registered classes (not aliases), sorted.
func (r *Registry) Classes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.plugins))
	for c := range r.plugins {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// ValidateConfig checks a connector configuration against the plugin's spec
// (and, for sinks, the framework keys every sink reads). It returns nil or a
// ConfigErrors holding every problem, each naming its key.
func (r *Registry) ValidateConfig(classOrAlias string, cfg map[string]string) error {
	var es ConfigErrors
	p, ok := r.Lookup(classOrAlias)
	if !ok {
		es.add(KeyConnectorClass, "unknown connector class %q; available: %s", classOrAlias, strings.Join(r.Classes(), ", "))
		return es
	}
	if p.Kind == Sink {
		validateSinkFramework(&es, cfg)
	} else {
		validateFields(&es, SourceFrameworkConfig, cfg)
	}
	validateFields(&es, p.Config, cfg)
	if p.Validate != nil {
		es = append(es, crossKeyProblems(p, cfg, es)...)
	}
	// The worker checks again under its own policy; a worker configuration
	// cannot set one (MSK Connect refuses the key), so it is the default.
	es = append(es, CheckClientOverrides(DefaultClientOverridePolicy, p.Kind, cfg)...)
	if _, err := r.BuildChain(cfg); err != nil {
		// An option holding a config provider reference is checked by the
		// worker once resolved.
		ces, ok := err.(ConfigErrors)
		if !ok {
			ces = ConfigErrors{{Key: KeyTransforms, Message: err.Error()}}
		}
		for _, ce := range ces {
			if !HasConfigReference(cfg[ce.Key]) {
				es = append(es, ce)
			}
		}
	}
	if len(es) == 0 {
		return nil
	}
	return es
}

// crossKeyProblems runs the plugin's Validate. A key that already has a
// problem, or holds a config provider reference (resolved and checked by
// the worker), is not reported again.
func crossKeyProblems(p Plugin, cfg map[string]string, found ConfigErrors) ConfigErrors {
	seen := map[string]bool{}
	for _, e := range found {
		seen[e.Key] = true
	}
	var out ConfigErrors
	for _, e := range p.Validate(WithDefaults(p.Config, cfg)) {
		if seen[e.Key] || HasConfigReference(cfg[e.Key]) {
			continue
		}
		seen[e.Key] = true
		out = append(out, e)
	}
	return out
}
