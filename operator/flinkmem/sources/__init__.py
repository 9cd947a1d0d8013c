"""Where a Flink process's configuration comes from: one concept, shared by every role and every input.

flinkmem resolves memory from a `FlinkSource` (`model.py`): a configuration map, the Flink version
and the deployment mode, plus what the pod templates (or the pod itself) say about each role's main
container. The sources, and which one decides for a pod (`pods.py`):

1. A FlinkDeployment named by the pod's `app` label (`flinkdeployment.py`): the configuration the
   Apache operator hands Flink (`flinkConfiguration`, then `spec.<role>.resource`) and its pod
   templates. It is what the operator deploys, so it wins.
2. Otherwise Flink's own ConfigMap `flink-config-<cluster-id>` (`flinkconfig.py`), where Flink's
   native client writes the cluster's effective configuration, with the `-D` options on the pod's main
   container on top (Flink's start scripts apply them after the file). Users of
   `kubernetes-session.sh` and `flink run-application` have only this.
3. For the CLI, a configuration file (`config.yaml` or a 1.x `flink-conf.yaml`) with `-D` options on top.

When a FlinkDeployment and Flink's ConfigMap both exist, the FlinkDeployment decides and the options
on which the ConfigMap's resolution differs are reported: the Apache operator merges defaults of its
own into what Flink finally receives.
"""
