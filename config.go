package fieldgate

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is a configuration error at one field. Field is the field's YAML path relative to the config that
// was validated, e.g. "subscriptions[2].qos"; a parent config that validates a child prefixes the child's path
// with WithField, so the command that loaded the file can point at the line the field stands on.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// FieldErrorf returns a *FieldError for field with a formatted message.
func FieldErrorf(field, format string, a ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, a...)}
}

// WithField prefixes the path of every FieldError in err (which may be joined with errors.Join) with parent, and
// turns any other error into a FieldError at parent. It returns nil for a nil err.
func WithField(parent string, err error) error {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs := joined.Unwrap()
		out := make([]error, len(errs))
		for i, e := range errs {
			out[i] = WithField(parent, e)
		}
		return errors.Join(out...)
	}
	var fe *FieldError
	if errors.As(err, &fe) && fe == err {
		return &FieldError{Field: joinPath(parent, fe.Field), Err: fe.Err}
	}
	return &FieldError{Field: parent, Err: err}
}

// Flatten returns the errors that err joins with errors.Join, at any depth, in order; err itself when it joins
// none, and nil for a nil err. Validate's result flattens to one error per field, mostly *FieldErrors.
func Flatten(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, Flatten(e)...)
	}
	return out
}

func joinPath(parent, child string) string {
	switch {
	case parent == "":
		return child
	case child == "":
		return parent
	case strings.HasPrefix(child, "["):
		return parent + child
	}
	return parent + "." + child
}
