// Package model translates a Service of type LoadBalancer, its EndpointSlices and its
// annotations into a cloud-neutral desired load balancer: listeners, target groups with their
// targets (and the endpoints that must drain), health checks, source ranges and ownership tags.
// It is pure: no I/O, no clock; everything it needs comes in through its arguments, and bad
// input is an *InvalidError listing every problem, found before any cloud call is made.
package model
