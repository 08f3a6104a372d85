package wire

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Version is the protocol version this package speaks. A server answers a request of another
// version with CodeVersion.
const Version = 1

// DefaultSocket is ipamd's socket path on a node.
const DefaultSocket = "/run/flatnet/ipamd.sock"

// DefaultSpoolDir is where the plugin leaves releases it could not deliver.
const DefaultSpoolDir = "/var/lib/flatnet/spool"

// NetworkName is the CNI network ipamd's conflist declares; the plugin's allocations are keyed
// by it.
const NetworkName = "flatnet"

// ConflistName is the file ipamd writes into its CNI configuration directory. It sorts early so
// a runtime that picks the first conflist of the directory picks this one.
const ConflistName = "10-flatnet.conflist"

// Operations.
const (
	OpAllocate = "allocate"
	OpRelease  = "release"
	OpCheck    = "check"
	OpStatus   = "status"
	OpGC       = "gc"
)

// Policy-routing priorities of the pod datapath (docs/architecture.md#pod-datapath): traffic to a pod
// always uses the main table; traffic from a pod on a secondary interface uses that interface's
// table.
const (
	PriorityToPod   = 512
	PriorityFromPod = 1536
)

// RuleProtocol is the routing protocol number the CNI plugin stamps on the per-pod rules, so
// that its garbage collection recognises them and never takes ipamd's rules (protocol 70, at
// the same priorities) for its own.
const RuleProtocol = 71

// Owner identifies one attachment, as the CNI spec does: (network, container ID, interface).
// Allocation is idempotent per owner.
type Owner struct {
	Network     string `json:"network"`
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
}

// Key is the owner's stable string form, also its spool file name and ipamd's index key. Network
// and container ID each carry their length in front ("7.flatnet_3.abc_eth0"), so the key names
// exactly one owner: joining the fields with '_' alone gave (abc, x_eth0) and (abc_x, eth0) the same
// key, and releasing one freed the other's address. A key starts with a digit, never with '.'.
func (o Owner) Key() string {
	return strconv.Itoa(len(o.Network)) + "." + o.Network + "_" + strconv.Itoa(len(o.ContainerID)) + "." + o.ContainerID + "_" + o.IfName
}

// LegacyKey is the key of flatnet before the length prefixes: the fields joined by '_'. It is
// ambiguous and used only to recognise spool files the older plugin wrote, whose JSON body (not
// their name) says which owner they release.
func (o Owner) LegacyKey() string { return o.Network + "_" + o.ContainerID + "_" + o.IfName }

// Validate reports which field is missing or malformed.
func (o Owner) Validate() error {
	for name, v := range map[string]string{"network": o.Network, "containerID": o.ContainerID, "ifName": o.IfName} {
		if v == "" {
			return fmt.Errorf("owner.%s is empty", name)
		}
		if strings.ContainsAny(v, "/\x00") || v == "." || v == ".." {
			return fmt.Errorf("owner.%s %q contains a character that is not allowed", name, v)
		}
	}
	if len(o.Key()) > 250 {
		return fmt.Errorf("owner is %d characters long; at most 250", len(o.Key()))
	}
	return nil
}

// PodRef names the Kubernetes pod behind an owner, when the runtime says (CNI_ARGS
// K8S_POD_NAMESPACE / K8S_POD_NAME); empty outside Kubernetes.
type PodRef struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	// UID is the pod's Kubernetes UID when the runtime passed K8S_POD_UID, so that events land
	// on this pod and not on a later one of the same name.
	UID string `json:"uid,omitempty"`
}

// Request is what the plugin sends. Exactly the body matching Op is set.
type Request struct {
	Version  int              `json:"version"`
	Op       string           `json:"op"`
	Allocate *AllocateRequest `json:"allocate,omitempty"`
	Release  *ReleaseRequest  `json:"release,omitempty"`
	Check    *CheckRequest    `json:"check,omitempty"`
	Status   *StatusRequest   `json:"status,omitempty"`
	GC       *GCRequest       `json:"gc,omitempty"`
}

