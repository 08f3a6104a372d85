package api

// Action names. The HTTP API serves each at POST /api/<Action> with the request as a JSON body.
const (
	ActionCreateVpc                       = "CreateVpc"
	ActionDescribeVpcs                    = "DescribeVpcs"
	ActionDeleteVpc                       = "DeleteVpc"
	ActionCreateSubnet                    = "CreateSubnet"
	ActionDescribeSubnets                 = "DescribeSubnets"
	ActionDeleteSubnet                    = "DeleteSubnet"
	ActionDescribeInstanceTypes           = "DescribeInstanceTypes"
	ActionRunInstances                    = "RunInstances"
	ActionDescribeInstances               = "DescribeInstances"
	ActionTerminateInstances              = "TerminateInstances"
	ActionCreateNetworkInterface          = "CreateNetworkInterface"
	ActionDescribeNetworkInterfaces       = "DescribeNetworkInterfaces"
	ActionAttachNetworkInterface          = "AttachNetworkInterface"
	ActionDetachNetworkInterface          = "DetachNetworkInterface"
	ActionDeleteNetworkInterface          = "DeleteNetworkInterface"
	ActionModifyNetworkInterfaceAttribute = "ModifyNetworkInterfaceAttribute"
	ActionAssignPrivateIPAddresses        = "AssignPrivateIpAddresses"
	ActionUnassignPrivateIPAddresses      = "UnassignPrivateIpAddresses"
	ActionCreateTags                      = "CreateTags"
	ActionDeleteTags                      = "DeleteTags"

	// Administrative actions (admin token only, never throttled, no EC2 counterpart; a
	// load-balancer token gets the load balancer side of GetChanges and GetSnapshot).
	ActionSetFault    = "SetFault"
	ActionListFaults  = "ListFaults"
	ActionClearFaults = "ClearFaults"
	ActionGetChanges  = "GetChanges"
	ActionGetSnapshot = "GetSnapshot"

	// Load-balancer tokens (admin only): the credentials of a load balancer controller.
	ActionCreateLoadBalancerToken    = "CreateLoadBalancerToken"
	ActionDescribeLoadBalancerTokens = "DescribeLoadBalancerTokens"
	ActionDeleteLoadBalancerToken    = "DeleteLoadBalancerToken"
)

// Header names.
const (
	// HeaderAuthorization carries "Bearer <token>": the admin token or an instance token.
	HeaderAuthorization = "Authorization"
	// HeaderRequestID is set on every answer.
	HeaderRequestID = "X-Request-Id"
)

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error Error `json:"Error"`
}

// --- VPCs and subnets

type CreateVpcRequest struct {
	CidrBlock   string `json:"CidrBlock"`
	Tags        []Tag  `json:"Tags,omitempty"`
	ClientToken string `json:"ClientToken,omitempty"`
}
type CreateVpcResponse struct {
	Vpc Vpc `json:"Vpc"`
}

type DescribeVpcsRequest struct {
	VpcIDs  []string `json:"VpcIds,omitempty"`
	Filters []Filter `json:"Filters,omitempty"`
}
type DescribeVpcsResponse struct {
	Vpcs []Vpc `json:"Vpcs"`
}

type DeleteVpcRequest struct {
	VpcID string `json:"VpcId"`
}
type DeleteVpcResponse struct{}

type CreateSubnetRequest struct {
	VpcID            string `json:"VpcId"`
	CidrBlock        string `json:"CidrBlock"`
	AvailabilityZone string `json:"AvailabilityZone,omitempty"` // default "fc-east-1a"
	Tags             []Tag  `json:"Tags,omitempty"`
	ClientToken      string `json:"ClientToken,omitempty"`
}
type CreateSubnetResponse struct {
	Subnet Subnet `json:"Subnet"`
}

type DescribeSubnetsRequest struct {
	SubnetIDs []string `json:"SubnetIds,omitempty"`
	Filters   []Filter `json:"Filters,omitempty"`
}
type DescribeSubnetsResponse struct {
	Subnets []Subnet `json:"Subnets"`
}

