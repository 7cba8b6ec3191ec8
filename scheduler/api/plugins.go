package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/plugins"
	"github.com/ferryhq/ferry/scheduler/store"
)

const (
	pluginActive   = plugins.StateActive
	pluginDeleting = plugins.StateDeleting
)

type createPluginRequest struct {
	ContentType string `json:"contentType"`
	Description string `json:"description"`
	Location    struct {
		S3Location *struct {
			BucketArn     string `json:"bucketArn"`
			FileKey       string `json:"fileKey"`
			ObjectVersion string `json:"objectVersion"`
		} `json:"s3Location"`
	} `json:"location"`
	Name string            `json:"name"`
	Tags map[string]string `json:"tags"`
}

// createCustomPlugin records a custom plugin CREATING, as MSK Connect
// does; the plugin checker (plugins.Checker, on the leader) then reads its
// file from S3 and makes it ACTIVE or CREATE_FAILED. A Ferry plugin is a
// ZIP with a ferry-plugin.json manifest and a worker binary
// (docs/plugins.md); a JAR, a Java plugin, is refused here.
func (s *Server) createCustomPlugin(w http.ResponseWriter, r *http.Request, _ string) error {
	var req createPluginRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	var p jobs.Problems
	checkName(&p, "name", req.Name)
	switch req.ContentType {
	case "ZIP":
	case "JAR":
		p.Add("contentType", "JAR is a Java plugin, and Ferry runs connectors written in Go, not Java: "+
			"upload a ZIP holding a Ferry worker binary built with your connectors and a %s manifest (see docs/plugins.md)", plugins.ManifestName)
	case "":
		p.Add("contentType", "is required: ZIP (a Ferry worker binary and its %s manifest)", plugins.ManifestName)
	default:
		p.Add("contentType", "must be ZIP (Ferry runs Go plugins, not JAR files), got %q", req.ContentType)
	}
	if len(req.Description) > 1024 {
		p.Add("description", "must be at most 1024 characters")
	}
	loc := req.Location.S3Location
	if loc == nil {
		p.Add("location.s3Location", "is required")
	} else {
		if _, err := plugins.BucketFromARN(loc.BucketArn); err != nil {
			p.Add("location.s3Location.bucketArn", "is required: the ARN of an S3 bucket (arn:aws:s3:::<bucket>), got %q", loc.BucketArn)
		}
		if loc.FileKey == "" {
			p.Add("location.s3Location.fileKey", "is required")
		}
	}
	p = append(p, jobs.ValidateTags("tags", req.Tags)...)
	if len(p) > 0 {
		return invalid("CreateCustomPlugin request", p)
	}
	id := s.cfg.NewID()
	pl := store.Plugin{
		Name: req.Name, Arn: s.arn(jobs.KindCustomPlugin, req.Name, id), Description: req.Description,
		State: plugins.StateCreating, ContentType: req.ContentType,
		Location:     store.Location{BucketArn: loc.BucketArn, FileKey: loc.FileKey, ObjectVersion: loc.ObjectVersion},
		Revision:     1,
		CreationTime: s.cfg.Now().UTC(),
	}
	ctx := r.Context()
	if _, err := s.st.Plugins.Create(ctx, req.Name, pl); err != nil {
		if errors.Is(err, store.ErrExists) {
			return conflict("a custom plugin named %q already exists", req.Name)
		}
		return fmt.Errorf("create custom plugin %q: %w", req.Name, err)
	}
	if len(req.Tags) > 0 {
		if _, err := s.st.Tags.Put(ctx, id, req.Tags); err != nil {
			return fmt.Errorf("store tags of custom plugin %q: %w", req.Name, err)
		}
	}
	s.log.Info().Str("plugin", pl.Name).Str("arn", pl.Arn).Msg("custom plugin created; checking its file")
	return writeJSON(w, map[string]any{
		"customPluginArn": pl.Arn, "customPluginState": pl.State, "name": pl.Name, "revision": pl.Revision,
	})
}

