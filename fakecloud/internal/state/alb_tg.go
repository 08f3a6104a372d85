package state

import (
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// tgProtocolVersion checks a target group's protocol and returns its protocol version
// (HTTP1 by default for HTTP and HTTPS groups, none for the others).
func tgProtocolVersion(protocol, version string) (string, error) {
	switch protocol {
	case api.ProtocolTCP, api.ProtocolUDP, api.ProtocolTCPUDP, api.ProtocolTLS:
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
		return "", invalid("Protocol is required: TCP, UDP or TCP_UDP (network load balancers), HTTP, HTTPS or TLS (application load balancers)")
	}
	return "", invalid("Protocol %.20q is not supported: use TCP, UDP, TCP_UDP, HTTP, HTTPS or TLS", protocol)
}

// completeHealthCheckFor fills in and checks the health check of a group of the protocol:
// network groups as completeHealthCheck does, application groups with ELBv2's ALB defaults
// (TLS groups as completeTLSHealthCheck does).
func completeHealthCheckFor(protocol, version string, hc api.HealthCheck) (api.HealthCheck, error) {
	if tgLBType(protocol) == api.LoadBalancerTypeNetwork {
		return completeHealthCheck(hc)
	}
	if protocol == api.ProtocolTLS {
		return completeTLSHealthCheck(hc)
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

// completeTLSHealthCheck fills in and checks a TLS group's health check: TLS (the default), a
// TLS handshake with the group's TlsVerification and ClientCertificateId, which succeeds only
// when the target verifies as requests' handshakes would; or TCP, a connection. There is no
// request to send, so no path or matcher. The numbers default as the other application
// groups'.
func completeTLSHealthCheck(hc api.HealthCheck) (api.HealthCheck, error) {
	if hc.Protocol == "" {
		hc.Protocol = api.ProtocolTLS
	}
	if hc.Protocol != api.ProtocolTLS && hc.Protocol != api.ProtocolTCP {
		return hc, invalid("HealthCheck.Protocol %.20q is not supported for TLS target groups: use TLS (a TLS handshake verifying the target with the group's TlsVerification, presenting its ClientCertificateId) or TCP (a connection)", hc.Protocol)
	}
	if hc.Path != "" || hc.Matcher != "" {
		return hc, invalid("HealthCheck.Path and HealthCheck.Matcher apply to HTTP health checks only; a TLS target group's HealthCheck.Protocol is %s", hc.Protocol)
	}
	hc.IntervalSeconds = orDefault(hc.IntervalSeconds, defaultALBHCInterval)
	hc.TimeoutSeconds = orDefault(hc.TimeoutSeconds, defaultALBHCTimeout)
	hc.HealthyThresholdCount = orDefault(hc.HealthyThresholdCount, defaultALBHCThreshold)
	hc.UnhealthyThresholdCount = orDefault(hc.UnhealthyThresholdCount, defaultALBHCThreshold)
	return finishHealthCheck(hc)
}
