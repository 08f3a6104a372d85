package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// UnsignedPayload in X-Amz-Content-Sha256 says the body is not covered by the signature.
const UnsignedPayload = "UNSIGNED-PAYLOAD"

// DefaultMaxSkew is how far a request's timestamp may be from the server's clock, either way.
const DefaultMaxSkew = 15 * time.Minute

// MaxPresignExpiry is the longest validity a presigned request may ask for (seven days).
const MaxPresignExpiry = 7 * 24 * time.Hour

// Header and query names of the protocol.
const (
	HeaderAuthorization = "Authorization"
	HeaderDate          = "X-Amz-Date"
	HeaderSecurityToken = "X-Amz-Security-Token"
	HeaderContentSHA256 = "X-Amz-Content-Sha256"

	QueryAlgorithm     = "X-Amz-Algorithm"
	QueryCredential    = "X-Amz-Credential"
	QueryDate          = "X-Amz-Date"
	QueryExpires       = "X-Amz-Expires"
	QuerySignedHeaders = "X-Amz-SignedHeaders"
	QuerySignature     = "X-Amz-Signature"
	QuerySecurityToken = "X-Amz-Security-Token"
)

// timeFormat is ISO 8601 basic format, as X-Amz-Date carries it.
const timeFormat = "20060102T150405Z"

// The kinds of failure, for errors.Is. Each service names them its own way (EC2 answers
// AuthFailure where ELBv2 answers SignatureDoesNotMatch); the caller maps them.
var (
	// ErrMissing: the request carries no signature at all.
	ErrMissing = errors.New("the request is not signed")
	// ErrMalformed: a signature is there but does not follow the protocol.
	ErrMalformed = errors.New("the signature is malformed")
	// ErrExpired: the timestamp is too far from the server's clock, or a presigned request expired.
	ErrExpired = errors.New("the signature has expired")
	// ErrMismatch: the signature does not match the request and the key's secret.
	ErrMismatch = errors.New("the signature does not match")
)

// Error is a verification failure: one of the kinds above and what exactly was wrong.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func fail(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Scope is the credential scope: the day, region and service a signing key is for.
type Scope struct {
	Date    string // YYYYMMDD
	Region  string
	Service string
}

func (s Scope) String() string { return s.Date + "/" + s.Region + "/" + s.Service + "/aws4_request" }

// Signature is what a request says about its signing, before any check against a key.
type Signature struct {
	Presigned     bool
	AccessKeyID   string
	Scope         Scope
	Time          time.Time // the request's timestamp (X-Amz-Date, or Date)
	SignedHeaders []string  // lowercase, sorted
	Signature     string    // lowercase hex
	// SecurityToken is the session token of temporary credentials, if any.
	SecurityToken string
	// Expires is a presigned request's validity after Time.
	Expires time.Duration
}

// Present reports whether r carries a SigV4 signature in either form (well formed or not).
func Present(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get(HeaderAuthorization), "AWS4-") || r.URL.Query().Has(QueryAlgorithm)
}

// Parse reads the signature of r, from its Authorization header or its presigned query.
func Parse(r *http.Request) (*Signature, error) {
	if auth := r.Header.Get(HeaderAuthorization); auth != "" {
		if r.URL.Query().Has(QuerySignature) {
			return nil, fail(ErrMalformed, "the request is signed twice (an Authorization header and X-Amz-Signature in the query): send one")
		}
		return parseHeader(r, auth)
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fail(ErrMalformed, "the query string is malformed: %v", err)
	}
	if q.Has(QueryAlgorithm) || q.Has(QuerySignature) || q.Has(QueryCredential) {
		return parseQuery(q)
	}
	return nil, fail(ErrMissing, "the request carries no Authorization header and no X-Amz-Signature: sign it with AWS Signature Version 4")
}

