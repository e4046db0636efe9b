package cli

import (
	"context"
	"errors"
)

// Exit codes: the same table for every command (docs/exit-codes.md). An
// infrastructure failure is never 0 or 3, so "no expectation broken" can only
// be read from a run that completed.
const (
	ExitOK          = 0   // done; every expectation (if any) met
	ExitError       = 1   // something failed: a cluster, a cell, a file, the machine
	ExitUsage       = 2   // bad input: flags, arguments, a scenario or run directory that does not load
	ExitExpectation = 3   // the run completed and an expectation of the scenario is broken
	ExitInterrupted = 130 // Ctrl-C or SIGTERM; what was made is removed, what was measured is kept
)

// UsageError is bad input from the user: exit code ExitUsage.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// ErrExpectation is wrapped by the error of a command whose run broke an
// expectation of its scenario: exit code ExitExpectation.
var ErrExpectation = errors.New("expectation broken")

// ExitCode maps a command's error to the process exit code. ctx is the
// command's context: a cancelled one means the user interrupted it, whatever
// error the interruption surfaced as, and even when the command finished
// its work in the meantime (a Ctrl-C while the report is written): every
// interrupt exits 130.
func ExitCode(ctx context.Context, err error) int {
	var u UsageError
	switch {
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return ExitInterrupted
	case err == nil:
		return ExitOK
	case errors.As(err, &u):
		return ExitUsage
	case onlyExpectation(err):
		return ExitExpectation
	}
	return ExitError
}

// onlyExpectation reports whether every error joined in err is a broken
// expectation: an infrastructure failure joined with one still exits 1, so
// that 3 always means "the run completed and measured something else than
// expected".
func onlyExpectation(err error) bool {
	for {
		if err == ErrExpectation {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			errs := u.Unwrap()
			for _, e := range errs {
				if !onlyExpectation(e) {
					return false
				}
			}
			return len(errs) > 0
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return false
		}
	}
}
