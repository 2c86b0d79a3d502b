{{/*
Name of the chart, or nameOverride.
*/}}
{{- define "datastore-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name: fullnameOverride, else <release>-<name> (just <release> when it already holds the name).
Truncated to 63 characters (DNS label limit of some name fields).
*/}}
{{- define "datastore-exporter.fullname" -}}
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
chart label: <name>-<version>.
*/}}
{{- define "datastore-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "datastore-exporter.labels" -}}
helm.sh/chart: {{ include "datastore-exporter.chart" . }}
{{ include "datastore-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: datastore-exporter
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels (immutable in a Deployment: never add anything user-controlled here).
*/}}
{{- define "datastore-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "datastore-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "datastore-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "datastore-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: repository:tag, or repository@digest when a digest is pinned.
*/}}
{{- define "datastore-exporter.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Path of the password file the exporter reads, or "" when there is no password.
*/}}
{{- define "datastore-exporter.passwordFile" -}}
{{- if .Values.auth.passwordSecret.name }}
{{- printf "%s/%s" (.Values.auth.mountPath | trimSuffix "/") .Values.auth.passwordSecret.key }}
{{- else }}
{{- .Values.auth.passwordFile }}
{{- end }}
{{- end }}
