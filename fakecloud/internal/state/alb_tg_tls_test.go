package state

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// TestTargetGroupTLSVerificationRefusesBadInput: each bad TlsVerification is ValidationError
// with a message naming the field, and stores nothing.
func TestTargetGroupTLSVerificationRefusesBadInput(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.0.0.0/16", "10.0.0.0/24")
	ca, key := testCert(t, []string{"ca.example.com"}, time.Now().Add(time.Hour))
	good := func(edit func(v *api.TLSVerification)) *api.TLSVerification {
		v := &api.TLSVerification{ServerName: "web.example.com", CACertificatesPEM: ca}
		edit(v)
		return v
	}
	sans := func(n int) []api.SubjectAltName {
		out := make([]api.SubjectAltName, n)
		for i := range out {
			out[i] = api.SubjectAltName{Type: api.SANTypeHostname, Value: fmt.Sprintf("n%d.example.com", i)}
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		protocol string
		v        *api.TLSVerification
		want     string
	}{
		{"on an HTTP group", api.ProtocolHTTP, good(func(*api.TLSVerification) {}),
			"TlsVerification applies to HTTPS and TLS target groups only; Protocol is HTTP"},
		{"on a TCP group", api.ProtocolTCP, good(func(*api.TLSVerification) {}),
			"TlsVerification applies to HTTPS and TLS target groups only; Protocol is TCP"},
		{"no server name", "", good(func(v *api.TLSVerification) { v.ServerName = "" }),
			"TlsVerification.ServerName is required: the name sent as SNI and, without SubjectAltNames, the name the targets' certificates must hold"},
		{"wildcard server name", "", good(func(v *api.TLSVerification) { v.ServerName = "*.example.com" }),
			`TlsVerification.ServerName "*.example.com" must be a DNS name (letters, digits, hyphens and dots) of at most 128 characters`},
		{"server name with a port", "", good(func(v *api.TLSVerification) { v.ServerName = "web.example.com:443" }),
			`TlsVerification.ServerName "web.example.com:443" must be a DNS name`},
		{"no roots", "", good(func(v *api.TLSVerification) { v.CACertificatesPEM = "" }),
			"TlsVerification: give the roots the targets' chains must end at, CaCertificatesPem (PEM) or UseSystemRoots"},
		{"both roots", "", good(func(v *api.TLSVerification) { v.UseSystemRoots = true }),
			"TlsVerification: give CaCertificatesPem or UseSystemRoots, not both"},
		{"roots too big", "", good(func(v *api.TLSVerification) { v.CACertificatesPEM = strings.Repeat(ca, 64<<10/len(ca)+1) }),
			"TlsVerification.CaCertificatesPem is "},
		{"roots not PEM", "", good(func(v *api.TLSVerification) { v.CACertificatesPEM = "hello" }),
			"TlsVerification.CaCertificatesPem holds no PEM CERTIFICATE block"},
		{"a key in the roots", "", good(func(v *api.TLSVerification) { v.CACertificatesPEM = key }),
			`TlsVerification.CaCertificatesPem: PEM block 0 is "PRIVATE KEY"; want CERTIFICATE blocks only`},
		{"garbage roots", "", good(func(v *api.TLSVerification) {
			v.CACertificatesPEM = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n"
		}), "TlsVerification.CaCertificatesPem: PEM block 0 is not a valid X.509 certificate"},
		{"text after the roots", "", good(func(v *api.TLSVerification) { v.CACertificatesPEM = ca + "junk" }),
			"TlsVerification.CaCertificatesPem: text after PEM block 1 is not PEM"},
		{"too many names", "", good(func(v *api.TLSVerification) { v.SubjectAltNames = sans(17) }),
			"TlsVerification.SubjectAltNames has 17 names; at most 16"},
		{"unknown name type", "", good(func(v *api.TLSVerification) {
			v.SubjectAltNames = []api.SubjectAltName{{Type: "DNS", Value: "a.example.com"}}
		}), `TlsVerification.SubjectAltNames[0].Type "DNS" must be Hostname or URI`},
		{"bad hostname", "", good(func(v *api.TLSVerification) {
			v.SubjectAltNames = []api.SubjectAltName{{Type: api.SANTypeHostname, Value: "a.example.com"}, {Type: api.SANTypeHostname, Value: "a..example.com"}}
		}), `TlsVerification.SubjectAltNames[1].Value "a..example.com" must be a DNS name (letters, digits, hyphens and dots), optionally with a leading "*." label`},
		{"wildcard inside", "", good(func(v *api.TLSVerification) {
			v.SubjectAltNames = []api.SubjectAltName{{Type: api.SANTypeHostname, Value: "a.*.example.com"}}
		}), `TlsVerification.SubjectAltNames[0].Value "a.*.example.com" must be a DNS name`},
		{"relative URI", "", good(func(v *api.TLSVerification) {
			v.SubjectAltNames = []api.SubjectAltName{{Type: api.SANTypeURI, Value: "/ns/web"}}
		}), `TlsVerification.SubjectAltNames[0].Value "/ns/web" must be an absolute URI (scheme:rest, e.g. spiffe://cluster.local/ns/web/sa/app)`},
		{"unparsable URI", "", good(func(v *api.TLSVerification) {
			v.SubjectAltNames = []api.SubjectAltName{{Type: api.SANTypeURI, Value: "spiffe://a b/%zz"}}
		}), `TlsVerification.SubjectAltNames[0].Value "spiffe://a b/%zz" is not a URI: `},
		{"empty URI", "", good(func(v *api.TLSVerification) {
			v.SubjectAltNames = []api.SubjectAltName{{Type: api.SANTypeURI}}
		}), "TlsVerification.SubjectAltNames[0].Value must be an absolute URI of 1..2048 characters"},
		{"a name twice", "", good(func(v *api.TLSVerification) {
			v.SubjectAltNames = []api.SubjectAltName{{Type: api.SANTypeURI, Value: "spiffe://td/web"}, {Type: api.SANTypeURI, Value: "spiffe://td/web"}}
		}), `TlsVerification.SubjectAltNames[1]: URI "spiffe://td/web" is listed twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			protocol := tc.protocol
			if protocol == "" {
				protocol = api.ProtocolHTTPS
			}
			_, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "tls", Protocol: protocol, Port: 8443, VpcID: w.vpc, TLSVerification: tc.v})
			wantCode(t, err, api.ErrValidationError)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
	if n := len(s.Snapshot().TargetGroups); n != 0 {
		t.Errorf("%d target groups stored after refusals", n)
	}
}

// TestTargetGroupTLSVerification: a group keeps its TlsVerification (Create, Describe, the
// snapshot, a restart); the same settings again answer the group, other ones are
// DuplicateTargetGroupName.
func TestTargetGroupTLSVerification(t *testing.T) {
	path := t.TempDir() + "/state.json"
	s := openT(t, Config{StateFile: path})
	w := newWorld(t, s, "10.0.0.0/16", "10.0.0.0/24")
	ca, _ := testCert(t, []string{"ca.example.com"}, time.Now().Add(time.Hour))
	want := &api.TLSVerification{ServerName: "web.example.com", CACertificatesPEM: ca, SubjectAltNames: []api.SubjectAltName{
		{Type: api.SANTypeHostname, Value: "*.web.example.com"}, {Type: api.SANTypeURI, Value: "spiffe://cluster.local/ns/web/sa/app"}}}
	req := func(v *api.TLSVerification) *api.CreateTargetGroupRequest {
		return &api.CreateTargetGroupRequest{Name: "tls", Protocol: api.ProtocolHTTPS, Port: 8443, VpcID: w.vpc, TLSVerification: v}
	}
	in := clonePlain(want)
	created, err := s.CreateTargetGroup(admin(), req(in))
	mustOK(t, err)
	in.SubjectAltNames[0].Value = "changed.example.com" // the store keeps no reference to the request
	id := created.TargetGroup.TargetGroupID
	if diff := cmp.Diff(want, created.TargetGroup.TLSVerification); diff != "" {
		t.Errorf("CreateTargetGroup's TlsVerification (-want +got):\n%s", diff)
	}
	again, err := s.CreateTargetGroup(admin(), req(clonePlain(want)))
	mustOK(t, err)
	if again.TargetGroup.TargetGroupID != id {
		t.Errorf("the same settings again made %s, want %s", again.TargetGroup.TargetGroupID, id)
	}
	for name, other := range map[string]*api.TLSVerification{
		"none":            nil,
		"system roots":    {ServerName: "web.example.com", UseSystemRoots: true},
		"other name":      {ServerName: "api.example.com", CACertificatesPEM: ca, SubjectAltNames: want.SubjectAltNames},
		"fewer alt names": {ServerName: "web.example.com", CACertificatesPEM: ca, SubjectAltNames: want.SubjectAltNames[:1]},
	} {
		_, err := s.CreateTargetGroup(admin(), req(other))
		wantCode(t, err, api.ErrDuplicateTargetGroupName)
		if err != nil && !strings.Contains(err.Error(), "with other settings") {
			t.Errorf("%s: %v", name, err)
		}
	}
	plain, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "plain", Protocol: api.ProtocolHTTPS, Port: 8443, VpcID: w.vpc})
	mustOK(t, err)
	if plain.TargetGroup.TLSVerification != nil {
		t.Errorf("a group created without TlsVerification has %+v", plain.TargetGroup.TLSVerification)
	}
	d, err := s.DescribeTargetGroups(admin(), &api.DescribeTargetGroupsRequest{TargetGroupIDs: []string{id}})
	mustOK(t, err)
	if diff := cmp.Diff(want, d.TargetGroups[0].TLSVerification); diff != "" {
		t.Errorf("DescribeTargetGroups' TlsVerification (-want +got):\n%s", diff)
	}
	d.TargetGroups[0].TLSVerification.ServerName = "scribbled.example.com" // an answer shares nothing with the record
	before := s.Snapshot().TargetGroups
	mustOK(t, s.Close())
	after := openT(t, Config{StateFile: path}).Snapshot().TargetGroups
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("restart changed the target groups (-before +after):\n%s", diff)
	}
	for _, tg := range after {
		if tg.TargetGroupID == id {
			if diff := cmp.Diff(want, tg.TLSVerification); diff != "" {
				t.Errorf("TlsVerification after a restart (-want +got):\n%s", diff)
			}
		}
	}
}
