// Package lbcontroller runs the controllers that give Services of type LoadBalancer a cloud load
// balancer whose targets are pod IPs: the Service reconciler (model -> deploy, status,
// conditions, events, finalizer), the readiness-gate reconciler that marks pods ready once the
// cloud sees them healthy (driven by the cloud's health change stream), and periodic garbage
// collection of load balancers whose Service is gone. See docs/lbcontroller.md.
package lbcontroller
