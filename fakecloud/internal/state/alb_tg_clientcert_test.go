package state

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// TestTargetGroupClientCertificateRefusesBadInput: a ClientCertificateId on a group that is not
// HTTPS is ValidationError naming the field; an unknown one CertificateNotFound, as a listener's.
// Neither stores anything.
func TestTargetGroupClientCertificateRefusesBadInput(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.0.0.0/16", "10.0.0.0/24")
	cert := importCert(t, s, "lb.example.com")
	for _, tc := range []struct {
		name     string
		protocol string
		id       string
		code     *api.Error
		want     string
	}{
		{"on an HTTP group", api.ProtocolHTTP, cert.CertificateID, api.ErrValidationError,
			"ClientCertificateId applies to HTTPS and TLS target groups only; Protocol is HTTP"},
		{"on a TCP group", api.ProtocolTCP, cert.CertificateID, api.ErrValidationError,
			"ClientCertificateId applies to HTTPS and TLS target groups only; Protocol is TCP"},
		{"unknown certificate", api.ProtocolHTTPS, "cert-404", api.ErrCertificateNotFound,
			`ClientCertificateId: certificate "cert-404" does not exist; import it with ImportCertificate`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "mtls", Protocol: tc.protocol, Port: 8443, VpcID: w.vpc,
				ClientCertificateID: tc.id})
			wantCode(t, err, tc.code)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
	if n := len(s.Snapshot().TargetGroups); n != 0 {
		t.Errorf("%d target groups stored after refusals", n)
	}
}

// TestTargetGroupClientCertificate: a group keeps its ClientCertificateId (Create, Describe,
// the change stream, the snapshot, a restart), with or without a TlsVerification; the same
// settings again answer the group, another certificate or none is DuplicateTargetGroupName.
// The certificate shows the group in InUseBy.
func TestTargetGroupClientCertificate(t *testing.T) {
	path := t.TempDir() + "/state.json"
	s := openT(t, Config{StateFile: path})
	w := newWorld(t, s, "10.0.0.0/16", "10.0.0.0/24")
	cert, other := importCert(t, s, "lb.example.com"), importCert(t, s, "other.example.com")
	req := func(name, certID string) *api.CreateTargetGroupRequest {
		return &api.CreateTargetGroupRequest{Name: name, Protocol: api.ProtocolHTTPS, Port: 8443, VpcID: w.vpc, ClientCertificateID: certID}
	}
	since := s.Seq()
	created, err := s.CreateTargetGroup(admin(), req("mtls", cert.CertificateID))
	mustOK(t, err)
	id := created.TargetGroup.TargetGroupID
	if got := created.TargetGroup.ClientCertificateID; got != cert.CertificateID {
		t.Errorf("CreateTargetGroup's ClientCertificateId %q, want %s", got, cert.CertificateID)
	}
	ch, err := s.WaitChanges(context.Background(), since)
	mustOK(t, err)
	seen := map[string]bool{}
	for _, c := range ch.Changes {
		switch {
		case c.TargetGroup != nil && c.TargetGroup.TargetGroupID == id:
			seen["group"] = c.TargetGroup.ClientCertificateID == cert.CertificateID
		case c.Certificate != nil && c.Certificate.CertificateID == cert.CertificateID:
			seen["certificate"] = slices0(c.Certificate.InUseBy) == id
		}
	}
	if !seen["group"] || !seen["certificate"] {
		t.Errorf("the change stream shows %v; want the group with its certificate and the certificate used by it (%+v)", seen, ch.Changes)
	}
	again, err := s.CreateTargetGroup(admin(), req("mtls", cert.CertificateID))
	mustOK(t, err)
	if again.TargetGroup.TargetGroupID != id {
		t.Errorf("the same settings again made %s, want %s", again.TargetGroup.TargetGroupID, id)
	}
	for name, certID := range map[string]string{"none": "", "another certificate": other.CertificateID} {
		_, err := s.CreateTargetGroup(admin(), req("mtls", certID))
		wantCode(t, err, api.ErrDuplicateTargetGroupName)
		if err != nil && !strings.Contains(err.Error(), "with other settings") {
			t.Errorf("%s: %v", name, err)
		}
	}
	ca, _ := testCert(t, []string{"ca.example.com"}, time.Now().Add(time.Hour))
	verified := req("verified", other.CertificateID)
	verified.TLSVerification = &api.TLSVerification{ServerName: "web.example.com", CACertificatesPEM: ca}
	both, err := s.CreateTargetGroup(admin(), verified)
	mustOK(t, err)
	if both.TargetGroup.ClientCertificateID != other.CertificateID || both.TargetGroup.TLSVerification == nil {
		t.Errorf("a group with a TlsVerification and a client certificate: %+v", both.TargetGroup)
	}
	plain, err := s.CreateTargetGroup(admin(), req("plain", ""))
	mustOK(t, err)
	if plain.TargetGroup.ClientCertificateID != "" {
		t.Errorf("a group created without a client certificate has %q", plain.TargetGroup.ClientCertificateID)
	}
	d, err := s.DescribeTargetGroups(admin(), &api.DescribeTargetGroupsRequest{TargetGroupIDs: []string{id}})
	mustOK(t, err)
	if got := d.TargetGroups[0].ClientCertificateID; got != cert.CertificateID {
		t.Errorf("DescribeTargetGroups' ClientCertificateId %q, want %s", got, cert.CertificateID)
	}
	dc, err := s.DescribeCertificates(admin(), &api.DescribeCertificatesRequest{CertificateIDs: []string{cert.CertificateID}})
	mustOK(t, err)
	if diff := cmp.Diff([]string{id}, dc.Certificates[0].InUseBy); diff != "" {
		t.Errorf("the certificate's InUseBy (-want +got):\n%s", diff)
	}
	before := s.Snapshot().TargetGroups
	mustOK(t, s.Close())
	s = openT(t, Config{StateFile: path})
	after := s.Snapshot().TargetGroups
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("restart changed the target groups (-before +after):\n%s", diff)
	}
	found := false
	for _, tg := range after {
		if tg.TargetGroupID == id {
			found = tg.ClientCertificateID == cert.CertificateID
		}
	}
	if !found {
		t.Errorf("after a restart the snapshot lacks %s with %s: %+v", id, cert.CertificateID, after)
	}
	// The index is rebuilt from the state file: the certificate is still in use.
	_, err = s.DeleteCertificate(admin(), &api.DeleteCertificateRequest{CertificateID: cert.CertificateID})
	wantCode(t, err, api.ErrResourceInUse)
}

