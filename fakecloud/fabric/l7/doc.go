// Package l7 is the data plane of fakecloud's application load balancer: an HTTP proxy engine on
// the standard library that serves HTTP and HTTPS listeners (HTTP/1.1, HTTP/2 by ALPN, h2c by
// prior knowledge, WebSocket upgrades), evaluates each listener's rules in the order given (first
// match wins), and forwards to weighted target groups of IP targets, redirects, or answers itself.
//
// The engine owns no network namespace: the caller hands it a listen function and a dialer, so the
// fabric can run it inside a load balancer's namespace and tests on loopback. Engine.Apply
// validates a Config and swaps each listener's part in with an atomic pointer; a request runs
// to completion on the configuration it started with. Checker probes targets (HTTP, HTTPS, gRPC health, TCP, TLS handshakes) with the network load
// balancer's thresholds and states and reports transitions; the control plane feeds the states back
// through the next Config. docs/fakecloud-l7.md describes the model and its semantics.
package l7
