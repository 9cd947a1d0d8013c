#!/usr/bin/env bash
# Build the pinned control-plane binaries from the Go module proxy and cache them outside the repo.
#
#   hack/tools.sh          build what is missing, then print the tool directory (last line of output)
#   hack/tools.sh --dir    print the tool directory only, building nothing
#
# Layout under ${FLINKMEM_CACHE:-$HOME/.cache/flinkmem}/bin:
#   kubernetes-<v>/{kube-apiserver,kube-controller-manager,kubectl}
#   etcd-<v>/etcd
#   helm-<v>/helm
#   cert-manager-<v>-<hash of hack/cert-manager>/cert-manager-{controller,cainjector,crds.yaml}
#   prometheus-<v>/{prometheus,promtool}
#   prometheus-operator-crds-<v>/{monitoring.coreos.com_servicemonitors.yaml,..._prometheusrules.yaml}
#   k8s-<v>_etcd-<v>_helm-<v>_cert-manager-<v>-<hash>_prometheus-<v>_promop-<v>/   symlinks to all of
#       the above: the tool directory
# A component directory only appears once its build has fully succeeded (built in a scratch
# directory, then renamed), so an interrupted build is simply redone on the next run.
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
eval "$(grep -E '^[A-Z_]+=' "$here/versions.env" | sed -E 's/^([A-Z_]+)=(.*)$/: "${\1:=\2}"/')"
: "${KUBERNETES_VERSION:?}" "${ETCD_VERSION:?}" "${HELM_VERSION:?}" "${CERT_MANAGER_VERSION:?}"
: "${PROMETHEUS_VERSION:?}" "${PROMETHEUS_OPERATOR_VERSION:?}"

