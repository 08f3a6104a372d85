// Package fakecloud is the providers driver for fakecloud, registered as --cloud=fakecloud:
// IPAM (an instance's interfaces and addresses, with the instance's token) and LoadBalancing
// (load balancers, listeners, target groups and target health, with the account's token) over
// fakecloud's JSON API through its Go client (fakecloud/client), the only fakecloud packages it
// imports. Interfaces it creates carry the tag flatnet.io/node=<instance> so that one left
// unattached by a crash is found and deleted.
package fakecloud
