package panics

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// stackFrames is how many frames of the panicking code an Error keeps:
// enough to find the bug, short enough for a report line.
const stackFrames = 4

// Error is a recovered panic.
type Error struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the innermost frames of the panicking code, innermost
	// first, as "function (file:line)" joined by " < ".
	Stack string
}

func (e *Error) Error() string {
	return fmt.Sprintf("panic: %v [at %s]", e.Value, e.Stack)
}

// Unwrap returns the panic value when it is an error.
func (e *Error) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Catch runs fn and returns its error, or a panic in it as an *Error.
func Catch(fn func() error) (err error) {
	defer Recover(func(p error) { err = p })
	return fn()
}

// Recover, deferred first thing in a goroutine, hands a panic in it to
// record as an *Error and lets the goroutine end normally:
//
//	g.Go(func() error {
//		defer panics.Recover(func(err error) { errs[i] = err })
//		...
//	})
func Recover(record func(error)) {
	if p := recover(); p != nil {
		record(&Error{Value: p, Stack: stack()})
	}
}

// Is reports whether err is, or wraps, a recovered panic.
func Is(err error) bool {
	var pe *Error
	return errors.As(err, &pe)
}

// stack returns the frames of the code that panicked, called from the
// deferred Recover: those after runtime.gopanic, without the
// runtime's own (sigpanic and the like), up to Catch.
func stack() string {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(2, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var out []string
	panicked := false
	for len(out) < stackFrames {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			panicked = true
		case strings.HasSuffix(f.Function, "internal/panics.Catch"):
			more = false
		case panicked && !strings.HasPrefix(f.Function, "runtime."):
			out = append(out, fmt.Sprintf("%s (%s:%d)", shortFunc(f.Function), shortFile(f.File), f.Line))
		}
		if !more {
			break
		}
	}
	return strings.Join(out, " < ")
}

// shortFunc drops the module path: "rollout.(*Executor).swapHost".
func shortFunc(fn string) string {
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		return fn[i+1:]
	}
	return fn
}

// shortFile keeps the file's directory and name.
func shortFile(path string) string {
	parts := strings.Split(path, "/")
	if len(parts) > 2 {
		parts = parts[len(parts)-2:]
	}
	return strings.Join(parts, "/")
}
