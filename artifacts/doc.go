// Package artifacts is where dflow keeps the bundles it deploys, by digest,
// so that any worker and any node can fetch the bundle a release names: a
// Store (put, get, stat, list, delete by the lowercase hex sha256 of the
// bundle's bytes) with a contract per method, and Open, which makes one from
// the value of `artifacts.store` / `--artifact-store`:
//
//	local                        the project's directory store (Options.LocalDir: .dflow/artifacts)
//	./dir, /abs/dir              a directory store there (artifacts/local, over artifact.Store)
//	oci://HOST[:PORT]/REPO       an OCI registry over HTTPS (artifacts/oci, oras-go)
//	oci+http://HOST[:PORT]/REPO  the same over plain HTTP (a registry on a private network)
//	./path/to/exe, /abs/exe      an executable plugin (artifacts/plugin, docs/artifacts.md)
//
// Every implementation passes the conformance suite in artifacts/artifactstest.
// docs/artifacts.md is the operator's side of this: URL forms, credentials,
// running a registry, and the plugin protocol.
package artifacts
