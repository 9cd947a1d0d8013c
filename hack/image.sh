#!/usr/bin/env bash
# Build the flinkmem container image from the Dockerfile on a machine without Docker or a registry.
#
#   hack/image.sh          build what is missing, then print the image reference (last line of output)
#   hack/image.sh --ref    print the image reference only, building nothing
#   hack/image.sh --check  exit 0 if the image of the current sources is there, 1 if not
#   hack/image.sh --if-possible  as without a flag, but where podman, runc or mmdebstrap are missing and
#                          cannot be installed (not root), say so in one line and exit 0 (make test)
#
# podman builds it (runc, cgroupfs; installed with apt-get when missing and running as root). The
# Dockerfile's base, python:3.11-slim-bookworm, comes from a registry this machine cannot reach, so
# a LOCAL STAND-IN is built instead from Debian bookworm packages (python3 3.11, as in the official
# image) with mmdebstrap and imported as localhost/python:3.11-slim-bookworm. It is only a stand-in
# for building and testing here: the Dockerfile keeps the official base for everyone else.
#
# Cached under ${FLINKMEM_CACHE:-$HOME/.cache/flinkmem}/image: the base tarball (keyed by its recipe).
# The image itself lives in podman's storage, labelled with a hash of everything the build reads
# (Dockerfile, .dockerignore, pyproject.toml, requirements.lock, operator/), so an unchanged tree
# builds nothing (its revision label stays that of the build), and a change to operator/ rebuilds only
# the layers after the dependencies.
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
cache=${FLINKMEM_CACHE:-$HOME/.cache/flinkmem}
image_cache=$cache/image
version=$(sed -nE 's/^__version__ = "([^"]+)"$/\1/p' "$root/operator/flinkmem/__init__.py" | head -n1)
# The chart's default image is flinkmem:<appVersion>; podman finds a short name under localhost/.
image=${FLINKMEM_IMAGE:-localhost/flinkmem:$version}
base_ref=localhost/python:3.11-slim-bookworm

# The stand-in's recipe; the dpkg path excludes are those of Debian's slim images.
suite=bookworm
mirror=${FLINKMEM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
base_packages=python3,python3-venv,python3-pip,python-is-python3,ca-certificates
excludes=('/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' '/usr/share/locale/*' '/usr/share/groff/*'
    '/usr/share/lintian/*' '/usr/share/linda/*')
# merged-usr: /usr merged as in Debian's images, without the usrmerge package (which brings perl).
hooks=(/usr/share/mmdebstrap/hooks/merged-usr)
base_key=$(printf '%s\n' "$suite" "$mirror" "$base_packages" "${excludes[@]}" "${hooks[@]##*/}" | sha256sum | cut -c1-12)
base_tar=$image_cache/python-3.11-slim-bookworm-standin-$base_key.tar

# Every file the build context holds (.dockerignore lets in pyproject.toml, requirements.lock and
# operator/ without caches and locally built extensions), plus the recipe files themselves.
source_hash() {
    (
        cd "$root"
        {
            printf '%s\n' Dockerfile .dockerignore pyproject.toml requirements.lock
            find operator -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -name '*.so' \
                ! -path 'operator/*.egg-info/*' | LC_ALL=C sort
        } | while read -r f; do
            printf '%s %s\n' "$(sha256sum <"$f" | cut -c1-64)" "$f"
        done
        echo "base $base_key"
    ) | sha256sum | cut -c1-16
}

pm() { podman --runtime=runc --cgroup-manager=cgroupfs "$@"; }

label_of() {
    pm image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

case ${1:-} in
    --if-possible) if_possible=1 ;;
    --ref) echo "$image"; exit 0 ;;
    --check)
        command -v podman >/dev/null || exit 1
        [[ $(label_of "$image" io.flinkmem.source-hash) == "$(source_hash)" ]]
        exit
        ;;
esac

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

