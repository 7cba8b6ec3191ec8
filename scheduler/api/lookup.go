package api

import (
	"context"
	"errors"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/store"
)

// parseARN parses an ARN from the path or a request member and checks its
// kind; a malformed ARN is a 400.
func parseARN(s, kind, member string) (jobs.ARN, error) {
	a, err := jobs.ParseARN(s)
	if err != nil {
		return jobs.ARN{}, badRequest("%s: %v", member, err)
	}
	if a.Kind != kind {
		return jobs.ARN{}, badRequest("%s: %q is a %s ARN, expected a %s ARN", member, s, a.Kind, kind)
	}
	return a, nil
}

// arnID returns the id part of a stored ARN ("" if it does not parse).
func arnID(s string) string {
	a, err := jobs.ParseARN(s)
	if err != nil {
		return ""
	}
	return a.ID
}

// getConnector returns the connector an ARN names. A missing connector, or
// one of another incarnation (same name, different id), is a 404.
func (s *Server) getConnector(ctx context.Context, arn string) (jobs.ARN, store.Entry[jobs.Connector], error) {
	a, err := parseARN(arn, jobs.KindConnector, "connectorArn")
	if err != nil {
		return a, store.Entry[jobs.Connector]{}, err
	}
	e, err := s.st.Connectors.Get(ctx, a.Name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && arnID(e.Value.Arn) != a.ID) {
		return a, e, notFound("connector %s not found", arn)
	}
	if err != nil {
		return a, e, err
	}
	return a, e, nil
}

// getPlugin returns the custom plugin an ARN names, or a 404.
func (s *Server) getPlugin(ctx context.Context, arn, member string) (store.Entry[store.Plugin], error) {
	a, err := parseARN(arn, jobs.KindCustomPlugin, member)
	if err != nil {
		return store.Entry[store.Plugin]{}, err
	}
	e, err := s.st.Plugins.Get(ctx, a.Name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && arnID(e.Value.Arn) != a.ID) {
		return e, notFound("custom plugin %s not found", arn)
	}
	return e, err
}

// getWorkerConfig returns the worker configuration an ARN names, or a 404.
func (s *Server) getWorkerConfig(ctx context.Context, arn, member string) (store.Entry[store.WorkerConfiguration], error) {
	a, err := parseARN(arn, jobs.KindWorkerConfiguration, member)
	if err != nil {
		return store.Entry[store.WorkerConfiguration]{}, err
	}
	e, err := s.st.WorkerConfigs.Get(ctx, a.Name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && arnID(e.Value.Arn) != a.ID) {
		return e, notFound("worker configuration %s not found", arn)
	}
	return e, err
}

// isNotFound reports whether err is the API's 404.
func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.typ == "NotFoundException"
}
