{{/* Names, labels and the pieces several templates share. */}}

{{- define "flinkmem.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name itself when it already says flinkmem. */}}
{{- define "flinkmem.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "flinkmem.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "flinkmem.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "flinkmem.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flinkmem.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flinkmem.labels" -}}
{{ include "flinkmem.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "flinkmem.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flinkmem.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The user name the API server gives flinkmem's ServiceAccount (FLINKMEM_SERVICE_ACCOUNT). */}}
{{- define "flinkmem.serviceAccountUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "flinkmem.serviceAccountName" .) -}}
{{- end -}}

{{- define "flinkmem.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "flinkmem.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- required "tls.secret.name is required with tls.mode=secret" .Values.tls.secret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "flinkmem.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "flinkmem.servingCertificateName" -}}
{{- printf "%s-serving" (include "flinkmem.fullname" .) -}}
{{- end -}}

{{/* DNS names the API server uses to reach the Service. */}}
{{- define "flinkmem.serviceHosts" -}}
{{- $svc := include "flinkmem.fullname" . -}}
{{- list (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) | toJson -}}
{{- end -}}

{{/* FLINKMEM_BLUEGREEN_RESOURCE: plural.version.group, or none. */}}
{{- define "flinkmem.blueGreenResource" -}}
{{- with .Values.blueGreen -}}
{{- if .enabled -}}{{ printf "%s.%s.%s" .plural .version .group }}{{- else -}}none{{- end -}}
{{- end -}}
{{- end -}}

{{/* Eviction is only ever used in enforce mode. */}}
{{- define "flinkmem.evicts" -}}
{{- if and .Values.evictDrifted (eq .Values.validationMode "enforce") -}}true{{- end -}}
{{- end -}}

{{/*
A CA and serving certificate made by Helm (tls.mode=helm), generated once per render and kept in
.Values so that the Secret and both webhook configurations agree. An existing Secret is reused, so
upgrades do not rotate the certificate.
*/}}
{{- define "flinkmem.helmTLS" -}}
{{- if not (hasKey .Values.tls "_generated") -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "flinkmem.tlsSecretName" .) -}}
{{- if and $existing (index ($existing.data | default dict) "ca.crt") -}}
{{- $_ := set .Values.tls "_generated" (dict "ca" (index $existing.data "ca.crt") "cert" (index $existing.data "tls.crt") "key" (index $existing.data "tls.key")) -}}
{{- else -}}
{{- $days := int .Values.tls.helm.validityDays -}}
{{- $ca := genCA (printf "%s CA" (include "flinkmem.fullname" .)) $days -}}
{{- $hosts := include "flinkmem.serviceHosts" . | fromJsonArray -}}
{{- $cert := genSignedCert (first $hosts) nil $hosts $days $ca -}}
{{- $_ := set .Values.tls "_generated" (dict "ca" ($ca.Cert | b64enc) "cert" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* clientConfig.caBundle (or nothing with cert-manager, whose CA injector fills it). */}}
{{- define "flinkmem.caBundle" -}}
{{- if eq .Values.tls.mode "helm" -}}
{{- include "flinkmem.helmTLS" . -}}
caBundle: {{ .Values.tls._generated.ca }}
{{- else if eq .Values.tls.mode "secret" -}}
caBundle: {{ required "tls.secret.caBundle is required with tls.mode=secret" .Values.tls.secret.caBundle }}
{{- end -}}
{{- end -}}

{{- define "flinkmem.webhookAnnotations" -}}
{{- if eq .Values.tls.mode "cert-manager" -}}
annotations:
  cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "flinkmem.servingCertificateName" .) }}
{{- end -}}
{{- end -}}

{{/* The namespaces no part of flinkmem looks at: excludeNamespaces and the release namespace. */}}
{{- define "flinkmem.excludedNamespaces" -}}
{{- concat .Values.excludeNamespaces (list .Release.Namespace) | uniq | join "," -}}
{{- end -}}

{{/* Where the API server may call flinkmem: never an excluded namespace (the service skips the same). */}}
{{- define "flinkmem.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- range splitList "," (include "flinkmem.excludedNamespaces" .) }}
        - {{ . }}
        {{- end }}
    {{- with .Values.watchNamespaces }}
    - key: kubernetes.io/metadata.name
      operator: In
      values:
        {{- range . }}
        - {{ . }}
        {{- end }}
    {{- end }}
{{- end -}}

{{/* What flinkmem does in the namespaces it watches (a ClusterRole, or a Role per namespace). */}}
{{- define "flinkmem.workloadRules" -}}
# Watch the FlinkDeployments, read one the watch has not delivered yet; patch is for the
# flinkmem.io/resolved-memory annotation only (the validating webhook refuses spec changes made by
# flinkmem's own ServiceAccount).
- apiGroups: [{{ .Values.resource.group | quote }}]
  resources: [{{ .Values.resource.plural | quote }}]
  verbs: [get, list, watch, patch]
{{- with .Values.blueGreen }}
{{- if .enabled }}
# Watch the Apache operator's blue/green deployments; patch is for the flinkmem.io/resolved-memory
# annotation only (their webhook refuses spec changes made by flinkmem's own ServiceAccount too).
- apiGroups: [{{ .group | quote }}]
  resources: [{{ .plural | quote }}]
  verbs: [list, watch, patch]
{{- end }}
{{- end }}
# Flink pods, for the drift check (the watch, and the list of a cluster's pods when its FlinkDeployment
# or ConfigMap appears).
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# Flink's own flink-config-<cluster-id> ConfigMaps: the configuration of clusters deployed with Flink's
# native client (no FlinkDeployment). RBAC cannot narrow this to those names; flinkmem reads nothing else.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch]
{{- if include "flinkmem.evicts" . }}
# evictDrifted: evict Flink pods whose memory drifted (never a plain delete).
- apiGroups: [""]
  resources: [pods/eviction]
  verbs: [create]
{{- end }}
# flinkmem's Events (MemoryResolved, MemoryConflict, MemoryRefused, MemoryNotApplied, MemoryDrift,
# MemoryDriftEvicted, MemoryConfigDiffers): created, never changed.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}