type DeleteSubnetRequest struct {
	SubnetID string `json:"SubnetId"`
}
type DeleteSubnetResponse struct{}

// --- instances

type DescribeInstanceTypesRequest struct {
	InstanceTypes []string `json:"InstanceTypes,omitempty"`
}
type DescribeInstanceTypesResponse struct {
	InstanceTypes []InstanceTypeInfo `json:"InstanceTypes"`
}

type RunInstancesRequest struct {
	SubnetID     string `json:"SubnetId"`
	InstanceType string `json:"InstanceType"`
	// Count is how many instances to launch; 0 means 1.
	Count int `json:"Count,omitempty"`
	// PrivateIPAddress fixes the primary IP (only with Count <= 1).
	PrivateIPAddress string   `json:"PrivateIpAddress,omitempty"`
	SecurityGroupIDs []string `json:"SecurityGroupIds,omitempty"`
	Tags             []Tag    `json:"Tags,omitempty"`
	ClientToken      string   `json:"ClientToken,omitempty"`
}
type RunInstancesResponse struct {
	Instances []Instance `json:"Instances"`
}

type DescribeInstancesRequest struct {
	InstanceIDs []string `json:"InstanceIds,omitempty"`
	Filters     []Filter `json:"Filters,omitempty"`
	MaxResults  int      `json:"MaxResults,omitempty"`
	NextToken   string   `json:"NextToken,omitempty"`
}
type DescribeInstancesResponse struct {
	Instances []Instance `json:"Instances"`
	NextToken string     `json:"NextToken,omitempty"`
}

type TerminateInstancesRequest struct {
	InstanceIDs []string `json:"InstanceIds"`
}
type TerminateInstancesResponse struct {
	TerminatingInstances []string `json:"TerminatingInstances"`
}

// --- network interfaces

type CreateNetworkInterfaceRequest struct {
	SubnetID                       string   `json:"SubnetId"`
	Description                    string   `json:"Description,omitempty"`
	PrivateIPAddress               string   `json:"PrivateIpAddress,omitempty"`
	SecondaryPrivateIPAddressCount int      `json:"SecondaryPrivateIpAddressCount,omitempty"`
	Ipv4PrefixCount                int      `json:"Ipv4PrefixCount,omitempty"`
	Groups                         []string `json:"Groups,omitempty"`
	Tags                           []Tag    `json:"Tags,omitempty"`
	ClientToken                    string   `json:"ClientToken,omitempty"`
}
type CreateNetworkInterfaceResponse struct {
	NetworkInterface NetworkInterface `json:"NetworkInterface"`
}

type DescribeNetworkInterfacesRequest struct {
	NetworkInterfaceIDs []string `json:"NetworkInterfaceIds,omitempty"`
	Filters             []Filter `json:"Filters,omitempty"`
	MaxResults          int      `json:"MaxResults,omitempty"`
	NextToken           string   `json:"NextToken,omitempty"`
}
type DescribeNetworkInterfacesResponse struct {
	NetworkInterfaces []NetworkInterface `json:"NetworkInterfaces"`
	NextToken         string             `json:"NextToken,omitempty"`
}

type AttachNetworkInterfaceRequest struct {
	NetworkInterfaceID string `json:"NetworkInterfaceId"`
	InstanceID         string `json:"InstanceId"`
	DeviceIndex        int    `json:"DeviceIndex"`
	ClientToken        string `json:"ClientToken,omitempty"`
}
type AttachNetworkInterfaceResponse struct {
	AttachmentID string `json:"AttachmentId"`
}

type DetachNetworkInterfaceRequest struct {
	AttachmentID string `json:"AttachmentId"`
	Force        bool   `json:"Force,omitempty"`
}
type DetachNetworkInterfaceResponse struct{}

type DeleteNetworkInterfaceRequest struct {
	NetworkInterfaceID string `json:"NetworkInterfaceId"`
}
type DeleteNetworkInterfaceResponse struct{}

