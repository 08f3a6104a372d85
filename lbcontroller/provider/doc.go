// Package provider is the cloud contract lbcontroller declares: load balancers, their listeners,
// target groups of (IP, port) targets and the targets' health, found by ownership tags. A cloud's
// driver (provider/fakecloud today) implements it and maps its errors onto the kinds in errors.go,
// so the controller decides with errors.Is and never learns a cloud's codes.
package provider