// TestCertificateInUseByTargetGroup: a certificate a target group presents cannot be deleted
// (ResourceInUse naming the group, as for a listener's); once the group is gone it can, and
// InUseBy no longer names the group.
func TestCertificateInUseByTargetGroup(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.0.0.0/16", "10.0.0.0/24")
	cert := importCert(t, s, "lb.example.com")
	tg, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "mtls", Protocol: api.ProtocolHTTPS, Port: 8443, VpcID: w.vpc,
		ClientCertificateID: cert.CertificateID})
	mustOK(t, err)
	id := tg.TargetGroup.TargetGroupID
	_, err = s.DeleteCertificate(admin(), &api.DeleteCertificateRequest{CertificateID: cert.CertificateID})
	wantCode(t, err, api.ErrResourceInUse)
	want := "certificate " + cert.CertificateID + " is in use by target group " + id + " (mtls), which presents it to its targets; delete the target group first"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	_, err = s.DeleteTargetGroup(admin(), &api.DeleteTargetGroupRequest{TargetGroupID: id})
	mustOK(t, err)
	dc, err := s.DescribeCertificates(admin(), &api.DescribeCertificatesRequest{CertificateIDs: []string{cert.CertificateID}})
	mustOK(t, err)
	if len(dc.Certificates[0].InUseBy) != 0 {
		t.Errorf("InUseBy after the group's deletion: %v", dc.Certificates[0].InUseBy)
	}
	_, err = s.DeleteCertificate(admin(), &api.DeleteCertificateRequest{CertificateID: cert.CertificateID})
	mustOK(t, err)
}

// slices0 is the one element of s, or "" when s has not exactly one.
func slices0(s []string) string {
	if len(s) != 1 {
		return ""
	}
	return s[0]
}
