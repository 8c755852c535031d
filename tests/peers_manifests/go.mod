// The peers whose own manifests `rollout convert` is tested on (tests/unit/test_convert_peers.py):
// their examples, end-to-end test manifests and documentation ship inside their Go modules, read
// in the Go module cache (`go mod download -json MODULE`), never copied here. Argo Rollouts is
// pinned as bench/peers/argo-rollouts pins it; Flagger v1.36.1 is the newest the module proxy
// serves as github.com/fluxcd/flagger. Nothing is built from this module, so it needs none of
// Argo Rollouts' replace lines.
module rollout.dev/peers/manifests

go 1.26.1

require (
	github.com/argoproj/argo-rollouts v1.10.1
	github.com/fluxcd/flagger v1.36.1
)
