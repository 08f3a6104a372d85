package api

import "time"

// Tag is a key/value label on a resource.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// Filter narrows a Describe call, as EC2 filters do: a resource matches when, for every filter,
// one of the values equals the resource's value for that name.
type Filter struct {
	Name   string   `json:"Name"`
	Values []string `json:"Values"`
}

// Vpc is a virtual network with one IPv4 CIDR block.
type Vpc struct {
	VpcID     string `json:"VpcId"`
	CidrBlock string `json:"CidrBlock"`
	State     string `json:"State"` // always "available"
	Tags      []Tag  `json:"Tags,omitempty"`
}

// Subnet is a range of a VPC in one availability zone.
type Subnet struct {
	SubnetID         string `json:"SubnetId"`
	VpcID            string `json:"VpcId"`
	CidrBlock        string `json:"CidrBlock"`
	AvailabilityZone string `json:"AvailabilityZone"`
	// AvailableIPAddressCount counts addresses not reserved and not assigned; a prefix takes 16.
	AvailableIPAddressCount int    `json:"AvailableIpAddressCount"`
	Gateway                 string `json:"Gateway"` // the router's address in the subnet (base+1)
	Tags                    []Tag  `json:"Tags,omitempty"`
}

// InstanceTypeInfo carries the network limits of one instance type.
type InstanceTypeInfo struct {
	InstanceType              string `json:"InstanceType"`
	MaximumNetworkInterfaces  int    `json:"MaximumNetworkInterfaces"`
	Ipv4AddressesPerInterface int    `json:"Ipv4AddressesPerInterface"`
}

// Instance states.
const (
	InstanceStateRunning = "running"
)

// Instance is a virtual machine: a node.
type Instance struct {
	InstanceID       string `json:"InstanceId"`
	InstanceType     string `json:"InstanceType"`
	State            string `json:"State"`
	SubnetID         string `json:"SubnetId"`
	VpcID            string `json:"VpcId"`
	AvailabilityZone string `json:"AvailabilityZone"`
	PrivateIPAddress string `json:"PrivateIpAddress"` // primary IP of the primary interface
	// NetworkInterfaces lists the attached interfaces by device index.
	NetworkInterfaces []NetworkInterface `json:"NetworkInterfaces"`
	// Token authenticates the instance's own calls. Only the admin ever sees it in an answer.
	Token      string    `json:"Token,omitempty"`
	LaunchTime time.Time `json:"LaunchTime"`
	Tags       []Tag     `json:"Tags,omitempty"`
}

// Network interface statuses.
const (
	ENIStatusAvailable = "available"
	ENIStatusAttaching = "attaching"
	ENIStatusInUse     = "in-use"
	ENIStatusDetaching = "detaching"
)

// Attachment statuses.
const (
	AttachmentStatusAttaching = "attaching"
	AttachmentStatusAttached  = "attached"
	AttachmentStatusDetaching = "detaching"
	AttachmentStatusDetached  = "detached"
)

// Attachment ties an interface to an instance at a device index.
type Attachment struct {
	AttachmentID        string `json:"AttachmentId"`
	InstanceID          string `json:"InstanceId"`
	DeviceIndex         int    `json:"DeviceIndex"`
	Status              string `json:"Status"`
	DeleteOnTermination bool   `json:"DeleteOnTermination"`
}

// PrivateIPAddress is one IPv4 address of an interface.
type PrivateIPAddress struct {
	PrivateIPAddress string `json:"PrivateIpAddress"`
	Primary          bool   `json:"Primary"`
}

// Ipv4Prefix is a delegated /28 of an interface.
type Ipv4Prefix struct {
	Ipv4Prefix string `json:"Ipv4Prefix"`
}

// NetworkInterface is an elastic network interface (ENI).
type NetworkInterface struct {
	NetworkInterfaceID string             `json:"NetworkInterfaceId"`
	SubnetID           string             `json:"SubnetId"`
	VpcID              string             `json:"VpcId"`
	AvailabilityZone   string             `json:"AvailabilityZone"`
	Description        string             `json:"Description,omitempty"`
	MacAddress         string             `json:"MacAddress"`
	Status             string             `json:"Status"`
	PrivateIPAddress   string             `json:"PrivateIpAddress"`
	PrivateIPAddresses []PrivateIPAddress `json:"PrivateIpAddresses"`
	Ipv4Prefixes       []Ipv4Prefix       `json:"Ipv4Prefixes,omitempty"`
	SourceDestCheck    bool               `json:"SourceDestCheck"`
	Groups             []string           `json:"Groups,omitempty"`
	Attachment         *Attachment        `json:"Attachment,omitempty"`
	Tags               []Tag              `json:"Tags,omitempty"`
}

// Snapshot is a consistent view of everything at one change sequence (admin only; the fabric and
// the metadata service converge from it).
type Snapshot struct {
	Seq               uint64             `json:"Seq"`
	Vpcs              []Vpc              `json:"Vpcs"`
	Subnets           []Subnet           `json:"Subnets"`
	Instances         []Instance         `json:"Instances"` // with tokens
	NetworkInterfaces []NetworkInterface `json:"NetworkInterfaces"`
	LoadBalancers     []LoadBalancer     `json:"LoadBalancers"`
	Listeners         []Listener         `json:"Listeners"`
	TargetGroups      []TargetGroup      `json:"TargetGroups"`
	// Targets are every registered target of every group, with health and drain deadline.
	Targets []TargetHealthDescription `json:"Targets"`
	// Rules are the application listeners' rules (not the default ones: those are the
	// listeners' DefaultActions); Certificates are without their keys.
	Rules        []Rule        `json:"Rules"`
	Certificates []Certificate `json:"Certificates"`
}
