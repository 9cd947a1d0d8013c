# syntax=docker/dockerfile:1
# flinkmem: `flinkmem serve` (admission webhooks + controller) on a slim Python base.
#
# The base is pinned by tag; pin it by digest too (python:3.11-slim-bookworm@sha256:...) where a
# registry is reachable to look the digest up. Both stages use the same base, so the venv's
# interpreter links stay valid in the runtime stage. (`make image` builds this file on a machine
# without a registry from a local stand-in for the base: docs/packaging.md, "The image".)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml requirements.lock ./
# The dependencies first, in a layer of their own that a change to operator/ does not invalidate,
# with the same constraints as `make install` (requirements.lock): the image runs what CI tested.
# Then what the image never runs goes: setuptools, the dependencies' own test suites, C sources and
# headers. Bytecode stays (compiled by pip at install time): the root filesystem is read-only, so
# without it every start would compile every module again in memory (3.5 s instead of 1.1 s).
RUN python -m venv /opt/flinkmem \
    && python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/dependencies.txt \
    && /opt/flinkmem/bin/pip install --constraint requirements.lock --requirement /tmp/dependencies.txt \
    && /opt/flinkmem/bin/pip uninstall --yes setuptools \
    && find /opt/flinkmem/lib -depth -type d \( -name tests -o -name test \) -path '*/site-packages/*' \
        -exec rm -rf {} + \
    && find /opt/flinkmem/lib \( -name '*.c' -o -name '*.h' -o -name '*.pyx' -o -name '*.pxd' \) -delete
COPY operator/ operator/
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/flinkmem/bin/pip install --constraint requirements.lock /wheels/flinkmem-*.whl \
    && /opt/flinkmem/bin/pip uninstall --yes pip \
    && /opt/flinkmem/bin/python -m compileall -q /opt/flinkmem/lib

FROM ${PYTHON_IMAGE}
# flinkmem's version (operator/flinkmem/__init__.py); `make image` passes it.
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="flinkmem" \
      org.opencontainers.image.description="Admission webhooks and controller that keep the JobManager and TaskManager memory of Apache Flink deployments as Flink derives it" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"
# Read-only root filesystem: nothing is written outside /tmp (mount an emptyDir there).
ENV PATH=/opt/flinkmem/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=build /opt/flinkmem /opt/flinkmem
USER 65532:65532
WORKDIR /tmp
EXPOSE 9443 8080
ENTRYPOINT ["flinkmem", "serve"]
