package awsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// AWS Certificate Manager (ACM): the certificate actions an ELBv2 user needs, on fakecloud's
// certificates (those ELBv2's listeners name by ACM-shaped ARNs, elbv2_arn.go). ACM speaks the
// AWS JSON 1.1 protocol, not Query: POST / with X-Amz-Target: CertificateManager.<Action> and a
// JSON body; blobs are base64, timestamps epoch seconds, errors {"__type", "message"}.

const (
	acmTargetPrefix = "CertificateManager."
	acmContentType  = "application/x-amz-json-1.1"
)

// ACM's codes (and those of the AWS JSON protocol) for what fakecloud names otherwise.
const (
	acmValidation          = "ValidationException"
	acmInvalidArn          = "InvalidArnException"
	acmNotFound            = "ResourceNotFoundException"
	acmInUse               = "ResourceInUseException"
	acmThrottling          = "ThrottlingException"
	acmAccessDenied        = "AccessDeniedException"
	acmLimitExceeded       = "LimitExceededException"
	acmTooManyTags         = "TooManyTagsException"
	acmInvalidTag          = "InvalidTagException"
	acmUnknownOperation    = "UnknownOperationException"
	acmSerialization       = "SerializationException"
	jsonMissingAuth        = "MissingAuthenticationTokenException"
	jsonIncompleteSig      = "IncompleteSignatureException"
	jsonUnrecognizedClient = "UnrecognizedClientException"
	jsonInvalidSignature   = "InvalidSignatureException"
)

func acmService() *service {
	return &service{
		name: "acm", title: "ACM", signingName: "acm",
		authCode: jsonAuthCode, code: acmCode, status: jsonStatus,
	}
}

// acmOps are the ACM actions served: the fakecloud action each runs and its reader.
var acmOps = map[string]struct {
	action string
	run    func(x *exchange, body []byte) (any, error)
}{
	"ImportCertificate":         {api.ActionImportCertificate, acmImportCertificate},
	"ListCertificates":          {api.ActionDescribeCertificates, acmListCertificates},
	"ListTagsForCertificate":    {api.ActionDescribeCertificates, acmListTagsForCertificate},
	"AddTagsToCertificate":      {api.ActionAddTags, acmAddTagsToCertificate},
	"RemoveTagsFromCertificate": {api.ActionRemoveTags, acmRemoveTagsFromCertificate},
	"DeleteCertificate":         {api.ActionDeleteCertificate, acmDeleteCertificate},
}

// jsonAuthCode: the JSON protocol's services name authentication failures their own way.
func jsonAuthCode(f authFailure) string {
	switch f {
	case authMissing:
		return jsonMissingAuth
	case authMalformed:
		return jsonIncompleteSig
	case authUnknownKey, authBadToken:
		return jsonUnrecognizedClient
	}
	return jsonInvalidSignature
}

// acmCode renames fakecloud's codes as ACM names them; ACM's own pass unchanged.
func acmCode(code string) string {
	switch code {
	case api.CodeCertificateNotFound:
		return acmNotFound
	case api.CodeResourceInUse:
		return acmInUse
	case api.CodeRequestLimitExceeded:
		return acmThrottling
	case api.CodeUnauthorizedOperation:
		return acmAccessDenied
	case api.CodeInternalError:
		return codeInternalFailure
	case api.CodeTooManyCertificates:
		return acmLimitExceeded
	case api.CodeTooManyTags:
		return acmTooManyTags
	case api.CodeServiceUnavailable, acmInvalidArn, acmInvalidTag, acmUnknownOperation, acmSerialization,
		jsonMissingAuth, jsonIncompleteSig, jsonUnrecognizedClient, jsonInvalidSignature:
		return code
	}
	return acmValidation
}