cache=${FLINKMEM_CACHE:-$HOME/.cache/flinkmem}
bin=$cache/bin
k8s_dir=$bin/kubernetes-$KUBERNETES_VERSION
etcd_dir=$bin/etcd-$ETCD_VERSION
helm_dir=$bin/helm-$HELM_VERSION
# cert-manager's commands are ours (hack/cert-manager): a change to them is a new build.
cm_build=$CERT_MANAGER_VERSION-$(cat "$here"/cert-manager/*/main.go | sha256sum | cut -c1-8)
cm_dir=$bin/cert-manager-$cm_build
prom_dir=$bin/prometheus-$PROMETHEUS_VERSION
promop_dir=$bin/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION
promop_crds=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_prometheusrules.yaml)
tool_dir=$bin/k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_cert-manager-${cm_build}
tool_dir+=_prometheus-${PROMETHEUS_VERSION}_promop-${PROMETHEUS_OPERATOR_VERSION}

if [[ ${1:-} == --dir ]]; then
    echo "$tool_dir"
    exit 0
fi

complete() {
    [[ -x $tool_dir/kube-apiserver && -x $tool_dir/kube-controller-manager && -x $tool_dir/kubectl \
        && -x $tool_dir/etcd && -x $tool_dir/helm && -x $tool_dir/cert-manager-controller \
        && -x $tool_dir/cert-manager-cainjector && -f $tool_dir/cert-manager-crds.yaml \
        && -x $tool_dir/prometheus && -x $tool_dir/promtool && -f $tool_dir/${promop_crds[0]} \
        && -f $tool_dir/${promop_crds[1]} ]]
}
if complete; then
    echo "$tool_dir"
    exit 0
fi

command -v go >/dev/null || { echo "tools.sh: the go command is needed to build the tools" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false -p=${TOOLS_BUILD_JOBS:-2}"
mkdir -p "$bin" "$cache/work"

# One build at a time per cache: a second `make tools` waits, then finds everything built.
exec 9>"$bin/.lock"
flock 9

log() { printf '[tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# quietly CMD...: run CMD with its chatter in quiet.log; show that log only if CMD fails
quietly() {
    "$@" >quiet.log 2>&1 || { cat quiet.log >&2; echo "tools.sh: failed: $*" >&2; return 1; }
}

# new_module DIR NAME: a fresh scratch directory holding an empty module
new_module() {
    rm -rf "$1"
    mkdir -p "$1"
    (cd "$1" && go mod init "$2" >/dev/null 2>&1)
}

# gomod_json MODULE@VERSION: the module's own go.mod, as `go mod edit -json` prints it
gomod_json() {
    local file
    file=$(go mod download -json "$1" | python3 -c '
import json, sys
info = json.load(sys.stdin)
if "GoMod" not in info:
    sys.exit("tools.sh: cannot download " + sys.argv[1] + ": " + str(info.get("Error", info)))
print(info["GoMod"])' "$1")
    go mod edit -json "$file"
}

# install_dir SCRATCH_OUT DEST: move a finished build into place atomically
install_dir() {
    rm -rf "$2.old"
    [[ -e $2 ]] && mv "$2" "$2.old"
    mv "$1" "$2"
    rm -rf "$2.old"
}

build_kubernetes() {
    local v=$KUBERNETES_VERSION work=$cache/work/kubernetes-$KUBERNETES_VERSION
    local minor staging ldflags kv mod
    minor=$(cut -d. -f2 <<<"${v#v}")
    staging=v0.${v#v1.}
    log "building kube-apiserver, kube-controller-manager, kubectl $v (staging modules at $staging)"
    new_module "$work" local.invalid/flinkmem-kubernetes
    cd "$work"
    # The staging modules are required at v0.0.0 and replaced by ./staging/src/... in kubernetes'
    # go.mod; both are meaningless outside its repository. Pin each to its published release.
    gomod_json "k8s.io/kubernetes@$v" >kubernetes.gomod.json
    python3 - kubernetes.gomod.json >staging.txt 3>edits.txt <<'PY'
import json, os, sys
mod = json.load(open(sys.argv[1]))
names = {r["Path"] for r in mod.get("Require") or [] if r["Path"].startswith("k8s.io/") and r["Version"] == "v0.0.0"}
names |= {r["Old"]["Path"] for r in mod.get("Replace") or [] if r["New"]["Path"].startswith("./staging/")}
print("\n".join(sorted(names)))
with os.fdopen(3, "w") as out:
    for setting in mod.get("GoDebug") or []:
        print(f"-godebug={setting['Key']}={setting['Value']}", file=out)
    for excluded in mod.get("Exclude") or []:
        print(f"-exclude={excluded['Path']}@{excluded['Version']}", file=out)
PY
    # Mirror kubernetes' own GODEBUG defaults and excludes, which a dependency's go.mod cannot impose.
    xargs -r go mod edit <edits.txt
    while read -r mod; do go mod edit -replace="$mod=$mod@$staging"; done <staging.txt
    log "$(wc -l <staging.txt) staging modules replaced; resolving dependencies"
    local started=$SECONDS
    quietly go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$v" "k8s.io/kubernetes/cmd/kube-controller-manager@$v" \
        "k8s.io/kubernetes/cmd/kubectl@$v"
    log "dependencies resolved in $((SECONDS - started)) s"
    # Without these the binaries report v0.0.0-master, which breaks version checks everywhere.
    ldflags="-s -w"
    for kv in "gitVersion=$v" gitMajor=1 "gitMinor=$minor" gitTreeState=clean \
        "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
        ldflags+=" -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
    done
    mkdir -p out
    started=$SECONDS
    go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o out/ \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
    log "kube-apiserver + kube-controller-manager built in $((SECONDS - started)) s"
    started=$SECONDS
    go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o out/ \
        k8s.io/kubernetes/cmd/kubectl
    log "kubectl built in $((SECONDS - started)) s"
    out/kube-apiserver --version >&2
    install_dir "$work/out" "$k8s_dir"
    cd "$cache" && rm -rf "$work"
}

build_etcd() {
    local v=$ETCD_VERSION work=$cache/work/etcd-$ETCD_VERSION started=$SECONDS
    log "building etcd $v"
    new_module "$work" local.invalid/flinkmem-etcd
    cd "$work"
    # server/v3's go.mod replaces its siblings with ../ paths, so `go install` refuses it; as a plain
    # requirement those replaces are ignored and its require lines pin the siblings to the same tag.
    quietly go get -tool "go.etcd.io/etcd/server/v3@$v"
    mkdir -p out
    go build -trimpath -ldflags "-s -w" -o out/etcd go.etcd.io/etcd/server/v3
    log "etcd built in $((SECONDS - started)) s"
    out/etcd --version >&2
    install_dir "$work/out" "$etcd_dir"
    cd "$cache" && rm -rf "$work"
}

build_helm() {
    local v=$HELM_VERSION work=$cache/work/helm-$HELM_VERSION started=$SECONDS minor pkg ldflags
    log "building helm $v"
    new_module "$work" local.invalid/flinkmem-helm
    cd "$work"
    # Helm 3 reports Kubernetes v1.20 as its default capabilities unless told the client-go minor.
    gomod_json "helm.sh/helm/v3@$v" >helm.gomod.json
    minor=$(python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["Require"]:
    if r["Path"] == "k8s.io/client-go":
        print(r["Version"].split(".")[1])' helm.gomod.json)
    quietly go get -tool "helm.sh/helm/v3/cmd/helm@$v"
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$v"
    for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
        ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
    done
    mkdir -p out
    go build -trimpath -ldflags "$ldflags" -o out/helm helm.sh/helm/v3/cmd/helm
    log "helm built in $((SECONDS - started)) s"
    out/helm version >&2
    install_dir "$work/out" "$helm_dir"
    cd "$cache" && rm -rf "$work"
}

build_cert_manager() {
    local v=$CERT_MANAGER_VERSION work=$cache/work/cert-manager-$cm_build started=$SECONDS
    local module=github.com/cert-manager/cert-manager chart
    log "building cert-manager $v (controller, cainjector) and rendering its CRDs"
    new_module "$work" local.invalid/flinkmem-cert-manager
    cd "$work"
    # cert-manager's own commands are modules of their own (controller-binary, cainjector-binary)
    # whose paths do not match their directories, so the module proxy cannot serve them. Its
    # controllers are packages of the main module; hack/cert-manager holds two small commands of
    # ours that run them.
    cp -r "$here/cert-manager/controller" "$here/cert-manager/cainjector" .
    quietly go get "$module@$v"
    quietly go mod tidy
    mkdir -p out
    go build -trimpath -ldflags "-s -w -X $module/pkg/util.AppVersion=$v -X $module/pkg/util.AppGitState=clean" \
        -o out/ ./controller ./cainjector
    log "cert-manager built in $((SECONDS - started)) s"
    # The CRDs as cert-manager's own Helm chart installs them (crds.enabled=true), from the same
    # module. The chart carries a template of Chart.yaml whose version fields the release fills in.
    chart=$work/chart
    cp -r "$(go list -m -f '{{.Dir}}' "$module")/deploy/charts/cert-manager" "$chart"
    chmod -R u+w "$chart"
    sed -e "s/^version: .*/version: $v/" -e "s/^appVersion: .*/appVersion: $v/" -e 's/{{IS_PRERELEASE}}/false/' \
        "$chart/Chart.template.yaml" >"$chart/Chart.yaml"
    "$helm_dir/helm" template cert-manager "$chart" --namespace cert-manager --set crds.enabled=true \
        --kube-version "$KUBERNETES_VERSION" >rendered.yaml
    python3 - rendered.yaml out/crds.yaml <<'PY'
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
crds = [d.strip() for d in docs if "\nkind: CustomResourceDefinition\n" in "\n" + d + "\n"]
if len(crds) != 6:
    sys.exit(f"tools.sh: expected cert-manager's 6 CRDs, found {len(crds)}")
open(sys.argv[2], "w").write("".join(f"---\n{d}\n" for d in crds))
PY
    mv out/controller out/cert-manager-controller
    mv out/cainjector out/cert-manager-cainjector
    mv out/crds.yaml out/cert-manager-crds.yaml
    out/cert-manager-controller --version >&2
    install_dir "$work/out" "$cm_dir"
    cd "$cache" && rm -rf "$work"
}