func parseHeader(r *http.Request, auth string) (*Signature, error) {
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != Algorithm {
		return nil, fail(ErrMalformed, "the Authorization header uses %q; only %s is supported", truncate(alg, 40), Algorithm)
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fail(ErrMalformed, "the Authorization header has %q where name=value was expected", truncate(part, 40))
		}
		if _, dup := fields[k]; dup {
			return nil, fail(ErrMalformed, "the Authorization header has %s twice", truncate(k, 40))
		}
		fields[k] = v
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[k] == "" {
			return nil, fail(ErrMalformed, "the Authorization header lacks %s=...: it needs Credential, SignedHeaders and Signature", k)
		}
	}
	if len(fields) != 3 {
		return nil, fail(ErrMalformed, "the Authorization header has fields besides Credential, SignedHeaders and Signature")
	}
	sig := &Signature{SecurityToken: r.Header.Get(HeaderSecurityToken)}
	var err error
	if sig.Time, err = requestTime(r.Header.Get(HeaderDate), r.Header.Get("Date")); err != nil {
		return nil, err
	}
	return finish(sig, fields["Credential"], fields["SignedHeaders"], fields["Signature"])
}

func parseQuery(q url.Values) (*Signature, error) {
	for _, k := range []string{QueryAlgorithm, QueryCredential, QueryDate, QueryExpires, QuerySignedHeaders, QuerySignature} {
		if len(q[k]) != 1 || q.Get(k) == "" {
			return nil, fail(ErrMalformed, "a presigned request needs exactly one %s; it needs %s, %s, %s, %s, %s and %s",
				k, QueryAlgorithm, QueryCredential, QueryDate, QueryExpires, QuerySignedHeaders, QuerySignature)
		}
	}
	if alg := q.Get(QueryAlgorithm); alg != Algorithm {
		return nil, fail(ErrMalformed, "X-Amz-Algorithm is %q; only %s is supported", truncate(alg, 40), Algorithm)
	}
	if len(q[QuerySecurityToken]) > 1 {
		return nil, fail(ErrMalformed, "X-Amz-Security-Token is given more than once")
	}
	sig := &Signature{Presigned: true, SecurityToken: q.Get(QuerySecurityToken)}
	var err error
	if sig.Time, err = requestTime(q.Get(QueryDate), ""); err != nil {
		return nil, err
	}
	secs, err := strconv.Atoi(q.Get(QueryExpires))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > MaxPresignExpiry {
		return nil, fail(ErrMalformed, "X-Amz-Expires must be a number of seconds from 1 to %d, not %q", int(MaxPresignExpiry.Seconds()), truncate(q.Get(QueryExpires), 20))
	}
	sig.Expires = time.Duration(secs) * time.Second
	return finish(sig, q.Get(QueryCredential), q.Get(QuerySignedHeaders), q.Get(QuerySignature))
}

// requestTime reads X-Amz-Date, or else the Date header.
func requestTime(amzDate, date string) (time.Time, error) {
	if amzDate != "" {
		t, err := time.Parse(timeFormat, amzDate)
		if err != nil {
			return time.Time{}, fail(ErrMalformed, "X-Amz-Date %q is not an ISO 8601 basic timestamp like 20150830T123600Z", truncate(amzDate, 40))
		}
		return t, nil
	}
	if date != "" {
		t, err := http.ParseTime(date)
		if err != nil {
			return time.Time{}, fail(ErrMalformed, "the Date header %q is not an HTTP date", truncate(date, 40))
		}
		return t.UTC(), nil
	}
	return time.Time{}, fail(ErrMalformed, "the request has no timestamp: send X-Amz-Date (or Date)")
}

// finish parses the credential, signed headers and signature shared by both forms.
func finish(sig *Signature, credential, signedHeaders, signature string) (*Signature, error) {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[0] == "" || parts[2] == "" || parts[3] == "" {
		return nil, fail(ErrMalformed, "the credential %q is not <access key>/<date>/<region>/<service>/aws4_request", truncate(credential, 120))
	}
	if parts[4] != "aws4_request" {
		return nil, fail(ErrMalformed, "the credential scope ends with %q; it must end with aws4_request", truncate(parts[4], 40))
	}
	sig.AccessKeyID = parts[0]
	sig.Scope = Scope{Date: parts[1], Region: parts[2], Service: parts[3]}
	if want := sig.Time.Format("20060102"); sig.Scope.Date != want {
		return nil, fail(ErrMalformed, "the credential scope's date %q is not the request's date %s", truncate(sig.Scope.Date, 20), want)
	}
	headers := strings.Split(signedHeaders, ";")
	for i, h := range headers {
		if h == "" || h != strings.ToLower(h) || !validToken(h) {
			return nil, fail(ErrMalformed, "the signed headers %q are not lowercase header names separated by ;", truncate(signedHeaders, 120))
		}
		if i > 0 && headers[i-1] >= h {
			return nil, fail(ErrMalformed, "the signed headers %q are not sorted and unique", truncate(signedHeaders, 120))
		}
	}
	if !sortedContains(headers, "host") {
		return nil, fail(ErrMalformed, "the signed headers %q do not include host, which must be signed", truncate(signedHeaders, 120))
	}
	sig.SignedHeaders = headers
	if len(signature) != 64 || !isLowerHex(signature) {
		return nil, fail(ErrMalformed, "the signature is not 64 lowercase hexadecimal digits")
	}
	sig.Signature = signature
	return sig, nil
}

