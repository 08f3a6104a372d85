package l7

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// certSet picks an HTTPS listener's certificate by SNI.
type certSet struct {
	exact    map[string]*tls.Certificate
	wildcard []wildcardCert // longest suffix first
	fallback *tls.Certificate
}

type wildcardCert struct {
	suffix string // ".example.com"
	cert   *tls.Certificate
}

func (c *checker) certificates(f string, certs []Certificate) *certSet {
	s := &certSet{exact: map[string]*tls.Certificate{}}
	if len(certs) == 0 {
		c.bad(f, "an HTTPS listener needs at least one certificate")
		return s
	}
	defaults := 0
	for i, cert := range certs {
		ff := fmt.Sprintf("%s[%d]", f, i)
		kp, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
		if err != nil {
			c.bad(ff, "certificate %q: not a PEM certificate chain and matching key: %v", cert.Name, err)
			continue
		}
		names := cert.Hostnames
		if len(names) == 0 && kp.Leaf != nil {
			names = kp.Leaf.DNSNames
		}
		for j, n := range names {
			if err := checkHostPattern(n); err != nil {
				c.bad(fmt.Sprintf("%s.hostnames[%d]", ff, j), "%v", err)
				continue
			}
			p := parseHostPattern(n)
			if p.wildcard {
				s.wildcard = append(s.wildcard, wildcardCert{suffix: p.name, cert: &kp})
			} else if _, dup := s.exact[p.name]; !dup {
				s.exact[p.name] = &kp
			}
		}
		if cert.Default {
			defaults++
			s.fallback = &kp
		}
		if s.fallback == nil && i == 0 {
			s.fallback = &kp
		}
	}
	if defaults > 1 {
		c.bad(f, "%d certificates are marked default; mark one", defaults)
	}
	// Most specific wildcard first; stable, so the first listed wins a tie.
	for i := 1; i < len(s.wildcard); i++ {
		for j := i; j > 0 && len(s.wildcard[j].suffix) > len(s.wildcard[j-1].suffix); j-- {
			s.wildcard[j], s.wildcard[j-1] = s.wildcard[j-1], s.wildcard[j]
		}
	}
	return s
}

// pick returns the certificate for a ClientHello's server name.
func (s *certSet) pick(serverName string) *tls.Certificate {
	name := strings.ToLower(strings.TrimSuffix(serverName, "."))
	if c := s.exact[name]; c != nil {
		return c
	}
	for _, w := range s.wildcard {
		if len(name) > len(w.suffix) && strings.HasSuffix(name, w.suffix) {
			return w.cert
		}
	}
	return s.fallback
}

// scopeSet finds the hostname scope a name falls in (see Listener.HostnameScopes).
type scopeSet struct {
	exact    map[string]int
	wildcard []wildcardScope // longest suffix first
}

type wildcardScope struct {
	pattern hostPattern
	index   int // in HostnameScopes
}

func (c *checker) scopes(f string, names []string) *scopeSet {
	if len(names) == 0 {
		return nil
	}
	s := &scopeSet{exact: map[string]int{}}
	seen := map[hostPattern]bool{}
	for i, n := range names {
		if err := checkHostPattern(n); err != nil {
			c.bad(fmt.Sprintf("%s[%d]", f, i), "%v", err)
			continue
		}
		p := parseHostPattern(n)
		if seen[p] {
			c.bad(fmt.Sprintf("%s[%d]", f, i), "%q is listed twice", n)
			continue
		}
		seen[p] = true
		if p.wildcard {
			s.wildcard = append(s.wildcard, wildcardScope{pattern: p, index: i})
		} else {
			s.exact[p.name] = i
		}
	}
	slices.SortStableFunc(s.wildcard, func(a, b wildcardScope) int { return len(b.pattern.name) - len(a.pattern.name) })
	return s
}

// of is the scope host (lowercase, no port) falls in: its index in HostnameScopes, or -1.
func (s *scopeSet) of(host string) int {
	if i, ok := s.exact[host]; ok {
		return i
	}
	for _, w := range s.wildcard {
		if w.pattern.matches(host) {
			return w.index
		}
	}
	return -1
}

// misdirected reports whether a request for host came on a TLS connection opened for a name
// of another scope.
func (s *scopeSet) misdirected(state *tls.ConnectionState, host string) bool {
	if s == nil || state == nil || state.ServerName == "" {
		return false
	}
	return s.of(requestHost(state.ServerName)) != s.of(host)
}
