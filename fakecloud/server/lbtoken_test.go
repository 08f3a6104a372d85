package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// TestLoadBalancerTokenIsScoped (finding 6 of issue 18): lbcontroller needed the admin token,
// which may also terminate instances, set faults and read every instance token. The
// load-balancer token the admin creates may call the load balancer side of the API and the
// reads a load balancer controller makes, and nothing else: not terminate or run instances,
// not set faults, not describe instances or interfaces, not make more tokens; its snapshot and
// change stream hold no instance, interface or VPC. Once revoked, it authenticates no more.
func TestLoadBalancerTokenIsScoped(t *testing.T) {
	f := newFixture(t, servertest.Options{})
	tok := f.LoadBalancerToken(t)
	lb := tok.Token
	before := f.snapshot(t)
	for _, action := range []string{
		api.ActionCreateVpc, api.ActionDeleteVpc, api.ActionCreateSubnet, api.ActionDeleteSubnet,
		api.ActionRunInstances, api.ActionTerminateInstances, api.ActionDescribeInstances, api.ActionSetFault,
		api.ActionListFaults, api.ActionClearFaults, api.ActionCreateNetworkInterface, api.ActionAssignPrivateIPAddresses,
		api.ActionDescribeNetworkInterfaces, api.ActionAttachNetworkInterface, api.ActionCreateTags,
		api.ActionReportTargetHealth, api.ActionReportLoadBalancerState,
		api.ActionCreateLoadBalancerToken, api.ActionDescribeLoadBalancerTokens, api.ActionDeleteLoadBalancerToken,
	} {
		a := post(t, f.URL, lb, action, []byte(`{}`))
		if a.status != http.StatusForbidden || a.errorOf(t).Code != api.CodeUnauthorizedOperation || !strings.Contains(string(a.body), "load-balancer token") {
			t.Errorf("%s with the load-balancer token: %d %s, want 403 UnauthorizedOperation naming the token", action, a.status, a.body)
		}
	}
	mustUnchanged(t, before, f.snapshot(t))

	create := post(t, f.URL, lb, api.ActionCreateTargetGroup, []byte(`{"Name":"web-80","Protocol":"TCP","Port":80,"VpcId":"`+f.vpc.VpcID+`","TargetType":"ip"}`))
	if create.status != http.StatusOK {
		t.Fatalf("CreateTargetGroup with the load-balancer token: %d %s", create.status, create.body)
	}
	for _, action := range []string{
		api.ActionDescribeTargetGroups, api.ActionDescribeLoadBalancers, api.ActionDescribeSubnets,
		api.ActionDescribeCertificates,
	} {
		if a := post(t, f.URL, lb, action, []byte(`{}`)); a.status != http.StatusOK {
			t.Errorf("%s with the load-balancer token: %d %s", action, a.status, a.body)
		}
	}
	snap := post(t, f.URL, lb, api.ActionGetSnapshot, []byte(`{}`))
	var s api.GetSnapshotResponse
	if err := json.Unmarshal(snap.body, &s); snap.status != http.StatusOK || err != nil {
		t.Fatalf("GetSnapshot with the load-balancer token: %d %s (%v)", snap.status, snap.body, err)
	}
	if len(s.Snapshot.Instances)+len(s.Snapshot.NetworkInterfaces)+len(s.Snapshot.Vpcs) != 0 || len(s.Snapshot.TargetGroups) != 1 {
		t.Errorf("the load-balancer token's snapshot holds %d instances, %d interfaces, %d VPCs, %d target groups; want only the target group",
			len(s.Snapshot.Instances), len(s.Snapshot.NetworkInterfaces), len(s.Snapshot.Vpcs), len(s.Snapshot.TargetGroups))
	}
	if strings.Contains(string(snap.body), f.instances[0].Token) {
		t.Error("the load-balancer token's snapshot carries an instance token")
	}
	changes := post(t, f.URL, lb, api.ActionGetChanges, []byte(`{"Since":0}`))
	var c api.GetChangesResponse
	if err := json.Unmarshal(changes.body, &c); changes.status != http.StatusOK || err != nil {
		t.Fatalf("GetChanges with the load-balancer token: %d %s (%v)", changes.status, changes.body, err)
	}
	for _, ch := range c.Changes {
		if ch.Instance != nil || ch.NetworkInterface != nil || ch.Vpc != nil || ch.Subnet != nil {
			t.Errorf("the load-balancer token's change stream carries a %s change", ch.Kind)
		}
	}
	if strings.Contains(string(changes.body), f.instances[0].Token) {
		t.Error("the load-balancer token's change stream carries an instance token")
	}

	if _, err := f.Admin.DeleteLoadBalancerToken(context.Background(), &api.DeleteLoadBalancerTokenRequest{TokenID: tok.TokenID}); err != nil {
		t.Fatal(err)
	}
	if a := post(t, f.URL, lb, api.ActionDescribeLoadBalancers, []byte(`{}`)); a.status != http.StatusUnauthorized || a.errorOf(t).Code != api.CodeAuthFailure {
		t.Errorf("a revoked load-balancer token: %d %s, want 401 AuthFailure", a.status, a.body)
	}
}