type ModifyNetworkInterfaceAttributeRequest struct {
	NetworkInterfaceID string   `json:"NetworkInterfaceId"`
	SourceDestCheck    *bool    `json:"SourceDestCheck,omitempty"`
	Groups             []string `json:"Groups,omitempty"`
	// Description replaces the description (at most 255 characters; empty clears it).
	Description *string `json:"Description,omitempty"`
	// DeleteOnTermination changes the attachment's flag (attached interfaces only).
	DeleteOnTermination *bool `json:"DeleteOnTermination,omitempty"`
	// AttachmentID, when set, must be the interface's current attachment (EC2 names the
	// attachment whose DeleteOnTermination changes).
	AttachmentID string `json:"AttachmentId,omitempty"`
}
type ModifyNetworkInterfaceAttributeResponse struct{}

// AssignPrivateIpAddresses assigns secondary IPv4 addresses and/or /28 prefixes, either explicit
// or by count (not both for the same kind). It is all or nothing.
type AssignPrivateIPAddressesRequest struct {
	NetworkInterfaceID             string   `json:"NetworkInterfaceId"`
	PrivateIPAddresses             []string `json:"PrivateIpAddresses,omitempty"`
	SecondaryPrivateIPAddressCount int      `json:"SecondaryPrivateIpAddressCount,omitempty"`
	Ipv4Prefixes                   []string `json:"Ipv4Prefixes,omitempty"`
	Ipv4PrefixCount                int      `json:"Ipv4PrefixCount,omitempty"`
	ClientToken                    string   `json:"ClientToken,omitempty"`
}
type AssignPrivateIPAddressesResponse struct {
	NetworkInterfaceID         string       `json:"NetworkInterfaceId"`
	AssignedPrivateIPAddresses []string     `json:"AssignedPrivateIpAddresses"`
	AssignedIpv4Prefixes       []Ipv4Prefix `json:"AssignedIpv4Prefixes"`
}

type UnassignPrivateIPAddressesRequest struct {
	NetworkInterfaceID string   `json:"NetworkInterfaceId"`
	PrivateIPAddresses []string `json:"PrivateIpAddresses,omitempty"`
	Ipv4Prefixes       []string `json:"Ipv4Prefixes,omitempty"`
	ClientToken        string   `json:"ClientToken,omitempty"`
}
type UnassignPrivateIPAddressesResponse struct{}

// --- tags

type CreateTagsRequest struct {
	Resources []string `json:"Resources"`
	Tags      []Tag    `json:"Tags"`
}
type CreateTagsResponse struct{}

type DeleteTagsRequest struct {
	Resources []string `json:"Resources"`
	Tags      []Tag    `json:"Tags"` // a tag with an empty Value deletes the key whatever its value
}
type DeleteTagsResponse struct{}

// --- fault injection (admin)

// Fault makes an action misbehave. Rate is the fraction of calls (0..1) answered with Code
// (default InternalError); Errors adds further codes with rates of their own, drawn from the same
// roll (so 10% RequestLimitExceeded plus 2% InternalError fail 12% of calls, never one call
// twice; the rates add up to at most 1); Latency is added to every call; VisibilityLag hides
// resources and addresses created within that window from describe calls and from calls that
// name them, the way eventual consistency does in a real cloud.
type Fault struct {
	Action              string       `json:"Action"` // an action name, "*" for all, or a DataPlane.* operation
	ErrorRate           float64      `json:"ErrorRate,omitempty"`
	ErrorCode           string       `json:"ErrorCode,omitempty"`
	Errors              []FaultError `json:"Errors,omitempty"`
	LatencyMillis       int          `json:"LatencyMillis,omitempty"`
	VisibilityLagMillis int          `json:"VisibilityLagMillis,omitempty"`
	// AfterCommit makes an injected error answer a call that was carried out: the change is
	// made, the reply is lost (a timeout or 5xx after the fact, which real clients must survive
	// with client tokens and by reconciling).
	AfterCommit bool `json:"AfterCommit,omitempty"`
}