build_prometheus() {
    local v=$PROMETHEUS_VERSION work=$cache/work/prometheus-$PROMETHEUS_VERSION started=$SECONDS
    local module=github.com/prometheus/prometheus release ldflags
    log "building prometheus and promtool $v"
    new_module "$work" local.invalid/flinkmem-prometheus
    cd "$work"
    quietly go get -tool "$module/cmd/prometheus@$v" "$module/cmd/promtool@$v"
    # The module's v0.3xx.y is Prometheus 3.xx.y (its VERSION file).
    release=$(cat "$(go list -m -f '{{.Dir}}' "$module")/VERSION")
    ldflags="-s -w -X github.com/prometheus/common/version.Version=$release"
    ldflags+=" -X github.com/prometheus/common/version.Revision=$v -X github.com/prometheus/common/version.Branch=HEAD"
    mkdir -p out
    # remove_all_sd,enable_kubernetes_sd: of the service discoveries only file, HTTP and Kubernetes (the
    # HA suite discovers the replicas from their EndpointSlices, as a ServiceMonitor does);
    # without builtinassets the web UI's assets are not embedded (the HTTP API is all the tests use).
    go build -trimpath -tags remove_all_sd,enable_kubernetes_sd -ldflags "$ldflags" -o out/ "$module/cmd/prometheus" "$module/cmd/promtool"
    log "prometheus + promtool built in $((SECONDS - started)) s"
    out/promtool --version >&2
    install_dir "$work/out" "$prom_dir"
    cd "$cache" && rm -rf "$work"
}

