package connect

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RetriableError marks a failure that may succeed if the same operation is
// tried again later, as Kafka Connect's RetriableException does: a converter
// or transform returning it is retried with backoff for up to
// errors.retry.timeout before errors.tolerance decides; a sink task
// returning it from Put is handed the same batch again after a backoff
// instead of failing; a source task returning it from Poll is simply polled
// again. Any other error is not retried.
type RetriableError struct {
	Err error
}

// Error returns the cause's message.
func (e *RetriableError) Error() string {
	if e.Err == nil {
		return "retriable error"
	}
	return e.Err.Error()
}

// Unwrap returns the cause.
func (e *RetriableError) Unwrap() error { return e.Err }

// Retriable wraps err so the runtime retries the operation that returned
// it; nil stays nil.
func Retriable(err error) error {
	if err == nil {
		return nil
	}
	return &RetriableError{Err: err}
}

// IsRetriable reports whether err, or an error it wraps, is a
// RetriableError.
func IsRetriable(err error) bool {
	var re *RetriableError
	return errors.As(err, &re)
}

// Defaults of the retry keys, as Kafka Connect's.
const (
	DefaultRetryTimeoutMs  = 0     // no retries
	DefaultRetryMaxDelayMs = 60000 // one minute
)

// RetryTimeoutField and RetryMaxDelayField are the specs of
// errors.retry.timeout and errors.retry.delay.max.ms, checked for every
// connector.
var (
	RetryTimeoutField = ConfigField{
		Name: KeyErrorsRetryTimeout, Type: TypeLong, Default: "0", Validate: retryTimeoutRule,
		Doc: "how long, in milliseconds, an operation failing with a retriable error is retried before errors.tolerance decides: 0 never retries, -1 retries forever",
	}
	RetryMaxDelayField = ConfigField{
		Name: KeyErrorsRetryMaxDelay, Type: TypeLong, Default: "60000", Validate: AtLeast(1),
		Doc: "longest wait, in milliseconds, between two retries (they start at 300 ms and double)",
	}
)

func retryTimeoutRule(v string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return fmt.Errorf("must be an integer number of milliseconds, got %q", v)
	}
	if n < -1 {
		return fmt.Errorf("must be -1 (retry forever), 0 (no retries) or a positive number of milliseconds, got %d", n)
	}
	return nil
}
