package awsapi

import (
	"github.com/flatnet/flatnet/fakecloud/api"
)

// ELBv2's XML answers: member names as in the API model, lists as <member>s.

// members is an awsquery list: <Xs><member>...</member></Xs>.
type members[T any] struct {
	Items []T `xml:"member"`
}

type elbTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type elbState struct {
	Code   string `xml:"Code"`
	Reason string `xml:"Reason,omitempty"`
}

type elbAddress struct {
	IPAddress          string `xml:"IpAddress,omitempty"`
	PrivateIPv4Address string `xml:"PrivateIPv4Address,omitempty"`
}

type elbZone struct {
	ZoneName              string              `xml:"ZoneName"`
	SubnetID              string              `xml:"SubnetId"`
	LoadBalancerAddresses members[elbAddress] `xml:"LoadBalancerAddresses"`
}

type elbLoadBalancer struct {
	LoadBalancerArn       string           `xml:"LoadBalancerArn"`
	DNSName               string           `xml:"DNSName"`
	CanonicalHostedZoneID string           `xml:"CanonicalHostedZoneId"`
	CreatedTime           string           `xml:"CreatedTime"`
	LoadBalancerName      string           `xml:"LoadBalancerName"`
	Scheme                string           `xml:"Scheme"`
	VpcID                 string           `xml:"VpcId"`
	State                 elbState         `xml:"State"`
	Type                  string           `xml:"Type"`
	AvailabilityZones     members[elbZone] `xml:"AvailabilityZones"`
	IPAddressType         string           `xml:"IpAddressType"`
}

// hostedZoneID stands for the Route 53 zone of a load balancer's DNS name; fakecloud has no DNS.
const hostedZoneID = "ZFAKECLOUDELB"

func (x *exchange) loadBalancerXML(lb *api.LoadBalancer) elbLoadBalancer {
	addr := elbAddress{PrivateIPv4Address: lb.PrivateIPAddress, IPAddress: lb.PublicIPAddress}
	if lb.Scheme == api.SchemeInternal {
		addr.IPAddress = ""
	}
	return elbLoadBalancer{
		LoadBalancerArn:       x.loadBalancerARN(lb.Type, lb.LoadBalancerName, lb.LoadBalancerID),
		DNSName:               lb.LoadBalancerName + "-" + digits(lb.LoadBalancerID) + ".elb." + x.region + ".amazonaws.com",
		CanonicalHostedZoneID: hostedZoneID, CreatedTime: lb.CreatedTime.UTC().Format(ec2Time),
		LoadBalancerName: lb.LoadBalancerName, Scheme: lb.Scheme, VpcID: lb.VpcID,
		State: elbState{Code: lb.State, Reason: lb.StateReason}, Type: lb.Type, IPAddressType: "ipv4",
		AvailabilityZones: members[elbZone]{Items: []elbZone{{
			ZoneName: lb.AvailabilityZone, SubnetID: lb.SubnetID,
			LoadBalancerAddresses: members[elbAddress]{Items: []elbAddress{addr}},
		}}},
	}
}

type elbMatcher struct {
	HTTPCode string `xml:"HttpCode,omitempty"`
	GrpcCode string `xml:"GrpcCode,omitempty"`
}

type elbTargetGroup struct {
	TargetGroupArn             string          `xml:"TargetGroupArn"`
	TargetGroupName            string          `xml:"TargetGroupName"`
	Protocol                   string          `xml:"Protocol"`
	ProtocolVersion            string          `xml:"ProtocolVersion,omitempty"`
	Port                       int             `xml:"Port"`
	VpcID                      string          `xml:"VpcId"`
	HealthCheckProtocol        string          `xml:"HealthCheckProtocol"`
	HealthCheckPort            string          `xml:"HealthCheckPort"`
	HealthCheckEnabled         bool            `xml:"HealthCheckEnabled"`
	HealthCheckIntervalSeconds int             `xml:"HealthCheckIntervalSeconds"`
	HealthCheckTimeoutSeconds  int             `xml:"HealthCheckTimeoutSeconds"`
	HealthyThresholdCount      int             `xml:"HealthyThresholdCount"`
	UnhealthyThresholdCount    int             `xml:"UnhealthyThresholdCount"`
	HealthCheckPath            string          `xml:"HealthCheckPath,omitempty"`
	Matcher                    *elbMatcher     `xml:"Matcher,omitempty"`
	LoadBalancerArns           members[string] `xml:"LoadBalancerArns"`
	TargetType                 string          `xml:"TargetType"`
	IPAddressType              string          `xml:"IpAddressType"`
}

