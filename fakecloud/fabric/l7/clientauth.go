package l7

import (
	"crypto/tls"
	"crypto/x509"
)

// clientAuth compiles an HTTPS listener's ClientAuth: Go's ClientAuthType and the pool of
// CAs (nil: none named).
func (c *checker) clientAuth(f string, ca *ClientAuth) (tls.ClientAuthType, *x509.CertPool) {
	if ca == nil {
		return tls.NoClientCert, nil
	}
	var pool *x509.CertPool
	if len(ca.CAPEM) > 0 {
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca.CAPEM) {
			c.bad(f+".caPEM", "holds no PEM certificate")
		}
	}
	if !ca.Verify {
		return tls.RequestClientCert, pool
	}
	if pool == nil {
		c.bad(f+".caPEM", "required to verify clients' certificates: the CA certificates their chains must end at")
	}
	return tls.RequireAndVerifyClientCert, pool
}

// configForClient is an HTTPS server's GetConfigForClient: base (nil) for a listener that
// asks for no client certificate, else base with the listener's current client
// authentication, read at each handshake so a new configuration applies to the next one.
// Session resumption is off there, so each handshake is judged by the configuration it
// meets, not by a ticket issued under an earlier one (with other CAs, or none asked for).
func configForClient(base *tls.Config, cur func() *listener) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	return func(*tls.ClientHelloInfo) (*tls.Config, error) {
		l := cur()
		if l.clientAuth == tls.NoClientCert {
			return nil, nil
		}
		conf := base.Clone()
		conf.GetConfigForClient = nil
		conf.ClientAuth, conf.ClientCAs = l.clientAuth, l.clientCAs
		conf.SessionTicketsDisabled = true
		return conf, nil
	}
}
