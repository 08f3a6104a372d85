// Package aws is flatnet's driver for Amazon Web Services on aws-sdk-go-v2: ipamd's cloud
// contract over the EC2 API (interfaces, secondary addresses, /28 prefixes, limits from
// DescribeInstanceTypes) and lbcontroller's over the ELBv2 API (network load balancers with
// target groups of type ip). It is configured by the standard AWS configuration chain (region,
// endpoint override, credentials from the environment, shared files or the instance metadata
// service), maps EC2's and ELBv2's error codes onto the seam's kinds, and leaves retries to the
// seam's wrapper. It runs unchanged against fakecloud's EC2 and ELBv2 endpoint, which is how its
// tests and the lab's --cloud aws-api exercise it; docs/providers.md is its guide and lists the
// IAM policy each component needs.
package aws
