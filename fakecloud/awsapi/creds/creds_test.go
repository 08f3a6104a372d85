package creds_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/awsapi/creds"
)

var (
	keyIDShape  = regexp.MustCompile(`^(AKIA|ASIA)[A-Z2-7]{16}$`)
	secretShape = regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`)
)

func TestInstanceKey(t *testing.T) {
	const id, token = "i-0123456789abcdef0", "fci-0011223344556677889900aabbccddeeff0011223344"
	k, err := creds.InstanceKey(id, token)
	if err != nil {
		t.Fatal(err)
	}
	if !keyIDShape.MatchString(k.AccessKeyID) || !strings.HasPrefix(k.AccessKeyID, "ASIA") || !secretShape.MatchString(k.SecretAccessKey) || k.SessionToken == "" {
		t.Fatalf("key %+v: want ASIA + 16 base32, a 40-character secret and a session token", k)
	}
	if got, ok := creds.InstanceIDOf(k.AccessKeyID); !ok || got != id {
		t.Fatalf("InstanceIDOf(%s) = %q, %v; want %s", k.AccessKeyID, got, ok, id)
	}
	again, _ := creds.InstanceKey(id, token)
	if again != k {
		t.Fatalf("derivation is not stable: %+v then %+v", k, again)
	}
	other, _ := creds.InstanceKey(id, token+"x")
	if other.AccessKeyID == k.AccessKeyID || other.SecretAccessKey == k.SecretAccessKey || other.SessionToken == k.SessionToken {
		t.Fatalf("another token of the same instance ID gives overlapping keys: %+v and %+v", k, other)
	}
	for _, id := range []string{"i-00000000000000000", "i-fffffffffffffffff", "i-10000000000000001"} {
		k, err := creds.InstanceKey(id, token)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := creds.InstanceIDOf(k.AccessKeyID); !ok || got != id {
			t.Errorf("InstanceIDOf(%s) = %q; want %s", k.AccessKeyID, got, id)
		}
	}
	for _, bad := range []string{"", "i-123", "i-0123456789ABCDEF0", "vpc-0123456789abcdef0"} {
		if _, err := creds.InstanceKey(bad, token); err == nil {
			t.Errorf("InstanceKey(%q) succeeded; want an error", bad)
		}
	}
	if _, err := creds.InstanceKey(id, ""); err == nil {
		t.Error("InstanceKey without a token succeeded")
	}
	for _, notInstance := range []string{"AKIAAAAAAAAAAAAAAAAA", "ASIA", "ASIAAAAAAAAAAAAAAAA1", "ASIA" + strings.Repeat("A", 17)} {
		if _, ok := creds.InstanceIDOf(notInstance); ok {
			t.Errorf("InstanceIDOf(%q) accepted it", notInstance)
		}
	}
}

func TestAdminKey(t *testing.T) {
	a, b := creds.NewAdminKey(), creds.NewAdminKey()
	if !keyIDShape.MatchString(a.AccessKeyID) || !strings.HasPrefix(a.AccessKeyID, "AKIA") || !secretShape.MatchString(a.SecretAccessKey) || a.SessionToken != "" {
		t.Fatalf("admin key %+v: want AKIA + 16 base32 and a 40-character secret", a)
	}
	if a == b {
		t.Fatal("two admin keys are equal")
	}
	if creds.IsInstanceKeyID(a.AccessKeyID) {
		t.Fatal("an admin key ID looks like an instance's")
	}
}

func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "aws-credentials")
	k, created, err := creds.LoadOrCreateAdminFile(path)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateAdminFile = %v, created %v", err, created)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v (%v); want 0600", fi.Mode().Perm(), err)
	}
	again, created, err := creds.LoadOrCreateAdminFile(path)
	if err != nil || created || again != k {
		t.Fatalf("second load = %+v, created %v, %v; want the same key read back", again, created, err)
	}

	cases := []struct {
		name, text string
		want       creds.Key
		wantErr    bool
	}{
		{name: "default among others", text: "[other]\naws_access_key_id=X\naws_secret_access_key=Y\n[default]\n aws_access_key_id = AKIAB \naws_secret_access_key=s/+=\n", want: creds.Key{AccessKeyID: "AKIAB", SecretAccessKey: "s/+="}},
		{name: "single named profile", text: "# c\n; c\n[fakecloud]\naws_access_key_id=AKIAC\naws_secret_access_key=t\n", want: creds.Key{AccessKeyID: "AKIAC", SecretAccessKey: "t"}},
		{name: "two profiles none default", text: "[a]\naws_access_key_id=X\naws_secret_access_key=Y\n[b]\naws_access_key_id=X\naws_secret_access_key=Y\n", wantErr: true},
		{name: "no secret", text: "[default]\naws_access_key_id=X\n", wantErr: true},
		{name: "setting before profile", text: "aws_access_key_id=X\n", wantErr: true},
		{name: "broken header", text: "[default\n", wantErr: true},
		{name: "not name=value", text: "[default]\nwhat\n", wantErr: true},
		{name: "instance-shaped id", text: "[default]\naws_access_key_id=ASIAAAAAAAAAAAAAAAAA\naws_secret_access_key=x\n", wantErr: true},
		{name: "empty", text: "", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := creds.ParseFile([]byte(c.text))
			if (err != nil) != c.wantErr || got != c.want {
				t.Fatalf("ParseFile = %+v, %v; want %+v (error: %v)", got, err, c.want, c.wantErr)
			}
		})
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := creds.LoadOrCreateAdminFile(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("a corrupt file: %v; want an error naming the file", err)
	}
}

func TestMetadataDocument(t *testing.T) {
	const id, token = "i-0123456789abcdef0", "fci-token"
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if body, ok := creds.MetadataDocument("iam/security-credentials/", id, token, now); !ok || body != creds.RoleName {
		t.Fatalf("role list = %q, %v", body, ok)
	}
	body, ok := creds.MetadataDocument("iam/security-credentials/"+creds.RoleName, id, token, now)
	if !ok {
		t.Fatal("no credentials document")
	}
	var doc creds.SecurityCredentials
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	want, _ := creds.InstanceKey(id, token)
	if doc.Code != "Success" || doc.Type != "AWS-HMAC" || doc.AccessKeyID != want.AccessKeyID || doc.SecretAccessKey != want.SecretAccessKey ||
		doc.Token != want.SessionToken || doc.Expiration != "2026-01-02T09:04:05Z" || doc.LastUpdated != "2026-01-02T03:04:05Z" {
		t.Fatalf("document %+v; want the derived key, expiring in 6h", doc)
	}
	if !creds.MetadataNeedsSession("iam/security-credentials/" + creds.RoleName) {
		t.Error("the credentials document does not need a session")
	}
	for _, p := range []string{"iam/", "iam/info", "iam/security-credentials/", "instance-id"} {
		if creds.MetadataNeedsSession(p) {
			t.Errorf("%s needs a session; it shows no secret", p)
		}
	}
	for _, p := range []string{"iam/security-credentials/other-role", "iam/nothing", "instance-id"} {
		if _, ok := creds.MetadataDocument(p, id, token, now); ok {
			t.Errorf("%s found; want not found", p)
		}
	}
	if _, ok := creds.MetadataDocument("iam/security-credentials/"+creds.RoleName, "i-bad", token, now); ok {
		t.Error("credentials for an instance that gets none")
	}
	if body, ok := creds.MetadataDocument("iam/info", id, token, now); !ok || !strings.Contains(body, "instance-profile/"+creds.RoleName) {
		t.Errorf("iam/info = %q, %v", body, ok)
	}
}
