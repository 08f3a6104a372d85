package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

func TestAuthentication(t *testing.T) {
	f := newFixture(t, servertest.Options{})
	tests := []struct {
		name   string
		header string
	}{
		{"no header", ""},
		{"empty bearer", "Bearer "},
		{"wrong token", "Bearer not-a-token"},
		{"wrong scheme", "Basic " + servertest.AdminToken},
		{"token without scheme", servertest.AdminToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, f.URL+"/api/"+api.ActionDescribeVpcs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set(api.HeaderAuthorization, tt.header)
			}
			a := send(t, req)
			if a.status != http.StatusUnauthorized || a.errorOf(t).Code != api.CodeAuthFailure {
				t.Errorf("answer %d %s, want 401 AuthFailure", a.status, a.body)
			}
		})
	}
	// The scheme is case-insensitive (RFC 7235).
	req, err := http.NewRequest(http.MethodPost, f.URL+"/api/"+api.ActionDescribeVpcs, strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(api.HeaderAuthorization, "bearer "+servertest.AdminToken)
	if a := send(t, req); a.status != http.StatusOK {
		t.Errorf("lowercase bearer: %d %s", a.status, a.body)
	}
	if _, err := f.Client("").DescribeVpcs(context.Background(), nil); !errors.Is(err, api.ErrAuthFailure) {
		t.Errorf("client without token: %v, want AuthFailure", err)
	}
}

func TestInstanceTokenIsRefusedAdminActions(t *testing.T) {
	f := newFixture(t, servertest.Options{})
	token := f.instances[0].Token
	if token == "" {
		t.Fatal("RunInstances returned no instance token to the admin")
	}
	before := f.snapshot(t)
	for _, action := range []string{
		api.ActionCreateVpc, api.ActionDeleteVpc, api.ActionCreateSubnet, api.ActionDeleteSubnet,
		api.ActionRunInstances, api.ActionTerminateInstances, api.ActionSetFault, api.ActionListFaults,
		api.ActionClearFaults, api.ActionGetChanges, api.ActionGetSnapshot,
		api.ActionCreateLoadBalancerToken, api.ActionDescribeLoadBalancerTokens, api.ActionDeleteLoadBalancerToken,
	} {
		t.Run(action, func(t *testing.T) {
			a := post(t, f.URL, token, action, []byte(`{}`))
			if a.status != http.StatusForbidden || a.errorOf(t).Code != api.CodeUnauthorizedOperation {
				t.Errorf("answer %d %s, want 403 UnauthorizedOperation", a.status, a.body)
			}
		})
	}
	mustUnchanged(t, before, f.snapshot(t))
}

func TestInstanceTokenTouchesOnlyItsOwnInterfaces(t *testing.T) {
	f := newFixture(t, servertest.Options{})
	ctx := context.Background()
	mine, theirs := f.Client(f.instances[0].Token), f.primaryENI(1)

	before := f.snapshot(t)
	for name, call := range map[string]func() error{
		"assign": func() error {
			_, err := mine.AssignPrivateIPAddresses(ctx, &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: theirs, SecondaryPrivateIPAddressCount: 1})
			return err
		},
		"unassign": func() error {
			_, err := mine.UnassignPrivateIPAddresses(ctx, &api.UnassignPrivateIPAddressesRequest{NetworkInterfaceID: theirs, PrivateIPAddresses: []string{f.instances[1].PrivateIPAddress}})
			return err
		},
		"modify": func() error {
			off := false
			_, err := mine.ModifyNetworkInterfaceAttribute(ctx, &api.ModifyNetworkInterfaceAttributeRequest{NetworkInterfaceID: theirs, SourceDestCheck: &off})
			return err
		},
		"delete": func() error {
			_, err := mine.DeleteNetworkInterface(ctx, &api.DeleteNetworkInterfaceRequest{NetworkInterfaceID: theirs})
			return err
		},
	} {
		if err := call(); !errors.Is(err, api.ErrUnauthorizedOperation) {
			t.Errorf("%s on another instance's interface: %v, want UnauthorizedOperation", name, err)
		}
	}
	mustUnchanged(t, before, f.snapshot(t))

	resp, err := mine.AssignPrivateIPAddresses(ctx, &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: f.primaryENI(0), SecondaryPrivateIPAddressCount: 2})
	if err != nil {
		t.Fatalf("assign on its own interface: %v", err)
	}
	if len(resp.AssignedPrivateIPAddresses) != 2 {
		t.Errorf("assigned %v, want 2 addresses", resp.AssignedPrivateIPAddresses)
	}
	if _, err := mine.DescribeInstances(ctx, &api.DescribeInstancesRequest{InstanceIDs: []string{f.instances[0].InstanceID}}); err != nil {
		t.Errorf("an instance describing itself: %v", err)
	}
}
