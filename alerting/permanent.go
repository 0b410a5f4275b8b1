package alerting

// PermanentError marks a delivery failure no retry can fix: the receiver refused the
// notification (a webhook's 4xx other than 408 and 429, Slack's invalid_auth or
// channel_not_found) or it cannot be built. The outbox dead-letters such an item at
// once instead of retrying it; callers find it with errors.As.
type PermanentError struct {
	// Reason names the refusal in a word or two, for logs and tests: Slack's error
	// code ("invalid_auth"), "http 410", "unsupported". It may be empty.
	Reason string
	Err    error
}

// Permanent wraps err as a *PermanentError without a reason.
func Permanent(err error) error { return &PermanentError{Err: err} }

// Error returns the cause's message, which holds no secret.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *PermanentError) Unwrap() error { return e.Err }
