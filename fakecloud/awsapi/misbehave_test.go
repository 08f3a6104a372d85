package awsapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// TestEC2InjectedThrottle: a fault-injected throttle reaches the SDK as EC2's
// RequestLimitExceeded, which the SDK's standard retryer retries.
func TestEC2InjectedThrottle(t *testing.T) {
	w := newWorld(t, servertest.Options{FaultSeed: 1}, "m5.large", 1)
	ctx := context.Background()
	setFault(t, w, api.Fault{Action: api.ActionDescribeNetworkInterfaces, ErrorRate: 1, ErrorCode: api.CodeRequestLimitExceeded})
	_, err := w.ec2Client(servertest.AWSKey, noRetry).DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	wantAPIError(t, err, api.CodeRequestLimitExceeded, http.StatusServiceUnavailable)
	if !retry.NewStandard().IsErrorRetryable(err) {
		t.Fatalf("the SDK's retryer does not retry %v", err)
	}
	// The JSON API gets the same fault: one action, whichever protocol.
	if _, err := w.Admin.DescribeNetworkInterfaces(ctx, &api.DescribeNetworkInterfacesRequest{}); !api.Retryable(err) {
		t.Fatalf("the JSON API: %v; want the injected RequestLimitExceeded", err)
	}

	setFault(t, w, api.Fault{Action: api.ActionAssignPrivateIPAddresses, ErrorRate: 1, ErrorCode: api.CodeInternalError})
	_, err = w.ec2Client(servertest.AWSKey, noRetry).AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(w.instances[0].NetworkInterfaces[0].NetworkInterfaceID), SecondaryPrivateIpAddressCount: aws.Int32(1)})
	wantAPIError(t, err, api.CodeInternalError, http.StatusInternalServerError)
	if !retry.NewStandard().IsErrorRetryable(err) {
		t.Fatalf("the SDK's retryer does not retry %v", err)
	}
	if _, err := w.Admin.ClearFaults(ctx, &api.ClearFaultsRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.admin().DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{}); err != nil {
		t.Fatalf("after clearing: %v", err)
	}
	metrics := get(t, w.URL+"/metrics")
	for _, want := range []string{
		`fakecloud_requests_total{action="DescribeNetworkInterfaces",code="RequestLimitExceeded"} 2`,
		`fakecloud_injected_faults_total{action="AssignPrivateIpAddresses",kind="error"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestEC2Throttling: the AWS front end draws from the caller's token buckets, the same ones as
// its JSON API calls.
func TestEC2Throttling(t *testing.T) {
	slow := server.ThrottleLimit{Burst: 2, Rate: 0.001}
	w := newWorld(t, servertest.Options{Throttle: &server.ThrottleConfig{Overrides: map[string]server.ThrottleLimit{api.ActionDescribeSubnets: slow}}}, "m5.large", 1)
	ctx := context.Background()
	c := w.ec2Client(servertest.AWSKey, noRetry)
	must(c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})).of(t)
	if _, err := w.Admin.DescribeSubnets(ctx, &api.DescribeSubnetsRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	wantAPIError(t, err, api.CodeRequestLimitExceeded, http.StatusServiceUnavailable)
	// Another caller has buckets of its own.
	must(w.instanceClient(t, 0).DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})).of(t)
}

// TestEC2VisibilityLag: eventual consistency injected on a describe hides what was just made
// from the AWS front end as from the JSON API.
func TestEC2VisibilityLag(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 1)
	ctx := context.Background()
	c := w.admin()
	created := must(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(w.subnet.SubnetID)})).of(t)
	id := aws.ToString(created.NetworkInterface.NetworkInterfaceId)
	setFault(t, w, api.Fault{Action: api.ActionDescribeNetworkInterfaces, VisibilityLagMillis: 600_000})
	_, err := w.ec2Client(servertest.AWSKey, noRetry).DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	wantAPIError(t, err, api.CodeInvalidNetworkInterfaceIDNotFound, http.StatusBadRequest)
	all := must(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})).of(t)
	for _, n := range all.NetworkInterfaces {
		if aws.ToString(n.NetworkInterfaceId) == id {
			t.Fatalf("%s is listed within its visibility lag", id)
		}
	}
}

// TestEC2LostReply: with an error injected after the change is made, a retry with the same
// client token gets the first answer, through the AWS front end too.
func TestEC2LostReply(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 1)
	ctx := context.Background()
	in := &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(w.subnet.SubnetID), ClientToken: aws.String("once")}
	setFault(t, w, api.Fault{Action: api.ActionCreateNetworkInterface, ErrorRate: 1, ErrorCode: api.CodeInternalError, AfterCommit: true})
	_, err := w.ec2Client(servertest.AWSKey, noRetry).CreateNetworkInterface(ctx, in)
	wantAPIError(t, err, api.CodeInternalError, http.StatusInternalServerError)
	if _, err := w.Admin.ClearFaults(ctx, &api.ClearFaultsRequest{}); err != nil {
		t.Fatal(err)
	}
	again := must(w.admin().CreateNetworkInterface(ctx, in)).of(t)
	all := must(w.Admin.DescribeNetworkInterfaces(ctx, &api.DescribeNetworkInterfacesRequest{Filters: []api.Filter{{Name: "status", Values: []string{"available"}}}})).of(t)
	if len(all.NetworkInterfaces) != 1 || all.NetworkInterfaces[0].NetworkInterfaceID != aws.ToString(again.NetworkInterface.NetworkInterfaceId) {
		t.Fatalf("after the lost reply and the retry: %d interfaces; want the one the first call made", len(all.NetworkInterfaces))
	}
}

func setFault(t *testing.T, w *world, f api.Fault) {
	t.Helper()
	if _, err := w.Admin.SetFault(context.Background(), &api.SetFaultRequest{Fault: f}); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
