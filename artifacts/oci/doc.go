// Package oci keeps dflow's bundles in an OCI registry (Docker's
// distribution, Harbor, GHCR, ECR, ...) through oras-go: the artifact store
// that every worker and node can reach.
//
// Each bundle is one OCI artifact in the store's repository: an image
// manifest (schema 2, application/vnd.oci.image.manifest.v1+json) with
// artifactType ArtifactType, the empty config, and one layer, LayerMediaType,
// whose blob is the bundle's bytes, so the layer's digest is "sha256:" + the
// bundle's digest. The manifest is tagged Tag(digest) = "sha256-<hex>"; it
// has no timestamps, so the same bundle always makes the same manifest and
// concurrent Puts agree. Stat and Get resolve the tag and read the manifest's
// layer; List reads the tags API and keeps the tags of that form; Delete
// deletes the manifest by its digest, which also removes its tag (the
// registry must allow deletes: distribution's storage.delete.enabled), and
// leaves the layer's bytes to the registry's garbage collection.
//
// Credentials come from the Docker configuration ($DOCKER_CONFIG/config.json
// or ~/.docker/config.json) and its credential helpers, as `docker login`
// and `oras login` write them; nothing secret is in the store's URL.
package oci
