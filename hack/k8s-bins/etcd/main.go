// Command etcd is etcd's own server main (go.etcd.io/etcd/server/v3/etcdmain), built at the
// version k8s.io/kubernetes requires so the lab's API server runs against the etcd it was tested with.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
