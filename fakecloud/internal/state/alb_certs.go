package state

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Certificate size limits (ACM's are of the same order).
const (
	maxCertPEM  = 64 << 10
	maxChainPEM = 256 << 10
	maxKeyPEM   = 16 << 10
)

// parsedCert is a validated import: the leaf, its chain and the key, as PEM again.
type parsedCert struct {
	leaf     *x509.Certificate
	leafPEM  string
	chainPEM string
	keyPEM   string
	keyAlg   string
}

// parseCertificate validates an import: PEM that parses, a private key that is the leaf's,
// a leaf that has not expired at now.
func parseCertificate(req *api.ImportCertificateRequest, now time.Time) (*parsedCert, error) {
	switch {
	case strings.TrimSpace(req.Certificate) == "":
		return nil, invalid("Certificate is required: the PEM certificate (leaf first, then any chain)")
	case strings.TrimSpace(req.PrivateKey) == "":
		return nil, invalid("PrivateKey is required: the PEM private key of the certificate")
	case len(req.Certificate) > maxCertPEM:
		return nil, invalid("Certificate is %d bytes; at most %d", len(req.Certificate), maxCertPEM)
	case len(req.CertificateChain) > maxChainPEM:
		return nil, invalid("CertificateChain is %d bytes; at most %d", len(req.CertificateChain), maxChainPEM)
	case len(req.PrivateKey) > maxKeyPEM:
		return nil, invalid("PrivateKey is %d bytes; at most %d", len(req.PrivateKey), maxKeyPEM)
	}
	certs, err := pemCertificates("Certificate", req.Certificate)
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, invalid("Certificate holds no PEM CERTIFICATE block")
	}
	chain := certs[1:]
	if req.CertificateChain != "" {
		more, err := pemCertificates("CertificateChain", req.CertificateChain)
		if err != nil {
			return nil, err
		}
		if len(more) == 0 {
			return nil, invalid("CertificateChain holds no PEM CERTIFICATE block")
		}
		chain = append(chain, more...)
	}
	leaf := certs[0]
	key, keyPEM, err := pemPrivateKey(req.PrivateKey)
	if err != nil {
		return nil, err
	}
	alg, err := checkKeyMatches(leaf, key)
	if err != nil {
		return nil, err
	}
	if !now.Before(leaf.NotAfter) {
		return nil, invalid("Certificate expired at %s; import a current certificate", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if leaf.NotBefore.After(leaf.NotAfter) {
		return nil, invalid("Certificate is never valid: NotBefore %s is after NotAfter %s", leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if len(certNames(leaf)) == 0 {
		return nil, invalid("Certificate names no host: it has neither DNS subject alternative names nor a subject common name")
	}
	p := &parsedCert{leaf: leaf, leafPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})), keyPEM: keyPEM, keyAlg: alg}
	for _, c := range chain {
		p.chainPEM += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return p, nil
}

func pemCertificates(field, s string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for i := 0; ; i++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			if i > 0 && strings.TrimSpace(string(rest)) != "" {
				return nil, invalid("%s: text after PEM block %d is not PEM", field, i)
			}
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			hint := ""
			if !strings.HasSuffix(field, ".CaCertificatesPem") { // a CA bundle has no key
				hint = " (the key goes in PrivateKey)"
			}
			return nil, invalid("%s: PEM block %d is %q; want CERTIFICATE blocks only%s", field, i, b.Type, hint)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, invalid("%s: PEM block %d is not a valid X.509 certificate: %v", field, i, err)
		}
		out = append(out, c)
	}
}

