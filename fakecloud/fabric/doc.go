// Package fabric is fakecloud's VPC data plane: it makes the control plane's view of VPCs,
// instances and network interfaces real on this machine's kernel, with network namespaces.
//
// Each VPC is a router namespace, each instance a node namespace, each attached interface a veth
// pair whose node end (eth<DeviceIndex>) carries the interface's MAC and primary IP. The router
// delivers every primary IP, secondary IP and /28 prefix to the interface that holds it (host and
// prefix routes plus permanent neighbour entries), answers ARP on the subnets (proxy ARP), owns each
// subnet's gateway address, and enforces the source/destination check with strict reverse-path
// filtering on its side of each veth. An "internet" namespace hangs off each router. A metadata
// service and the fakecloud API listen inside the router namespace at 169.254.169.254. Each
// network load balancer is a namespace of its own behind the router, forwarding to its healthy
// targets with nftables and health-checking them (lb*.go).
//
// An instance may instead be attached to a network namespace that already exists and belongs to
// someone else, such as a kind node's container (Config.Attach, attach*.go, kernel_attach.go):
// its interfaces go into that namespace as vpc<DeviceIndex>, beside what the owner made there,
// with routes to the VPC, the metadata service and the public VIPs but not the default route
// (unless asked). The fabric never deletes such a namespace: removing the instance, Down and
// teardown take out only its own links, and with them their addresses and routes.
//
// The fabric is level-triggered: it waits for the change sequence to move, takes a snapshot, diffs
// it against what it has programmed (read back from the kernel on start) and applies the difference.
// The diff is a pure function (plan.go); everything that touches the kernel lives in kernel*.go.
// It never touches the root network namespace, and refuses to attach it.
package fabric
