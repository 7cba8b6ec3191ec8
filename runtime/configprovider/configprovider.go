// Package configprovider resolves Kafka's config provider references in a
// connector configuration, as Kafka Connect's worker does:
// ${env:NAME} (EnvVarConfigProvider), ${file:/path/file.properties:key}
// (FileConfigProvider) and ${dir:/path/dir:file} (DirectoryConfigProvider).
//
// Providers are declared in the worker properties only, never by a
// connector (a connector must not be able to read the worker's files by
// itself):
//
//	config.providers=env,file,dir
//	config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
//	config.providers.file.param.allowed.paths=/etc/ferry/secrets
//
// Resolved values are secrets: the Resolver returns a Redactor that hides
// them in any text (log lines, error messages, task status).
package configprovider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/ferryhq/ferry/jobs"
)

// Provider classes, as Kafka names them.
const (
	EnvClass  = "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
	FileClass = "org.apache.kafka.common.config.provider.FileConfigProvider"
	DirClass  = "org.apache.kafka.common.config.provider.DirectoryConfigProvider"
)

// Worker property keys.
const (
	KeyProviders = "config.providers"
)

// Provider returns the values of keys under path (Kafka's
// ConfigProvider.get(path, keys)); a key it does not have is absent from the
// result.
type Provider interface {
	Get(path string, keys []string) (map[string]string, error)
}

// reference is Kafka ConfigTransformer's pattern: ${provider:[path:]key}.
var reference = regexp.MustCompile(`\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}`)

// Resolver replaces references with the values of the worker's providers.
type Resolver struct {
	providers map[string]Provider
}

// New makes a resolver from the worker properties (config.providers and
// config.providers.<name>.class / .param.*). No providers is valid: a
// configuration with references then fails to resolve.
func New(workerProps map[string]string) (*Resolver, error) {
	r := &Resolver{providers: map[string]Provider{}}
	var problems []string
	for _, name := range splitList(workerProps[KeyProviders]) {
		prefix := KeyProviders + "." + name + "."
		class := strings.TrimSpace(workerProps[prefix+"class"])
		params := map[string]string{}
		for k, v := range workerProps {
			if strings.HasPrefix(k, prefix+"param.") {
				params[strings.TrimPrefix(k, prefix+"param.")] = v
			}
		}
		p, err := newProvider(class, params)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%sclass: %v", prefix, err))
			continue
		}
		r.providers[name] = p
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("config providers: %s", strings.Join(problems, "; "))
	}
	return r, nil
}

func newProvider(class string, params map[string]string) (Provider, error) {
	switch class {
	case EnvClass:
		p := &Env{}
		if v := strings.TrimSpace(params["allowlist.pattern"]); v != "" {
			re, err := regexp.Compile(`^(?:` + v + `)$`)
			if err != nil {
				return nil, fmt.Errorf("allowlist.pattern: %w", err)
			}
			p.Allow = re
		}
		return p, nil
	case FileClass:
		return &File{AllowedPaths: splitList(params["allowed.paths"])}, nil
	case DirClass:
		return &Dir{AllowedPaths: splitList(params["allowed.paths"])}, nil
	case "":
		return nil, fmt.Errorf("is required")
	}
	return nil, fmt.Errorf("unknown config provider class %q; supported: %s, %s, %s", class, EnvClass, FileClass, DirClass)
}

// Resolve returns a copy of cfg with every reference replaced, and a
// Redactor of the values it put in. Errors name the configuration key and
// the reference, never a resolved value.
func (r *Resolver) Resolve(cfg map[string]string) (map[string]string, *Redactor, error) {
	out := make(map[string]string, len(cfg))
	red := &Redactor{}
	var problems []string
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := cfg[k]
		var errs []string
		out[k] = reference.ReplaceAllStringFunc(v, func(ref string) string {
			m := reference.FindStringSubmatch(ref)
			name, path, key := m[1], m[3], m[4]
			p, ok := r.providers[name]
			if !ok {
				errs = append(errs, fmt.Sprintf("%s: config provider %q is not defined in the worker's config.providers", ref, name))
				return ref
			}
			data, err := p.Get(path, []string{key})
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", ref, err))
				return ref
			}
			val, ok := data[key]
			if !ok {
				errs = append(errs, fmt.Sprintf("%s: not found", ref))
				return ref
			}
			red.add(val)
			return val
		})
		for _, e := range errs {
			problems = append(problems, k+": "+e)
		}
	}
	if len(problems) > 0 {
		return nil, red, fmt.Errorf("resolve config: %s", strings.Join(problems, "; "))
	}
	return out, red, nil
}

