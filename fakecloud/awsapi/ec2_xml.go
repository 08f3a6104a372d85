package awsapi

import (
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/creds"
)

// EC2's XML answers. Element names are those of the EC2 API model (lowerCamel, lists as a
// ...Set element of <item>s); every list is written even when empty, as EC2 does.

// items is an EC2 list: <xxxSet><item>...</item></xxxSet>.
type items[T any] struct {
	Items []T `xml:"item"`
}

func itemsOf[T any](xs []T) items[T] { return items[T]{Items: xs} }

// ec2Meta starts every EC2 answer.
type ec2Meta struct {
	RequestID string `xml:"requestId"`
}

func (m *ec2Meta) setRequestID(id string) { m.RequestID = id }

// ec2Body is an EC2 answer: a struct embedding ec2Meta.
type ec2Body interface{ setRequestID(string) }

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlGroup struct {
	GroupID string `xml:"groupId"`
}

type xmlPrivateIP struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
	Primary          bool   `xml:"primary"`
}

type xmlPrefix struct {
	Ipv4Prefix string `xml:"ipv4Prefix"`
}

type xmlAttachment struct {
	AttachmentID        string `xml:"attachmentId"`
	InstanceID          string `xml:"instanceId,omitempty"`
	InstanceOwnerID     string `xml:"instanceOwnerId,omitempty"`
	DeviceIndex         int    `xml:"deviceIndex"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
	Status              string `xml:"status"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xmlENI struct {
	NetworkInterfaceID string              `xml:"networkInterfaceId"`
	SubnetID           string              `xml:"subnetId"`
	VpcID              string              `xml:"vpcId"`
	AvailabilityZone   string              `xml:"availabilityZone,omitempty"`
	Description        string              `xml:"description"`
	OwnerID            string              `xml:"ownerId"`
	RequesterManaged   bool                `xml:"requesterManaged"`
	Status             string              `xml:"status"`
	MacAddress         string              `xml:"macAddress"`
	PrivateIPAddress   string              `xml:"privateIpAddress"`
	SourceDestCheck    bool                `xml:"sourceDestCheck"`
	InterfaceType      string              `xml:"interfaceType"`
	Groups             items[xmlGroup]     `xml:"groupSet"`
	Attachment         *xmlAttachment      `xml:"attachment,omitempty"`
	Tags               *items[xmlTag]      `xml:"tagSet,omitempty"`
	PrivateIPAddresses items[xmlPrivateIP] `xml:"privateIpAddressesSet"`
	Ipv4Prefixes       items[xmlPrefix]    `xml:"ipv4PrefixSet"`
	Ipv6Addresses      items[struct{}]     `xml:"ipv6AddressesSet"`
	Ipv6Prefixes       items[struct{}]     `xml:"ipv6PrefixSet"`
}

func tagsOf(ts []api.Tag) items[xmlTag] {
	out := make([]xmlTag, len(ts))
	for i, t := range ts {
		out[i] = xmlTag{Key: t.Key, Value: t.Value}
	}
	return itemsOf(out)
}

func groupsOf(ids []string) items[xmlGroup] {
	out := make([]xmlGroup, len(ids))
	for i, id := range ids {
		out[i] = xmlGroup{GroupID: id}
	}
	return itemsOf(out)
}

// eniXML renders an interface. Inside an instance EC2 shows neither its zone, nor its tags,
// nor the attachment's instance.
func eniXML(n *api.NetworkInterface, inInstance bool) xmlENI {
	x := xmlENI{
		NetworkInterfaceID: n.NetworkInterfaceID, SubnetID: n.SubnetID, VpcID: n.VpcID,
		Description: n.Description, OwnerID: creds.AccountID, Status: n.Status,
		MacAddress: strings.ToLower(n.MacAddress), PrivateIPAddress: n.PrivateIPAddress,
		SourceDestCheck: n.SourceDestCheck, InterfaceType: "interface", Groups: groupsOf(n.Groups),
	}
	if !inInstance {
		x.AvailabilityZone = n.AvailabilityZone
		tags := tagsOf(n.Tags)
		x.Tags = &tags
	}
	for _, a := range n.PrivateIPAddresses {
		x.PrivateIPAddresses.Items = append(x.PrivateIPAddresses.Items, xmlPrivateIP{PrivateIPAddress: a.PrivateIPAddress, Primary: a.Primary})
	}
	for _, p := range n.Ipv4Prefixes {
		x.Ipv4Prefixes.Items = append(x.Ipv4Prefixes.Items, xmlPrefix{Ipv4Prefix: p.Ipv4Prefix})
	}
	if a := n.Attachment; a != nil {
		x.Attachment = &xmlAttachment{
			AttachmentID: a.AttachmentID, DeviceIndex: a.DeviceIndex, Status: a.Status,
			DeleteOnTermination: a.DeleteOnTermination,
		}
		if !inInstance {
			x.Attachment.InstanceID, x.Attachment.InstanceOwnerID = a.InstanceID, creds.AccountID
		}
	}
	return x
}

type xmlInstanceState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xmlPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	Tenancy          string `xml:"tenancy"`
}

