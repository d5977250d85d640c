// Package auth authenticates requests between dflow (the CLI and the worker)
// and the node agents. Every request to an agent is signed with an SSH key;
// the agent accepts it only if the key is in the node's authorized_keys, the
// signature covers exactly this request, the request is fresh, and it has not
// been seen before. Keys and signatures come from golang.org/x/crypto/ssh, so
// any key type OpenSSH puts in authorized_keys works (ed25519, ecdsa, rsa;
// rsa signatures must be rsa-sha2-256 or rsa-sha2-512, never SHA-1).
//
// # Protocol (DFLOW1)
//
// A signed request carries two headers:
//
//	Authorization: DFLOW1 key=<fingerprint>,ts=<unix nanos>,nonce=<32 hex>,sig=<base64>
//	X-Dflow-Content-Sha256: <hex sha256 of the body>
//
// key is ssh.FingerprintSHA256 of the signing key ("SHA256:" + 43 unpadded
// base64 characters); ts is the signing time in nanoseconds since the Unix
// epoch, in canonical decimal form; nonce is 16 random bytes as lowercase hex;
// sig is the standard (padded) base64 of ssh.Marshal(*ssh.Signature). The
// fields appear exactly once each, in this order, separated by commas without
// spaces. The content hash is 64 lowercase hex digits; a request without a
// body uses EmptySHA256. The signature is over the bytes
//
//	"DFLOW1\n" + method + "\n" + host + "\n" + request URI + "\n" +
//	ts + "\n" + nonce + "\n" + body sha256 hex
//
// where host is the Host the request is addressed to, lowercased (a request
// signed for node A is refused by node B, and by another agent on another
// port of A), and request URI is the path and raw query as sent on the wire
// (what the server sees as http.Request.RequestURI).
//
// # What the verifier checks
//
// In this order, each failure wrapping one sentinel error: the headers are
// present and well formed (ErrUnsigned); the key is authorized
// (ErrUnknownKey); ts is within Window of the agent's clock, either way, and
// not before NotBefore (ErrExpired); the signature verifies over the content
// hash header (ErrBadSignature); the body matches that hash
// (ErrBadSignature); the nonce has not been accepted before (ErrReplayed).
// For a body streamed to the handler (see Bodies) the nonce is taken before
// the body is checked.
//
// Replay protection: an accepted nonce is remembered until its ts falls out
// of the window, after which the request is refused as expired anyway, so
// memory is bounded by the request rate times twice the window. On top of
// that the cache holds at most MaxNonces entries (default 100,000). When it
// is full, the entry with the oldest ts is forgotten and every request with a
// ts at or before that one is refused from then on as ErrExpired: the cache
// never lets a replay through and never grows past its cap; the cost of a
// flood of valid requests is that clients with slow clocks are refused
// sooner. Only requests with a valid signature from an authorized key reach
// the cache, so outsiders cannot fill it. The same floor makes the cache
// safe against the agent's clock stepping backwards.
//
// The cache lives in memory: a restarted agent has forgotten every nonce.
// VerifierOptions.NotBefore closes that gap: an agent sets it to the moment it
// started, so requests signed for its previous incarnation are refused.
//
// # Bodies
//
// Verifier.Middleware checks the headers before it reads any body, so an
// unauthenticated client cannot make the agent read or buffer anything.
// Bodies up to MaxBody (default 1 MiB) are then read and checked before the
// handler runs. Larger bodies are handed to the handler as a stream that
// returns an error wrapping ErrBadSignature at the end if the hash does not
// match: handlers that accept large bodies must read them to EOF, must treat
// any read error as fatal, and must not commit anything (rename a file into
// place, apply a change) before they have seen io.EOF.
//
// On the client side Transport signs every request. A caller that streams a
// large body whose hash it already knows sets HeaderContentSHA256 itself and
// the body is not read twice.
//
// # Keys
//
// LoadOrCreateKey gives a process its identity (an ed25519 key created on
// first use); AuthorizedKeys builds a node's authorized_keys from that key and
// an optional extra file; ParseAuthorizedKeys reads one back for the
// verifier. Lines with options the agent cannot honour (command=, from=,
// cert-authority, principals=, expiry-time=, verify-required, or any option
// it does not know), certificates, DSA keys and RSA keys shorter than 2048
// bits are refused with an error naming the line, rather than silently
// granting that key full control of the node.
package auth
