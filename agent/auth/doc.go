// Package auth authenticates requests between dflow (the CLI and the worker)
// and the node agents. Every request to an agent is signed with an SSH key;
// the agent accepts it only if the key is in the node's authorized_keys, the
// signature covers exactly this request (body included) for this very node,
// the request is fresh, and it has not been seen before. Keys and signatures come from golang.org/x/crypto/ssh, so
// any key type OpenSSH puts in authorized_keys works (ed25519, ecdsa, rsa;
// rsa signatures must be rsa-sha2-256 or rsa-sha2-512, never SHA-1).
//
// # Protocol (DFLOW2)
//
// A signed request carries three headers:
//
//	Authorization: DFLOW2 key=<fingerprint>,ts=<unix nanos>,nonce=<32 hex>,sig=<base64>
//	X-Dflow-Content-Sha256: <hex sha256 of the body>
//	X-Dflow-Node: <the ID of the node the request is for>
//
// key is ssh.FingerprintSHA256 of the signing key ("SHA256:" + 43 unpadded
// base64 characters); ts is the signing time in nanoseconds since the Unix
// epoch, in canonical decimal form; nonce is 16 random bytes as lowercase hex;
// sig is the standard (padded) base64 of ssh.Marshal(*ssh.Signature). The
// fields appear exactly once each, in this order, separated by commas without
// spaces. The content hash is 64 lowercase hex digits; a request without a
// body uses EmptySHA256. The node is the agent's --node-id (deploy.Node.ID,
// unique per incarnation of a node): 1 to 256 visible ASCII characters. The
// signature is over the bytes
//
//	"DFLOW2\n" + method + "\n" + host + "\n" + node + "\n" + request URI + "\n" +
//	ts + "\n" + nonce + "\n" + body sha256 hex
//
// where host is the Host the request is addressed to, lowercased, and
// request URI is the path and raw query as sent on the wire (what the server
// sees as http.Request.RequestURI).
//
// DFLOW1, the scheme before, signed no node: every node of a cluster
// accepts the same keys, so a request captured on its way to node A could be
// replayed to node B (the Host header is the sender's to choose). An agent
// refuses DFLOW1 with a message that says to upgrade the client.
//
// # What the verifier checks
//
// In this order, each failure wrapping one sentinel error: the headers are
// present and well formed (ErrUnsigned); the key is authorized
// (ErrUnknownKey); ts is within Window of the agent's clock, either way, and
// not before NotBefore (ErrExpired); the signature verifies over the content
// hash and node headers (ErrBadSignature); the node is this verifier's own
// (ErrWrongNode: "signed for node X, this is node Y"; checked after the
// signature, so only a key holder learns the node's ID); the body matches
// the content hash (ErrBadSignature); the nonce has not been accepted before
// (ErrReplayed). For a body streamed to the handler (see Bodies) the nonce
// is taken before the body is checked.
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
// Every body is then read whole, up to MaxBody (default 1 MiB), checked
// against the signed hash, and only then handed to the handler: a handler
// acts on exactly the signed bytes, however little of them it reads. A
// larger body, by its Content-Length (refused before it is read) or as it
// arrives (chunked), is refused with 413, except on the requests
// VerifierOptions.Stream names (the agent's artifact upload). Those get a
// stream that returns an error wrapping ErrBadSignature at the end if the
// hash does not match: their handlers must read to EOF, must treat any read
// error as fatal, and must not commit anything (rename a file into place,
// apply a change) before they have seen io.EOF. A body cut short is a 400.
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
