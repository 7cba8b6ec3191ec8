package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ferryhq/ferry/jobs"
	"github.com/ferryhq/ferry/scheduler/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// apiError is an error as MSK Connect reports it: an HTTP status, the
// X-Amzn-ErrorType name the SDKs map to a typed exception, and a message.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, typ: "BadRequestException", msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &apiError{status: http.StatusNotFound, typ: "NotFoundException", msg: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &apiError{status: http.StatusConflict, typ: "ConflictException", msg: fmt.Sprintf(format, args...)}
}

// invalid turns validation problems into one 400 naming every field.
func invalid(what string, p jobs.Problems) error {
	return &apiError{status: http.StatusBadRequest, typ: "BadRequestException",
		msg: fmt.Sprintf("invalid %s (%d problem%s): %s", what, len(p), plural(len(p)), p.Error())}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// unavailable reports whether err means the store cannot be reached now.
func unavailable(err error) bool {
	for _, target := range []error{
		nats.ErrConnectionClosed, nats.ErrDisconnected, nats.ErrNoServers, nats.ErrTimeout,
		nats.ErrNoResponders, nats.ErrConnectionDraining, nats.ErrConnectionReconnecting,
		jetstream.ErrNoStreamResponse, jetstream.ErrJetStreamNotEnabled,
		context.DeadlineExceeded,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// classify maps any handler error to the error the client sees.
func (s *Server) classify(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, store.ErrConflict):
		return &apiError{status: http.StatusConflict, typ: "ConflictException", msg: "the resource changed concurrently; read it again and retry"}
	case unavailable(err):
		return &apiError{status: http.StatusServiceUnavailable, typ: "ServiceUnavailableException", msg: "the state store is unreachable; retry later"}
	default:
		return &apiError{status: http.StatusInternalServerError, typ: "InternalServerErrorException", msg: "internal error: " + err.Error()}
	}
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", e.typ)
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": e.msg})
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

// describeJSONType names a Go type the way a JSON user thinks of it.
func describeJSONType(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	default:
		return "an object"
	}
}
