"""The e2e suite's ``cluster`` and ``namespace`` fixtures, for the packaging tests that need a control plane."""

from tests.e2e.conftest import cluster, namespace

__all__ = ["cluster", "namespace"]
