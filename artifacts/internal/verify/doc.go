// Package verify checks what the artifact stores are given and what they hand
// back: that a digest is a well-formed sha256 (Digest), and that content
// hashes to the digest it is stored or fetched under (Reader), so that no
// store accepts or returns bytes that do not match their digest.
package verify