# The Prometheus Operator's CRDs as its release ships them (example/prometheus-operator-crd/ of its
# Go module; nothing is built).
fetch_prometheus_operator_crds() {
    local v=$PROMETHEUS_OPERATOR_VERSION work=$cache/work/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION dir crd
    log "fetching the Prometheus Operator $v CRDs"
    new_module "$work" local.invalid/flinkmem-prometheus-operator
    cd "$work"
    dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$v" | python3 -c '
import json, sys
info = json.load(sys.stdin)
if "Dir" not in info:
    sys.exit("tools.sh: cannot download the Prometheus Operator module: " + str(info.get("Error", info)))
print(info["Dir"])')
    mkdir -p out
    for crd in "${promop_crds[@]}"; do
        cp "$dir/example/prometheus-operator-crd/$crd" out/
    done
    chmod u+w out/*
    install_dir "$work/out" "$promop_dir"
    cd "$cache" && rm -rf "$work"
}

main() {
    # Plain `if`s: in `test || build_x`, bash would run build_x with `set -e` switched off.
    if [[ ! -x $etcd_dir/etcd ]]; then
        build_etcd
    fi
    if [[ ! -x $k8s_dir/kube-apiserver || ! -x $k8s_dir/kube-controller-manager || ! -x $k8s_dir/kubectl ]]; then
        build_kubernetes
    fi
    if [[ ! -x $helm_dir/helm ]]; then
        build_helm
    fi
    if [[ ! -x $cm_dir/cert-manager-controller || ! -x $cm_dir/cert-manager-cainjector \
        || ! -f $cm_dir/cert-manager-crds.yaml ]]; then
        build_cert_manager
    fi

    if [[ ! -x $prom_dir/prometheus || ! -x $prom_dir/promtool ]]; then
        build_prometheus
    fi
    if [[ ! -f $promop_dir/${promop_crds[0]} || ! -f $promop_dir/${promop_crds[1]} ]]; then
        fetch_prometheus_operator_crds
    fi

    mkdir -p "$tool_dir.tmp"
    for f in "$k8s_dir"/kube-apiserver "$k8s_dir"/kube-controller-manager "$k8s_dir"/kubectl \
        "$etcd_dir"/etcd "$helm_dir"/helm "$cm_dir"/cert-manager-controller "$cm_dir"/cert-manager-cainjector \
        "$cm_dir"/cert-manager-crds.yaml "$prom_dir"/prometheus "$prom_dir"/promtool \
        "${promop_crds[@]/#/$promop_dir/}"; do
        ln -sfn "../$(basename "$(dirname "$f")")/$(basename "$f")" "$tool_dir.tmp/$(basename "$f")"
    done
    install_dir "$tool_dir.tmp" "$tool_dir"
    echo "$tool_dir"
}

# Bash reads a script as it runs it: keep the long work inside main and exit on the same line, so
# editing this file during a build cannot make bash run half a line of the new text.
main "$@"; exit
