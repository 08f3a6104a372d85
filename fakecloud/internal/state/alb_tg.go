package state

import (
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// tgProtocolVersion checks a target group's protocol and returns its protocol version
// (HTTP1 by default for HTTP and HTTPS groups, none for the others).
func tgProtocolVersion(protocol, version string) (string, error) {
	switch protocol {
	case api.ProtocolTCP, api.ProtocolUDP, api.ProtocolTCPUDP:
		if version != "" {
			return "", invalid("ProtocolVersion applies to HTTP and HTTPS target groups only; Protocol is %s", protocol)
		}
		return "", nil
	case api.ProtocolHTTP, api.ProtocolHTTPS:
		switch version {
		case "":
			return api.ProtocolVersionHTTP1, nil
		case api.ProtocolVersionHTTP1, api.ProtocolVersionHTTP2, api.ProtocolVersionGRPC:
			return version, nil
		}
		return "", invalid("ProtocolVersion %.20q must be HTTP1, HTTP2 or GRPC", version)
	case "":
		return "", invalid("Protocol is required: TCP, UDP or TCP_UDP (network load balancers), HTTP or HTTPS (application load balancers)")
	}
	return "", invalid("Protocol %.20q is not supported: use TCP, UDP, TCP_UDP, HTTP or HTTPS", protocol)
}

// completeHealthCheckFor fills in and checks the health check of a group of the protocol:
// network groups as completeHealthCheck does, application groups with ELBv2's ALB defaults.
func completeHealthCheckFor(protocol, version string, hc api.HealthCheck) (api.HealthCheck, error) {
	if tgLBType(protocol) == api.LoadBalancerTypeNetwork {
		return completeHealthCheck(hc)
	}
	if hc.Protocol == "" {
		hc.Protocol = protocol
	}
	if hc.Protocol != api.ProtocolHTTP && hc.Protocol != api.ProtocolHTTPS {
		return hc, invalid("HealthCheck.Protocol %.20q is not supported for %s target groups: use HTTP or HTTPS", hc.Protocol, protocol)
	}
	grpc := version == api.ProtocolVersionGRPC
	if hc.Path == "" {
		hc.Path = defaultHCPath
		if grpc {
			hc.Path = defaultGRPCHealthCheckPath
		}
	}
	if hc.Matcher == "" {
		hc.Matcher = defaultHCMatcher
		if grpc {
			hc.Matcher = defaultGRPCMatcher
		}
	}
	if !strings.HasPrefix(hc.Path, "/") || len(hc.Path) > 1024 || hasControl(hc.Path) {
		return hc, invalid("HealthCheck.Path %.40q must begin with / and hold at most 1024 characters", hc.Path)
	}
	lo, hi := 200, 599
	if grpc {
		lo, hi = 0, 99
	}
	if err := validateMatcherRange(hc.Matcher, lo, hi); err != nil {
		return hc, err
	}
	hc.IntervalSeconds = orDefault(hc.IntervalSeconds, defaultALBHCInterval)
	hc.TimeoutSeconds = orDefault(hc.TimeoutSeconds, defaultALBHCTimeout)
	hc.HealthyThresholdCount = orDefault(hc.HealthyThresholdCount, defaultALBHCThreshold)
	hc.UnhealthyThresholdCount = orDefault(hc.UnhealthyThresholdCount, defaultALBHCThreshold)
	return finishHealthCheck(hc)
}
