"""The Apache operator's autoscaler memory tuning, as the configuration Flink reads shows it.

With `job.autoscaler.enabled` and `job.autoscaler.memory.tuning.enabled` (operator 1.8.0 and later;
both off by default, old keys under `kubernetes.operator.`), the autoscaler rewrites TaskManager memory
when it rescales (`MemoryTuning.tuneTaskManagerMemory`: `taskmanager.memory.process.size` lowered, never
above the spec's, `framework.heap.size` 0, `managed.fraction`, `network.min` = `network.max`, the overhead
fraction and metaspace set; `flink.size`, `task.heap.size` and `managed.size` removed). It keeps these
overrides in the ConfigMap `autoscaler-<name>` (key `configOverrides`) and applies them on every
reconcile to the spec it deploys, in memory only (`KubernetesScalingRealizer.realizeConfigOverrides`):
the FlinkDeployment in the API server never changes, while `flink-config-<name>`, which Flink's processes
read, and the TaskManager pods carry the tuned memory. The JobManager is never tuned.

So for a TaskManager of such a cluster, what Flink runs is Flink's ConfigMap, not the FlinkDeployment
(ADR 0007). The ConfigMap holds the operator's whole effective configuration, including these two
options whether the FlinkDeployment or the operator's defaults set them.
"""

from __future__ import annotations

from collections.abc import Mapping

from flinkmem.engine import FlinkMemError, RawValue
from flinkmem.engine.options import BooleanOption

__all__ = ["AUTOSCALER_KEYS", "memory_tuning_enabled"]

# Each option with the old key the autoscaler still reads in its place (AutoScalerOptions.withFallbackKeys).
_ENABLED = ("job.autoscaler.enabled", "kubernetes.operator.job.autoscaler.enabled")
_MEMORY_TUNING = ("job.autoscaler.memory.tuning.enabled", "kubernetes.operator.job.autoscaler.memory.tuning.enabled")
AUTOSCALER_KEYS = (*_ENABLED, *_MEMORY_TUNING)


def _flag(config: Mapping[str, RawValue], keys: tuple[str, ...]) -> bool:
    key = next((k for k in keys if config.get(k) is not None), None)
    if key is None:
        return False
    try:
        return BooleanOption(key, False).read(config)
    except FlinkMemError:
        return False  # the autoscaler fails on a value Flink cannot read, and tunes nothing


def memory_tuning_enabled(config: Mapping[str, RawValue]) -> bool:
    """Whether the autoscaler applies its TaskManager memory tuning to a cluster of this configuration."""
    return _flag(config, _ENABLED) and _flag(config, _MEMORY_TUNING)
