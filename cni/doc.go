// Package cni will be the flatnet CNI plugin (CNI spec 1.1: ADD, DEL, CHECK, STATUS, GC, VERSION):
// it wires a pod's veth, /32 address and routes with an address from ipamd. It stays tiny: its
// whole import graph holds no Kubernetes, memdb, Prometheus or logging library (make verify checks).
//
// Nothing is here yet: it lands with issue 5.
package cni
