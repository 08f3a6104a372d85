package awsapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// TestEC2Errors: fakecloud's refusals reach the SDK with EC2's codes and statuses.
func TestEC2Errors(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 1)
	ctx := context.Background()
	c := w.ec2Client(servertest.AWSKey, noRetry)
	inst := w.instances[0]
	primary := inst.NetworkInterfaces[0]
	newENI := func() string {
		out := must(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(w.subnet.SubnetID)})).of(t)
		return aws.ToString(out.NetworkInterface.NetworkInterfaceId)
	}
	attach := func(eni string, index int32) error {
		_, err := c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String(eni), InstanceId: aws.String(inst.InstanceID), DeviceIndex: aws.Int32(index)})
		return err
	}
	second := newENI()
	if err := attach(second, 1); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		call func() error
		code string
	}{
		{"unknown interface", func() error {
			_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String("eni-00000000000000000"), SecondaryPrivateIpAddressCount: aws.Int32(1)})
			return err
		}, "InvalidNetworkInterfaceID.NotFound"},
		{"unknown subnet", func() error {
			_, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String("subnet-00000000000000000")})
			return err
		}, "InvalidSubnetID.NotFound"},
		{"unknown instance", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-00000000000000000"}})
			return err
		}, "InvalidInstanceID.NotFound"},
		{"address slots full", func() error {
			_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(primary.NetworkInterfaceID), SecondaryPrivateIpAddressCount: aws.Int32(10)})
			return err
		}, "PrivateIpAddressLimitExceeded"},
		{"device index taken", func() error { return attach(newENI(), 1) }, "InvalidParameterValue"},
		{"interfaces full", func() error {
			if err := attach(newENI(), 2); err != nil {
				return err
			}
			return attach(newENI(), 3)
		}, "AttachmentLimitExceeded"},
		{"malformed address", func() error {
			_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(second), PrivateIpAddresses: []string{"10.0.0.300"}})
			return err
		}, "InvalidParameterValue"},
		{"address of another interface", func() error {
			_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(second), PrivateIpAddresses: []string{primary.PrivateIPAddress}})
			return err
		}, "InvalidIPAddress.InUse"},
		{"delete attached", func() error {
			_, err := c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(second)})
			return err
		}, "InvalidNetworkInterface.InUse"},
		{"detach primary", func() error {
			_, err := c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(primary.Attachment.AttachmentID)})
			return err
		}, "OperationNotPermitted"},
		{"unknown attachment", func() error {
			_, err := c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String("eni-attach-00000000000000000")})
			return err
		}, "InvalidAttachmentID.NotFound"},
		{"client token reused", func() error {
			in := &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(w.subnet.SubnetID), ClientToken: aws.String("tok")}
			if _, err := c.CreateNetworkInterface(ctx, in); err != nil {
				return err
			}
			in.Description = aws.String("different")
			_, err := c.CreateNetworkInterface(ctx, in)
			return err
		}, "IdempotentParameterMismatch"},
		{"reassignment", func() error {
			_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(second), SecondaryPrivateIpAddressCount: aws.Int32(1), AllowReassignment: aws.Bool(true)})
			return err
		}, "InvalidParameterValue"},
	}
	// In order: the cases share the instance, whose interfaces fill up.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantAPIError(t, tc.call(), tc.code, http.StatusBadRequest)
		})
	}
}