// Check verifies sig against r, its body (already read) and the secret of sig's access key, at
// now, allowing maxSkew either way (DefaultMaxSkew when 0).
func Check(r *http.Request, body []byte, sig *Signature, secret string, now time.Time, maxSkew time.Duration) error {
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	if err := checkTime(sig, now, maxSkew); err != nil {
		return err
	}
	canon, err := canonicalParts(r, sig)
	if err != nil {
		return err
	}
	for _, payload := range payloadHashes(r, body, sig) {
		if payload.err != nil {
			return payload.err
		}
		canon.payloadHash = payload.hash
		want := Sign(secret, sig.Scope, sig.Time, canon.String())
		if hmac.Equal([]byte(want), []byte(sig.Signature)) {
			return nil
		}
	}
	return fail(ErrMismatch, "the signature does not match: check the secret access key and the signing method")
}

func checkTime(sig *Signature, now time.Time, maxSkew time.Duration) error {
	if sig.Time.After(now.Add(maxSkew)) {
		return fail(ErrExpired, "the request's timestamp %s is more than %v ahead of the server's clock (%s)", sig.Time.Format(timeFormat), maxSkew, now.UTC().Format(timeFormat))
	}
	if sig.Presigned {
		if end := sig.Time.Add(sig.Expires); now.After(end) {
			return fail(ErrExpired, "the presigned request expired at %s (now %s)", end.Format(timeFormat), now.UTC().Format(timeFormat))
		}
		return nil
	}
	if sig.Time.Before(now.Add(-maxSkew)) {
		return fail(ErrExpired, "the request's timestamp %s is more than %v behind the server's clock (%s)", sig.Time.Format(timeFormat), maxSkew, now.UTC().Format(timeFormat))
	}
	return nil
}

type payloadHash struct {
	hash string
	err  error
}

// payloadHashes lists the payload hashes the request may have been signed with, in order. With
// X-Amz-Content-Sha256 it is that value (checked against the body unless UNSIGNED-PAYLOAD); a
// presigned request without it may have been signed over the body's hash or UNSIGNED-PAYLOAD.
func payloadHashes(r *http.Request, body []byte, sig *Signature) []payloadHash {
	sum := sha256.Sum256(body)
	actual := hex.EncodeToString(sum[:])
	if claimed := r.Header.Get(HeaderContentSHA256); claimed != "" {
		if claimed != UnsignedPayload && claimed != actual {
			return []payloadHash{{err: fail(ErrMismatch, "X-Amz-Content-Sha256 is not the SHA-256 of the body (or %s)", UnsignedPayload)}}
		}
		return []payloadHash{{hash: claimed}}
	}
	if sig.Presigned {
		return []payloadHash{{hash: actual}, {hash: UnsignedPayload}}
	}
	return []payloadHash{{hash: actual}}
}

// CanonicalRequest is the request in the form the signature covers.
type CanonicalRequest struct {
	Method        string
	URI           string
	Query         string
	Headers       string // "name:value\n" per signed header
	SignedHeaders string
	payloadHash   string
}

// String is the canonical request as hashed into the string to sign.
func (c CanonicalRequest) String() string {
	return c.Method + "\n" + c.URI + "\n" + c.Query + "\n" + c.Headers + "\n" + c.SignedHeaders + "\n" + c.payloadHash
}

// WithPayloadHash returns c covering a body of that hash.
func (c CanonicalRequest) WithPayloadHash(h string) CanonicalRequest { c.payloadHash = h; return c }

