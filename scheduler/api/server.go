// Package api serves the MSK Connect REST API (wire-compatible with
// aws-sdk-go-v2/service/kafkaconnect and the AWS CLI) over Ferry's store.
//
// Handlers validate a request completely (every problem in one 400), then
// write desired state: the connector record, its initial status, update
// operations and tags. Everything after that — starting, scaling and
// stopping workers, finishing operations, removing deleted records — is the
// reconciler's.
package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/plugins"
	"github.com/ferryhq/ferry/scheduler/store"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// Catalog answers what the built-in plugin provides: the connector classes
// registered in the worker binary and their configuration rules.
type Catalog interface {
	// Provides reports whether class (a class name or alias) is a connector
	// the built-in plugin runs.
	Provides(class string) bool
	// ValidateConfig returns every problem of cfg for class; Field is the
	// configuration key.
	ValidateConfig(class string, cfg map[string]string) []jobs.FieldError
}

// Config configures a Server.
type Config struct {
	// Store is the control-plane state (required).
	Store *store.Store
	// Region and Account go into every ARN (defaults us-east-1 and 000000000000).
	Region  string
	Account string
	// Catalog checks connector classes of the built-in plugin. Nil accepts
	// every class (the worker then fails on an unknown one).
	Catalog Catalog
	// ConfigChecks, if set, checks every connector configuration (create and
	// update, whatever the plugin) for Ferry's own keys, such as the
	// autoscaler's overrides; Field is the configuration key.
	ConfigChecks func(cfg map[string]string) []jobs.FieldError
	// PluginFiles, if set, opens custom plugins' files, so the server
	// serves each ACTIVE plugin's checked file at plugins.FilePath to the
	// deployers. Without it those downloads answer 503.
	PluginFiles PluginSource
	// Logger receives one debug line per request and a warning per error.
	Logger zerolog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// NewID returns a fresh unique id for ARNs (default a random UUID).
	NewID func() string
	// StoreTimeout bounds the store calls of one request (default 10s).
	StoreTimeout time.Duration
}

// Server is the MSK Connect API over a Store.
type Server struct {
	cfg    Config
	st     *store.Store
	log    zerolog.Logger
	routes []collection
}

// maxBody is the largest request body accepted.
const maxBody = 1 << 20

// New checks cfg, fills its defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("api: Store is required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = uuid.NewString
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 10 * time.Second
	}
	if strings.ContainsAny(cfg.Region, ":/") || strings.ContainsAny(cfg.Account, ":/") {
		return nil, fmt.Errorf("api: region %q and account %q must not contain ':' or '/'", cfg.Region, cfg.Account)
	}
	s := &Server{cfg: cfg, st: cfg.Store, log: cfg.Logger}
	s.routes = s.routeTable()
	return s, nil
}

// BuiltinPluginArn is the ARN of the built-in plugin on this server.
func (s *Server) BuiltinPluginArn() string {
	return s.arn(jobs.KindCustomPlugin, jobs.BuiltinPluginName, jobs.BuiltinPluginID)
}

// Bootstrap creates the built-in plugin record if it is absent.
func (s *Server) Bootstrap(ctx context.Context) error {
	p := store.Plugin{
		Name:        jobs.BuiltinPluginName,
		Arn:         s.BuiltinPluginArn(),
		Description: "Ferry's built-in connectors, compiled into the ferry worker binary",
		State:       pluginActive,
		ContentType: "ZIP",
		Location: store.Location{
			BucketArn: "arn:aws:s3:::ferry-builtin",
			FileKey:   "built-in: compiled into the ferry worker binary, no file",
		},
		Revision:     1,
		CreationTime: s.cfg.Now().UTC(),
		Builtin:      true,
	}
	if _, err := s.st.Plugins.Create(ctx, p.Name, p); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("bootstrap built-in plugin: %w", err)
	}
	return nil
}

func (s *Server) arn(kind, name, id string) string {
	return jobs.ARN{Region: s.cfg.Region, Account: s.cfg.Account, Kind: kind, Name: name, ID: id}.String()
}

// Handler returns the HTTP handler serving the API, and the checked files
// of custom plugins under plugins.FilesPrefix.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, plugins.FilesPrefix) {
			s.servePluginFile(w, r)
			return
		}
		s.serve(w, r)
	})
}

type route struct {
	op string
	h  func(w http.ResponseWriter, r *http.Request, arn string) error
}

// collection is one resource collection: its list operations, its item
// operations (the ARN is the path segment after prefix) and sub-resources
// of an item.
type collection struct {
	prefix string
	list   map[string]route
	item   map[string]route
	subs   map[string]map[string]route
}

