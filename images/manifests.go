package images

import _ "embed"

// Manifests pins the published manifests (Calico, Weave Net) the lab fetches
// at run time; it never holds the manifests themselves.
//
//go:embed manifests.yaml
var Manifests []byte
