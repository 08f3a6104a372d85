package aws

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"

	"github.com/flatnet/flatnet/providers"
)

// Certificates live in ACM: imported with tags, listed with their tags, deleted. A
// certificate's ID is its ACM ARN, which ELBv2's listeners name.

// acmKeyTypes are the key algorithms listed: ACM lists only RSA_1024 and RSA_2048 ones unless
// asked for others.
var acmKeyTypes = []acmtypes.KeyAlgorithm{
	acmtypes.KeyAlgorithmRsa1024, acmtypes.KeyAlgorithmRsa2048, acmtypes.KeyAlgorithmRsa3072, acmtypes.KeyAlgorithmRsa4096,
	acmtypes.KeyAlgorithmEcPrime256v1, acmtypes.KeyAlgorithmEcSecp384r1, acmtypes.KeyAlgorithmEcSecp521r1,
}

// acmCall runs one ACM operation, classifies its error and tells the observer.
func acmCall[In, Out any](ctx context.Context, d *LoadBalancing, op string,
	fn func(context.Context, *In, ...func(*acm.Options)) (*Out, error), in *In,
) (*Out, error) {
	start := time.Now()
	out, err := fn(ctx, in)
	err = classify(err)
	d.observe(op, time.Since(start), err)
	return out, err
}

// ListCertificates implements providers.Certificates: every certificate (paged), then the
// tags of each. InUseBy stays empty: ACM's list says only whether one is in use.
func (d *LoadBalancing) ListCertificates(ctx context.Context, tags map[string]string) ([]providers.Certificate, error) {
	var sums []acmtypes.CertificateSummary
	in := &acm.ListCertificatesInput{Includes: &acmtypes.Filters{KeyTypes: acmKeyTypes}, MaxItems: aws.Int32(1000)}
	for {
		resp, err := acmCall(ctx, d, "ListCertificates", d.acm.ListCertificates, in)
		if err != nil {
			return nil, err
		}
		sums = append(sums, resp.CertificateSummaryList...)
		if aws.ToString(resp.NextToken) == "" {
			break
		}
		in.NextToken = resp.NextToken
	}
	out := []providers.Certificate{}
	for _, s := range sums {
		resp, err := acmCall(ctx, d, "ListTagsForCertificate", d.acm.ListTagsForCertificate, &acm.ListTagsForCertificateInput{CertificateArn: s.CertificateArn})
		if goneOK(err) == nil && err != nil {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		have := map[string]string{}
		for _, t := range resp.Tags {
			have[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		if !matches(have, tags) {
			continue
		}
		names := s.SubjectAlternativeNameSummaries
		if len(names) == 0 && s.DomainName != nil {
			names = []string{aws.ToString(s.DomainName)}
		}
		out = append(out, providers.Certificate{ID: aws.ToString(s.CertificateArn), DNSNames: names, NotAfter: aws.ToTime(s.NotAfter), Tags: have})
	}
	return out, nil
}

func matches(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// ImportCertificate implements providers.Certificates. ACM takes no client token: a repeat
// after a lost answer imports a second copy, which the owner's collection of unused
// certificates deletes.
func (d *LoadBalancing) ImportCertificate(ctx context.Context, spec providers.CertificateSpec) (providers.Certificate, error) {
	leaf, err := leafOf(spec.CertificatePEM)
	if err != nil {
		return providers.Certificate{}, err
	}
	in := &acm.ImportCertificateInput{Certificate: spec.CertificatePEM, PrivateKey: spec.PrivateKeyPEM, Tags: toACMTags(spec.Tags)}
	resp, err := acmCall(ctx, d, "ImportCertificate", d.acm.ImportCertificate, in)
	if err != nil {
		return providers.Certificate{}, err
	}
	names := leaf.DNSNames
	if len(names) == 0 && leaf.Subject.CommonName != "" {
		names = []string{leaf.Subject.CommonName}
	}
	return providers.Certificate{ID: aws.ToString(resp.CertificateArn), DNSNames: names, NotAfter: leaf.NotAfter, Tags: spec.Tags}, nil
}

// leafOf parses the first certificate of a PEM bundle (ACM's answer names none).
func leafOf(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, invalid("InvalidCertificate", "the certificate is not PEM starting with a CERTIFICATE block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, invalid("InvalidCertificate", "the certificate does not parse: %v", err)
	}
	return c, nil
}

// DeleteCertificate implements providers.Certificates (ACM's ResourceInUseException is
// providers.ErrConflict); one already gone is done.
func (d *LoadBalancing) DeleteCertificate(ctx context.Context, id string) error {
	_, err := acmCall(ctx, d, "DeleteCertificate", d.acm.DeleteCertificate, &acm.DeleteCertificateInput{CertificateArn: aws.String(id)})
	if err != nil && goneOK(err) == nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete certificate %s: %w", id, err)
	}
	return nil
}
