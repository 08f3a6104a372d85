package awsapi

import (
	"crypto/subtle"
	"errors"
	"net/http"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/creds"
	"github.com/flatnet/flatnet/fakecloud/awsapi/sigv4"
)

// authFailure is why a request's credentials were refused; each service names them its own way.
type authFailure int

const (
	authMissing      authFailure = iota // no signature
	authMalformed                       // a signature not following the protocol
	authUnknownKey                      // an access key fakecloud did not issue (or of a gone instance)
	authBadToken                        // a session token missing, or not the key's
	authMismatch                        // the signature is not the request's under the key's secret
	authExpired                         // the timestamp is too far off, or a presigned request expired
	authWrongService                    // signed for another service
)

// authenticate verifies r's signature and returns who signed it, and for which region.
func (h *Handler) authenticate(r *http.Request, body []byte, svc *service) (Principal, string, error) {
	sig, err := sigv4.Parse(r)
	if err != nil {
		return Principal{}, "", svc.authError(kindOf(err), err.Error())
	}
	if sig.Scope.Service != svc.signingName {
		return Principal{}, "", svc.authError(authWrongService, "the credential should be scoped to the service "+svc.signingName+", not "+truncate(sig.Scope.Service, 40))
	}
	key, p, err := h.lookup(sig.AccessKeyID, svc)
	if err != nil {
		return Principal{}, "", err
	}
	if key.SessionToken == "" && sig.SecurityToken != "" {
		return Principal{}, "", svc.authError(authBadToken, "the security token included in the request is invalid: "+sig.AccessKeyID+" is a long-term key, which takes no session token")
	}
	if key.SessionToken != "" && subtle.ConstantTimeCompare([]byte(sig.SecurityToken), []byte(key.SessionToken)) != 1 {
		msg := "the security token included in the request is invalid: send the Token served with these credentials as X-Amz-Security-Token"
		if sig.SecurityToken == "" {
			msg = "temporary credentials need their session token: send X-Amz-Security-Token"
		}
		return Principal{}, "", svc.authError(authBadToken, msg)
	}
	if err := sigv4.Check(r, body, sig, key.SecretAccessKey, h.cfg.Clock(), h.cfg.MaxSkew); err != nil {
		return Principal{}, "", svc.authError(kindOf(err), err.Error())
	}
	return p, sig.Scope.Region, nil
}

// lookup finds the key an access key ID names: an admin key, a load-balancer token's key, or the
// derived key of a running instance (whose whole ID, check bits included, must match).
func (h *Handler) lookup(id string, svc *service) (creds.Key, Principal, error) {
	for _, k := range h.cfg.AdminKeys {
		if subtle.ConstantTimeCompare([]byte(k.AccessKeyID), []byte(id)) == 1 {
			return k, Principal{Admin: true}, nil
		}
	}
	if h.cfg.LoadBalancerKey != nil {
		if k, tokenID, ok := h.cfg.LoadBalancerKey(id); ok {
			return k, Principal{LoadBalancer: true, TokenID: tokenID}, nil
		}
	}
	unknown := svc.authError(authUnknownKey, "the access key ID "+truncate(id, 40)+" does not exist: use fakecloud's admin key (--aws-credentials-file), a load-balancer token's key (fakecloud token create-lb) or an instance's credentials from its metadata service")
	inst, ok := creds.InstanceIDOf(id)
	if !ok {
		return creds.Key{}, Principal{}, unknown
	}
	token, ok := h.cfg.InstanceToken(inst)
	if !ok {
		return creds.Key{}, Principal{}, unknown
	}
	key, err := creds.InstanceKey(inst, token)
	if err != nil || key.AccessKeyID != id {
		return creds.Key{}, Principal{}, unknown
	}
	return key, Principal{InstanceID: inst}, nil
}

func kindOf(err error) authFailure {
	switch {
	case errors.Is(err, sigv4.ErrMissing):
		return authMissing
	case errors.Is(err, sigv4.ErrExpired):
		return authExpired
	case errors.Is(err, sigv4.ErrMismatch):
		return authMismatch
	}
	return authMalformed
}

// AWS's authentication error codes.
const (
	codeMissingAuthenticationToken = "MissingAuthenticationToken"
	codeIncompleteSignature        = "IncompleteSignature"
	codeInvalidClientTokenID       = "InvalidClientTokenId"
	codeSignatureDoesNotMatch      = "SignatureDoesNotMatch"
	codeRequestExpired             = "RequestExpired"
)

// ec2AuthCode: EC2 answers AuthFailure for any key, token or signature it cannot validate.
func ec2AuthCode(f authFailure) string {
	switch f {
	case authMissing:
		return codeMissingAuthenticationToken
	case authMalformed:
		return codeIncompleteSignature
	case authExpired:
		return codeRequestExpired
	}
	return api.CodeAuthFailure
}