// pemPrivateKey parses the one key block (PKCS#1, SEC 1 or PKCS#8) and re-encodes it as PKCS#8.
func pemPrivateKey(s string) (crypto.Signer, string, error) {
	b, rest := pem.Decode([]byte(s))
	if b == nil {
		return nil, "", invalid("PrivateKey is not PEM: want one PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, "", invalid("PrivateKey holds more than one PEM block; give the certificate's key only")
	}
	var key any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, "", invalid("PrivateKey is encrypted; import it unencrypted")
	default:
		return nil, "", invalid("PrivateKey is a PEM %q block; want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY", b.Type)
	}
	if err != nil {
		return nil, "", invalid("PrivateKey does not parse as a %s: %v", b.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, "", invalid("PrivateKey is a %T, which cannot sign TLS handshakes", key)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", invalid("PrivateKey cannot be stored: %v", err)
	}
	return signer, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// checkKeyMatches checks that key is the leaf's and that it is a key TLS can use; it returns
// the key's algorithm as ACM names them.
func checkKeyMatches(leaf *x509.Certificate, key crypto.Signer) (string, error) {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	pub, ok := key.Public().(equaler)
	if !ok || !pub.Equal(leaf.PublicKey) {
		return "", invalid("PrivateKey does not match Certificate: the certificate's public key belongs to another private key (is the leaf first in Certificate?)")
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if n := k.N.BitLen(); n < 2048 {
			return "", invalid("PrivateKey is RSA %d; use at least 2048 bits", n)
		}
		return fmt.Sprintf("RSA_%d", k.N.BitLen()), nil
	case *ecdsa.PrivateKey:
		return "EC_" + strings.ReplaceAll(strings.ToLower(k.Curve.Params().Name), "-", ""), nil
	case ed25519.PrivateKey:
		return "ED25519", nil
	}
	return "", invalid("PrivateKey is a %T; use RSA, ECDSA or Ed25519", key)
}

// certNames are the host names a certificate serves: its DNS SANs, else its common name.
func certNames(c *x509.Certificate) []string {
	if len(c.DNSNames) > 0 {
		return slices.Clone(c.DNSNames)
	}
	if c.Subject.CommonName != "" {
		return []string{c.Subject.CommonName}
	}
	return nil
}

// ImportCertificate stores a certificate and its key for HTTPS listeners.
func (s *Store) ImportCertificate(c Call, req *api.ImportCertificateRequest) (*api.ImportCertificateResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionImportCertificate); err != nil {
		return nil, err
	}
	p, err := parseCertificate(req, c.Now)
	if err != nil {
		return nil, err
	}
	if err := validateLBTags(req.Tags); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionImportCertificate, req.ClientToken, req, func(t *tx) (*api.ImportCertificateResponse, error) {
		if n := count(t.Txn, tableCertificates, indexID); n >= s.cfg.ALBLimits.Certificates {
			return nil, api.Errorf(api.CodeTooManyCertificates, "the account has %d certificates, the most it may hold; delete one first", n)
		}
		names := certNames(p.leaf)
		r := &certRec{
			ID: newID(t.Txn, tableCertificates, "cert"), LeafPEM: p.leafPEM, ChainPEM: p.chainPEM, KeyPEM: p.keyPEM,
			DomainName: names[0], SANs: p.leaf.DNSNames, Issuer: p.leaf.Issuer.String(), Serial: p.leaf.SerialNumber.Text(16),
			KeyAlgorithm: p.keyAlg, NotBefore: p.leaf.NotBefore, NotAfter: p.leaf.NotAfter, Tags: tagMap(req.Tags), Created: c.Now,
		}
		if err := t.put(tableCertificates, api.KindCertificate, r.ID, r); err != nil {
			return nil, err
		}
		return &api.ImportCertificateResponse{Certificate: certView(t.Txn, r)}, nil
	})
}

// DescribeCertificates lists certificates, all or the named ones, never with their keys.
func (s *Store) DescribeCertificates(c Call, req *api.DescribeCertificatesRequest) (*api.DescribeCertificatesResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionDescribeCertificates); err != nil {
		return nil, err
	}
	txn := s.read()
	recs, err := selectByIDs[certRec](txn, tableCertificates, req.CertificateIDs, api.CodeCertificateNotFound, "certificate")
	if err != nil {
		return nil, err
	}
	out := &api.DescribeCertificatesResponse{Certificates: []api.Certificate{}}
	for _, r := range recs {
		out.Certificates = append(out.Certificates, certView(txn, r))
	}
	return out, nil
}

