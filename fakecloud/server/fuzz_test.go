package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// fuzzActions are the actions the fuzzer picks from by index (an out-of-range index sends the
// raw action string instead, covering unknown actions).
var fuzzActions = []string{
	api.ActionCreateVpc, api.ActionDescribeVpcs, api.ActionDeleteVpc, api.ActionCreateSubnet,
	api.ActionDescribeSubnets, api.ActionDeleteSubnet, api.ActionDescribeInstanceTypes,
	api.ActionRunInstances, api.ActionDescribeInstances, api.ActionTerminateInstances,
	api.ActionCreateNetworkInterface, api.ActionDescribeNetworkInterfaces,
	api.ActionAttachNetworkInterface, api.ActionDetachNetworkInterface,
	api.ActionDeleteNetworkInterface, api.ActionModifyNetworkInterfaceAttribute,
	api.ActionAssignPrivateIPAddresses, api.ActionUnassignPrivateIPAddresses, api.ActionCreateTags,
	api.ActionDeleteTags, api.ActionSetFault, api.ActionListFaults, api.ActionClearFaults,
	api.ActionGetChanges, api.ActionGetSnapshot,
	// Load balancers, appended so that the indices of older seeds keep their meaning (25-43).
	api.ActionCreateLoadBalancer, api.ActionDescribeLoadBalancers, api.ActionDeleteLoadBalancer,
	api.ActionModifyLoadBalancerAttributes, api.ActionCreateTargetGroup, api.ActionDescribeTargetGroups,
	api.ActionModifyTargetGroup, api.ActionModifyTargetGroupAttributes, api.ActionDeleteTargetGroup,
	api.ActionRegisterTargets, api.ActionDeregisterTargets, api.ActionDescribeTargetHealth,
	api.ActionCreateListener, api.ActionDescribeListeners, api.ActionDeleteListener,
	api.ActionAddTags, api.ActionRemoveTags, api.ActionDescribeTags, api.ActionReportTargetHealth, api.ActionReportLoadBalancerState,
	// Application load balancers (44-54).
	api.ActionModifyListener, api.ActionCreateRule, api.ActionModifyRule, api.ActionDeleteRule, api.ActionDescribeRules,
	api.ActionSetRulePriorities, api.ActionImportCertificate, api.ActionDescribeCertificates, api.ActionDeleteCertificate,
	api.ActionAddListenerCertificates, api.ActionRemoveListenerCertificates,
}

// fuzzTarget is one in-process fakecloud whose handler the fuzzer calls directly.
type fuzzTarget struct {
	h        http.Handler
	vars     *strings.Replacer // $VPC, $SUBNET, $INSTANCE, $ENI, $ATTACH, $ENI2, $LB, $TG, $ALB, $L7, $HTTPTG, $TLSTG, $CERT -> real IDs; $CAPEM -> a PEM certificate, JSON-escaped
	instance string            // an instance token
}