type xmlInstance struct {
	InstanceID         string           `xml:"instanceId"`
	State              xmlInstanceState `xml:"instanceState"`
	InstanceType       string           `xml:"instanceType"`
	LaunchTime         string           `xml:"launchTime"`
	Placement          xmlPlacement     `xml:"placement"`
	SubnetID           string           `xml:"subnetId"`
	VpcID              string           `xml:"vpcId"`
	PrivateIPAddress   string           `xml:"privateIpAddress"`
	SourceDestCheck    bool             `xml:"sourceDestCheck"`
	Groups             items[xmlGroup]  `xml:"groupSet"`
	Architecture       string           `xml:"architecture"`
	RootDeviceType     string           `xml:"rootDeviceType"`
	VirtualizationType string           `xml:"virtualizationType"`
	Hypervisor         string           `xml:"hypervisor"`
	NetworkInterfaces  items[xmlENI]    `xml:"networkInterfaceSet"`
	Tags               items[xmlTag]    `xml:"tagSet"`
}

type xmlReservation struct {
	ReservationID string             `xml:"reservationId"`
	OwnerID       string             `xml:"ownerId"`
	Groups        items[xmlGroup]    `xml:"groupSet"`
	Instances     items[xmlInstance] `xml:"instancesSet"`
}

// ec2Time is EC2's timestamp format.
const ec2Time = "2006-01-02T15:04:05.000Z"

// instanceStateRunning is EC2's code of the running state.
const instanceStateRunning = 16

// reservationXML renders an instance in a reservation of its own (fakecloud has no reservations;
// EC2 groups the instances of one launch).
func reservationXML(in *api.Instance) xmlReservation {
	x := xmlInstance{
		InstanceID: in.InstanceID, State: xmlInstanceState{Code: instanceStateRunning, Name: in.State},
		InstanceType: in.InstanceType, LaunchTime: in.LaunchTime.UTC().Format(ec2Time),
		Placement: xmlPlacement{AvailabilityZone: in.AvailabilityZone, Tenancy: "default"},
		SubnetID:  in.SubnetID, VpcID: in.VpcID, PrivateIPAddress: in.PrivateIPAddress,
		Architecture: "x86_64", RootDeviceType: "ebs", VirtualizationType: "hvm", Hypervisor: "xen",
		Tags: tagsOf(in.Tags), Groups: groupsOf(nil),
	}
	for i := range in.NetworkInterfaces {
		n := &in.NetworkInterfaces[i]
		if n.Attachment != nil && n.Attachment.DeviceIndex == 0 {
			x.SourceDestCheck, x.Groups = n.SourceDestCheck, groupsOf(n.Groups)
		}
		x.NetworkInterfaces.Items = append(x.NetworkInterfaces.Items, eniXML(n, true))
	}
	return xmlReservation{
		ReservationID: "r-" + strings.TrimPrefix(in.InstanceID, "i-"), OwnerID: creds.AccountID,
		Groups: groupsOf(nil), Instances: itemsOf([]xmlInstance{x}),
	}
}

type xmlNetworkCard struct {
	NetworkCardIndex         int `xml:"networkCardIndex"`
	MaximumNetworkInterfaces int `xml:"maximumNetworkInterfaces"`
}

type xmlNetworkInfo struct {
	MaximumNetworkInterfaces  int                   `xml:"maximumNetworkInterfaces"`
	MaximumNetworkCards       int                   `xml:"maximumNetworkCards"`
	DefaultNetworkCardIndex   int                   `xml:"defaultNetworkCardIndex"`
	NetworkCards              items[xmlNetworkCard] `xml:"networkCards"`
	Ipv4AddressesPerInterface int                   `xml:"ipv4AddressesPerInterface"`
	Ipv6Supported             bool                  `xml:"ipv6Supported"`
	EnaSupport                string                `xml:"enaSupport"`
	EfaSupported              bool                  `xml:"efaSupported"`
}

