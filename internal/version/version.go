// Package version names the labrun build: what `labrun version` prints and
// env.json records, so that labrun merge can refuse shards made by
// different builds.
package version

import "runtime/debug"

// Revision is set by `make build` (-ldflags -X): git describe --always
// --dirty of the source tree. The Makefile builds with -buildvcs=false, so
// Go's own VCS stamp is not there.
var Revision string

// String is the build's revision, else its module version, else "(devel)".
func String() string {
	if Revision != "" {
		return Revision
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
