{{/* vim: set filetype=mustache: */}}

{{/* The chart name, or nameOverride. */}}
{{- define "kubefold.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The full name of every resource: fullnameOverride, else the release name when
it already contains the chart name, else release-chart. Kept within 63
characters (a DNS label).
*/}}
{{- define "kubefold.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* name-version, for the helm.sh/chart label. */}}
{{- define "kubefold.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every resource carries. */}}
{{- define "kubefold.labels" -}}
helm.sh/chart: {{ include "kubefold.chart" . }}
{{ include "kubefold.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: kubefold
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels of the `helm test` hook's objects: not the operator's selector
labels, so neither the Service nor the Deployment ever selects them. */}}
{{- define "kubefold.testLabels" -}}
helm.sh/chart: {{ include "kubefold.chart" . }}
app.kubernetes.io/name: {{ include "kubefold.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: test
app.kubernetes.io/part-of: kubefold
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select the operator's pods (never change them on upgrade). */}}
{{- define "kubefold.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubefold.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The ServiceAccount kubefold runs as. */}}
{{- define "kubefold.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kubefold.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag or repository@digest. */}}
{{- define "kubefold.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the serving certificate, when TLS is on. */}}
{{- define "kubefold.tlsSecretName" -}}
{{- if .Values.api.tls.secretName -}}
{{- .Values.api.tls.secretName -}}
{{- else if .Values.api.tls.certManager.enabled -}}
{{- printf "%s-tls" (include "kubefold.fullname" .) -}}
{{- else -}}
{{- fail "api.tls.enabled needs api.tls.secretName (a kubernetes.io/tls Secret) or api.tls.certManager.enabled" -}}
{{- end -}}
{{- end -}}

{{/* http or https: the scheme of the API port (callers' RBAC names it). */}}
{{- define "kubefold.apiScheme" -}}
{{- if .Values.api.tls.enabled -}}https{{- else -}}http{{- end -}}
{{- end -}}

{{/* Checks across values that the schema cannot express. */}}
{{- define "kubefold.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicaCount is %d but leaderElection.enabled is false: more than one replica needs leader election" (int .Values.replicaCount)) -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (ne (toString .Values.podDisruptionBudget.minAvailable) "") (ne (toString .Values.podDisruptionBudget.maxUnavailable) "") -}}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both" -}}
{{- end -}}
{{- if and .Values.api.tls.certManager.enabled (not .Values.api.tls.enabled) -}}
{{- fail "api.tls.certManager.enabled needs api.tls.enabled" -}}
{{- end -}}
{{- if and .Values.api.tls.certManager.enabled (not .Values.api.tls.certManager.issuerRef.name) -}}
{{- fail "api.tls.certManager.issuerRef.name is required with api.tls.certManager.enabled" -}}
{{- end -}}
{{- $ports := list (int .Values.health.port) -}}
{{- range $p := list (int .Values.api.port) (int .Values.metrics.port) -}}
{{- if and (ne $p 0) (has $p $ports) -}}
{{- fail (printf "port %d is used twice among api.port, metrics.port and health.port" $p) -}}
{{- end -}}
{{- $ports = append $ports $p -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (eq (int .Values.metrics.port) 0) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.port (it is 0: /metrics is off)" -}}
{{- end -}}
{{- end -}}