func jsonStatus(code string) int {
	switch code {
	case codeInternalFailure:
		return http.StatusInternalServerError
	case api.CodeServiceUnavailable:
		return http.StatusServiceUnavailable
	case jsonMissingAuth:
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// isJSONTarget reports a request of the AWS JSON protocol: it names its action in X-Amz-Target.
func isJSONTarget(r *http.Request) bool { return r.Header.Get("X-Amz-Target") != "" }

// serveJSON answers one request of the JSON protocol (ACM's).
func (h *Handler) serveJSON(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := &exchange{ctx: r.Context(), h: h, call: &Call{RequestID: newRequestID(), Service: "acm"}, svc: h.acm}
	w.Header().Set("X-Amzn-Requestid", x.call.RequestID)
	w.Header().Set(api.HeaderRequestID, x.call.RequestID)
	body, err := x.serveACM(w, r)
	status := writeJSONAnswer(w, x.svc, body, err)
	h.cfg.Backend.Done(x.call, status, err, time.Since(start))
}

func (x *exchange) serveACM(w http.ResponseWriter, r *http.Request) (any, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return nil, statusErr(http.StatusMethodNotAllowed, acmSerialization, "method %s is not allowed: AWS JSON requests are POST to /", r.Method)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, statusErr(http.StatusRequestEntityTooLarge, acmSerialization, "the request body is over %d bytes", MaxBodyBytes)
		}
		return nil, api.Errorf(acmSerialization, "cannot read the request body: %v", err)
	}
	p, region, err := x.h.authenticate(r, body, x.svc)
	if err != nil {
		return nil, err
	}
	x.call.Principal, x.region = p, region
	target := r.Header.Get("X-Amz-Target")
	name, ok := strings.CutPrefix(target, acmTargetPrefix)
	o, known := acmOps[name]
	if !ok || !known {
		return nil, api.Errorf(acmUnknownOperation, "the operation %s is not served: fakecloud's ACM serves %s.{%s}",
			truncate(target, 80), strings.TrimSuffix(acmTargetPrefix, "."), strings.Join(acmOpNames(), ","))
	}
	if mt := r.Header.Get("Content-Type"); mt != acmContentType {
		return nil, api.Errorf(acmSerialization, "the body is %q; ACM takes %s", truncate(mt, 60), acmContentType)
	}
	x.call.Action, x.awsAction = o.action, name
	return o.run(x, body)
}

func acmOpNames() []string {
	out := make([]string, 0, len(acmOps))
	for n := range acmOps {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// decodeJSON reads a request body into v, refusing fields the action does not take.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return api.Errorf(acmValidation, "the parameter %s is not recognized (fakecloud serves the parameters docs/fakecloud-aws.md lists)",
				strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return api.Errorf(acmSerialization, "the body is not the action's JSON: %v", err)
	}
	if dec.More() {
		return api.Errorf(acmSerialization, "the body holds more than one JSON value")
	}
	return nil
}

// writeJSONAnswer writes body, or err as {"__type", "message"}, and returns the status.
func writeJSONAnswer(w http.ResponseWriter, svc *service, body any, err error) int {
	w.Header().Set("Content-Type", acmContentType)
	if err == nil {
		b, merr := json.Marshal(body)
		if merr == nil {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(b)
			return http.StatusOK
		}
		err = merr
	}
	e := asAPIError(err)
	code := svc.code(e.Code)
	status := svc.status(code)
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	w.Header().Set("X-Amzn-Errortype", code)
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{code, e.Message})
	_, _ = w.Write(b)
	return status
}

type acmTag struct {
	Key   string  `json:"Key"`
	Value *string `json:"Value,omitempty"`
}

type acmImportRequest struct {
	Certificate      []byte   `json:"Certificate"`
	PrivateKey       []byte   `json:"PrivateKey"`
	CertificateChain []byte   `json:"CertificateChain"`
	CertificateArn   string   `json:"CertificateArn"`
	Tags             []acmTag `json:"Tags"`
}

func acmImportCertificate(x *exchange, body []byte) (any, error) {
	var in acmImportRequest
	if err := decodeJSON(body, &in); err != nil {
		return nil, err
	}
	switch {
	case in.CertificateArn != "":
		return nil, api.Errorf(acmValidation, "CertificateArn: re-importing a certificate is not emulated; import a new one and point the listeners at it")
	case len(in.Certificate) == 0 || len(in.PrivateKey) == 0:
		return nil, api.Errorf(acmValidation, "Certificate and PrivateKey are required (PEM, base64-encoded on the wire)")
	}
	req := &api.ImportCertificateRequest{Certificate: string(in.Certificate), PrivateKey: string(in.PrivateKey), CertificateChain: string(in.CertificateChain)}
	for _, t := range in.Tags {
		if t.Key == "" {
			return nil, api.Errorf(acmValidation, "Tags: every tag needs a Key")
		}
		req.Tags = append(req.Tags, api.Tag{Key: t.Key, Value: ptrOr(t.Value)})
	}
	resp, err := call[api.ImportCertificateResponse](x, api.ActionImportCertificate, req)
	if err != nil {
		return nil, err
	}
	return struct {
		CertificateArn string `json:"CertificateArn"`
	}{x.certificateARN(resp.Certificate.CertificateID)}, nil
}

type acmListRequest struct {
	CertificateStatuses       []string `json:"CertificateStatuses"`
	CertificateKeyPairOrigins []string `json:"CertificateKeyPairOrigins"`
	Includes                  *struct {
		KeyTypes []string `json:"keyTypes"`
	} `json:"Includes"`
	MaxItems  *int   `json:"MaxItems"`
	NextToken string `json:"NextToken"`
}