// Data-plane operations a Fault can name as its Action. The fabric asks before each such
// operation and fails it with the injected error, the way the kernel would refuse it, so what
// the data plane reports about a failure (a load balancer failed, its targets unavailable) can
// be tested without breaking the machine. Only ErrorRate/ErrorCode/Errors and LatencyMillis
// apply; the "*" fault does not cover them.
const (
	// DataPlaneEnsureLoadBalancer: a load balancer's namespace, link, addresses and routes.
	DataPlaneEnsureLoadBalancer = "DataPlane.EnsureLoadBalancer"
	// DataPlaneProgramLoadBalancer: a load balancer's forwarding program (nftables).
	DataPlaneProgramLoadBalancer = "DataPlane.ProgramLoadBalancer"
	// DataPlaneSetRoute: a VPC router's route delivering an address or prefix to an interface.
	DataPlaneSetRoute = "DataPlane.SetRoute"
	// DataPlaneAddPort: plugging an attached interface into its node.
	DataPlaneAddPort = "DataPlane.AddPort"
)

// DataPlaneOperations lists the data-plane operations faults can name.
var DataPlaneOperations = []string{
	DataPlaneEnsureLoadBalancer, DataPlaneProgramLoadBalancer, DataPlaneSetRoute, DataPlaneAddPort,
}

// FaultError is one injected error code and the fraction of calls that get it.
type FaultError struct {
	Code string  `json:"Code"`
	Rate float64 `json:"Rate"`
}

type SetFaultRequest struct {
	Fault Fault `json:"Fault"`
	// Seed, when non-zero, reseeds the fault random source so runs are reproducible.
	Seed int64 `json:"Seed,omitempty"`
}
type SetFaultResponse struct{}

type ListFaultsRequest struct{}
type ListFaultsResponse struct {
	Faults []Fault `json:"Faults"`
}

type ClearFaultsRequest struct {
	Action string `json:"Action,omitempty"` // empty clears all
}
type ClearFaultsResponse struct{}

// --- change stream (admin)

// Change kinds.
const (
	ChangeUpsert = "upsert"
	ChangeDelete = "delete"
)

// Change is one resource's new state after a committed write. Exactly one of the resource fields
// is set for an upsert; for a delete only Kind and ID are.
type Change struct {
	Seq              uint64            `json:"Seq"`
	Op               string            `json:"Op"`
	Kind             string            `json:"Kind"` // one of the Kind constants
	ID               string            `json:"Id"`
	Vpc              *Vpc              `json:"Vpc,omitempty"`
	Subnet           *Subnet           `json:"Subnet,omitempty"`
	Instance         *Instance         `json:"Instance,omitempty"`
	NetworkInterface *NetworkInterface `json:"NetworkInterface,omitempty"`
	LoadBalancer     *LoadBalancer     `json:"LoadBalancer,omitempty"`
	Listener         *Listener         `json:"Listener,omitempty"`
	TargetGroup      *TargetGroup      `json:"TargetGroup,omitempty"`
	// Target is one registered target; its ID is TargetID(group, ip, port).
	Target      *TargetHealthDescription `json:"Target,omitempty"`
	Rule        *Rule                    `json:"Rule,omitempty"`
	Certificate *Certificate             `json:"Certificate,omitempty"`
}

// Resource kinds in Change.Kind.
const (
	KindVpc      = "vpc"
	KindSubnet   = "subnet"
	KindInstance = "instance"
	KindENI      = "eni"

	KindLoadBalancer = "loadbalancer"
	KindListener     = "listener"
	KindTargetGroup  = "targetgroup"
	KindTarget       = "target"
	KindRule         = "rule"
	KindCertificate  = "certificate"
)

// GetChangesRequest long-polls for changes after Since, waiting at most WaitMillis (capped by
// the server) when there are none yet.
type GetChangesRequest struct {
	Since      uint64 `json:"Since"`
	WaitMillis int    `json:"WaitMillis,omitempty"`
}

// GetChangesResponse carries the changes after Since, in order, and the sequence to ask from
// next. Resync is true when Since is older than what the server keeps: the caller must re-read
// everything with describes and continue from Seq.
type GetChangesResponse struct {
	Seq     uint64   `json:"Seq"`
	Changes []Change `json:"Changes"`
	Resync  bool     `json:"Resync,omitempty"`
}

type GetSnapshotRequest struct{}
type GetSnapshotResponse struct {
	Snapshot Snapshot `json:"Snapshot"`
}
