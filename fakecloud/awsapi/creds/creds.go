package creds

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
)

// Key is an AWS access key pair, with the session token of temporary credentials.
type Key struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string // empty for a long-term key
}

// Access key ID prefixes, as AWS uses them: AKIA for long-term keys, ASIA for temporary ones.
const (
	adminPrefix    = "AKIA"
	instancePrefix = "ASIA"
)

// keyIDEncoding is base32 in capitals and digits 2-7, as AWS key IDs look.
var keyIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewAdminKey returns a fresh random long-term key pair.
func NewAdminKey() Key {
	id := make([]byte, 10)
	secret := make([]byte, 30)
	_, _ = rand.Read(id) // crypto/rand.Read never fails
	_, _ = rand.Read(secret)
	return Key{
		AccessKeyID:     adminPrefix + keyIDEncoding.EncodeToString(id),
		SecretAccessKey: base64.StdEncoding.EncodeToString(secret),
	}
}

// IsInstanceKeyID reports whether id has the shape of an instance's access key ID.
func IsInstanceKeyID(id string) bool {
	_, ok := decodeInstanceKeyID(id)
	return ok
}

// InstanceKey derives an instance's credentials from its ID and its fakecloud token. The key ID
// carries the instance ID (so a request names its instance without a lookup table) and a check
// derived from the token; secret and session token are HMACs keyed by the token, so whoever has
// them cannot recover the token, and they change whenever the instance does.
func InstanceKey(instanceID, token string) (Key, error) {
	hexID, ok := strings.CutPrefix(instanceID, "i-")
	if !ok || len(hexID) != 17 || !isLowerHex(hexID) {
		return Key{}, fmt.Errorf("instance ID %q is not i- and 17 hexadecimal digits: it gets no AWS credentials", instanceID)
	}
	if token == "" {
		return Key{}, fmt.Errorf("instance %s has no token: it gets no AWS credentials", instanceID)
	}
	// 80 bits, as 16 base32 characters: the ID's 68 bits, then 12 bits of check.
	n, _ := new(big.Int).SetString(hexID, 16)
	check := derive(token, "key-id-check")
	n.Lsh(n, 12).Or(n, big.NewInt(int64(check[0]&0x0f)<<8|int64(check[1])))
	b := n.FillBytes(make([]byte, 10))
	return Key{
		AccessKeyID:     instancePrefix + keyIDEncoding.EncodeToString(b),
		SecretAccessKey: base64.StdEncoding.EncodeToString(derive(token, "secret-access-key"))[:40],
		SessionToken:    "fcs" + base64.StdEncoding.EncodeToString(append([]byte(instanceID+"\x00"), derive(token, "session-token")...)),
	}, nil
}

// InstanceIDOf returns the instance an instance key ID belongs to, if id is one; the caller
// derives that instance's key and compares the whole ID (check bits included).
func InstanceIDOf(id string) (string, bool) {
	return decodeInstanceKeyID(id)
}

func decodeInstanceKeyID(id string) (instanceID string, ok bool) {
	enc, found := strings.CutPrefix(id, instancePrefix)
	if !found || len(enc) != 16 {
		return "", false
	}
	b, err := keyIDEncoding.DecodeString(enc)
	if err != nil || len(b) != 10 {
		return "", false
	}
	n := new(big.Int).SetBytes(b)
	return fmt.Sprintf("i-%017x", n.Rsh(n, 12)), true
}

func derive(token, purpose string) []byte {
	h := hmac.New(sha256.New, []byte(token))
	h.Write([]byte("fakecloud-aws/" + purpose))
	return h.Sum(nil)
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
