package api

import (
	"errors"
	"fmt"
	"maps"
	"net/http"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/store"
)

// resourceID checks that a connector, custom plugin or worker configuration
// ARN names an existing resource and returns its id, the key of its tags.
func (s *Server) resourceID(r *http.Request, arn string) (string, error) {
	a, err := jobs.ParseARN(arn)
	if err != nil {
		return "", badRequest("resourceArn: %v", err)
	}
	ctx := r.Context()
	switch a.Kind {
	case jobs.KindConnector:
		_, _, err = s.getConnector(ctx, arn)
	case jobs.KindCustomPlugin:
		_, err = s.getPlugin(ctx, arn, "resourceArn")
	case jobs.KindWorkerConfiguration:
		_, err = s.getWorkerConfig(ctx, arn, "resourceArn")
	default:
		return "", badRequest("resourceArn: %s resources have no tags; tag a connector, custom plugin or worker configuration", a.Kind)
	}
	return a.ID, err
}

func (s *Server) tags(r *http.Request, id string) (map[string]string, error) {
	e, err := s.st.Tags.Get(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	if e.Value == nil {
		return map[string]string{}, nil
	}
	return e.Value, nil
}

func (s *Server) listTags(w http.ResponseWriter, r *http.Request, arn string) error {
	id, err := s.resourceID(r, arn)
	if err != nil {
		return err
	}
	tags, err := s.tags(r, id)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"tags": tags})
}

func (s *Server) tagResource(w http.ResponseWriter, r *http.Request, arn string) error {
	var req struct {
		Tags map[string]string `json:"tags"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Tags == nil {
		return badRequest("tags: is required")
	}
	if p := jobs.ValidateTags("tags", req.Tags); len(p) > 0 {
		return invalid("TagResource request", p)
	}
	id, err := s.resourceID(r, arn)
	if err != nil {
		return err
	}
	_, err = s.st.Tags.Modify(r.Context(), id, true, func(t *map[string]string) error {
		merged := maps.Clone(*t)
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, req.Tags)
		if p := jobs.ValidateTags("tags", merged); len(p) > 0 {
			return invalid("TagResource request", p)
		}
		*t = merged
		return nil
	})
	if err != nil {
		return fmt.Errorf("tag %s: %w", arn, err)
	}
	return writeJSON(w, struct{}{})
}

func (s *Server) untagResource(w http.ResponseWriter, r *http.Request, arn string) error {
	keys, ok := r.URL.Query()["tagKeys"]
	if !ok {
		return badRequest("tagKeys: is required")
	}
	id, err := s.resourceID(r, arn)
	if err != nil {
		return err
	}
	_, err = s.st.Tags.Modify(r.Context(), id, true, func(t *map[string]string) error {
		if *t == nil {
			*t = map[string]string{}
		}
		for _, k := range keys {
			delete(*t, k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("untag %s: %w", arn, err)
	}
	return writeJSON(w, struct{}{})
}