type acmSummary struct {
	CertificateArn                  string   `json:"CertificateArn"`
	DomainName                      string   `json:"DomainName"`
	SubjectAlternativeNameSummaries []string `json:"SubjectAlternativeNameSummaries"`
	HasAdditionalSANs               bool     `json:"HasAdditionalSubjectAlternativeNames"`
	Status                          string   `json:"Status"`
	Type                            string   `json:"Type"`
	KeyAlgorithm                    string   `json:"KeyAlgorithm"`
	InUse                           bool     `json:"InUse"`
	RenewalEligibility              string   `json:"RenewalEligibility"`
	NotBefore                       float64  `json:"NotBefore"`
	NotAfter                        float64  `json:"NotAfter"`
	ImportedAt                      float64  `json:"ImportedAt"`
	CreatedAt                       float64  `json:"CreatedAt"`
}

// acmDefaultKeyTypes are what ListCertificates lists without Includes.keyTypes, as in ACM.
var acmDefaultKeyTypes = []string{"RSA_1024", "RSA_2048"}

func acmListCertificates(x *exchange, body []byte) (any, error) {
	var in acmListRequest
	if err := decodeJSON(body, &in); err != nil {
		return nil, err
	}
	if in.MaxItems != nil && (*in.MaxItems < 1 || *in.MaxItems > 1000) {
		return nil, api.Errorf(acmValidation, "MaxItems must be between 1 and 1000 (got %d)", *in.MaxItems)
	}
	keyTypes := acmDefaultKeyTypes
	if in.Includes != nil && len(in.Includes.KeyTypes) > 0 {
		keyTypes = in.Includes.KeyTypes
	}
	resp, err := call[api.DescribeCertificatesResponse](x, api.ActionDescribeCertificates, &api.DescribeCertificatesRequest{})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []acmSummary
	for _, c := range resp.Certificates {
		s := x.acmSummary(&c, now)
		if !slices.Contains(keyTypes, s.KeyAlgorithm) ||
			(len(in.CertificateStatuses) > 0 && !slices.Contains(in.CertificateStatuses, s.Status)) ||
			(len(in.CertificateKeyPairOrigins) > 0 && !slices.Contains(in.CertificateKeyPairOrigins, "CUSTOMER_PROVIDED")) {
			continue
		}
		out = append(out, s)
	}
	size := 0
	if in.MaxItems != nil {
		size = *in.MaxItems
	}
	page, next := pageOf(out, func(s *acmSummary) string { return s.CertificateArn }, size, in.NextToken)
	return struct {
		CertificateSummaryList []acmSummary `json:"CertificateSummaryList"`
		NextToken              string       `json:"NextToken,omitempty"`
	}{append([]acmSummary{}, page...), next}, nil
}

func (x *exchange) acmSummary(c *api.Certificate, now time.Time) acmSummary {
	names := c.SubjectAlternativeNames
	if len(names) == 0 {
		names = []string{c.DomainName}
	}
	status := "ISSUED"
	if !now.Before(c.NotAfter) {
		status = "EXPIRED"
	}
	return acmSummary{
		CertificateArn: x.certificateARN(c.CertificateID), DomainName: c.DomainName,
		SubjectAlternativeNameSummaries: names, Status: status, Type: "IMPORTED",
		KeyAlgorithm: acmKeyAlgorithm(c.KeyAlgorithm), InUse: len(c.InUseBy) > 0, RenewalEligibility: "INELIGIBLE",
		NotBefore: epoch(c.NotBefore), NotAfter: epoch(c.NotAfter), ImportedAt: epoch(c.ImportedAt), CreatedAt: epoch(c.ImportedAt),
	}
}

