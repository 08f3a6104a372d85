package l7

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// backendTLSKey is what a BackendTLS's client configuration is made from, to tell
// configurations (transports, health probes) apart without keeping the PEM.
func backendTLSKey(bt *BackendTLS) string {
	if bt == nil {
		return ""
	}
	return fmt.Sprintf("%s|%v|%x|%q|%x|%x", bt.ServerName, bt.InsecureSkipVerify, sha256.Sum256(bt.CAPEM), bt.SubjectAltNames,
		sha256.Sum256(bt.ClientCertPEM), sha256.Sum256(bt.ClientKeyPEM))
}

// backendTLS is the client TLS configuration of an HTTPS or TLS group (a TLS group's offers no
// ALPN: the caller clears NextProtos). ServerName is always the SNI.
// Without SubjectAltNames Go verifies the chain and ServerName; with them Go's check is off
// (InsecureSkipVerify, for that only) and VerifyConnection does it: the chain to the roots as
// Go would, then one of the names instead of ServerName. With a client certificate, it is
// presented to every target that asks for one.
func (c *checker) backendTLS(f string, bt *BackendTLS) *tls.Config {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if bt == nil {
		return conf
	}
	conf.ServerName = bt.ServerName
	conf.InsecureSkipVerify = bt.InsecureSkipVerify //nolint:gosec // the target group asks for it, as ELBv2's HTTPS groups do
	if len(bt.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(bt.CAPEM) {
			c.bad(f+".caPEM", "holds no PEM certificate")
		}
		conf.RootCAs = pool
	}
	for i, san := range bt.SubjectAltNames {
		ff := fmt.Sprintf("%s.subjectAltNames[%d]", f, i)
		if san.Type != SANHostname && san.Type != SANURI {
			c.bad(ff+".type", "%q is not Hostname or URI", san.Type)
		}
		if san.Value == "" {
			c.bad(ff+".value", "empty")
		}
	}
	if len(bt.ClientCertPEM) > 0 || len(bt.ClientKeyPEM) > 0 {
		cert, err := tls.X509KeyPair(bt.ClientCertPEM, bt.ClientKeyPEM)
		if err != nil {
			c.bad(f+".clientCertPEM", "not a PEM certificate chain and matching key: %v", err)
		} else {
			conf.GetClientCertificate = presentAlways(&cert)
		}
	}
	if len(bt.SubjectAltNames) > 0 && !bt.InsecureSkipVerify {
		roots, sans := conf.RootCAs, append([]SubjectAltName(nil), bt.SubjectAltNames...)
		conf.InsecureSkipVerify = true //nolint:gosec // VerifyConnection verifies the chain and the names
		conf.VerifyConnection = func(cs tls.ConnectionState) error { return verifySANs(cs, roots, sans) }
	}
	return conf
}

// presentAlways answers every certificate request with cert. (Go's own choice from
// Config.Certificates sends nothing when the target's acceptable CAs name no issuer of the
// chain; the target, not the load balancer, should be the one to refuse it.)
func presentAlways(cert *tls.Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
}

// verifySANs verifies a target's chain against roots (nil: the system's) for server
// authentication, then that its certificate holds one of sans.
func verifySANs(cs tls.ConnectionState, roots *x509.CertPool, sans []SubjectAltName) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the target sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	for _, san := range sans {
		if holdsSAN(leaf, san) {
			return nil
		}
	}
	names := make([]string, len(sans))
	for i, san := range sans {
		names[i] = string(san.Type) + " " + san.Value
	}
	return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates,
		Err: fmt.Errorf("x509: certificate holds none of the subject alternative names %s", strings.Join(names, ", "))}
}

func holdsSAN(leaf *x509.Certificate, san SubjectAltName) bool {
	switch san.Type {
	case SANHostname:
		if strings.HasPrefix(san.Value, "*.") { // VerifyHostname takes no wildcard: the certificate must hold this one
			for _, n := range leaf.DNSNames {
				if strings.EqualFold(n, san.Value) {
					return true
				}
			}
			return false
		}
		return leaf.VerifyHostname(san.Value) == nil
	case SANURI:
		for _, u := range leaf.URIs {
			if u.String() == san.Value {
				return true
			}
		}
	}
	return false
}
