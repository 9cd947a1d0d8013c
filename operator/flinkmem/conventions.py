"""Every name flinkmem reads or writes on the wire, in one place.

Annotation keys, labels, webhook ids, Event reasons and the names Flink itself puts on its objects:
a rename here is one edit, and no two modules spell a prefix twice. Nothing here imports anything.
"""

from __future__ import annotations

from typing import Final

# --- flinkmem's own names ------------------------------------------------------------------------

ANNOTATION_PREFIX: Final = "flinkmem.io"
# On FlinkDeployments and pods: what flinkmem resolved (JSON), and on pods the JVM flags it set.
RESOLVED_ANNOTATION: Final = f"{ANNOTATION_PREFIX}/resolved-memory"
JVM_FLAGS_ANNOTATION: Final = f"{ANNOTATION_PREFIX}/jvm-flags"
# On pods flinkmem sized at admission: a digest of what it set. The controller's pod watch leaves them out
# (they are checked again only when their source changes); pods without it get the full check.
SIZED_LABEL: Final = f"{ANNOTATION_PREFIX}/sized"
# On pods of clusters deployed with Flink's native client: the Flink release line they run.
VERSION_ANNOTATION: Final = f"{ANNOTATION_PREFIX}/flink-version"
# A Flink pod that Flink did not build opts in with this label next to its `component` label.
OPT_IN_LABEL: Final = f"{ANNOTATION_PREFIX}/opt-in"
# kopf's own bookkeeping, kept under flinkmem's prefix (status belongs to the Apache operator).
KOPF_DIFFBASE_KEY: Final = "last-handled-configuration"
KOPF_FINALIZER: Final = f"{ANNOTATION_PREFIX}/finalizer"
# The kopf peering object through which the controller processes of all replicas agree.
PEERING_NAME: Final = "flinkmem"

# The webhooks: the path each is served on, and the name it has in the webhook configurations.
VALIDATE_ID: Final = "validate-flinkdeployment"
VALIDATE_BLUEGREEN_ID: Final = "validate-flinkbluegreendeployment"
MUTATE_ID: Final = "mutate-flink-pod"
# Writes the resolved-memory annotation into a FlinkDeployment as it is created or updated.
RECORD_ID: Final = "record-flinkdeployment"
WEBHOOK_IDS: Final = (VALIDATE_ID, VALIDATE_BLUEGREEN_ID, MUTATE_ID, RECORD_ID)
WEBHOOK_CONFIG_NAME: Final = "flinkmem"
VALIDATE_WEBHOOK_NAME: Final = f"{VALIDATE_ID}.{ANNOTATION_PREFIX}"
VALIDATE_BLUEGREEN_WEBHOOK_NAME: Final = f"{VALIDATE_BLUEGREEN_ID}.{ANNOTATION_PREFIX}"
MUTATE_WEBHOOK_NAME: Final = f"{MUTATE_ID}.{ANNOTATION_PREFIX}"
OPT_IN_MUTATE_WEBHOOK_NAME: Final = f"opt-in.{MUTATE_ID}.{ANNOTATION_PREFIX}"
RECORD_WEBHOOK_NAME: Final = f"{RECORD_ID}.{ANNOTATION_PREFIX}"

# Events flinkmem posts (component `flinkmem`), by reason.
EVENT_COMPONENT: Final = "flinkmem"
# An Event's message is cut to this many characters: the events.k8s.io/v1 API allows a note of 1 KiB.
EVENT_MESSAGE_LIMIT: Final = 1024
REASON_RESOLVED: Final = "MemoryResolved"  # a FlinkDeployment's memory, resolved
REASON_CONFLICT: Final = "MemoryConflict"  # a FlinkDeployment in conflict (admitted by warn/audit, or before)
REASON_REFUSED: Final = "MemoryRefused"  # an UPDATE refused at admission
# A Flink pod admitted without sizing (or a FlinkDeployment of a line flinkmem does not check), and why.
REASON_NOT_APPLIED: Final = "MemoryNotApplied"
REASON_DRIFT: Final = "MemoryDrift"  # a running pod that does not match its source
REASON_DRIFT_EVICTED: Final = "MemoryDriftEvicted"
REASON_CONFIG_DIFFERS: Final = "MemoryConfigDiffers"  # a FlinkDeployment and Flink's ConfigMap disagree

# --- names Flink and the Apache operator put on their objects -------------------------------------

# Flink labels every pod of a cluster `app=<cluster-id>`, `component=jobmanager|taskmanager` and `type`.
APP_LABEL: Final = "app"
COMPONENT_LABEL: Final = "component"
TYPE_LABEL: Final = "type"
NATIVE_TYPE: Final = "flink-native-kubernetes"
STANDALONE_TYPE: Final = "flink-standalone-kubernetes"
FLINK_POD_TYPES: Final = (NATIVE_TYPE, STANDALONE_TYPE)
# Flink's native client writes a cluster's effective configuration into this ConfigMap.
CONFIGMAP_PREFIX: Final = "flink-config-"
# The Apache operator labels the FlinkDeployments it deploys from a FlinkBlueGreenDeployment
# (`<name>-blue`, `<name>-green`) with BLUE or GREEN (BlueGreenDeploymentType.LABEL_KEY).
BLUEGREEN_TYPE_LABEL: Final = "flink/blue-green-deployment-type"
# The main container of every Flink pod, in Flink's pod templates and the operator's.
DEFAULT_CONTAINER: Final = "flink-main-container"
