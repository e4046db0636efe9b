package workload

import "labrun.dev/labrun/pkg/mitigation"

// ProbeImage names the lab image (pkg/images: image/probe-glibc,
// image/probe-musl) whose probe binary serves a back end: musl's probe is
// linked against musl on an empty base; every other back end runs the glibc
// build on the Debian base, which also has gRPC C-core (python3-grpcio). The
// runner resolves the name to the built image's reference.
func ProbeImage(backend string) string {
	if backend == mitigation.Musl {
		return "probe-musl"
	}
	return "probe-glibc"
}