// DeleteCertificate deletes a certificate no listener serves and no target group presents.
func (s *Store) DeleteCertificate(c Call, req *api.DeleteCertificateRequest) (*api.DeleteCertificateResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionDeleteCertificate); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionDeleteCertificate, "", req, func(t *tx) (*api.DeleteCertificateResponse, error) {
		r, err := getCert(t.Txn, req.CertificateID)
		if err != nil {
			return nil, err
		}
		if l := first[listenerRec](t.Txn, tableListeners, indexCertificate, r.ID); l != nil {
			return nil, api.Errorf(api.CodeResourceInUse, "certificate %s is in use by listener %s of %s; remove it from the listener (or delete the listener) first", r.ID, l.ID, l.LoadBalancerID)
		}
		if g := first[tgRec](t.Txn, tableTargetGroups, indexCertificate, r.ID); g != nil {
			return nil, api.Errorf(api.CodeResourceInUse, "certificate %s is in use by target group %s (%s), which presents it to its targets; delete the target group first", r.ID, g.ID, g.Name)
		}
		if err := t.Delete(tableCertificates, r); err != nil {
			return nil, internal(err)
		}
		t.touch(api.KindCertificate, r.ID)
		return &api.DeleteCertificateResponse{}, nil
	})
}

// CertificateKeyPair is the data plane's read path to a certificate with its private key
// (leaf and chain in one PEM, as a TLS server sends them). No API action answers it.
func (s *Store) CertificateKeyPair(id string) (api.CertificateKeyPair, bool) {
	r := first[certRec](s.read(), tableCertificates, indexID, id)
	if r == nil {
		return api.CertificateKeyPair{}, false
	}
	names := r.SANs
	if len(names) == 0 {
		names = []string{r.DomainName}
	}
	return api.CertificateKeyPair{
		CertificateID: r.ID, CertificatePem: r.LeafPEM + r.ChainPEM, PrivateKeyPem: r.KeyPEM, DNSNames: slices.Clone(names),
	}, true
}

func getCert(txn *memdb.Txn, id string) (*certRec, error) {
	if id == "" {
		return nil, invalid("CertificateId is required")
	}
	if r := first[certRec](txn, tableCertificates, indexID, id); r != nil {
		return r, nil
	}
	return nil, api.Errorf(api.CodeCertificateNotFound, "certificate %q does not exist; import it with ImportCertificate", id)
}

func certView(txn *memdb.Txn, r *certRec) api.Certificate {
	inUse := []string{}
	for _, l := range listBy[listenerRec](txn, tableListeners, indexCertificate, r.ID) {
		inUse = append(inUse, l.ID)
	}
	for _, g := range listBy[tgRec](txn, tableTargetGroups, indexCertificate, r.ID) {
		inUse = append(inUse, g.ID)
	}
	slices.Sort(inUse)
	return api.Certificate{
		CertificateID: r.ID, DomainName: r.DomainName, SubjectAlternativeNames: slices.Clone(r.SANs),
		Issuer: r.Issuer, Serial: r.Serial, KeyAlgorithm: r.KeyAlgorithm, NotBefore: r.NotBefore, NotAfter: r.NotAfter,
		ImportedAt: r.Created, CertificatePem: r.LeafPEM, CertificateChainPem: r.ChainPEM, InUseBy: inUse, Tags: tagList(r.Tags),
	}
}

// cloneJSON deep-copies plain data (records are immutable; views must not share their
// pointers with callers).
func cloneJSON[T any](v T) T {
	body, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("clone %T: %v", v, err)) // plain data always encodes
	}
	var out T
	if err := json.Unmarshal(body, &out); err != nil {
		panic(fmt.Sprintf("clone %T: %v", v, err))
	}
	return out
}
