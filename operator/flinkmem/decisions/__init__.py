"""Plain decisions over plain data: what flinkmem concludes about a source, a FlinkDeployment or a pod.

Everything here is a pure function of its inputs (a source, an object, the settings that matter):
no API calls, no kopf, no metrics. The runtime calls these and acts on the answers.

- `scope`: which namespaces flinkmem looks at (one exemption list for every part).
- `javaopts`, `container`: the JVM flags in Java options, and the container memory of a process.
- `validation`: everything checked about a source, per role.
- `deployment`: the answer to a FlinkDeployment admission.
- `podplan`, `pod`: the change a Flink pod needs, and the answer to a pod admission.
- `reconcile`: the controller's conclusions (the annotation, drift, a ConfigMap that disagrees).
"""
