package awsapi

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"sort"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/query"
)

// ec2Version is the EC2 API version served (the one every current SDK speaks).
const ec2Version = "2016-11-15"

// Codes of the AWS front end itself.
const (
	codeMissingAction    = "MissingAction"
	codeUnknownParameter = "UnknownParameter"
	codeDryRunOperation  = "DryRunOperation"
)

func ec2Service() *service {
	return &service{
		name: "ec2", title: "EC2", version: ec2Version, signingName: "ec2", dryRun: true,
		namespace: "http://ec2.amazonaws.com/doc/" + ec2Version + "/",
		ops: map[string]op{
			"DescribeInstances":               {api.ActionDescribeInstances, ec2DescribeInstances},
			"DescribeInstanceTypes":           {api.ActionDescribeInstanceTypes, ec2DescribeInstanceTypes},
			"DescribeNetworkInterfaces":       {api.ActionDescribeNetworkInterfaces, ec2DescribeNetworkInterfaces},
			"DescribeSubnets":                 {api.ActionDescribeSubnets, ec2DescribeSubnets},
			"DescribeVpcs":                    {api.ActionDescribeVpcs, ec2DescribeVpcs},
			"CreateNetworkInterface":          {api.ActionCreateNetworkInterface, ec2CreateNetworkInterface},
			"AttachNetworkInterface":          {api.ActionAttachNetworkInterface, ec2AttachNetworkInterface},
			"DetachNetworkInterface":          {api.ActionDetachNetworkInterface, ec2DetachNetworkInterface},
			"DeleteNetworkInterface":          {api.ActionDeleteNetworkInterface, ec2DeleteNetworkInterface},
			"ModifyNetworkInterfaceAttribute": {api.ActionModifyNetworkInterfaceAttribute, ec2ModifyNetworkInterfaceAttribute},
			"AssignPrivateIpAddresses":        {api.ActionAssignPrivateIPAddresses, ec2AssignPrivateIPAddresses},
			"UnassignPrivateIpAddresses":      {api.ActionUnassignPrivateIPAddresses, ec2UnassignPrivateIPAddresses},
			"CreateTags":                      {api.ActionCreateTags, ec2CreateTags},
			"DeleteTags":                      {api.ActionDeleteTags, ec2DeleteTags},
		},
		authCode: ec2AuthCode, code: func(c string) string { return c }, status: ec2Status,
		writeOK: ec2WriteOK, writeError: ec2WriteError,
	}
}

func ec2Status(code string) int {
	switch code {
	case api.CodeRequestLimitExceeded, api.CodeServiceUnavailable:
		return http.StatusServiceUnavailable
	case api.CodeInternalError:
		return http.StatusInternalServerError
	case api.CodeAuthFailure, codeMissingAuthenticationToken:
		return http.StatusUnauthorized
	case api.CodeUnauthorizedOperation:
		return http.StatusForbidden
	case codeDryRunOperation:
		return http.StatusPreconditionFailed
	}
	return http.StatusBadRequest
}

func ec2WriteOK(enc *xml.Encoder, action, requestID string, body any) error {
	b, ok := body.(ec2Body)
	if !ok {
		return fmt.Errorf("answer %T is not an EC2 answer", body)
	}
	b.setRequestID(requestID)
	return enc.EncodeElement(b, xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{xmlns("http://ec2.amazonaws.com/doc/" + ec2Version + "/")}})
}

type ec2ErrorXML struct {
	XMLName   xml.Name      `xml:"Response"`
	Errors    []ec2ErrorMsg `xml:"Errors>Error"`
	RequestID string        `xml:"RequestID"`
}

type ec2ErrorMsg struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func ec2WriteError(enc *xml.Encoder, e *api.Error, _ int, requestID string) error {
	return enc.Encode(ec2ErrorXML{Errors: []ec2ErrorMsg{{Code: e.Code, Message: e.Message}}, RequestID: requestID})
}

// ec2Filters reads Filter.N.Name and Filter.N.Value.M.
func ec2Filters(v query.View) []api.Filter {
	var out []api.Filter
	for _, f := range v.Structs("Filter") {
		out = append(out, api.Filter{Name: f.Required("Name"), Values: f.List("Value")})
	}
	return out
}

// ec2Tags reads a list of Tag.N.Key / Tag.N.Value under v.
func ec2Tags(v query.View) []api.Tag {
	var out []api.Tag
	for _, t := range v.Structs("Tag") {
		val, _ := t.String("Value")
		out = append(out, api.Tag{Key: t.Required("Key"), Value: val})
	}
	return out
}

// ec2TagSpecifications reads TagSpecification.N for a resource type, the only one a create
// makes.
func ec2TagSpecifications(x *exchange, v query.View, resourceType string) []api.Tag {
	var out []api.Tag
	for _, ts := range v.Structs("TagSpecification") {
		if rt := ts.Required("ResourceType"); rt != "" && rt != resourceType {
			x.params.Fail(api.CodeInvalidParameterValue, "%s is %q; this action creates a %s", ts.Name("ResourceType"), truncate(rt, 40), resourceType)
		}
		out = append(out, ec2Tags(ts)...)
	}
	return out
}

// readPage reads MaxResults and NextToken.
func readPage(v query.View) (maxResults int, token string, given bool) {
	maxResults, given = v.Int("MaxResults")
	token, _ = v.String("NextToken")
	return maxResults, token, given
}

