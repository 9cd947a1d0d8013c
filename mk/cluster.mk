# Local Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager on 127.0.0.1).
# See docs/local-control-plane.md.

.PHONY: tools cluster-up cluster-down cluster-status test-ha

# Builds the pinned binaries into $(FLINKMEM_CACHE)/bin once; the last line printed is their directory.
# Needs only go, bash and python3 (no venv).
tools: ## build the pinned control-plane binaries, helm and cert-manager into the cache
	@bash hack/tools.sh

# Ready when it returns; a second call while up does nothing. Admin kubeconfig: .cluster/kubeconfig
cluster-up: tools install ## start the local control plane (.cluster/)
	@$(PY) -m localplane up

# Stops exactly the processes cluster-up recorded in .cluster/state.json, removes its data (keeps logs).
cluster-down: ## stop it and remove its data (logs are kept)
	@if [ -x $(PY) ]; then $(PY) -m localplane down; \
	else python3 -m localplane down; fi

cluster-status: install ## what the local control plane runs
	@$(PY) -m localplane status

# The HA fault suite alone: flinkmem installed by its chart, with cert-manager, on a plane in a
# network namespace of its own (needs root). `make test` runs it too.
test-ha: install tools image ## the HA fault suite alone (the chart from the image, cert-manager, network namespace)
	$(PY) -m pytest tests/ha -q