func (x *exchange) targetGroupXML(tg *api.TargetGroup, lbNames map[string]string) elbTargetGroup {
	hc := tg.HealthCheck
	out := elbTargetGroup{
		TargetGroupArn: x.targetGroupARN(tg.TargetGroupName, tg.TargetGroupID), TargetGroupName: tg.TargetGroupName,
		Protocol: tg.Protocol, ProtocolVersion: tg.ProtocolVersion, Port: tg.Port, VpcID: tg.VpcID, TargetType: tg.TargetType, IPAddressType: "ipv4",
		HealthCheckProtocol: hc.Protocol, HealthCheckPort: hc.Port, HealthCheckEnabled: true,
		HealthCheckIntervalSeconds: hc.IntervalSeconds, HealthCheckTimeoutSeconds: hc.TimeoutSeconds,
		HealthyThresholdCount: hc.HealthyThresholdCount, UnhealthyThresholdCount: hc.UnhealthyThresholdCount,
		LoadBalancerArns: members[string]{Items: []string{}},
	}
	switch {
	case hc.Protocol != api.ProtocolHTTP && hc.Protocol != api.ProtocolHTTPS:
	case tg.ProtocolVersion == api.ProtocolVersionGRPC:
		out.HealthCheckPath, out.Matcher = hc.Path, &elbMatcher{GrpcCode: hc.Matcher}
	default:
		out.HealthCheckPath, out.Matcher = hc.Path, &elbMatcher{HTTPCode: hc.Matcher}
	}
	for _, id := range tg.LoadBalancerIDs {
		out.LoadBalancerArns.Items = append(out.LoadBalancerArns.Items, x.loadBalancerARN(tg.LoadBalancerType, nameOr(lbNames, id), id))
	}
	return out
}

// nameOr is a load balancer's or target group's name, or its ID when it is gone (its ARN then
// names nothing).
func nameOr(names map[string]string, id string) string {
	if n, ok := names[id]; ok {
		return n
	}
	return id
}

type elbTargetDescription struct {
	ID   string `xml:"Id"`
	Port int    `xml:"Port"`
}

type elbTargetHealth struct {
	State       string `xml:"State"`
	Reason      string `xml:"Reason,omitempty"`
	Description string `xml:"Description,omitempty"`
}

type elbTargetHealthDescription struct {
	Target          elbTargetDescription `xml:"Target"`
	HealthCheckPort string               `xml:"HealthCheckPort,omitempty"`
	TargetHealth    elbTargetHealth      `xml:"TargetHealth"`
}

type elbTagDescription struct {
	ResourceArn string          `xml:"ResourceArn"`
	Tags        members[elbTag] `xml:"Tags"`
}

func elbTagsXML(ts []api.Tag) members[elbTag] {
	out := members[elbTag]{Items: []elbTag{}}
	for _, t := range ts {
		out.Items = append(out.Items, elbTag{Key: t.Key, Value: t.Value})
	}
	return out
}

// The results (the part inside <ActionResult>).

type loadBalancersResult struct {
	LoadBalancers members[elbLoadBalancer] `xml:"LoadBalancers"`
	NextMarker    string                   `xml:"NextMarker,omitempty"`
}

type targetGroupsResult struct {
	TargetGroups members[elbTargetGroup] `xml:"TargetGroups"`
	NextMarker   string                  `xml:"NextMarker,omitempty"`
}

type listenersResult struct {
	Listeners  members[elbListener] `xml:"Listeners"`
	NextMarker string               `xml:"NextMarker,omitempty"`
}

type targetHealthResult struct {
	TargetHealthDescriptions members[elbTargetHealthDescription] `xml:"TargetHealthDescriptions"`
}

type tagsResult struct {
	TagDescriptions members[elbTagDescription] `xml:"TagDescriptions"`
}

// emptyResult answers the actions whose result has no fields.
type emptyResult struct{}