// TestEC2BadInput sends hand-made, correctly signed requests the SDK would never send: each
// answer is EC2's error document with the right code and status.
func TestEC2BadInput(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 1)
	eni := w.instances[0].NetworkInterfaces[0].NetworkInterfaceID
	key := servertest.AWSKey
	const v = "&Version=2016-11-15"
	cases := []struct {
		name, body string
		code       string
		status     int
	}{
		{"unknown parameter", "Action=DescribeSubnets" + v + "&Bogus=1", "UnknownParameter", 400},
		{"unknown structure field", "Action=DescribeSubnets" + v + "&Filter.1.Name=subnet-id&Filter.1.Value.1=x&Filter.1.Bogus=1", "UnknownParameter", 400},
		{"missing parameter", "Action=DeleteNetworkInterface" + v, "MissingParameter", 400},
		{"missing device index", "Action=AttachNetworkInterface" + v + "&NetworkInterfaceId=" + eni + "&InstanceId=i-1", "MissingParameter", 400},
		{"missing filter name", "Action=DescribeSubnets" + v + "&Filter.1.Value.1=x", "MissingParameter", 400},
		{"unknown action", "Action=RunInstances" + v, "InvalidAction", 400},
		{"no action", "Version=2016-11-15", "MissingAction", 400},
		{"no version", "Action=DescribeSubnets", "MissingParameter", 400},
		{"other version", "Action=DescribeSubnets&Version=2014-10-01", "InvalidParameterValue", 400},
		{"parameter twice", "Action=DescribeSubnets" + v + "&SubnetId.1=a&SubnetId.1=b", "MalformedQueryString", 400},
		{"bad escape", "Action=DescribeSubnets" + v + "&X=%zz", "MalformedQueryString", 400},
		{"not an integer", "Action=DescribeSubnets" + v + "&MaxResults=ten", "InvalidParameterValue", 400},
		{"not a boolean", "Action=DetachNetworkInterface" + v + "&AttachmentId=a&Force=yes", "InvalidParameterValue", 400},
		{"list number 0", "Action=DescribeSubnets" + v + "&SubnetId.0=a", "InvalidParameterValue", 400},
		{"two attributes", "Action=ModifyNetworkInterfaceAttribute" + v + "&NetworkInterfaceId=" + eni + "&SourceDestCheck.Value=false&Description.Value=x", "InvalidParameterCombination", 400},
		{"no attribute", "Action=ModifyNetworkInterfaceAttribute" + v + "&NetworkInterfaceId=" + eni, "MissingParameter", 400},
		{"wrong tag resource type", "Action=CreateNetworkInterface" + v + "&SubnetId=s&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=k", "InvalidParameterValue", 400},
		{"explicit secondary at creation", "Action=CreateNetworkInterface" + v + "&SubnetId=s&PrivateIpAddresses.1.PrivateIpAddress=10.0.0.9&PrivateIpAddresses.1.Primary=false", "InvalidParameterValue", 400},
		{"second network card", "Action=AttachNetworkInterface" + v + "&NetworkInterfaceId=" + eni + "&InstanceId=i-1&DeviceIndex=1&NetworkCardIndex=1", "InvalidParameterValue", 400},
		{"efa", "Action=CreateNetworkInterface" + v + "&SubnetId=s&InterfaceType=efa", "InvalidParameterValue", 400},
		{"unsupported instance type filter", "Action=DescribeInstanceTypes" + v + "&Filter.1.Name=hypervisor&Filter.1.Value.1=nitro", "InvalidParameterValue", 400},
		{"dry run", "Action=DescribeSubnets" + v + "&DryRun=true", "DryRunOperation", 412},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w.send(t, &key, "ec2", tc.body, timeZero).ec2Error(t, tc.code, tc.status)
		})
	}
	t.Run("json body", func(t *testing.T) {
		req := signedRequest(t, w, key, "ec2", `{"Action":"DescribeSubnets"}`, "application/json")
		do(t, req).ec2Error(t, api.CodeInvalidRequest, 400)
	})
	t.Run("too big", func(t *testing.T) {
		body := "Action=DescribeSubnets" + v + "&Description=" + strings.Repeat("x", 1<<20)
		w.send(t, &key, "ec2", body, timeZero).ec2Error(t, api.CodeInvalidRequest, http.StatusRequestEntityTooLarge)
	})
	t.Run("the JSON API is unchanged", func(t *testing.T) {
		if _, err := w.Admin.DescribeSubnets(context.Background(), &api.DescribeSubnetsRequest{}); err != nil {
			t.Fatal(err)
		}
		r := do(t, mustRequest(t, http.MethodGet, w.URL+"/", ""))
		if r.status != http.StatusNotFound || !strings.Contains(r.body, `"InvalidAction"`) {
			t.Fatalf("GET / = %d %s; want the JSON API's 404", r.status, r.body)
		}
	})
}
