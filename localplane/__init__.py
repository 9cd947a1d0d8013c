"""The local Kubernetes control plane that `make demo`, `make cluster-up` and the e2e tests run on.

`controlplane` starts and stops etcd, kube-apiserver and kube-controller-manager (built by
`hack/tools.sh`) on this machine and hands out `Cluster` handles; `serve` runs `flinkmem serve` as a
local process against it. This is development tooling, not part of the flinkmem package.
"""
