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

{{/*
"true" when the exporter runs in probe mode with more than one replica: a StatefulSet, so that
each replica has its own address for hashmod (docs/probe.md "Scale-out").
*/}}
{{- define "datastore-exporter.scaledOut" -}}
{{- if and .Values.probe.enabled (gt (int .Values.probe.replicas) 1) }}true{{ end }}
{{- end }}

{{/*
Path of the probe config file in the container.
*/}}
{{- define "datastore-exporter.probeConfigFile" -}}
{{- $key := ternary .Values.probe.existingSecretKey "probe.yml" (ne .Values.probe.existingSecret "") }}
{{- printf "%s/%s" (.Values.probe.mountPath | trimSuffix "/") $key }}
{{- end }}

{{/*
"true" when --web.config.file is given (inline config or an existing Secret).
*/}}
{{- define "datastore-exporter.webConfigEnabled" -}}
{{- if or .Values.webConfig.existingSecret .Values.webConfig.config }}true{{ end }}
{{- end }}

{{/*
Path of the web config file in the container.
*/}}
{{- define "datastore-exporter.webConfigFile" -}}
{{- $key := ternary .Values.webConfig.existingSecretKey "web-config.yml" (ne .Values.webConfig.existingSecret "") }}
{{- printf "%s/%s" (.Values.webConfig.mountPath | trimSuffix "/") $key }}
{{- end }}

{{/*
"true" when the exporter serves TLS: tls_server_config in webConfig.config, or webConfig.tls.
*/}}
{{- define "datastore-exporter.webTls" -}}
{{- if and (include "datastore-exporter.webConfigEnabled" .) (or .Values.webConfig.tls (hasKey .Values.webConfig.config "tls_server_config")) }}true{{ end }}
{{- end }}

{{/*
"true" when the web config requires client certificates (which the kubelet cannot present).
*/}}
{{- define "datastore-exporter.webClientCertRequired" -}}
{{- $tls := get .Values.webConfig.config "tls_server_config" | default dict }}
{{- $required := list "RequireAnyClientCert" "RequireClientCert" "RequireAndVerifyClientCert" }}
{{- if and (include "datastore-exporter.webTls" .) (or .Values.webConfig.clientCertRequired (has (toString $tls.client_auth_type) $required)) }}true{{ end }}
{{- end }}

{{/*
A kubelet probe from the values, following the web config: HTTPS when it serves TLS (the kubelet does
not verify the certificate), a TCP check when it requires client certificates. /healthz and /ready
need no basic auth. Call with (dict "probe" .Values.livenessProbe "root" .).
*/}}
{{- define "datastore-exporter.healthProbe" -}}
{{- $probe := deepCopy .probe }}
{{- if and (hasKey $probe "httpGet") (include "datastore-exporter.webClientCertRequired" .root) }}
{{- $_ := set $probe "tcpSocket" (dict "port" $probe.httpGet.port) }}
{{- $probe = omit $probe "httpGet" }}
{{- else if and (hasKey $probe "httpGet") (include "datastore-exporter.webTls" .root) }}
{{- $_ := set $probe.httpGet "scheme" "HTTPS" }}
{{- end }}
{{- toYaml $probe }}
{{- end }}

{{/*
http or https: how Prometheus reaches the exporter.
*/}}
{{- define "datastore-exporter.scheme" -}}
{{- ternary "https" "http" (eq (include "datastore-exporter.webTls" .) "true") }}
{{- end }}

{{/*
The exporter's Service address (host:port), for /discover and single-replica probes.
*/}}
{{- define "datastore-exporter.serviceAddress" -}}
{{- printf "%s.%s.svc:%v" (include "datastore-exporter.fullname" .) .Release.Namespace .Values.service.port }}
{{- end }}

{{/*
The /discover URL of one seed. Call with (dict "seed" <seed> "root" .).
*/}}
{{- define "datastore-exporter.discoverUrl" -}}
{{- $query := printf "target=%s" (.seed.target | urlquery) }}
{{- with .seed.clusterId }}{{ $query = printf "%s&cluster_id=%s" $query (urlquery .) }}{{ end }}
{{- with .seed.authModule }}{{ $query = printf "%s&auth_module=%s" $query (urlquery .) }}{{ end }}
{{- printf "%s://%s/discover?%s" (include "datastore-exporter.scheme" .root) (include "datastore-exporter.serviceAddress" .root) $query }}
{{- end }}

{{/*
The relabelling of docs/probe.md as a list of Prometheus relabel_configs: the member URL becomes the
target parameter and the instance; the scrape goes to the exporter, or with several replicas to the
replica hashmod picks. Call with (dict "root" . "operator" true|false): the operator spells the keys
in camelCase (sourceLabels, targetLabel).
*/}}
{{- define "datastore-exporter.probeRelabelings" -}}
{{- $root := .root }}
{{- $src := ternary "sourceLabels" "source_labels" .operator }}
{{- $dst := ternary "targetLabel" "target_label" .operator }}
{{- $rules := list (dict $src (list "__address__") $dst "__param_target") (dict $src (list "__param_target") $dst "instance") }}
{{- if include "datastore-exporter.scaledOut" $root }}
{{- $fullname := include "datastore-exporter.fullname" $root }}
{{- $replica := printf "%s-$1.%s-headless.%s.svc:%v" $fullname $fullname $root.Release.Namespace $root.Values.service.port }}
{{- $rules = append $rules (dict $src (list "__param_target") "modulus" (int $root.Values.probe.replicas) $dst "__tmp_exporter_replica" "action" "hashmod") }}
{{- $rules = append $rules (dict $src (list "__tmp_exporter_replica") $dst "__address__" "replacement" $replica) }}
{{- else }}
{{- $rules = append $rules (dict $dst "__address__" "replacement" (include "datastore-exporter.serviceAddress" $root)) }}
{{- end }}
{{- toYaml $rules }}
{{- end }}