ensure_packages() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    ((${#missing[@]})) || return 0
    if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
        echo "image.sh: ${missing[*]} missing; install them (Debian: apt-get install podman runc mmdebstrap)" >&2
        if [[ ${if_possible:-} == 1 ]]; then
            echo "image.sh: the image is not built; the tests that run it are skipped (as root, make test builds it)" >&2
            exit 0
        fi
        exit 1
    fi
    log "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -qq -o DPkg::Lock::Timeout=600 update
    apt-get -qq -o DPkg::Lock::Timeout=600 install -y --no-install-recommends podman runc mmdebstrap uidmap \
        >"$image_cache/apt.log" 2>&1 || { cat "$image_cache/apt.log" >&2; exit 1; }
}

build_base_tar() {
    local started=$SECONDS tmp=$base_tar.tmp args=()
    for pattern in "${excludes[@]}"; do args+=("--dpkgopt=path-exclude=$pattern"); done
    args+=("--dpkgopt=path-include=/usr/share/doc/*/copyright")
    log "building the stand-in base (Debian $suite: $base_packages) with mmdebstrap"
    rm -f "$tmp"
    for hook in "${hooks[@]}"; do args+=("--hook-dir=$hook"); done
    mmdebstrap --quiet --variant=apt --format=tar --include="$base_packages" "${args[@]}" \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
        "$suite" "$tmp" "$mirror"
    mv "$tmp" "$base_tar"
    log "stand-in base tarball: $(du -h "$base_tar" | cut -f1) in $((SECONDS - started)) s"
}

import_base() {
    [[ $(label_of "$base_ref" io.flinkmem.standin-key) == "$base_key" ]] && return 0
    [[ -f $base_tar ]] || build_base_tar
    log "importing the stand-in as $base_ref"
    pm import --quiet \
        --change "LABEL io.flinkmem.standin-key=$base_key" \
        --change 'LABEL io.flinkmem.standin="Debian bookworm packages standing in for python:3.11-slim-bookworm; local builds only"' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        "$base_tar" "$base_ref" >/dev/null
}

build_image() {
    local hash=$1 started=$SECONDS ca_dir previous build_args=()
    # pip inside the build trusts the same CA store as this machine (which may add its own CAs).
    ca_dir=$(readlink -f "${SSL_CERT_DIR:-/etc/ssl/certs}")
    if [[ -d $ca_dir ]]; then
        build_args+=(--volume "$ca_dir:/etc/ssl/certs:ro")
    fi
    previous=$(pm image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    log "building $image from the Dockerfile (base: the stand-in $base_ref)"
    pm build --quiet --network host --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
        "${build_args[@]}" \
        --build-arg PYTHON_IMAGE="$base_ref" \
        --build-arg VERSION="$version" \
        --build-arg REVISION="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)" \
        --label io.flinkmem.source-hash="$hash" \
        --label io.flinkmem.base="$base_ref (stand-in $base_key)" \
        --tag "$image" "$root" >/dev/null
    log "$image built in $((SECONDS - started)) s: $(pm image inspect --format '{{.Size}}' "$image") bytes"
    # The image this one replaces, now untagged (its build stages stay: they are the layer cache).
    if [[ -n $previous && $previous != "$(pm image inspect --format '{{.Id}}' "$image")" ]]; then
        pm rmi "$previous" >/dev/null 2>&1 || true
    fi
}

main() {
    mkdir -p "$image_cache"
    ensure_packages
    # One build at a time per cache (other checkouts share it); a second caller waits, then finds it built.
    exec 8>"$image_cache/.lock"
    flock 8
    local hash
    hash=$(source_hash)
    if [[ $(label_of "$image" io.flinkmem.source-hash) != "$hash" ]]; then
        import_base
        build_image "$hash"
    fi
    echo "$image"
}

# As in tools.sh: the long work inside main, exit on the same line.
main "$@"; exit