// canonicalParts builds the canonical request of r as sig says it was signed, without the
// payload hash.
func canonicalParts(r *http.Request, sig *Signature) (CanonicalRequest, error) {
	query, err := canonicalQuery(r.URL.RawQuery, sig.Presigned)
	if err != nil {
		return CanonicalRequest{}, err
	}
	headers, err := canonicalHeaders(r, sig.SignedHeaders)
	if err != nil {
		return CanonicalRequest{}, err
	}
	return CanonicalRequest{
		Method: r.Method, URI: canonicalURI(r.URL), Query: query,
		Headers: headers, SignedHeaders: strings.Join(sig.SignedHeaders, ";"),
	}, nil
}

// canonicalURI is the path as sent, URI-encoded once more (every byte but the unreserved ones
// and '/'), as every service but S3 expects.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	return escape(p, true)
}

// canonicalQuery encodes every parameter name and value, then sorts the pairs; a presigned
// request's own signature is left out.
func canonicalQuery(raw string, presigned bool) (string, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "", fail(ErrMalformed, "the query string is malformed: %v", err)
	}
	type pair struct{ k, v string }
	pairs := make([]pair, 0, len(q))
	for k, vs := range q {
		if presigned && k == QuerySignature {
			continue
		}
		ek := escape(k, false)
		for _, v := range vs {
			pairs = append(pairs, pair{ek, escape(v, false)})
		}
	}
	// Sorted by encoded name, then encoded value: not as "name=value" strings, since '%', '-',
	// '.' and the digits sort before '='.
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k + "=" + p.v)
	}
	return b.String(), nil
}

// canonicalHeaders renders the signed headers: lowercase name, ':', the values trimmed with runs
// of spaces folded, several values joined by ','.
func canonicalHeaders(r *http.Request, signed []string) (string, error) {
	var b strings.Builder
	for _, name := range signed {
		values, ok := headerValues(r, name)
		if !ok {
			return "", fail(ErrMismatch, "the signed header %q is not in the request", truncate(name, 60))
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(foldSpaces(v))
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// headerValues finds a header as the client sent it; Go's server keeps Host and the transfer
// headers out of Header.
func headerValues(r *http.Request, name string) ([]string, bool) {
	switch name {
	case "host":
		return []string{r.Host}, r.Host != ""
	case "content-length":
		if v := r.Header.Values("Content-Length"); len(v) > 0 {
			return v, true
		}
		if r.ContentLength >= 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}, true
		}
		return nil, false
	case "transfer-encoding":
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}, true
		}
	}
	v := r.Header.Values(name)
	return v, len(v) > 0
}

// foldSpaces trims spaces at both ends and folds inner runs of spaces into one.
func foldSpaces(s string) string {
	s = strings.Trim(s, " ")
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// StringToSign is what the signing key signs.
func StringToSign(scope Scope, t time.Time, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return Algorithm + "\n" + t.UTC().Format(timeFormat) + "\n" + scope.String() + "\n" + hex.EncodeToString(sum[:])
}

// SigningKey derives the key of one scope from a secret: HMAC chained over the date, the region,
// the service and "aws4_request", starting from "AWS4" + secret.
func SigningKey(secret string, scope Scope) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), scope.Date)
	k = hmacSHA256(k, scope.Region)
	k = hmacSHA256(k, scope.Service)
	return hmacSHA256(k, "aws4_request")
}

// Sign returns the hex signature of a canonical request.
func Sign(secret string, scope Scope, t time.Time, canonicalRequest string) string {
	return hex.EncodeToString(hmacSHA256(SigningKey(secret, scope), StringToSign(scope, t, canonicalRequest)))
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// escape percent-encodes every byte but A-Z a-z 0-9 - _ . ~ (and '/' when keepSlash), with
// uppercase hex.
func escape(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || c == '/' && keepSlash {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// validToken reports whether s is an HTTP header name (RFC 9110 token characters).
func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || strings.IndexByte("!#$%&'*+^`|", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		default:
			return false
		}
	}
	return true
}

func sortedContains(sorted []string, s string) bool {
	i := sort.SearchStrings(sorted, s)
	return i < len(sorted) && sorted[i] == s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