func newFuzzTarget(f *testing.F) *fuzzTarget {
	st, err := server.OpenStore(server.StoreConfig{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	srv, err := server.New(server.Config{
		Store: st, AdminToken: servertest.AdminToken, Throttle: server.ThrottleConfig{Disabled: true}, MaxWait: 5 * time.Millisecond,
	})
	if err != nil {
		f.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	fx := newFixtureAt(f, hs.URL)
	ctx := context.Background()
	eni, err := fx.admin.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: fx.subnet.SubnetID})
	if err != nil {
		f.Fatal(err)
	}
	lb, err := fx.admin.CreateLoadBalancer(ctx, &api.CreateLoadBalancerRequest{Name: "fuzz", SubnetID: fx.subnet.SubnetID})
	if err != nil {
		f.Fatal(err)
	}
	tg, err := fx.admin.CreateTargetGroup(ctx, &api.CreateTargetGroupRequest{Name: "fuzz", Protocol: api.ProtocolTCP, Port: 80, VpcID: fx.vpc.VpcID})
	if err != nil {
		f.Fatal(err)
	}
	alb, err := fx.admin.CreateLoadBalancer(ctx, &api.CreateLoadBalancerRequest{Name: "fuzz7", Type: api.LoadBalancerTypeApplication, SubnetID: fx.subnet.SubnetID})
	if err != nil {
		f.Fatal(err)
	}
	httpTG, err := fx.admin.CreateTargetGroup(ctx, &api.CreateTargetGroupRequest{Name: "fuzz7", Protocol: api.ProtocolHTTP, Port: 80, VpcID: fx.vpc.VpcID})
	if err != nil {
		f.Fatal(err)
	}
	tlsTG, err := fx.admin.CreateTargetGroup(ctx, &api.CreateTargetGroupRequest{Name: "fuzz-tls", Protocol: api.ProtocolTLS, Port: 5432, VpcID: fx.vpc.VpcID})
	if err != nil {
		f.Fatal(err)
	}
	l7, err := fx.admin.CreateListener(ctx, &api.CreateListenerRequest{LoadBalancerID: alb.LoadBalancer.LoadBalancerID, Protocol: api.ProtocolHTTP, Port: 80,
		DefaultActions: []api.Action{{Type: api.ActionTypeFixedResponse, FixedResponseConfig: &api.FixedResponseActionConfig{StatusCode: "404"}}}})
	if err != nil {
		f.Fatal(err)
	}
	certPEM, keyPEM := selfSigned(f, "fuzz.example.com")
	cert, err := fx.admin.ImportCertificate(ctx, &api.ImportCertificateRequest{Certificate: certPEM, PrivateKey: keyPEM})
	if err != nil {
		f.Fatal(err)
	}
	caPEM, err := json.Marshal(certPEM) // a CA bundle for MutualAuthentication
	if err != nil {
		f.Fatal(err)
	}
	inst := fx.instances[0]
	return &fuzzTarget{
		h: srv,
		vars: strings.NewReplacer(
			"$VPC", fx.vpc.VpcID, "$SUBNET", fx.subnet.SubnetID, "$INSTANCE", inst.InstanceID,
			"$ENI2", eni.NetworkInterface.NetworkInterfaceID,
			"$ENI", inst.NetworkInterfaces[0].NetworkInterfaceID,
			"$ATTACH", inst.NetworkInterfaces[0].Attachment.AttachmentID,
			"$LB", lb.LoadBalancer.LoadBalancerID, "$TG", tg.TargetGroup.TargetGroupID,
			"$L7", l7.Listener.ListenerID, "$HTTPTG", httpTG.TargetGroup.TargetGroupID, "$TLSTG", tlsTG.TargetGroup.TargetGroupID,
			"$CERT", cert.Certificate.CertificateID, "$ALB", alb.LoadBalancer.LoadBalancerID,
			"$CAPEM", strings.Trim(string(caPEM), `"`),
		),
		instance: inst.Token,
	}
}

// do serves one request in-process.
func (ft *fuzzTarget) do(action, token string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.URL.Path = "/api/" + action // any string, even one no client could put in a request line
	if token != "" {
		req.Header.Set(api.HeaderAuthorization, "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	ft.h.ServeHTTP(rec, req)
	return rec
}

func (ft *fuzzTarget) snapshot(t *testing.T) api.Snapshot {
	rec := ft.do(api.ActionGetSnapshot, servertest.AdminToken, []byte(`{}`))
	var s api.GetSnapshotResponse
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &s) != nil {
		t.Fatalf("GetSnapshot: %d %s", rec.Code, rec.Body)
	}
	return s.Snapshot
}

// FuzzServeRequest throws arbitrary bodies at every action with every kind of caller. Invariants:
// every answer is one valid JSON document with a request id; no 5xx (no fault is left in force);
// an error answer is an ErrorResponse whose status fits its code; a 4xx changes no state.
func FuzzServeRequest(f *testing.F) {
	ft := newFuzzTarget(f)
	f.Add(uint8(0), "", uint8(1), []byte(`{"CidrBlock":"10.1.0.0/16"}`))
	f.Add(uint8(16), "", uint8(1), []byte(`{"NetworkInterfaceId":"$ENI","SecondaryPrivateIpAddressCount":2}`))
	f.Add(uint8(16), "", uint8(2), []byte(`{"NetworkInterfaceId":"$ENI2","Ipv4PrefixCount":1}`))
	f.Add(uint8(12), "", uint8(1), []byte(`{"NetworkInterfaceId":"$ENI2","InstanceId":"$INSTANCE","DeviceIndex":1}`))
	f.Add(uint8(200), "Bogus", uint8(1), []byte(`{}`))
	f.Add(uint8(29), "", uint8(1), []byte(`{"Name":"tls","Protocol":"HTTPS","Port":8443,"VpcId":"$VPC","TlsVerification":{"ServerName":"web.example.com",`+
		`"UseSystemRoots":true,"SubjectAltNames":[{"Type":"URI","Value":"spiffe://td/web"},{"Type":"Hostname","Value":"*.example.com"}]}}`))
	f.Add(uint8(29), "", uint8(1), []byte(`{"Name":"tls","Protocol":"HTTPS","Port":8443,"VpcId":"$VPC","TlsVerification":{"ServerName":"web.example.com",`+
		`"CaCertificatesPem":"-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n"}}`))
	f.Add(uint8(29), "", uint8(1), []byte(`{"Name":"mtls","Protocol":"HTTPS","Port":8443,"VpcId":"$VPC","ClientCertificateId":"$CERT",`+
		`"TlsVerification":{"ServerName":"web.example.com","UseSystemRoots":true}}`))
	f.Add(uint8(29), "", uint8(1), []byte(`{"Name":"mtls","Protocol":"HTTP","Port":8080,"VpcId":"$VPC","ClientCertificateId":"$CERT"}`))
	f.Add(uint8(29), "", uint8(1), []byte(`{"Name":"mtls","Protocol":"HTTPS","Port":8443,"VpcId":"$VPC","ClientCertificateId":"cert-404"}`))
	f.Add(uint8(53), "", uint8(1), []byte(`{"CertificateId":"$CERT"}`)) // in use by the group above: ResourceInUse
	// HTTPS listeners validating client certificates (37 CreateListener, 45 ModifyListener).
	httpsListener := `{"LoadBalancerId":"$ALB","Protocol":"HTTPS","Port":443,"Certificates":[{"CertificateId":"$CERT"}],` +
		`"DefaultActions":[{"Type":"fixed-response","FixedResponseConfig":{"StatusCode":"404"}}],"MutualAuthentication":`
	f.Add(uint8(37), "", uint8(1), []byte(httpsListener+`{"Mode":"verify","CaCertificatesPem":"$CAPEM"}}`))
	f.Add(uint8(37), "", uint8(1), []byte(httpsListener+`{"Mode":"passthrough"}}`))
	f.Add(uint8(37), "", uint8(1), []byte(httpsListener+`{"Mode":"verify"}}`))
	f.Add(uint8(37), "", uint8(1), []byte(httpsListener+`{"Mode":"off"}}`))
	f.Add(uint8(37), "", uint8(1), []byte(httpsListener+`{"Mode":"verify","CaCertificatesPem":"-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n"}}`))
	f.Add(uint8(37), "", uint8(1), []byte(`{"LoadBalancerId":"$ALB","Protocol":"HTTP","Port":8081,"DefaultActions":[{"Type":"fixed-response",`+
		`"FixedResponseConfig":{"StatusCode":"404"}}],"MutualAuthentication":{"Mode":"passthrough"}}`))
	f.Add(uint8(45), "", uint8(1), []byte(`{"ListenerId":"$L7","Protocol":"HTTPS","Certificates":[{"CertificateId":"$CERT"}],`+
		`"MutualAuthentication":{"Mode":"verify","CaCertificatesPem":"$CAPEM"}}`))
	f.Add(uint8(45), "", uint8(1), []byte(`{"ListenerId":"$L7","MutualAuthentication":{"Mode":"off"}}`))
	f.Add(uint8(45), "", uint8(1), []byte(`{"ListenerId":"$L7","MutualAuthentication":{"Mode":"off","CaCertificatesPem":"$CAPEM"}}`))
	// TLS target groups (29 CreateTargetGroup), and the listeners that may or may not forward to
	// one (37 CreateListener, 45 ModifyListener): only a terminating TLS listener's forward.
	f.Add(uint8(29), "", uint8(1), []byte(`{"Name":"tlsg","Protocol":"TLS","Port":5432,"VpcId":"$VPC","ClientCertificateId":"$CERT",`+
		`"TlsVerification":{"ServerName":"db.example.com","CaCertificatesPem":"$CAPEM","SubjectAltNames":[{"Type":"URI","Value":"spiffe://td/db"}]}}`))
	f.Add(uint8(29), "", uint8(1), []byte(`{"Name":"tlsg","Protocol":"TLS","Port":5432,"VpcId":"$VPC","HealthCheck":{"Protocol":"TCP","Port":"5433"}}`))
	f.Add(uint8(29), "", uint8(1), []byte(`{"Name":"tlsg","Protocol":"TLS","ProtocolVersion":"HTTP2","Port":5432,"VpcId":"$VPC","HealthCheck":{"Protocol":"HTTP","Path":"/"}}`))
	tlsListener := `{"LoadBalancerId":"$ALB","Protocol":"TLS","Port":5432,"DefaultActions":[{"Type":"forward","TargetGroupId":"$TLSTG"`
	f.Add(uint8(37), "", uint8(1), []byte(tlsListener+`}],"Certificates":[{"CertificateId":"$CERT"}]}`))
	f.Add(uint8(37), "", uint8(1), []byte(tlsListener+`,"TlsPassthrough":true}],"Certificates":[{"CertificateId":"$CERT"}]}`))
	f.Add(uint8(37), "", uint8(1), []byte(tlsListener+`}]}`))
	f.Add(uint8(37), "", uint8(1), []byte(`{"LoadBalancerId":"$LB","Protocol":"TCP","Port":5432,"DefaultActions":[{"Type":"forward","TargetGroupId":"$TLSTG"}]}`))
	f.Add(uint8(45), "", uint8(1), []byte(`{"ListenerId":"$L7","DefaultActions":[{"Type":"forward","TargetGroupId":"$TLSTG"}]}`))
	f.Fuzz(func(t *testing.T, actionIdx uint8, rawAction string, who uint8, body []byte) {
		action := rawAction
		if int(actionIdx) < len(fuzzActions) {
			action = fuzzActions[actionIdx]
		}
		token := [...]string{"", servertest.AdminToken, ft.instance, "garbage"}[who%4]
		body = []byte(ft.vars.Replace(string(body)))

		before := ft.snapshot(t)
		rec := ft.do(action, token, body)
		if action == api.ActionSetFault && rec.Code == http.StatusOK {
			// A fault left in force would make later answers fail by design.
			if c := ft.do(api.ActionClearFaults, servertest.AdminToken, []byte(`{}`)); c.Code != http.StatusOK {
				t.Fatalf("ClearFaults: %d %s", c.Code, c.Body)
			}
		}
		checkAnswer(t, rec)
		if rec.Code >= 400 && rec.Code < 500 {
			if diff := cmp.Diff(before, ft.snapshot(t)); diff != "" {
				t.Fatalf("%s answered %d %s but changed the state (-before +after):\n%s", action, rec.Code, rec.Body, diff)
			}
		}
	})
}

func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Header().Get(api.HeaderRequestID) == "" {
		t.Errorf("no %s header", api.HeaderRequestID)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("answer %d is not valid JSON: %q", rec.Code, rec.Body)
	}
	if rec.Code >= 500 {
		t.Fatalf("server error %d: %s", rec.Code, rec.Body)
	}
	if rec.Code < 400 {
		return
	}
	var e api.ErrorResponse
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("error answer %d is not an ErrorResponse with code and message: %s", rec.Code, rec.Body)
	}
	want := api.HTTPStatus(e.Error.Code)
	if rec.Code != want && rec.Code != http.StatusRequestEntityTooLarge && rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("status %d for code %s, want %d", rec.Code, e.Error.Code, want)
	}
}