// checkMax refuses a page size outside lo..hi (0 is no paging).
func checkMax(x *exchange, maxResults, lo, hi int) {
	if maxResults != 0 && (maxResults < lo || maxResults > hi) {
		x.params.Fail(api.CodeInvalidParameterValue, "MaxResults must be between %d and %d (got %d)", lo, hi, maxResults)
	}
}

// pageOf cuts items, sorted by id, into the page after token (the last ID of the previous page),
// as fakecloud's store does for the describes it pages itself.
func pageOf[T any](items []T, id func(*T) string, maxResults int, token string) ([]T, string) {
	sort.Slice(items, func(i, j int) bool { return id(&items[i]) < id(&items[j]) })
	if token != "" {
		i := sort.Search(len(items), func(i int) bool { return id(&items[i]) > token })
		items = items[i:]
	}
	if maxResults == 0 || len(items) <= maxResults {
		return items, ""
	}
	return items[:maxResults], id(&items[maxResults-1])
}

func ec2DescribeInstances(x *exchange, v query.View) (any, error) {
	req := &api.DescribeInstancesRequest{InstanceIDs: v.List("InstanceId"), Filters: ec2Filters(v)}
	var given bool
	req.MaxResults, req.NextToken, given = readPage(v)
	if given && len(req.InstanceIDs) > 0 {
		x.params.Fail(api.CodeInvalidParameterCombination, "the parameter InstanceId cannot be used with the parameter MaxResults")
	}
	resp, err := call[api.DescribeInstancesResponse](x, api.ActionDescribeInstances, req)
	if err != nil {
		return nil, err
	}
	out := &describeInstancesXML{NextToken: resp.NextToken}
	for i := range resp.Instances {
		out.Reservations.Items = append(out.Reservations.Items, reservationXML(&resp.Instances[i]))
	}
	return out, nil
}

func ec2DescribeInstanceTypes(x *exchange, v query.View) (any, error) {
	req := &api.DescribeInstanceTypesRequest{InstanceTypes: v.List("InstanceType")}
	filters := ec2Filters(v)
	for _, f := range filters {
		if f.Name != "instance-type" {
			x.params.Fail(api.CodeInvalidParameterValue, "the filter %q is not supported here: fakecloud filters instance types by instance-type only", truncate(f.Name, 60))
		}
	}
	maxResults, token, _ := readPage(v)
	checkMax(x, maxResults, 5, 100)
	resp, err := call[api.DescribeInstanceTypesResponse](x, api.ActionDescribeInstanceTypes, req)
	if err != nil {
		return nil, err
	}
	var kept []api.InstanceTypeInfo
	for _, t := range resp.InstanceTypes {
		if matchAll(filters, t.InstanceType) {
			kept = append(kept, t)
		}
	}
	page, next := pageOf(kept, func(t *api.InstanceTypeInfo) string { return t.InstanceType }, maxResults, token)
	out := &describeInstanceTypesXML{NextToken: next}
	for i := range page {
		out.InstanceTypes.Items = append(out.InstanceTypes.Items, instanceTypeXML(&page[i]))
	}
	return out, nil
}

// matchAll reports whether value is one of the values of every filter.
func matchAll(filters []api.Filter, value string) bool {
	for _, f := range filters {
		found := false
		for _, v := range f.Values {
			found = found || v == value
		}
		if !found {
			return false
		}
	}
	return true
}

func ec2DescribeNetworkInterfaces(x *exchange, v query.View) (any, error) {
	req := &api.DescribeNetworkInterfacesRequest{NetworkInterfaceIDs: v.List("NetworkInterfaceId"), Filters: ec2Filters(v)}
	var given bool
	req.MaxResults, req.NextToken, given = readPage(v)
	if given && len(req.NetworkInterfaceIDs) > 0 {
		x.params.Fail(api.CodeInvalidParameterCombination, "the parameter NetworkInterfaceId cannot be used with the parameter MaxResults")
	}
	resp, err := call[api.DescribeNetworkInterfacesResponse](x, api.ActionDescribeNetworkInterfaces, req)
	if err != nil {
		return nil, err
	}
	out := &describeNetworkInterfacesXML{NextToken: resp.NextToken}
	for i := range resp.NetworkInterfaces {
		out.NetworkInterfaces.Items = append(out.NetworkInterfaces.Items, eniXML(&resp.NetworkInterfaces[i], false))
	}
	return out, nil
}

func ec2DescribeSubnets(x *exchange, v query.View) (any, error) {
	req := &api.DescribeSubnetsRequest{SubnetIDs: v.List("SubnetId"), Filters: ec2Filters(v)}
	maxResults, token, _ := readPage(v)
	checkMax(x, maxResults, 5, 1000)
	resp, err := call[api.DescribeSubnetsResponse](x, api.ActionDescribeSubnets, req)
	if err != nil {
		return nil, err
	}
	page, next := pageOf(resp.Subnets, func(s *api.Subnet) string { return s.SubnetID }, maxResults, token)
	out := &describeSubnetsXML{NextToken: next}
	for i := range page {
		out.Subnets.Items = append(out.Subnets.Items, subnetXML(&page[i], x.region))
	}
	return out, nil
}
