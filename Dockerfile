# syntax=docker/dockerfile:1
# flinkmem: `flinkmem serve` (admission webhooks + controller) on a slim Python base.
#
# The base is pinned by tag; pin it by digest too (python:3.11-slim-bookworm@sha256:...) where a
# registry is reachable to look the digest up. Both stages use the same base, so the venv's
# interpreter links stay valid in the runtime stage.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml requirements.lock ./
COPY operator/ operator/
# The same constraints as `make install` (requirements.lock): the image runs the versions CI tested.
RUN python -m venv /opt/flinkmem \
    && python -m pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/flinkmem/bin/pip install --constraint requirements.lock /wheels/flinkmem-*.whl \
    && /opt/flinkmem/bin/pip uninstall --yes pip \
    && /opt/flinkmem/bin/python -m compileall -q /opt/flinkmem/lib

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="flinkmem" \
      org.opencontainers.image.description="Admission webhook and controller for the JobManager memory of Apache Flink FlinkDeployments" \
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
