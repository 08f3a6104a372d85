package gateway

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ControllerName is flatnet's Gateway API controller: GatewayClasses with this
// spec.controllerName are ours.
const ControllerName gwv1.GatewayController = "flatnet.io/gateway-controller"

// Input is a snapshot of everything the translation reads. Objects are not modified.
type Input struct {
	// Cluster names the cluster in the load balancers' names (as lbcontroller/model.Input's).
	Cluster string `json:"cluster,omitempty"`
	// ControllerName selects our GatewayClasses; empty means ControllerName.
	ControllerName gwv1.GatewayController `json:"controllerName,omitempty"`
	// BundleVersion is the gateway.networking.k8s.io/bundle-version of the installed CRDs, if
	// known; a version other than v1.6.x makes SupportedVersion False.
	BundleVersion string `json:"bundleVersion,omitempty"`
	// NoTLSRouteTermination: the cloud cannot terminate TLS for TLSRoutes (the AWS driver,
	// whose companion network load balancer passes TLS through): TLS listeners in mode
	// Terminate are not accepted (UnsupportedValue).
	NoTLSRouteTermination bool `json:"noTLSRouteTermination,omitempty"`
	// NoStaticAddresses: the cloud's load balancers take no address of the caller's choosing
	// (providers.Capabilities.StaticAddresses false: the AWS driver): a Gateway whose
	// spec.addresses has a value is not accepted (UnsupportedAddress).
	NoStaticAddresses bool `json:"noStaticAddresses,omitempty"`
	// NoBackendTLSVerification: the cloud's load balancers do not verify their targets'
	// certificates (providers.Capabilities.BackendTLSVerification false: the AWS driver):
	// BackendTLSPolicies are not accepted (Invalid) and the backends they target are refused.
	NoBackendTLSVerification bool `json:"noBackendTLSVerification,omitempty"`
	// NoBackendClientCertificates: the cloud's load balancers present no client certificate to
	// their targets (providers.Capabilities.BackendClientCertificates false: the AWS driver): a
	// Gateway's spec.tls.backend.clientCertificateRef is ResolvedRefs False (UnsupportedValue).
	NoBackendClientCertificates bool `json:"noBackendClientCertificates,omitempty"`
	// NoFrontendClientValidation: the cloud's HTTPS listeners do not validate client
	// certificates (providers.Capabilities.FrontendClientValidation false: the AWS driver):
	// HTTPS listeners whose port spec.tls.frontend validates are not accepted (UnsupportedValue).
	NoFrontendClientValidation bool `json:"noFrontendClientValidation,omitempty"`

	GatewayClasses []gwv1.GatewayClass `json:"gatewayClasses,omitempty"`
	Gateways       []gwv1.Gateway      `json:"gateways,omitempty"`
	// ListenerSets add listeners to the Gateways that allow them (spec.allowedListeners).
	ListenerSets    []gwv1.ListenerSet    `json:"listenerSets,omitempty"`
	HTTPRoutes      []gwv1.HTTPRoute      `json:"httpRoutes,omitempty"`
	GRPCRoutes      []gwv1.GRPCRoute      `json:"grpcRoutes,omitempty"`
	TLSRoutes       []gwv1.TLSRoute       `json:"tlsRoutes,omitempty"`
	TCPRoutes       []gwv1.TCPRoute       `json:"tcpRoutes,omitempty"`
	UDPRoutes       []gwv1.UDPRoute       `json:"udpRoutes,omitempty"`
	ReferenceGrants []gwv1.ReferenceGrant `json:"referenceGrants,omitempty"`
	// BackendTLSPolicies say how to verify the backends they target; ConfigMaps hold their CA
	// certificates (only those policies name need be given).
	BackendTLSPolicies []gwv1.BackendTLSPolicy `json:"backendTLSPolicies,omitempty"`

	Services       []corev1.Service            `json:"services,omitempty"`
	EndpointSlices []discoveryv1.EndpointSlice `json:"endpointSlices,omitempty"`
	Secrets        []corev1.Secret             `json:"secrets,omitempty"`
	ConfigMaps     []corev1.ConfigMap          `json:"configMaps,omitempty"`
	Namespaces     []corev1.Namespace          `json:"namespaces,omitempty"`

	// LoadBalancers is what the cloud reports for each Gateway's load balancers; a Gateway
	// without an entry has none yet.
	LoadBalancers []LoadBalancerState `json:"loadBalancers,omitempty"`
	// Registrable are pods ("namespace/name") registered although not Ready, as
	// lbcontroller/model.Input.Registrable (readiness gates).
	Registrable map[string]bool `json:"registrable,omitempty"`
}

// LoadBalancerState is the cloud's side of one Gateway.
type LoadBalancerState struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Addresses are the VIPs the cloud gave the Gateway's load balancers, in the order the
	// Gateway's status lists them.
	Addresses []string `json:"addresses,omitempty"`
	// Programmed: every load balancer of the Gateway took the current model.
	Programmed bool `json:"programmed,omitempty"`
	// Message says why not (the cloud's reason), if known.
	Message string `json:"message,omitempty"`
	// AddressNotUsable: the cloud refused the static address asked for (Message says why).
	AddressNotUsable bool `json:"addressNotUsable,omitempty"`
}

// Output is the translation: load balancers, statuses, events. Every list is sorted, so equal
// inputs give byte-identical outputs.
type Output struct {
	// LoadBalancers has an entry for every Gateway of ours, by namespace/name; one with neither
	// load balancer (not accepted, or no listener that can serve) wants none in the cloud.
	LoadBalancers []GatewayLoadBalancers `json:"loadBalancers,omitempty"`

	GatewayClasses []GatewayClassStatus `json:"gatewayClasses,omitempty"`
	Gateways       []GatewayStatus      `json:"gateways,omitempty"`
	// ListenerSets are the statuses of the ListenerSets whose parent is one of our Gateways.
	ListenerSets []ListenerSetStatus `json:"listenerSets,omitempty"`
	// Routes carry only the parents that are our Gateways: a controller writing them back
	// replaces the entries with our controllerName and keeps everyone else's (a route not
	// listed here has no parent of ours any more: our entries go).
	Routes []RouteStatus `json:"routes,omitempty"`
	// Policies are the BackendTLSPolicies with an ancestor of ours, written back as routes
	// are (a policy not listed has none any more: our entries go).
	Policies []PolicyStatus `json:"policies,omitempty"`
	Events   []Event        `json:"events,omitempty"`
}

// GatewayClassStatus is the status of one of our GatewayClasses. Conditions have no
// lastTransitionTime: the writer keeps the old time of an unchanged condition
// (meta.SetStatusCondition does).
type GatewayClassStatus struct {
	Name   string                  `json:"name"`
	Status gwv1.GatewayClassStatus `json:"status"`
}

// GatewayStatus is the status of one of our Gateways.
type GatewayStatus struct {
	Namespace string             `json:"namespace"`
	Name      string             `json:"name"`
	Status    gwv1.GatewayStatus `json:"status"`
}

// RouteStatus is our part of a route's status.
type RouteStatus struct {
	Kind      string                   `json:"kind"`
	Namespace string                   `json:"namespace"`
	Name      string                   `json:"name"`
	Parents   []gwv1.RouteParentStatus `json:"parents"`
}

// Event is one event to record on an object about bad input.
type Event struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Type      string `json:"type"` // Warning
	Reason    string `json:"reason"`
	Message   string `json:"message"`
}
