{{/*
The chart name, or nameOverride.
*/}}
{{- define "stund.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: fullnameOverride, else <release>-<name>, or the release name
alone when it already contains the chart name. Truncated to 63 characters
(DNS label); the split Services append "-udp"/"-tcp", so those are cut to
59 first.
*/}}
{{- define "stund.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version for the helm.sh/chart label.
*/}}
{{- define "stund.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the stund pods. They are immutable in a Deployment's or
DaemonSet's selector: never add to them.
*/}}
{{- define "stund.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stund.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels common to every resource except the selector ones, so that pods which
must not be selected (the test pod) can carry them.
*/}}
{{- define "stund.baseLabels" -}}
helm.sh/chart: {{ include "stund.chart" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stund
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Standard labels for every resource.
*/}}
{{- define "stund.labels" -}}
{{ include "stund.selectorLabels" . }}
{{ include "stund.baseLabels" . }}
{{- end }}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "stund.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stund.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from a dict with repository, tag, digest; $default is the
tag used when tag is empty.
Usage: include "stund.imageRef" (list .Values.image "1.2.3")
*/}}
{{- define "stund.imageRef" -}}
{{- $img := index . 0 }}
{{- $tag := default (index . 1) $img.tag }}
{{- if $img.digest }}
{{- printf "%s:%s@%s" $img.repository $tag $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository $tag }}
{{- end }}
{{- end }}

{{/*
The STUN Services to create: a list of dicts with name, suffix and protocols.
One mixed-protocol Service by default; one per protocol when service.split.
*/}}
{{- define "stund.stunServices" -}}
{{- $full := include "stund.fullname" . }}
{{- $out := list }}
{{- if .Values.service.split }}
{{- range .Values.service.protocols }}
{{- $out = append $out (dict "name" (printf "%s-%s" ($full | trunc 59 | trimSuffix "-") (lower .)) "protocols" (list .)) }}
{{- end }}
{{- else }}
{{- $out = append $out (dict "name" $full "protocols" .Values.service.protocols) }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
terminationGracePeriodSeconds: explicit, or preStop sleep + drain + 10.
Fails when an explicit value leaves the drain no time to finish.
*/}}
{{- define "stund.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown }}
{{- $need := add (int $s.preStopSleepSeconds) (int $s.drainTimeoutSeconds) }}
{{- if kindIs "invalid" $s.terminationGracePeriodSeconds }}
{{- add $need 10 }}
{{- else }}
{{- if le (int $s.terminationGracePeriodSeconds) (int $need) }}
{{- fail (printf "shutdown.terminationGracePeriodSeconds=%d must exceed shutdown.preStopSleepSeconds + shutdown.drainTimeoutSeconds = %d, or the kubelet kills stund before its drain ends" (int $s.terminationGracePeriodSeconds) (int $need)) }}
{{- end }}
{{- int $s.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}