func (s *Server) routeTable() []collection {
	return []collection{
		{prefix: "/v1/connectors",
			list: map[string]route{http.MethodGet: {"ListConnectors", s.listConnectors}, http.MethodPost: {"CreateConnector", s.createConnector}},
			item: map[string]route{http.MethodGet: {"DescribeConnector", s.describeConnector}, http.MethodPut: {"UpdateConnector", s.updateConnector}, http.MethodDelete: {"DeleteConnector", s.deleteConnector}},
			subs: map[string]map[string]route{
				"/operations": {http.MethodGet: {"ListConnectorOperations", s.listConnectorOperations}},
				"/restart":    {http.MethodPost: {"RestartConnector", s.restartConnector}},
			}},
		{prefix: "/v1/connectorOperations",
			item: map[string]route{http.MethodGet: {"DescribeConnectorOperation", s.describeConnectorOperation}}},
		{prefix: "/v1/custom-plugins",
			list: map[string]route{http.MethodGet: {"ListCustomPlugins", s.listCustomPlugins}, http.MethodPost: {"CreateCustomPlugin", s.createCustomPlugin}},
			item: map[string]route{http.MethodGet: {"DescribeCustomPlugin", s.describeCustomPlugin}, http.MethodDelete: {"DeleteCustomPlugin", s.deleteCustomPlugin}}},
		{prefix: "/v1/worker-configurations",
			list: map[string]route{http.MethodGet: {"ListWorkerConfigurations", s.listWorkerConfigurations}, http.MethodPost: {"CreateWorkerConfiguration", s.createWorkerConfiguration}},
			item: map[string]route{http.MethodGet: {"DescribeWorkerConfiguration", s.describeWorkerConfiguration}, http.MethodDelete: {"DeleteWorkerConfiguration", s.deleteWorkerConfiguration}}},
		{prefix: "/v1/tags",
			item: map[string]route{http.MethodGet: {"ListTagsForResource", s.listTags}, http.MethodPost: {"TagResource", s.tagResource}, http.MethodDelete: {"UntagResource", s.untagResource}}},
	}
}

// resolve maps method and escaped path to an operation. ARNs arrive
// percent-encoded as one path segment (the SDKs escape ':' and '/'); a raw
// ARN with its '/' unescaped (curl) is accepted too.
func (s *Server) resolve(method, path string) (route, string, error) {
	pick := func(m map[string]route) (route, error) {
		if rt, ok := m[method]; ok {
			return rt, nil
		}
		return route{}, &apiError{status: http.StatusMethodNotAllowed, typ: "MethodNotAllowedException", msg: fmt.Sprintf("method %s is not allowed on %s", method, path)}
	}
	for _, c := range s.routes {
		if path == c.prefix && c.list != nil {
			rt, err := pick(c.list)
			return rt, "", err
		}
		rest, ok := strings.CutPrefix(path, c.prefix+"/")
		if !ok || rest == "" {
			continue
		}
		for suffix, m := range c.subs {
			if a, ok := strings.CutSuffix(rest, suffix); ok && a != "" {
				arn, err := url.PathUnescape(a)
				if err != nil {
					return route{}, "", badRequest("resource ARN in path is not valid percent-encoding: %v", err)
				}
				rt, err := pick(m)
				return rt, arn, err
			}
		}
		arn, err := url.PathUnescape(rest)
		if err != nil {
			return route{}, "", badRequest("resource ARN in path is not valid percent-encoding: %v", err)
		}
		rt, err := pick(c.item)
		return rt, arn, err
	}
	return route{}, "", &apiError{status: http.StatusNotFound, typ: "UnknownOperationException", msg: fmt.Sprintf("no operation at %s %s", method, path)}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	path := r.URL.EscapedPath()
	rt, arn, err := s.resolve(r.Method, path)
	op := rt.op
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.StoreTimeout)
		r = r.WithContext(ctx)
		err = rt.h(sw, r, arn)
		cancel()
	}
	status := sw.status
	if err != nil {
		ae := s.classify(err)
		writeError(sw, ae)
		status = ae.status
		s.log.Warn().Str("op", op).Str("method", r.Method).Str("path", path).Int("status", ae.status).
			Str("error_type", ae.typ).Str("error", ae.msg).Msg("request failed")
	}
	s.log.Debug().Str("op", op).Str("method", r.Method).Str("path", path).Int("status", status).
		Dur("duration", time.Since(start)).Msg("request")
}
