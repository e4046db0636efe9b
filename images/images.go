// Package images holds the recipes' data for the offline image pipeline: the
// pinned versions (versions.yaml) and the files each image carries, one folder
// per image. The pipeline itself is pkg/images.
package images

import "embed"

// FS holds versions.yaml and every image folder's files.
//
//go:embed versions.yaml node/files labnet/default-cni.yaml
var FS embed.FS

// LabnetManifest is the pod network's manifest, installed by kind as the
// node image's default CNI; @IMAGE@ is replaced by the labnet image.
//
//go:embed labnet/default-cni.yaml
var LabnetManifest string

// Published lists the published images the lab can pull or import for the
// axis values it cannot build here.
//
//go:embed published.yaml
var Published []byte

// Manifests pins the published manifests (Calico, Weave Net) the lab fetches
// at run time; it never holds the manifests themselves.
//
//go:embed manifests.yaml
var Manifests []byte
