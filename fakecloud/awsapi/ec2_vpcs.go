package awsapi

import (
	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/creds"
	"github.com/flatnet/flatnet/fakecloud/awsapi/query"
)

// DescribeVpcs: a node agent reads its VPC's CIDR blocks (what it need not SNAT) from it.

type xmlCidrAssociation struct {
	AssociationID  string `xml:"associationId"`
	CidrBlock      string `xml:"cidrBlock"`
	CidrBlockState struct {
		State string `xml:"state"`
	} `xml:"cidrBlockState"`
}

type xmlVpc struct {
	VpcID                   string                    `xml:"vpcId"`
	OwnerID                 string                    `xml:"ownerId"`
	State                   string                    `xml:"state"`
	CidrBlock               string                    `xml:"cidrBlock"`
	CidrBlockAssociationSet items[xmlCidrAssociation] `xml:"cidrBlockAssociationSet"`
	DhcpOptionsID           string                    `xml:"dhcpOptionsId"`
	InstanceTenancy         string                    `xml:"instanceTenancy"`
	IsDefault               bool                      `xml:"isDefault"`
	Tags                    items[xmlTag]             `xml:"tagSet"`
}

func vpcXML(v *api.Vpc) xmlVpc {
	assoc := xmlCidrAssociation{AssociationID: "vpc-cidr-assoc-" + digits(v.VpcID), CidrBlock: v.CidrBlock}
	assoc.CidrBlockState.State = "associated"
	return xmlVpc{
		VpcID: v.VpcID, OwnerID: creds.AccountID, State: "available", CidrBlock: v.CidrBlock,
		CidrBlockAssociationSet: itemsOf([]xmlCidrAssociation{assoc}), DhcpOptionsID: "default",
		InstanceTenancy: "default", Tags: tagsOf(v.Tags),
	}
}

type describeVpcsXML struct {
	ec2Meta
	Vpcs      items[xmlVpc] `xml:"vpcSet"`
	NextToken string        `xml:"nextToken,omitempty"`
}

func ec2DescribeVpcs(x *exchange, v query.View) (any, error) {
	req := &api.DescribeVpcsRequest{VpcIDs: v.List("VpcId"), Filters: ec2Filters(v)}
	maxResults, token, _ := readPage(v)
	checkMax(x, maxResults, 5, 1000)
	resp, err := call[api.DescribeVpcsResponse](x, api.ActionDescribeVpcs, req)
	if err != nil {
		return nil, err
	}
	page, next := pageOf(resp.Vpcs, func(v *api.Vpc) string { return v.VpcID }, maxResults, token)
	out := &describeVpcsXML{NextToken: next, Vpcs: items[xmlVpc]{Items: []xmlVpc{}}}
	for i := range page {
		out.Vpcs.Items = append(out.Vpcs.Items, vpcXML(&page[i]))
	}
	return out, nil
}
