package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	f := newFixture(t, servertest.Options{})
	eni, sn, inst := f.primaryENI(0), f.subnet.SubnetID, f.instances[0].InstanceID
	tests := []struct {
		name     string
		action   string
		body     string
		status   int
		code     string
		mentions string // a word the message must contain, so that it says what was wrong
	}{
		{"truncated JSON", api.ActionCreateVpc, `{"CidrBlock": "10.1.0.0/16"`, 400, api.CodeInvalidRequest, "truncated"},
		{"syntax error", api.ActionCreateVpc, `{"CidrBlock": 10.1.0.0/16}`, 400, api.CodeInvalidRequest, "malformed"},
		{"wrong type", api.ActionCreateVpc, `{"CidrBlock": 10}`, 400, api.CodeInvalidRequest, "CidrBlock"},
		{"wrong element type", api.ActionDescribeVpcs, `{"VpcIds": [1]}`, 400, api.CodeInvalidRequest, "VpcIds"},
		{"nested wrong type", api.ActionSetFault, `{"Fault": {"Action": "*", "ErrorRate": "high"}}`, 400, api.CodeInvalidRequest, "Fault.ErrorRate"},
		{"unknown field", api.ActionCreateVpc, `{"CidrBlock": "10.1.0.0/16", "Cidr": "x"}`, 400, api.CodeInvalidRequest, `"Cidr"`},
		{"trailing object", api.ActionCreateVpc, `{"CidrBlock": "10.1.0.0/16"} {}`, 400, api.CodeInvalidRequest, "after the JSON object"},
		{"trailing garbage", api.ActionCreateVpc, `{"CidrBlock": "10.1.0.0/16"}x`, 400, api.CodeInvalidRequest, "after the JSON object"},
		{"empty body", api.ActionCreateVpc, ``, 400, api.CodeInvalidRequest, "empty"},
		{"null", api.ActionCreateVpc, `null`, 400, api.CodeInvalidRequest, "null"},
		{"array", api.ActionCreateVpc, `[{"CidrBlock": "10.1.0.0/16"}]`, 400, api.CodeInvalidRequest, "array"},
		{"invalid CIDR", api.ActionCreateVpc, `{"CidrBlock": "10.1.0.0/33"}`, 400, api.CodeInvalidParameterValue, "10.1.0.0/33"},
		{"not a CIDR", api.ActionCreateVpc, `{"CidrBlock": "banana"}`, 400, api.CodeInvalidParameterValue, "banana"},
		{"missing CIDR", api.ActionCreateVpc, `{}`, 400, api.CodeMissingParameter, "CidrBlock"},
		{"subnet outside the VPC", api.ActionCreateSubnet, `{"VpcId": "` + f.vpc.VpcID + `", "CidrBlock": "192.168.0.0/24"}`, 400, "", ""},
		{"unknown VPC", api.ActionCreateSubnet, `{"VpcId": "vpc-nope", "CidrBlock": "10.0.1.0/24"}`, 400, api.CodeInvalidVpcIDNotFound, "vpc-nope"},
		{"unknown subnet", api.ActionRunInstances, `{"SubnetId": "subnet-nope", "InstanceType": "m5.large"}`, 400, api.CodeInvalidSubnetIDNotFound, "subnet-nope"},
		{"unknown instance type", api.ActionRunInstances, `{"SubnetId": "` + sn + `", "InstanceType": "m9.huge"}`, 400, "", "m9.huge"},
		{"unknown interface", api.ActionAssignPrivateIPAddresses, `{"NetworkInterfaceId": "eni-nope", "SecondaryPrivateIpAddressCount": 1}`, 400, api.CodeInvalidNetworkInterfaceIDNotFound, "eni-nope"},
		{"unknown instance", api.ActionAttachNetworkInterface, `{"NetworkInterfaceId": "` + eni + `", "InstanceId": "i-nope", "DeviceIndex": 1}`, 400, "", ""},
		{"unknown attachment", api.ActionDetachNetworkInterface, `{"AttachmentId": "eni-attach-nope"}`, 400, api.CodeInvalidAttachmentIDNotFound, "eni-attach-nope"},
		{"negative count", api.ActionAssignPrivateIPAddresses, `{"NetworkInterfaceId": "` + eni + `", "SecondaryPrivateIpAddressCount": -1}`, 400, api.CodeInvalidParameterValue, "-1"},
		{"huge count", api.ActionAssignPrivateIPAddresses, `{"NetworkInterfaceId": "` + eni + `", "SecondaryPrivateIpAddressCount": 1000000}`, 400, api.CodeInvalidParameterValue, "1000000"},
		{"count beyond int", api.ActionAssignPrivateIPAddresses, `{"NetworkInterfaceId": "` + eni + `", "SecondaryPrivateIpAddressCount": 1e30}`, 400, api.CodeInvalidRequest, "SecondaryPrivateIpAddressCount"},
		{"fractional count", api.ActionRunInstances, `{"SubnetId": "` + sn + `", "InstanceType": "m5.large", "Count": 1.5}`, 400, api.CodeInvalidRequest, "Count"},
		{"negative instance count", api.ActionRunInstances, `{"SubnetId": "` + sn + `", "InstanceType": "m5.large", "Count": -3}`, 400, api.CodeInvalidParameterValue, "-3"},
		{"huge instance count", api.ActionRunInstances, `{"SubnetId": "` + sn + `", "InstanceType": "m5.large", "Count": 100000}`, 400, api.CodeInvalidParameterValue, "100000"},
		{"invalid address", api.ActionAssignPrivateIPAddresses, `{"NetworkInterfaceId": "` + eni + `", "PrivateIpAddresses": ["999.1.1.1"]}`, 400, api.CodeInvalidParameterValue, "999.1.1.1"},
		{"device index taken", api.ActionAttachNetworkInterface, `{"NetworkInterfaceId": "` + f.primaryENI(1) + `", "InstanceId": "` + inst + `", "DeviceIndex": 0}`, 0, "", ""},
		{"negative wait", api.ActionGetChanges, `{"Since": 0, "WaitMillis": -5}`, 400, api.CodeInvalidParameterValue, "WaitMillis"},
		{"bad fault", api.ActionSetFault, `{"Fault": {"Action": "*", "ErrorRate": 2}}`, 400, api.CodeInvalidParameterValue, "error rate"},
		{"bad fault code", api.ActionSetFault, `{"Fault": {"Action": "*", "ErrorRate": 1, "ErrorCode": "Boom"}}`, 400, api.CodeInvalidParameterValue, "Boom"},
		{"unknown action", "DescribeBananas", `{}`, 404, api.CodeInvalidAction, "DescribeBananas"},
		{"body too large", api.ActionCreateTags, `{"Resources": ["` + strings.Repeat("x", 2<<20) + `"]}`, 413, api.CodeInvalidRequest, "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.snapshot(t)
			a := post(t, f.URL, servertest.AdminToken, tt.action, []byte(tt.body))
			if a.status < 400 || a.status > 499 || (tt.status != 0 && a.status != tt.status) {
				t.Errorf("status %d, want %d (4xx); body %s", a.status, tt.status, a.body)
			}
			e := a.errorOf(t)
			if e.Code == "" || (tt.code != "" && e.Code != tt.code) {
				t.Errorf("code %q, want %q; message %q", e.Code, tt.code, e.Message)
			}
			if tt.mentions != "" && !strings.Contains(e.Message, tt.mentions) {
				t.Errorf("message %q does not mention %q", e.Message, tt.mentions)
			}
			if e.RequestID == "" || e.RequestID != a.requestID {
				t.Errorf("request id %q in body, %q in header", e.RequestID, a.requestID)
			}
			mustUnchanged(t, before, f.snapshot(t))
			if faults := f.listFaults(t); len(faults) != 0 {
				t.Errorf("faults set by a refused request: %v", faults)
			}
		})
	}
}

func TestWrongMethodAndPath(t *testing.T) {
	f := newFixture(t, servertest.Options{})
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/api/DescribeVpcs", 405, api.CodeInvalidRequest},
		{http.MethodPut, "/api/CreateVpc", 405, api.CodeInvalidRequest},
		{http.MethodPost, "/nowhere", 404, api.CodeInvalidAction},
		{http.MethodPost, "/api/", 404, api.CodeInvalidAction},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, f.URL+tt.path, bytes.NewReader([]byte(`{}`)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(api.HeaderAuthorization, "Bearer "+servertest.AdminToken)
		a := send(t, req)
		if a.status != tt.status || a.errorOf(t).Code != tt.code {
			t.Errorf("%s %s: %d %s, want %d %s", tt.method, tt.path, a.status, a.body, tt.status, tt.code)
		}
	}
}
