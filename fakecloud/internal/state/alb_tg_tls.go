package state

import (
	"fmt"
	"net/url"
	"slices"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Limits of a target group's TlsVerification: roots of the size of an imported certificate,
// and more names than Gateway API's BackendTLSPolicy allows (5).
const (
	maxTLSCAPEM     = 64 << 10
	maxTLSSANs      = 16
	maxTLSSANURILen = 2048
)

// speaksTLS tells whether the load balancer speaks TLS to the targets of a group of the
// protocol: HTTPS groups (HTTP over TLS) and TLS groups (the stream of a terminating TLS
// listener, encrypted again). Those groups take a TlsVerification and a ClientCertificateId.
func speaksTLS(protocol string) bool {
	return protocol == api.ProtocolHTTPS || protocol == api.ProtocolTLS
}

// validateTLSVerification checks an HTTPS or TLS group's TlsVerification and answers the copy
// to store (nil for none). The roots must parse: a group that could verify no target would
// only show as 502s (closed connections for a TLS group).
func validateTLSVerification(protocol string, v *api.TLSVerification) (*api.TLSVerification, error) {
	if v == nil {
		return nil, nil
	}
	if !speaksTLS(protocol) {
		return nil, invalid("TlsVerification applies to HTTPS and TLS target groups only; Protocol is %s", protocol)
	}
	if v.ServerName == "" {
		return nil, invalid("TlsVerification.ServerName is required: the name sent as SNI and, without SubjectAltNames, the name the targets' certificates must hold")
	}
	if err := validateHostName("TlsVerification.ServerName", v.ServerName, false); err != nil {
		return nil, err
	}
	switch {
	case v.CACertificatesPEM != "" && v.UseSystemRoots:
		return nil, invalid("TlsVerification: give CaCertificatesPem or UseSystemRoots, not both")
	case v.CACertificatesPEM == "" && !v.UseSystemRoots:
		return nil, invalid("TlsVerification: give the roots the targets' chains must end at, CaCertificatesPem (PEM) or UseSystemRoots")
	case len(v.CACertificatesPEM) > maxTLSCAPEM:
		return nil, invalid("TlsVerification.CaCertificatesPem is %d bytes; at most %d", len(v.CACertificatesPEM), maxTLSCAPEM)
	case v.CACertificatesPEM != "":
		certs, err := pemCertificates("TlsVerification.CaCertificatesPem", v.CACertificatesPEM)
		if err != nil {
			return nil, err
		}
		if len(certs) == 0 {
			return nil, invalid("TlsVerification.CaCertificatesPem holds no PEM CERTIFICATE block")
		}
	}
	if len(v.SubjectAltNames) > maxTLSSANs {
		return nil, invalid("TlsVerification.SubjectAltNames has %d names; at most %d", len(v.SubjectAltNames), maxTLSSANs)
	}
	for i, san := range v.SubjectAltNames {
		if err := validateSAN(fmt.Sprintf("TlsVerification.SubjectAltNames[%d]", i), san); err != nil {
			return nil, err
		}
		if slices.Contains(v.SubjectAltNames[:i], san) {
			return nil, invalid("TlsVerification.SubjectAltNames[%d]: %s %.60q is listed twice", i, san.Type, san.Value)
		}
	}
	out := clonePlain(*v)
	return &out, nil
}

func validateSAN(f string, san api.SubjectAltName) error {
	switch san.Type {
	case api.SANTypeHostname:
		return validateHostName(f+".Value", san.Value, true)
	case api.SANTypeURI:
		if san.Value == "" || len(san.Value) > maxTLSSANURILen {
			return invalid("%s.Value must be an absolute URI of 1..%d characters", f, maxTLSSANURILen)
		}
		u, err := url.Parse(san.Value)
		if err != nil {
			return invalid("%s.Value %.60q is not a URI: %v", f, san.Value, err)
		}
		if !u.IsAbs() || hasControl(san.Value) {
			return invalid("%s.Value %.60q must be an absolute URI (scheme:rest, e.g. spiffe://cluster.local/ns/web/sa/app)", f, san.Value)
		}
		return nil
	}
	return invalid("%s.Type %.20q must be Hostname or URI", f, san.Type)
}

// sameTLSVerification reports whether two stored TlsVerifications are the same settings.
func sameTLSVerification(a, b *api.TLSVerification) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ServerName == b.ServerName && a.CACertificatesPEM == b.CACertificatesPEM && a.UseSystemRoots == b.UseSystemRoots &&
		slices.Equal(a.SubjectAltNames, b.SubjectAltNames)
}

// checkClientCertificate checks that the certificate an HTTPS or TLS group would present to its
// targets ("": none) exists; its code is the listeners' for a certificate that does not.
func checkClientCertificate(txn *memdb.Txn, id string) error {
	if id == "" || first[certRec](txn, tableCertificates, indexID, id) != nil {
		return nil
	}
	return api.Errorf(api.CodeCertificateNotFound, "ClientCertificateId: certificate %q does not exist; import it with ImportCertificate", id)
}
