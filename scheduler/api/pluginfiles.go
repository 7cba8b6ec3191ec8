package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/ferryhq/ferry/scheduler/plugins"
	"github.com/ferryhq/ferry/scheduler/store"
)

// PluginSource opens custom plugin files where they live (plugins.S3 in
// S3); a permanent refusal is a *plugins.Problem.
type PluginSource interface {
	Open(ctx context.Context, loc store.Location) (io.ReadCloser, int64, error)
}

// servePluginFile serves the file of an ACTIVE custom plugin at
// plugins.FilePath, streamed from S3, for the deployers: Nomad's artifact
// block and the local executor download it from here, and both refuse a
// file whose MD5 is not the one recorded when the plugin was checked. It is
// not an MSK Connect operation, and it is served without the API's
// per-request store timeout, so a large file can take its time.
func (s *Server) servePluginFile(w http.ResponseWriter, r *http.Request) {
	err := s.pluginFile(w, r)
	if err == nil {
		return
	}
	ae := s.classify(err)
	if ae.status >= 500 {
		s.log.Warn().Str("path", r.URL.Path).Int("status", ae.status).Str("error", ae.msg).Msg("plugin file not served")
	}
	writeError(w, ae)
}

func (s *Server) pluginFile(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return &apiError{status: http.StatusMethodNotAllowed, typ: "MethodNotAllowedException", msg: fmt.Sprintf("method %s is not allowed on plugin files", r.Method)}
	}
	name, id, rev, ok := plugins.ParseFilePath(r.URL.Path)
	if !ok {
		return notFound("no plugin file at %s (want %s)", r.URL.Path, plugins.FilePath("<name>", "<id>", 1))
	}
	sctx, cancel := context.WithTimeout(r.Context(), s.cfg.StoreTimeout)
	e, err := s.st.Plugins.Get(sctx, name)
	cancel()
	if errors.Is(err, store.ErrNotFound) || (err == nil && (arnID(e.Value.Arn) != id || e.Value.Revision != rev)) {
		return notFound("custom plugin %s (id %s) has no revision %d", name, id, rev)
	}
	if err != nil {
		return err
	}
	pl := e.Value
	if pl.State != plugins.StateActive || !pl.Manifested() {
		return conflict("custom plugin %s is %s: only an ACTIVE plugin's checked file is served", name, pl.State)
	}
	if s.cfg.PluginFiles == nil {
		return &apiError{status: http.StatusServiceUnavailable, typ: "ServiceUnavailableException", msg: "this server has no S3 settings to read plugin files with"}
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Length", strconv.FormatInt(pl.FileSize, 10))
	h.Set("X-Ferry-Plugin-Md5", pl.FileMd5)
	if r.Method == http.MethodHead {
		return nil
	}
	body, size, err := s.cfg.PluginFiles.Open(r.Context(), pl.Location)
	if err != nil {
		var pr *plugins.Problem
		if errors.As(err, &pr) {
			return &apiError{status: http.StatusBadGateway, typ: "BadGatewayException", msg: fmt.Sprintf("custom plugin %s: %s", name, pr.Message)}
		}
		return &apiError{status: http.StatusBadGateway, typ: "BadGatewayException", msg: fmt.Sprintf("custom plugin %s: %v", name, err)}
	}
	defer body.Close()
	if size > 0 && size != pl.FileSize {
		return &apiError{status: http.StatusConflict, typ: "ConflictException",
			msg: fmt.Sprintf("custom plugin %s: the S3 object is %d bytes, not the %d bytes checked; it was replaced (pin objectVersion to keep it)", name, size, pl.FileSize)}
	}
	if _, err := io.Copy(w, body); err != nil {
		// Headers are out; the client sees a short body and its checksum
		// check fails.
		s.log.Warn().Err(err).Str("plugin", name).Msg("plugin file download interrupted")
	}
	return nil
}
