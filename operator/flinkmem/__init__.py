"""flinkmem: resolve Flink JobManager and TaskManager memory exactly as Flink does, and enforce it on Kubernetes."""

# The one place the version is written: pyproject.toml reads it, the chart is held to it by a test.
__version__ = "0.1.0"
