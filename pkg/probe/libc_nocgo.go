//go:build !cgo

package probe

import (
	"context"

	"labrun.dev/labrun/pkg/sample"
)

// Libc is "" without cgo: the glibc and musl back ends need the cgo builds.
func Libc() string { return "" }

type libcResolver struct{ keepState bool }

func (libcResolver) Lookup(context.Context, string) Outcome {
	return Outcome{Result: sample.Error, Err: ErrUnavailable.Error()}
}

func (libcResolver) Close() error { return nil }
