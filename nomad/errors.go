package nomad

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/hashicorp/nomad/api"
)

// Error is an error of the Deployer that says what retrying can do. The
// scheduler reads it through the methods alone (Permanent, Unavailable),
// without importing this package.
type Error struct {
	Err                    error
	permanent, unavailable bool
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying cannot help until a person changes
// something: Nomad refused the request (ACL, a missing namespace or node
// pool, a job it finds invalid), the connector cannot be rendered, or the
// job under its ID is not Ferry's. The message says which.
func (e *Error) Permanent() bool { return e.permanent }

// Unavailable reports whether Nomad could not be reached, did not answer in
// time, or answered that it cannot serve (5xx, e.g. no cluster leader):
// the next call is likely to fail the same way.
func (e *Error) Unavailable() bool { return e.unavailable }

// classify wraps err in an *Error saying whether it is permanent or Nomad
// is unavailable; other errors (a write that lost a race, a cancelled
// context) are returned as they are.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	switch {
	case unavailable(err):
		return &Error{Err: err, unavailable: true}
	case refused(err):
		return &Error{Err: err, permanent: true}
	}
	return err
}

// Messages of a Nomad that cannot serve right now (in a 5xx answer, or
// the client's own error). Nomad answers 500 to most requests it refuses
// (an invalid job, a missing namespace or node pool) too, so a 500 counts
// as unavailable only with one of these.
var unavailableMarks = []string{
	"no cluster leader", "leadership lost", "not the leader", "no path to region",
	"raft apply", "i/o timeout", "deadline exceeded", "timed out", "connection refused",
	"connection reset", "unexpected eof", ": eof", "server unavailable", "no servers",
}

// unavailable reports whether err says Nomad cannot be reached or cannot
// serve right now.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ure api.UnexpectedResponseError
	if errors.As(err, &ure) && ure.HasStatusCode() {
		switch code := ure.StatusCode(); {
		case code == http.StatusBadGateway, code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
			return true
		case code >= 500:
			return hasMark(ure.Body(), unavailableMarks)
		}
		return false
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// Messages of a 4xx that lost a race rather than a refusal.
var raceMarks = []string{"enforcing job modify index", "active deployment", "cas conflict", "check-and-set"}

// refused reports whether Nomad answered that it will not do what was
// asked, whoever asks again: a 4xx that is not a lost race (a conflicting
// index, an active deployment), a rate limit or a timeout; or a 500 that
// does not say Nomad is unavailable (Nomad answers 500 to an invalid job,
// a nonexistent namespace or node pool).
func refused(err error) bool {
	var ure api.UnexpectedResponseError
	if !errors.As(err, &ure) || !ure.HasStatusCode() {
		return false
	}
	switch code := ure.StatusCode(); {
	case code == http.StatusInternalServerError:
		return !hasMark(ure.Body(), unavailableMarks)
	case code < 400 || code >= 500:
		return false
	case code == http.StatusNotFound, code == http.StatusRequestTimeout, code == http.StatusConflict, code == http.StatusTooManyRequests:
		return false
	}
	return !hasMark(ure.Body(), raceMarks)
}

func hasMark(body string, marks []string) bool {
	body = strings.ToLower(body)
	for _, m := range marks {
		if strings.Contains(body, m) {
			return true
		}
	}
	return false
}
