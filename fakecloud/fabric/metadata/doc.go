// Package metadata is fakecloud's instance metadata service: the EC2-style /latest/meta-data/
// tree, answered for whichever instance owns the caller's source address, plus the instance's
// fakecloud token and the in-VPC API endpoint. The fabric serves it inside each VPC's router at
// 169.254.169.254:80; the router's source/destination check and TCP's handshake (the answer goes
// to the address's real owner) make the source address a sound identity.
package metadata
