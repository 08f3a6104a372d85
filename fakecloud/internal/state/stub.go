package state

import (
	"context"
	"log/slog"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Config configures a Store.
type Config struct {
	// StateFile, when set, makes every acknowledged change durable (snapshot + write-ahead log).
	StateFile string
	// AttachDelay is how long attach and detach stay in their transitional states.
	AttachDelay time.Duration
	Logger      *slog.Logger
}

// Store is fakecloud's state.
type Store struct{}

// Open loads the state file, if any, and returns a ready Store.
func Open(cfg Config) (*Store, error) { return &Store{}, nil }

// Close flushes and closes the state file.
func (s *Store) Close() error { return nil }

// Authenticate resolves an instance token.
func (s *Store) Authenticate(token string) (Principal, bool) { return Principal{}, false }

// WaitChanges returns the changes after since, waiting until there is one or ctx ends.
func (s *Store) WaitChanges(ctx context.Context, since uint64) (*api.GetChangesResponse, error) {
	return nil, api.ErrInternalError
}

// Snapshot returns a consistent view of everything.
func (s *Store) Snapshot() *api.Snapshot { return &api.Snapshot{} }

func (s *Store) CreateVpc(c Call, req *api.CreateVpcRequest) (*api.CreateVpcResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) DescribeVpcs(c Call, req *api.DescribeVpcsRequest) (*api.DescribeVpcsResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) DeleteVpc(c Call, req *api.DeleteVpcRequest) (*api.DeleteVpcResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) CreateSubnet(c Call, req *api.CreateSubnetRequest) (*api.CreateSubnetResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) DescribeSubnets(c Call, req *api.DescribeSubnetsRequest) (*api.DescribeSubnetsResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) DeleteSubnet(c Call, req *api.DeleteSubnetRequest) (*api.DeleteSubnetResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) DescribeInstanceTypes(c Call, req *api.DescribeInstanceTypesRequest) (*api.DescribeInstanceTypesResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) RunInstances(c Call, req *api.RunInstancesRequest) (*api.RunInstancesResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) DescribeInstances(c Call, req *api.DescribeInstancesRequest) (*api.DescribeInstancesResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) TerminateInstances(c Call, req *api.TerminateInstancesRequest) (*api.TerminateInstancesResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) CreateNetworkInterface(c Call, req *api.CreateNetworkInterfaceRequest) (*api.CreateNetworkInterfaceResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) DescribeNetworkInterfaces(c Call, req *api.DescribeNetworkInterfacesRequest) (*api.DescribeNetworkInterfacesResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) AttachNetworkInterface(c Call, req *api.AttachNetworkInterfaceRequest) (*api.AttachNetworkInterfaceResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) DetachNetworkInterface(c Call, req *api.DetachNetworkInterfaceRequest) (*api.DetachNetworkInterfaceResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) DeleteNetworkInterface(c Call, req *api.DeleteNetworkInterfaceRequest) (*api.DeleteNetworkInterfaceResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) ModifyNetworkInterfaceAttribute(c Call, req *api.ModifyNetworkInterfaceAttributeRequest) (*api.ModifyNetworkInterfaceAttributeResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) AssignPrivateIPAddresses(c Call, req *api.AssignPrivateIPAddressesRequest) (*api.AssignPrivateIPAddressesResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) UnassignPrivateIPAddresses(c Call, req *api.UnassignPrivateIPAddressesRequest) (*api.UnassignPrivateIPAddressesResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) CreateTags(c Call, req *api.CreateTagsRequest) (*api.CreateTagsResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}

func (s *Store) DeleteTags(c Call, req *api.DeleteTagsRequest) (*api.DeleteTagsResponse, error) {
	return nil, api.Errorf(api.CodeInternalError, "not implemented")
}
