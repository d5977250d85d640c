// Package proxy is the agent's public port: a reverse proxy (http mode) or a
// TCP relay (tcp mode) in front of whichever app version is serving.
//
// The proxy routes every new request (http) or connection (tcp) to its
// current Upstream. Switch replaces the upstream atomically; the previous one
// is handed back so the caller can Drain it before stopping its process.
//
// The invariant the agent's zero-downtime rollouts rest on: every request or
// connection is counted in flight against exactly one upstream, and once
// Switch has returned, the previous upstream receives no new request. So when
// Drain returns nil, nothing is using the old version and it may be stopped.
// The acquire loop that keeps this true without a lock is in acquire.
//
// In http mode, plain requests go to the app over the proxy's own pool of
// keep-alive connections, read in the handler's goroutine (forward.go);
// upgrades (WebSocket) and CONNECT go through httputil.ReverseProxy.
package proxy
