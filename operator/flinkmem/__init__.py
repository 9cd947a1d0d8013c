"""flinkmem: resolve Flink JobManager memory exactly as Flink does, and enforce it on Kubernetes."""

__version__ = "0.1.0"
