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

{{/* A size value as kubefold's --history-max-bytes takes it: a string as
given (512Mi, 2Gi, 500M), a number as whole bytes (YAML numbers arrive as
float64, which would print as 1.073741824e+09). */}}
{{- define "kubefold.size" -}}
{{- if kindIs "string" . -}}{{ . }}{{- else -}}{{ int64 . }}{{- end -}}
{{- end -}}

{{/* A size (bytes, or with a suffix: 512Mi, 2Gi, 500M) in bytes; the schema
has checked its form. */}}
{{- define "kubefold.bytes" -}}
{{- $v := include "kubefold.size" . -}}
{{- $digits := regexFind "^[0-9]+" $v -}}
{{- $scales := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- mul (atoi $digits) (get $scales (trimPrefix $digits $v)) -}}
{{- end -}}

{{/* The PersistentVolumeClaim holding the history file. */}}
{{- define "kubefold.historyClaimName" -}}
{{- if .Values.history.persistence.existingClaim -}}
{{- .Values.history.persistence.existingClaim -}}
{{- else -}}
{{- printf "%s-history" (include "kubefold.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}
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
{{- $h := .Values.history -}}
{{- if and $h.persistence.enabled (not $h.enabled) -}}
{{- fail "history.persistence.enabled needs history.enabled (with history.enabled false there is no history file to keep)" -}}
{{- end -}}
{{- if and $h.enabled $h.persistence.enabled (gt (int .Values.replicaCount) 1) -}}
{{- fail (printf "replicaCount is %d but history.persistence.enabled is true: a ReadWriteOnce claim attaches to one node and kubefold locks the history file for one process, so only one pod can use it. Run one replica with persistence (replicaCount=1), or keep history.persistence.enabled=false, where each replica keeps its own history in an emptyDir" (int .Values.replicaCount)) -}}
{{- end -}}
{{- if $h.enabled -}}
{{- $maxBytes := include "kubefold.size" $h.maxBytes -}}
{{- $max := int64 (include "kubefold.bytes" $h.maxBytes) -}}
{{- $volume := "" -}}
{{- $volumeKey := "" -}}
{{- if and $h.persistence.enabled (not $h.persistence.existingClaim) -}}
{{- $volume = $h.persistence.size -}}
{{- $volumeKey = "history.persistence.size" -}}
{{- else if and (not $h.persistence.enabled) $h.persistence.emptyDirSizeLimit -}}
{{- $volume = $h.persistence.emptyDirSizeLimit -}}
{{- $volumeKey = "history.persistence.emptyDirSizeLimit" -}}
{{- if eq $max 0 -}}
{{- fail (printf "history.maxBytes is 0 (the disk's bound) but history.persistence.emptyDirSizeLimit is %s: the kubelet evicts a pod whose emptyDir outgrows its limit instead of failing the write; set history.maxBytes to at most 3/4 of the limit" $volume) -}}
{{- end -}}
{{- end -}}
{{- if and $volume (gt (mul $max 4) (mul (int64 (include "kubefold.bytes" $volume)) 3)) -}}
{{- fail (printf "history.maxBytes (%s) must be at most 3/4 of %s (%s): the write-ahead log (up to max(4Mi, maxBytes/8)) and the filesystem need the rest; lower history.maxBytes or raise %s" $maxBytes $volumeKey $volume $volumeKey) -}}
{{- end -}}
{{- end -}}
{{- end -}}