// AllocateRequest asks for an address for owner. Repeating it returns the same allocation.
type AllocateRequest struct {
	Owner Owner  `json:"owner"`
	Pod   PodRef `json:"pod"`
}

// Allocation is an address and the interface it lives on.
type Allocation struct {
	Owner Owner  `json:"owner"`
	Pod   PodRef `json:"pod"`
	// IP is the pod's address (IPv4).
	IP netip.Addr `json:"ip"`
	// DeviceIndex is the node interface (ethN) holding the address.
	DeviceIndex int `json:"deviceIndex"`
	// RouteTable is the policy-routing table of that interface; 0 means the main table (the
	// primary interface), and then no per-pod rules are needed.
	RouteTable int `json:"routeTable"`
	// MTU of the node interface.
	MTU int `json:"mtu"`
	// VPCCIDRs are the VPC's blocks (for the plugin's informational result).
	VPCCIDRs []netip.Prefix `json:"vpcCIDRs,omitempty"`
}

// ReleaseRequest gives an owner's address back. Releasing an unknown owner succeeds (DEL is
// idempotent) with Released false.
type ReleaseRequest struct {
	Owner Owner `json:"owner"`
}

// ReleaseResponse says whether something was released, and whose address it was: the plugin acts
// on IP (removes its rules) only when Owner is the owner it asked for.
type ReleaseResponse struct {
	Released bool       `json:"released"`
	IP       netip.Addr `json:"ip,omitzero"`
	Owner    Owner      `json:"owner,omitzero"`
}

// CheckRequest asks what ipamd holds for owner.
type CheckRequest struct {
	Owner Owner `json:"owner"`
}

// StatusRequest asks whether ipamd can serve an ADD now.
type StatusRequest struct{}

// StatusResponse answers a StatusRequest. When Ready is false, Code is the CNI error code the
// plugin should return (50 not available, 51 limited connectivity) and Reason says why.
type StatusResponse struct {
	Ready  bool   `json:"ready"`
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Free is how many addresses can be handed out without a cloud call; Capacity how many the
	// node may hold in all.
	Free     int `json:"free"`
	Assigned int `json:"assigned"`
	Capacity int `json:"capacity"`
}

// GCRequest releases every allocation of Network whose owner is not in Valid.
type GCRequest struct {
	Network string  `json:"network"`
	Valid   []Owner `json:"valid"`
}

// GCResponse lists what was released.
type GCResponse struct {
	Released []Allocation `json:"released"`
}

// Error codes in a Response.
const (
	// CodeVersion: the request's version is not spoken here.
	CodeVersion = "version"
	// CodeInvalid: the request is malformed; Message says which field.
	CodeInvalid = "invalid"
	// CodeTryAgain: no address could be had in time (the pool is empty and the cloud is slow or
	// refusing); the plugin returns CNI code 11.
	CodeTryAgain = "try-again"
	// CodeFull: the node holds as many addresses as its instance type and subnet allow.
	CodeFull = "full"
	// CodeNotFound: check of an owner ipamd does not know.
	CodeNotFound = "not-found"
	// CodeInternal: anything else.
	CodeInternal = "internal"
)

// Error is a failure answered by ipamd.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return "ipamd: " + e.Code + ": " + e.Message }

// Is matches on the code, so callers write errors.Is(err, &wire.Error{Code: wire.CodeFull}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Response is what ipamd answers: Error, or the body matching the request's Op.
type Response struct {
	Version    int              `json:"version"`
	Error      *Error           `json:"error,omitempty"`
	Allocation *Allocation      `json:"allocation,omitempty"` // allocate and check
	Release    *ReleaseResponse `json:"release,omitempty"`
	Status     *StatusResponse  `json:"status,omitempty"`
	GC         *GCResponse      `json:"gc,omitempty"`
}