type xmlInstanceType struct {
	InstanceType      string         `xml:"instanceType"`
	CurrentGeneration bool           `xml:"currentGeneration"`
	BareMetal         bool           `xml:"bareMetal"`
	Hypervisor        string         `xml:"hypervisor"`
	NetworkInfo       xmlNetworkInfo `xml:"networkInfo"`
}

// instanceTypeXML renders an instance type's network limits: one network card, as on the
// types fakecloud offers; IPv6 is not emulated.
func instanceTypeXML(t *api.InstanceTypeInfo) xmlInstanceType {
	return xmlInstanceType{
		InstanceType: t.InstanceType, CurrentGeneration: true, Hypervisor: "nitro",
		NetworkInfo: xmlNetworkInfo{
			MaximumNetworkInterfaces: t.MaximumNetworkInterfaces, MaximumNetworkCards: 1,
			NetworkCards:              itemsOf([]xmlNetworkCard{{NetworkCardIndex: 0, MaximumNetworkInterfaces: t.MaximumNetworkInterfaces}}),
			Ipv4AddressesPerInterface: t.Ipv4AddressesPerInterface, EnaSupport: "required",
		},
	}
}

type xmlSubnet struct {
	SubnetID                    string          `xml:"subnetId"`
	SubnetArn                   string          `xml:"subnetArn"`
	State                       string          `xml:"state"`
	VpcID                       string          `xml:"vpcId"`
	OwnerID                     string          `xml:"ownerId"`
	CidrBlock                   string          `xml:"cidrBlock"`
	AvailableIPAddressCount     int             `xml:"availableIpAddressCount"`
	AvailabilityZone            string          `xml:"availabilityZone"`
	DefaultForAz                bool            `xml:"defaultForAz"`
	MapPublicIPOnLaunch         bool            `xml:"mapPublicIpOnLaunch"`
	AssignIpv6AddressOnCreation bool            `xml:"assignIpv6AddressOnCreation"`
	Ipv6CidrBlockAssociations   items[struct{}] `xml:"ipv6CidrBlockAssociationSet"`
	Tags                        items[xmlTag]   `xml:"tagSet"`
}

func subnetXML(s *api.Subnet, region string) xmlSubnet {
	return xmlSubnet{
		SubnetID: s.SubnetID, SubnetArn: "arn:aws:ec2:" + region + ":" + creds.AccountID + ":subnet/" + s.SubnetID,
		State: "available", VpcID: s.VpcID, OwnerID: creds.AccountID, CidrBlock: s.CidrBlock,
		AvailableIPAddressCount: s.AvailableIPAddressCount, AvailabilityZone: s.AvailabilityZone,
		Tags: tagsOf(s.Tags),
	}
}

// The answers.

type describeInstancesXML struct {
	ec2Meta
	Reservations items[xmlReservation] `xml:"reservationSet"`
	NextToken    string                `xml:"nextToken,omitempty"`
}

type describeInstanceTypesXML struct {
	ec2Meta
	InstanceTypes items[xmlInstanceType] `xml:"instanceTypeSet"`
	NextToken     string                 `xml:"nextToken,omitempty"`
}

type describeNetworkInterfacesXML struct {
	ec2Meta
	NetworkInterfaces items[xmlENI] `xml:"networkInterfaceSet"`
	NextToken         string        `xml:"nextToken,omitempty"`
}

type describeSubnetsXML struct {
	ec2Meta
	Subnets   items[xmlSubnet] `xml:"subnetSet"`
	NextToken string           `xml:"nextToken,omitempty"`
}

type createNetworkInterfaceXML struct {
	ec2Meta
	NetworkInterface xmlENI `xml:"networkInterface"`
	ClientToken      string `xml:"clientToken,omitempty"`
}

type attachNetworkInterfaceXML struct {
	ec2Meta
	AttachmentID     string `xml:"attachmentId"`
	NetworkCardIndex int    `xml:"networkCardIndex"`
}

type assignedIP struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
}

type assignPrivateIPAddressesXML struct {
	ec2Meta
	NetworkInterfaceID         string            `xml:"networkInterfaceId"`
	AssignedPrivateIPAddresses items[assignedIP] `xml:"assignedPrivateIpAddressesSet"`
	AssignedIpv4Prefixes       items[xmlPrefix]  `xml:"assignedIpv4PrefixSet"`
}

// returnXML answers the actions that only say they succeeded.
type returnXML struct {
	ec2Meta
	Return bool `xml:"return"`
}

func succeeded() *returnXML { return &returnXML{Return: true} }
