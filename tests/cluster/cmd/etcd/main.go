// Command etcd is the real etcd server, built from go.etcd.io/etcd/server/v3 at the release the
// pinned Kubernetes uses (go.mod), for the project's tests and benches (tests/cluster/launcher.py).
// Debian's etcd 3.4.23 lacks the watch progress notifications a 1.36 API server's reads from its
// watch cache wait on: a Pod watch with no resourceVersion then timed out (504 "Too large
// resource version") until a Pod changed, and a test's Pods stayed Pending.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
