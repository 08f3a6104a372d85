package state

import (
	"github.com/flatnet/flatnet/fakecloud/api"
)

// mutualAuthenticationOff is ModifyListener's Mode that removes a listener's
// MutualAuthentication.
const mutualAuthenticationOff = "off"

// validateMutualAuthentication checks an HTTPS listener's MutualAuthentication and answers the
// copy to store (nil for none). The CA bundle must parse: a verify listener that trusts no
// certificate would refuse every client's handshake, which shows only as clients' TLS errors.
func validateMutualAuthentication(protocol string, m *api.MutualAuthentication) (*api.MutualAuthentication, error) {
	if m == nil {
		return nil, nil
	}
	if protocol != api.ProtocolHTTPS {
		return nil, invalid("MutualAuthentication applies to HTTPS listeners only (clients present certificates in the TLS handshake the listener terminates); Protocol is %s", protocol)
	}
	switch m.Mode {
	case api.MutualAuthenticationVerify:
		if m.CACertificatesPEM == "" {
			return nil, invalid("MutualAuthentication.CaCertificatesPem is required with Mode verify: the CA certificates (PEM) clients' certificate chains must end at")
		}
	case api.MutualAuthenticationPassthrough:
	case "":
		return nil, invalid("MutualAuthentication.Mode is required: verify (clients must present a certificate the CA bundle verifies) or passthrough (a certificate is asked for, not required or checked)")
	case mutualAuthenticationOff:
		return nil, invalid("MutualAuthentication.Mode off removes a listener's MutualAuthentication in ModifyListener; CreateListener takes verify or passthrough, or no MutualAuthentication")
	default:
		return nil, invalid("MutualAuthentication.Mode %.20q must be verify or passthrough (or, in ModifyListener, off to remove it)", m.Mode)
	}
	if len(m.CACertificatesPEM) > maxTLSCAPEM {
		return nil, invalid("MutualAuthentication.CaCertificatesPem is %d bytes; at most %d", len(m.CACertificatesPEM), maxTLSCAPEM)
	}
	if m.CACertificatesPEM != "" {
		certs, err := pemCertificates("MutualAuthentication.CaCertificatesPem", m.CACertificatesPEM)
		if err != nil {
			return nil, err
		}
		if len(certs) == 0 {
			return nil, invalid("MutualAuthentication.CaCertificatesPem holds no PEM CERTIFICATE block")
		}
	}
	out := clonePlain(*m)
	return &out, nil
}

// modifiedMutualAuthentication is the MutualAuthentication a ModifyListener request leaves a
// listener holding cur: the request's when present, none for Mode off, else cur.
func modifiedMutualAuthentication(cur, req *api.MutualAuthentication) (*api.MutualAuthentication, error) {
	switch {
	case req == nil:
		return cur, nil
	case req.Mode != mutualAuthenticationOff:
		return req, nil
	case req.CACertificatesPEM != "":
		return nil, invalid("MutualAuthentication: Mode off removes client certificate validation and takes no CaCertificatesPem")
	}
	return nil, nil
}

// sameMutualAuthentication reports whether two stored MutualAuthentications are the same
// settings.
func sameMutualAuthentication(a, b *api.MutualAuthentication) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