// Redactor hides resolved values in text. The zero value and nil hide
// nothing.
type Redactor struct{ secrets []string }

// Hidden replaces a secret in redacted text.
const Hidden = "[hidden]"

func (r *Redactor) add(v string) {
	if strings.TrimSpace(v) == "" {
		return
	}
	for _, s := range r.secrets {
		if s == v {
			return
		}
	}
	r.secrets = append(r.secrets, v)
	// Longest first, so a secret that contains another is hidden whole.
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

// Merge adds the values o hides to r.
func (r *Redactor) Merge(o *Redactor) {
	if o == nil {
		return
	}
	for _, v := range o.secrets {
		r.add(v)
	}
}

// Redact returns s with every resolved value replaced by [hidden].
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	for _, v := range r.secrets {
		s = strings.ReplaceAll(s, v, Hidden)
	}
	return s
}

// Env is EnvVarConfigProvider: ${env:NAME} is the environment variable
// NAME (the path must be empty).
type Env struct {
	Allow *regexp.Regexp // allowlist.pattern; nil allows every variable
	// Lookup reads a variable; nil means os.LookupEnv.
	Lookup func(string) (string, bool)
}

var _ Provider = (*Env)(nil)

// Get returns the variables named by keys that are set and allowed.
func (e *Env) Get(path string, keys []string) (map[string]string, error) {
	if path != "" {
		return nil, fmt.Errorf("the env provider takes no path")
	}
	look := e.Lookup
	if look == nil {
		look = os.LookupEnv
	}
	out := map[string]string{}
	for _, k := range keys {
		if e.Allow != nil && !e.Allow.MatchString(k) {
			continue
		}
		if v, ok := look(k); ok {
			out[k] = v
		}
	}
	return out, nil
}

// allowed checks path against allowed.paths (empty allows any path).
func allowed(path string, allowedPaths []string) error {
	if len(allowedPaths) == 0 {
		return nil
	}
	clean, err := filepath.Abs(filepath.Clean(path))
	if err != nil {
		return err
	}
	for _, a := range allowedPaths {
		a = filepath.Clean(a)
		if clean == a || strings.HasPrefix(clean, a+string(filepath.Separator)) {
			return nil
		}
	}
	return fmt.Errorf("path %s is not allowed (allowed.paths)", path)
}

// File is FileConfigProvider: ${file:/path/file.properties:key} is the
// value of key in the Java properties file.
type File struct {
	AllowedPaths []string
}

var _ Provider = (*File)(nil)

// Get reads the properties file at path.
func (f *File) Get(path string, keys []string) (map[string]string, error) {
	if path == "" {
		return nil, fmt.Errorf("the file provider needs a path: ${file:/path/file.properties:key}")
	}
	if err := allowed(path, f.AllowedPaths); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	props, err := jobs.ParseProperties(string(b))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := props[k]; ok {
			out[k] = v
		}
	}
	return out, nil
}

// Dir is DirectoryConfigProvider: ${dir:/path/dir:file} is the content of
// the file in the directory (as Kubernetes mounts secrets).
type Dir struct {
	AllowedPaths []string
}

var _ Provider = (*Dir)(nil)

// Get reads the named regular files of the directory at path.
func (d *Dir) Get(path string, keys []string) (map[string]string, error) {
	if path == "" {
		return nil, fmt.Errorf("the dir provider needs a path: ${dir:/path/dir:file}")
	}
	if err := allowed(path, d.AllowedPaths); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range keys {
		if k == "" || strings.ContainsRune(k, filepath.Separator) || k == ".." || k == "." {
			continue
		}
		p := filepath.Join(path, k)
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		out[k] = string(b)
	}
	return out, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
