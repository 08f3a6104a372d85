package gateway

import (
	"slices"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// supportedFeatures are the Gateway API features flatnet implements, by their names in
// sigs.k8s.io/gateway-api/pkg/features, sorted as the API asks: the core features of the
// profiles it serves (HTTP, GRPC, TLS, TCP, UDP) and the extended ones it claims. Each is
// proven by the conformance suite: make conformance runs it with the same list
// (conformance/claims.yaml; test/conformance's TestClaimsAreTheSupportedFeatures fails when the
// two differ). The controller drops the features of route kinds whose CRDs are not installed
// (WithoutKinds).
var supportedFeatures = []gwv1.FeatureName{
	"BackendTLSPolicy",
	"BackendTLSPolicySANValidation",
	"GRPCRoute",
	"GRPCRouteNamedRouteRule",
	"Gateway",
	"GatewayAddressEmpty",
	"GatewayBackendClientCertificate",
	"GatewayFrontendClientCertificateValidation",
	"GatewayFrontendClientCertificateValidationInsecureFallback",
	"GatewayHTTPListenerIsolation",
	"GatewayHTTPSListenerDetectMisdirectedRequests",
	"GatewayPort8080",
	"GatewayStaticAddresses",
	"HTTPRoute",
	"HTTPRoute303RedirectStatusCode",
	"HTTPRoute307RedirectStatusCode",
	"HTTPRoute308RedirectStatusCode",
	"HTTPRouteBackendProtocolH2C",
	"HTTPRouteBackendProtocolWebSocket",
	"HTTPRouteBackendRequestHeaderModification",
	"HTTPRouteBackendTimeout",
	"HTTPRouteCORS",
	"HTTPRouteDestinationPortMatching",
	"HTTPRouteHostRewrite",
	"HTTPRouteMethodMatching",
	"HTTPRouteNamedRouteRule",
	"HTTPRouteParentRefPort",
	"HTTPRoutePathRedirect",
	"HTTPRoutePathRewrite",
	"HTTPRoutePortRedirect",
	"HTTPRouteQueryParamMatching",
	"HTTPRouteRequestMirror",
	"HTTPRouteRequestMultipleMirrors",
	"HTTPRouteRequestPercentageMirror",
	"HTTPRouteRequestTimeout",
	"HTTPRouteResponseHeaderModification",
	"HTTPRouteRetry",
	"HTTPRouteRetryBackendTimeout",
	"HTTPRouteRetryConnectionError",
	"HTTPRouteSchemeRedirect",
	"ListenerSet",
	"ReferenceGrant",
	"TCPRoute",
	"TLSRoute",
	"TLSRouteModeMixed",
	"TLSRouteModeTerminate",
	"UDPRoute",
}

// SupportedFeatures returns what a GatewayClass of ours shows in status.supportedFeatures: the
// features flatnet implements, sorted by name.
func SupportedFeatures() []gwv1.SupportedFeature {
	out := make([]gwv1.SupportedFeature, len(supportedFeatures))
	for i, f := range supportedFeatures {
		out[i] = gwv1.SupportedFeature{Name: f}
	}
	return out
}

// Without drops the features named from fs: those a cloud cannot serve
// (GatewayHTTPSListenerDetectMisdirectedRequests without providers.Capabilities.HostnameScopes).
func Without(fs []gwv1.SupportedFeature, names ...gwv1.FeatureName) []gwv1.SupportedFeature {
	return slices.DeleteFunc(slices.Clone(fs), func(f gwv1.SupportedFeature) bool { return slices.Contains(names, f.Name) })
}

// MisdirectedRequests is the feature that needs hostname scopes of the cloud.
const MisdirectedRequests gwv1.FeatureName = "GatewayHTTPSListenerDetectMisdirectedRequests"

// TLSTerminate is the feature that needs TLS listeners that terminate TLS on the application
// load balancer (providers.Capabilities.L4OnApplicationLB: a companion network load balancer
// does not terminate TLS for TLSRoutes yet).
const TLSTerminate gwv1.FeatureName = "TLSRouteModeTerminate"

// StaticAddresses is the feature of Gateways at addresses of the user's choosing: it needs a
// cloud that creates load balancers at a given address (providers.Capabilities.StaticAddresses).
const StaticAddresses gwv1.FeatureName = "GatewayStaticAddresses"

// TLSMixed is the feature of TLS listeners of both modes on one port: it needs TLSTerminate
// and a cloud rule that passes TLS through where the listener terminates the rest
// (providers.RuleAction.TLSPassthrough).
const TLSMixed gwv1.FeatureName = "TLSRouteModeMixed"

// BackendTLSFeatures are the features that need a cloud that verifies its targets'
// certificates (providers.Capabilities.BackendTLSVerification).
var BackendTLSFeatures = []gwv1.FeatureName{"BackendTLSPolicy", "BackendTLSPolicySANValidation"}

// BackendClientCertificate is the feature of a Gateway's backend client certificate: it needs a
// cloud that presents one (providers.Capabilities.BackendClientCertificates).
const BackendClientCertificate gwv1.FeatureName = "GatewayBackendClientCertificate"

// FrontendClientValidation are the features of HTTPS listeners that validate client
// certificates: they need providers.Capabilities.FrontendClientValidation.
var FrontendClientValidation = []gwv1.FeatureName{"GatewayFrontendClientCertificateValidation", "GatewayFrontendClientCertificateValidationInsecureFallback"}

// WithoutKinds drops from fs the features of the route kinds given (e.g. "TCPRoute"): a feature
// belongs to the kind its name starts with.
func WithoutKinds(fs []gwv1.SupportedFeature, kinds ...string) []gwv1.SupportedFeature {
	if len(kinds) == 0 {
		return fs
	}
	return slices.DeleteFunc(slices.Clone(fs), func(f gwv1.SupportedFeature) bool {
		return slices.ContainsFunc(kinds, func(k string) bool { return strings.HasPrefix(string(f.Name), k) })
	})
}