// checkName applies the naming rule of connectors, plugins and worker configurations.
func checkName(p *jobs.Problems, field, name string) {
	switch {
	case name == "":
		p.Add(field, "is required")
	case !jobs.ValidName(name):
		p.Add(field, "must be 1 to 128 letters, digits or '-', starting with a letter or digit, got %q", name)
	}
}

func pluginView(pl store.Plugin) pluginSummary {
	v := pluginSummary{
		CreationTime: timestamp(pl.CreationTime), CustomPluginArn: pl.Arn, CustomPluginState: pl.State,
		Description: pl.Description, Name: pl.Name, StateDescription: describeState(pl.StateDescription),
		LatestRevision: pluginRevisionSummary{
			ContentType: pl.ContentType, CreationTime: timestamp(pl.CreationTime), Description: pl.Description,
			Location: pluginLocation{S3Location: s3Location{BucketArn: pl.Location.BucketArn, FileKey: pl.Location.FileKey, ObjectVersion: pl.Location.ObjectVersion}},
			Revision: pl.Revision,
		},
	}
	if pl.FileMd5 != "" || pl.FileSize != 0 {
		v.LatestRevision.FileDescription = &fileDescription{FileMd5: pl.FileMd5, FileSize: pl.FileSize}
	}
	return v
}

func (s *Server) describeCustomPlugin(w http.ResponseWriter, r *http.Request, arn string) error {
	e, err := s.getPlugin(r.Context(), arn, "customPluginArn")
	if err != nil {
		return err
	}
	return writeJSON(w, pluginView(e.Value))
}

func (s *Server) listCustomPlugins(w http.ResponseWriter, r *http.Request, _ string) error {
	q := r.URL.Query()
	max, err := maxResults(r)
	if err != nil {
		return err
	}
	entries, err := s.st.Plugins.List(r.Context(), q.Get("namePrefix"))
	if err != nil {
		return err
	}
	page, next, err := paginate(entries, func(e store.Entry[store.Plugin]) string { return e.Key }, false, q.Get("nextToken"), max)
	if err != nil {
		return err
	}
	out := make([]pluginSummary, 0, len(page))
	for _, e := range page {
		v := pluginView(e.Value)
		v.StateDescription = nil // not a member of CustomPluginSummary
		out = append(out, v)
	}
	resp := map[string]any{"customPlugins": out}
	if next != "" {
		resp["nextToken"] = next
	}
	return writeJSON(w, resp)
}

// usersOf returns the names of connectors whose spec matches.
func (s *Server) usersOf(r *http.Request, uses func(jobs.ConnectorSpec) bool) ([]string, error) {
	entries, err := s.st.Connectors.List(r.Context(), "")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if uses(e.Value.Spec) {
			names = append(names, e.Key)
		}
	}
	return names, nil
}

func (s *Server) deleteCustomPlugin(w http.ResponseWriter, r *http.Request, arn string) error {
	ctx := r.Context()
	e, err := s.getPlugin(ctx, arn, "customPluginArn")
	if err != nil {
		return err
	}
	if e.Value.Builtin {
		return badRequest("the built-in plugin %s cannot be deleted", e.Value.Name)
	}
	id := arnID(e.Value.Arn)
	users, err := s.usersOf(r, func(c jobs.ConnectorSpec) bool {
		return len(c.Plugins) > 0 && arnID(c.Plugins[0].CustomPlugin.CustomPluginArn) == id
	})
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return conflict("custom plugin %s is in use by connector%s %s", e.Value.Name, plural(len(users)), strings.Join(users, ", "))
	}
	if err := s.st.Plugins.Delete(ctx, e.Key, e.Revision); err != nil {
		return fmt.Errorf("delete custom plugin %q: %w", e.Value.Name, err)
	}
	if err := s.st.Tags.Delete(ctx, id, 0); err != nil {
		return fmt.Errorf("delete tags of custom plugin %q: %w", e.Value.Name, err)
	}
	return writeJSON(w, map[string]string{"customPluginArn": e.Value.Arn, "customPluginState": pluginDeleting})
}
