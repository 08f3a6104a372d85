package awsapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// Finding 2 of the hardening issue, through the EC2 Query front end: an instance's credentials
// create interfaces only in its own VPC, and only up to its quota, answered with EC2's codes.
func TestEC2InstanceConfinedToItsVPC(t *testing.T) {
	w := newWorld(t, servertest.Options{InterfacesPerInstance: 2}, "m5.large", 1)
	ctx := context.Background()
	vpc := must(w.Admin.CreateVpc(ctx, &api.CreateVpcRequest{CidrBlock: "10.1.0.0/16"})).of(t)
	other := must(w.Admin.CreateSubnet(ctx, &api.CreateSubnetRequest{VpcID: vpc.Vpc.VpcID, CidrBlock: "10.1.0.0/24"})).of(t)
	c := w.instanceClient(t, 0)

	_, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(other.Subnet.SubnetID)}, noRetry)
	wantAPIError(t, err, "UnauthorizedOperation", http.StatusForbidden)

	for range 2 {
		must(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(w.subnet.SubnetID)})).of(t)
	}
	_, err = c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(w.subnet.SubnetID)}, noRetry)
	wantAPIError(t, err, "NetworkInterfaceLimitExceeded", http.StatusBadRequest)
}
