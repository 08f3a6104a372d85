// Package gateway translates Gateway API objects (GatewayClasses, Gateways, HTTP/GRPC/TLS/TCP/UDP
// routes, ReferenceGrants) with the Services, EndpointSlices, Secrets and Namespaces they name into
// the load balancers each Gateway needs, plus the status every object should carry and the events
// bad input deserves. It is pure: no I/O, no clock; Translate sees only its Input.
//
// A Gateway becomes at most two cloud load balancers: an application (L7) one for its HTTP and
// HTTPS listeners and, passed through, its TLS-passthrough and TCP listeners (one address for the
// Gateway), and a network (L4) one for its UDP listeners. Both
// send traffic straight to pod IPs resolved Service -> EndpointSlices, as the Service path does
// (lbcontroller/model.Endpoints). Deploying the result is another package's job.
package gateway
