package awsapi_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

func TestEC2Authentication(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 3)
	ctx := context.Background()
	describe := func(k server.AWSKey) error {
		_, err := w.ec2Client(k, noRetry).DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
		return err
	}
	admin := servertest.AWSKey
	inst := servertest.InstanceAWSKey(t, w.instances[0])
	with := func(k server.AWSKey, edit func(*server.AWSKey)) server.AWSKey { edit(&k); return k }

	if err := describe(admin); err != nil {
		t.Fatalf("admin key: %v", err)
	}
	if err := describe(inst); err != nil {
		t.Fatalf("instance credentials: %v", err)
	}
	refused := []struct {
		name string
		key  server.AWSKey
	}{
		{"wrong secret", with(admin, func(k *server.AWSKey) { k.SecretAccessKey += "x" })},
		{"unknown key", with(admin, func(k *server.AWSKey) { k.AccessKeyID = "AKIAUNKNOWNUNKNOWN00" })},
		{"admin key with a session token", with(admin, func(k *server.AWSKey) { k.SessionToken = "t" })},
		{"instance secret wrong", with(inst, func(k *server.AWSKey) { k.SecretAccessKey = admin.SecretAccessKey })},
		{"instance session token missing", with(inst, func(k *server.AWSKey) { k.SessionToken = "" })},
		{"instance session token another's", with(inst, func(k *server.AWSKey) { k.SessionToken = servertest.InstanceAWSKey(t, w.instances[1]).SessionToken })},
		{"instance key with forged check bits", with(inst, func(k *server.AWSKey) {
			k.AccessKeyID = k.AccessKeyID[:len(k.AccessKeyID)-1] + map[bool]string{true: "B", false: "A"}[k.AccessKeyID[len(k.AccessKeyID)-1] == 'A']
		})},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) { wantAPIError(t, describe(tc.key), api.CodeAuthFailure, http.StatusUnauthorized) })
	}

	t.Run("terminated instance", func(t *testing.T) {
		gone := servertest.InstanceAWSKey(t, w.instances[2])
		if _, err := w.Admin.TerminateInstances(ctx, &api.TerminateInstancesRequest{InstanceIDs: []string{w.instances[2].InstanceID}}); err != nil {
			t.Fatal(err)
		}
		wantAPIError(t, describe(gone), api.CodeAuthFailure, http.StatusUnauthorized)
	})
	t.Run("unsigned", func(t *testing.T) {
		w.send(t, nil, "", "Action=DescribeSubnets&Version=2016-11-15", timeZero).ec2Error(t, "MissingAuthenticationToken", http.StatusUnauthorized)
	})
	t.Run("malformed signature", func(t *testing.T) {
		req := mustRequest(t, http.MethodPost, w.URL+"/", "Action=DescribeSubnets&Version=2016-11-15")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIA/x")
		do(t, req).ec2Error(t, "IncompleteSignature", http.StatusBadRequest)
	})
	t.Run("clock skew", func(t *testing.T) {
		w.send(t, &admin, "ec2", "Action=DescribeSubnets&Version=2016-11-15", time.Now().Add(-20*time.Minute)).ec2Error(t, "RequestExpired", http.StatusBadRequest)
		w.send(t, &admin, "ec2", "Action=DescribeSubnets&Version=2016-11-15", time.Now().Add(20*time.Minute)).ec2Error(t, "RequestExpired", http.StatusBadRequest)
		if r := w.send(t, &admin, "ec2", "Action=DescribeSubnets&Version=2016-11-15", time.Now().Add(-10*time.Minute)); r.status != http.StatusOK {
			t.Fatalf("10 minutes of skew: %d %s; want it accepted (the limit is 15)", r.status, r.body)
		}
	})
	t.Run("signed for another service", func(t *testing.T) {
		w.send(t, &admin, "elasticloadbalancing", "Action=DescribeSubnets&Version=2016-11-15", timeZero).ec2Error(t, api.CodeAuthFailure, http.StatusUnauthorized)
	})
	t.Run("presigned", func(t *testing.T) {
		q := url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}}
		if r := w.presign(t, admin, q, time.Minute, time.Now()); r.status != http.StatusOK {
			t.Fatalf("presigned: %d %s", r.status, r.body)
		}
		q = url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}}
		if r := w.presign(t, inst, q, time.Minute, time.Now()); r.status != http.StatusOK {
			t.Fatalf("presigned with a session token: %d %s", r.status, r.body)
		}
		q = url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}}
		w.presign(t, admin, q, time.Minute, time.Now().Add(-2*time.Minute)).ec2Error(t, "RequestExpired", http.StatusBadRequest)
	})
}

// TestEC2InstanceScope: an instance's credentials reach its own interfaces only, as its
// fakecloud token does; another instance's interface answers UnauthorizedOperation.
func TestEC2InstanceScope(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 2)
	ctx := context.Background()
	a, b := w.instanceClient(t, 0), w.instanceClient(t, 1)
	mine := w.instances[0].NetworkInterfaces[0].NetworkInterfaceID
	must(a.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(mine), SecondaryPrivateIpAddressCount: aws.Int32(1)})).of(t)
	created := must(a.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(w.subnet.SubnetID)})).of(t)
	id := created.NetworkInterface.NetworkInterfaceId
	must(a.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: id, InstanceId: aws.String(w.instances[0].InstanceID), DeviceIndex: aws.Int32(1)})).of(t)
	must(a.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{aws.ToString(id), w.instances[0].InstanceID}, Tags: []types.Tag{{Key: aws.String("k")}}})).of(t)

	_, err := b.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(mine), SecondaryPrivateIpAddressCount: aws.Int32(1)})
	wantAPIError(t, err, api.CodeUnauthorizedOperation, http.StatusForbidden)
	_, err = b.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: id, Groups: []string{"sg-x"}})
	wantAPIError(t, err, api.CodeUnauthorizedOperation, http.StatusForbidden)
	_, err = b.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{aws.ToString(id)}, Tags: []types.Tag{{Key: aws.String("k")}}})
	wantAPIError(t, err, api.CodeUnauthorizedOperation, http.StatusForbidden)
	_, err = b.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: id, InstanceId: aws.String(w.instances[0].InstanceID), DeviceIndex: aws.Int32(2)})
	wantAPIError(t, err, api.CodeUnauthorizedOperation, http.StatusForbidden)
	// Describes are open to every instance, as in EC2.
	got := must(b.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{mine}})).of(t)
	if len(got.NetworkInterfaces) != 1 || len(got.NetworkInterfaces[0].PrivateIpAddresses) != 2 {
		t.Fatalf("instance b sees %+v", got.NetworkInterfaces)
	}
}
