package state

import (
	"crypto/subtle"
	"time"
	"unicode/utf8"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/awsapi/creds"
)

// Load-balancer tokens: what the admin gives a load balancer controller instead of its own
// token. They are kept with the state (so they survive a restart with --state-file) but are no
// resource: no change, no snapshot entry.

const (
	tableLBTokens  = "lbtokens"
	indexAccessKey = "accesskey"

	maxTokenDescription = 255
)

type lbTokenRec struct {
	ID          string
	Description string
	Token       string
	// TokenHash indexes the token, as instanceRec.TokenHash does.
	TokenHash       string
	AccessKeyID     string
	SecretAccessKey string
	Created         time.Time
}

func lbTokensTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableLBTokens, Indexes: map[string]*memdb.IndexSchema{
		indexID:        idIndex("ID"),
		indexToken:     fieldIndex(indexToken, "TokenHash", true, false),
		indexAccessKey: fieldIndex(indexAccessKey, "AccessKeyID", true, false),
	}}
}

func (r *lbTokenRec) view(withSecrets bool) api.LoadBalancerToken {
	v := api.LoadBalancerToken{TokenID: r.ID, Description: r.Description, AccessKeyID: r.AccessKeyID, CreateTime: r.Created}
	if withSecrets {
		v.Token, v.SecretAccessKey = r.Token, r.SecretAccessKey
	}
	return v
}

// CreateLoadBalancerToken makes a new load-balancer token with its AWS key pair; the answer is
// the only one that carries the secrets.
func (s *Store) CreateLoadBalancerToken(c Call, req *api.CreateLoadBalancerTokenRequest) (*api.CreateLoadBalancerTokenResponse, error) {
	if err := requireAdmin(c.Principal, api.ActionCreateLoadBalancerToken); err != nil {
		return nil, err
	}
	if len(req.Description) > maxTokenDescription || !utf8.ValidString(req.Description) {
		return nil, api.Errorf(api.CodeInvalidParameterValue, "Description must be valid UTF-8 of at most %d bytes", maxTokenDescription)
	}
	return write(s, c, api.ActionCreateLoadBalancerToken, "", req, func(t *tx) (*api.CreateLoadBalancerTokenResponse, error) {
		key := creds.NewAdminKey()
		r := &lbTokenRec{
			ID: newID(t.Txn, tableLBTokens, "lbt"), Description: req.Description, Token: newLBToken(),
			AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey, Created: c.Now,
		}
		r.TokenHash = tokenHash(r.Token)
		if err := t.Insert(tableLBTokens, r); err != nil {
			return nil, internal(err)
		}
		t.dirty = true
		return &api.CreateLoadBalancerTokenResponse{LoadBalancerToken: r.view(true)}, nil
	})
}

// DescribeLoadBalancerTokens lists the load-balancer tokens, without their secrets.
func (s *Store) DescribeLoadBalancerTokens(c Call, _ *api.DescribeLoadBalancerTokensRequest) (*api.DescribeLoadBalancerTokensResponse, error) {
	if err := requireAdmin(c.Principal, api.ActionDescribeLoadBalancerTokens); err != nil {
		return nil, err
	}
	out := []api.LoadBalancerToken{}
	for _, r := range listAll[lbTokenRec](s.read(), tableLBTokens) {
		out = append(out, r.view(false))
	}
	return &api.DescribeLoadBalancerTokensResponse{LoadBalancerTokens: out}, nil
}

// DeleteLoadBalancerToken revokes a load-balancer token: every later call with it, or with its
// AWS key, is refused.
func (s *Store) DeleteLoadBalancerToken(c Call, req *api.DeleteLoadBalancerTokenRequest) (*api.DeleteLoadBalancerTokenResponse, error) {
	if err := requireAdmin(c.Principal, api.ActionDeleteLoadBalancerToken); err != nil {
		return nil, err
	}
	if req.TokenID == "" {
		return nil, api.Errorf(api.CodeMissingParameter, "TokenId is required")
	}
	return write(s, c, api.ActionDeleteLoadBalancerToken, "", req, func(t *tx) (*api.DeleteLoadBalancerTokenResponse, error) {
		r := first[lbTokenRec](t.Txn, tableLBTokens, indexID, req.TokenID)
		if r == nil {
			return nil, api.Errorf(api.CodeInvalidParameterValue, "load-balancer token %s does not exist", req.TokenID)
		}
		if err := t.Delete(tableLBTokens, r); err != nil {
			return nil, internal(err)
		}
		t.dirty = true
		return &api.DeleteLoadBalancerTokenResponse{}, nil
	})
}

// authenticateLB resolves a load-balancer token, as Authenticate does an instance token.
func authenticateLB(txn *memdb.Txn, token string) (Principal, bool) {
	r := first[lbTokenRec](txn, tableLBTokens, indexToken, tokenHash(token))
	if r == nil || subtle.ConstantTimeCompare([]byte(r.Token), []byte(token)) != 1 {
		return Principal{}, false
	}
	return Principal{LoadBalancer: true, TokenID: r.ID}, true
}

// LoadBalancerKey returns the AWS key pair of a load-balancer token by its access key ID, and
// the token's ID.
func (s *Store) LoadBalancerKey(accessKeyID string) (creds.Key, string, bool) {
	r := first[lbTokenRec](s.db.Txn(false), tableLBTokens, indexAccessKey, accessKeyID)
	if r == nil {
		return creds.Key{}, "", false
	}
	return creds.Key{AccessKeyID: r.AccessKeyID, SecretAccessKey: r.SecretAccessKey}, r.ID, true
}