// acmKeyAlgorithm names fakecloud's key algorithms (RSA_2048, EC_p256, ...) as ACM does.
func acmKeyAlgorithm(alg string) string {
	switch alg {
	case "EC_p256":
		return "EC_prime256v1"
	case "EC_p384":
		return "EC_secp384r1"
	case "EC_p521":
		return "EC_secp521r1"
	}
	return alg
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

type acmARNRequest struct {
	CertificateArn string `json:"CertificateArn"`
}

// acmCertificateID reads the CertificateArn of a request.
func acmCertificateID(body []byte) (string, error) {
	var in acmARNRequest
	if err := decodeJSON(body, &in); err != nil {
		return "", err
	}
	return certificateIDOf(in.CertificateArn)
}

// certificateIDOf is the fakecloud ID of a request's CertificateArn.
func certificateIDOf(certARN string) (string, error) {
	if certARN == "" {
		return "", api.Errorf(acmValidation, "CertificateArn is required")
	}
	id, ok := parseCertificateARN(certARN)
	if !ok {
		return "", api.Errorf(acmInvalidArn, "'%s' is not a fakecloud certificate's ARN: arn:aws:acm:<region>:<account>:certificate/cert-<digits>", truncate(certARN, 200))
	}
	return id, nil
}

func acmListTagsForCertificate(x *exchange, body []byte) (any, error) {
	id, err := acmCertificateID(body)
	if err != nil {
		return nil, err
	}
	ts, err := x.certificateTags(id)
	if err != nil {
		return nil, err
	}
	tags := []acmTag{}
	for _, t := range ts {
		v := t.Value
		tags = append(tags, acmTag{Key: t.Key, Value: &v})
	}
	return struct {
		Tags []acmTag `json:"Tags"`
	}{tags}, nil
}

type acmTagsRequest struct {
	CertificateArn string   `json:"CertificateArn"`
	Tags           []acmTag `json:"Tags"`
}

// acmTagsOf reads a tag request: the certificate and at least one tag, each with a key.
func acmTagsOf(body []byte) (string, []acmTag, error) {
	var in acmTagsRequest
	if err := decodeJSON(body, &in); err != nil {
		return "", nil, err
	}
	id, err := certificateIDOf(in.CertificateArn)
	if err != nil {
		return "", nil, err
	}
	if len(in.Tags) == 0 {
		return "", nil, api.Errorf(acmValidation, "Tags is required: give at least one tag")
	}
	for _, t := range in.Tags {
		if t.Key == "" {
			return "", nil, api.Errorf(acmValidation, "Tags: every tag needs a Key")
		}
	}
	return id, in.Tags, nil
}

// acmAddTagsToCertificate adds or overwrites tags with the store's AddTags, which checks them
// as for ELBv2; a reserved aws: key is ACM's InvalidTagException.
func acmAddTagsToCertificate(x *exchange, body []byte) (any, error) {
	id, tags, err := acmTagsOf(body)
	if err != nil {
		return nil, err
	}
	req := &api.AddTagsRequest{ResourceIDs: []string{id}}
	for _, t := range tags {
		if strings.HasPrefix(t.Key, "aws:") {
			return nil, api.Errorf(acmInvalidTag, "the tag key %q uses the prefix aws:, which is reserved for AWS", truncate(t.Key, 140))
		}
		req.Tags = append(req.Tags, api.Tag{Key: t.Key, Value: ptrOr(t.Value)})
	}
	if _, err := call[api.AddTagsResponse](x, api.ActionAddTags, req); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// acmRemoveTagsFromCertificate removes tags with the store's RemoveTags. As in ACM, a tag given
// without a Value goes whatever its value, one given with a Value only when the certificate's
// matches: those are compared with the certificate's tags read just before, so a change between
// that read and the removal goes unseen.
func acmRemoveTagsFromCertificate(x *exchange, body []byte) (any, error) {
	id, tags, err := acmTagsOf(body)
	if err != nil {
		return nil, err
	}
	have := map[string]string{}
	if slices.ContainsFunc(tags, func(t acmTag) bool { return t.Value != nil }) {
		ts, err := x.certificateTags(id)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			have[t.Key] = t.Value
		}
	}
	req := &api.RemoveTagsRequest{ResourceIDs: []string{id}}
	for _, t := range tags {
		if v, ok := have[t.Key]; t.Value == nil || ok && v == *t.Value {
			req.TagKeys = append(req.TagKeys, t.Key)
		}
	}
	if len(req.TagKeys) == 0 {
		return struct{}{}, nil // the certificate exists (read above) and holds none of them
	}
	if _, err := call[api.RemoveTagsResponse](x, api.ActionRemoveTags, req); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// certificateTags reads a certificate's tags.
func (x *exchange) certificateTags(id string) ([]api.Tag, error) {
	resp, err := call[api.DescribeCertificatesResponse](x, api.ActionDescribeCertificates, &api.DescribeCertificatesRequest{CertificateIDs: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(resp.Certificates) != 1 {
		return nil, api.Errorf(acmNotFound, "certificate %s does not exist", id)
	}
	return resp.Certificates[0].Tags, nil
}

func acmDeleteCertificate(x *exchange, body []byte) (any, error) {
	id, err := acmCertificateID(body)
	if err != nil {
		return nil, err
	}
	if _, err := call[api.DeleteCertificateResponse](x, api.ActionDeleteCertificate, &api.DeleteCertificateRequest{CertificateID: id}); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func ptrOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
