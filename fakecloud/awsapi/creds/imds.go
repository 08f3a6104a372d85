package creds

import (
	"encoding/json"
	"strings"
	"time"
)

// AccountID is the one account fakecloud emulates, in ARNs and owner IDs.
const AccountID = "000000000000"

// RoleName is the IAM role every instance's profile carries, as listed under
// /latest/meta-data/iam/security-credentials/.
const RoleName = "fakecloud-instance"

// credentialLifetime is the validity EC2's metadata shows for instance credentials. Derived
// credentials do not expire while the instance runs; clients refresh before this and get the
// same keys again.
const credentialLifetime = 6 * time.Hour

const isoSeconds = "2006-01-02T15:04:05Z"

// SecurityCredentials is the JSON document of /latest/meta-data/iam/security-credentials/<role>,
// in EC2's shape (the SDKs' instance-role providers read it).
type SecurityCredentials struct {
	Code            string `json:"Code"`
	LastUpdated     string `json:"LastUpdated"`
	Type            string `json:"Type"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token"`
	Expiration      string `json:"Expiration"`
}

// InstanceProfileInfo is the JSON document of /latest/meta-data/iam/info.
type InstanceProfileInfo struct {
	Code               string `json:"Code"`
	LastUpdated        string `json:"LastUpdated"`
	InstanceProfileArn string `json:"InstanceProfileArn"`
	InstanceProfileID  string `json:"InstanceProfileId"`
}

// MetadataNeedsSession reports whether a metadata path (relative to /latest/meta-data/) shows a
// secret, and so must be asked for with an IMDSv2 session token.
func MetadataNeedsSession(path string) bool {
	rest, ok := strings.CutPrefix(path, "iam/security-credentials/")
	return ok && rest != ""
}

// MetadataDocument answers the iam/ part of EC2's metadata tree (path relative to
// /latest/meta-data/) for an instance with this ID and fakecloud token, at now. found is false for
// any other path, and for an instance that gets no credentials.
func MetadataDocument(path, instanceID, token string, now time.Time) (body string, found bool) {
	switch path {
	case "iam", "iam/":
		return "info\nsecurity-credentials/", true
	case "iam/security-credentials", "iam/security-credentials/":
		return RoleName, true
	case "iam/info":
		return encode(InstanceProfileInfo{
			Code: "Success", LastUpdated: now.UTC().Format(isoSeconds),
			InstanceProfileArn: "arn:aws:iam::" + AccountID + ":instance-profile/" + RoleName,
			InstanceProfileID:  "AIPA" + strings.ToUpper(strings.TrimPrefix(instanceID, "i-")),
		}), true
	case "iam/security-credentials/" + RoleName:
		key, err := InstanceKey(instanceID, token)
		if err != nil {
			return "", false
		}
		return encode(SecurityCredentials{
			Code: "Success", LastUpdated: now.UTC().Format(isoSeconds), Type: "AWS-HMAC",
			AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey, Token: key.SessionToken,
			Expiration: now.UTC().Add(credentialLifetime).Format(isoSeconds),
		}), true
	}
	return "", false
}

func encode(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ") // plain strings: cannot fail
	return string(b)
}
