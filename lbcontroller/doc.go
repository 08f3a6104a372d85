// Package lbcontroller will hold the controllers that turn Services of type LoadBalancer (and
// later Gateway API objects) into a cloud-neutral load-balancer model, then deploy it through a
// provider interface it declares itself, with pod IPs as targets.
//
// Nothing is here yet: the L4 (Service) part lands with issue 8; Gateway API is not scheduled.
package lbcontroller
