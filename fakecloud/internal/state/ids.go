package state

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"

	memdb "github.com/hashicorp/go-memdb"
)

// newID returns an EC2-shaped identifier (prefix + 17 hex digits) not yet used in table.
func newID(txn *memdb.Txn, table, prefix string) string {
	for {
		id := fmt.Sprintf("%s-%017x", prefix, mrand.Uint64()&(1<<68/16-1))
		if raw, _ := txn.First(table, indexID, id); raw == nil {
			return id
		}
	}
}

// newAttachmentID returns an attachment identifier not used by any interface.
func newAttachmentID(txn *memdb.Txn) string {
	for {
		id := fmt.Sprintf("eni-attach-%017x", mrand.Uint64()&(1<<68/16-1))
		if raw, _ := txn.First(tableENIs, indexAttachment, id); raw == nil {
			return id
		}
	}
}

// newMAC returns a locally administered unicast MAC not used by any interface.
func newMAC(txn *memdb.Txn) string {
	for {
		v := mrand.Uint64()
		mac := fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
		if raw, _ := txn.First(tableENIs, indexMAC, mac); raw == nil {
			return mac
		}
	}
}

// tokenHash is the index key of an instance token.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// newToken returns an unguessable instance token.
func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return "fci-" + hex.EncodeToString(b)
}

// newLBToken returns an unguessable load-balancer token.
func newLBToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "fcl-" + hex.EncodeToString(b)
}
