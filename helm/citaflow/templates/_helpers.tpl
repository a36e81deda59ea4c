{{/*
Names
*/}}

{{/* Chart name, overridable. */}}
{{- define "citaflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* `<release>-<chart>` unless the release name already contains the chart name. */}}
{{- define "citaflow.fullname" -}}
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

{{/* Name of one component's resources: (dict "ctx" $ "component" "ingest-api"). */}}
{{- define "citaflow.componentName" -}}
{{- printf "%s-%s" (include "citaflow.fullname" .ctx | trunc 45 | trimSuffix "-") .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "citaflow.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "citaflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels
*/}}

{{/* Selector labels of a component: (dict "ctx" $ "component" "ingest-api"). */}}
{{- define "citaflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "citaflow.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{/* All labels of a component's resources (component may be empty for shared ones). */}}
{{- define "citaflow.labels" -}}
{{ include "citaflow.selectorLabels" . }}
helm.sh/chart: {{ include "citaflow.chart" .ctx }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: citaflow
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
metadata.annotations (at indent 2, with its leading newline) from commonAnnotations plus extra
ones: (dict "ctx" $ "extra" map). Renders nothing when there are none.
*/}}
{{- define "citaflow.annotations" -}}
{{- $all := merge (deepCopy (default dict .extra)) (deepCopy .ctx.Values.commonAnnotations) -}}
{{- with $all }}
  annotations:
    {{- toYaml . | nindent 4 }}
{{- end }}
{{- end -}}

{{/*
Images
*/}}

{{/* registry/repository:tag@digest, with global.imageRegistry winning over the image's registry. */}}
{{- define "citaflow.imageRef" -}}
{{- $registry := default .image.registry .global.imageRegistry -}}
{{- $ref := .image.repository -}}
{{- if $registry }}{{ $ref = printf "%s/%s" $registry $ref }}{{ end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (toString (default .defaultTag .image.tag)) -}}
{{- end -}}
{{- end -}}

{{- define "citaflow.image" -}}
{{- include "citaflow.imageRef" (dict "image" .Values.image "global" .Values.global "defaultTag" .Chart.AppVersion) -}}
{{- end -}}

{{- define "citaflow.kafkaImage" -}}
{{- include "citaflow.imageRef" (dict "image" .Values.topics.job.image "global" .Values.global "defaultTag" "latest") -}}
{{- end -}}

{{/* Pod spec imagePullSecrets (at indent 6, with its leading newline), or nothing. */}}
{{- define "citaflow.imagePullSecrets" -}}
{{- $secrets := concat .Values.global.imagePullSecrets .Values.imagePullSecrets | uniq -}}
{{- with $secrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
{{- end }}
{{- end -}}

{{- define "citaflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "citaflow.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Configuration and secrets
*/}}

{{- define "citaflow.configMapName" -}}
{{- printf "%s-config" (include "citaflow.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret the services read: existingSecret or the chart's own. */}}
{{- define "citaflow.secretName" -}}
{{- default (include "citaflow.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/*
The Secret the hook Jobs read. Hooks run before the release's ordinary resources exist, so
when the chart generates the Secret it also renders a hook copy of the keys the hooks need.
*/}}
{{- define "citaflow.hookSecretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-hooks" (include "citaflow.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Whether the database URL comes from secrets.databaseUrlFrom (neither existingSecret nor databaseUrl is set). */}}
{{- define "citaflow.databaseUrlFromSecret" -}}
{{- if not (or .Values.secrets.existingSecret .Values.secrets.databaseUrl) }}{{ if .Values.secrets.databaseUrlFrom.name }}true{{ end }}{{ end -}}
{{- end -}}

{{- define "citaflow.kafkaSasl" -}}
{{- if hasPrefix "sasl_" .Values.config.kafka.securityProtocol }}true{{ end -}}
{{- end -}}

{{/*
A string setting as figment (the services' config loader) must see it. figment parses an
environment value as a number, boolean, array or map when it looks like one (`+34600000000`
becomes an integer and a String field then refuses it); a double-quoted value is always a
string. So values that would be misread are quoted, with `\` and `"` escaped.
*/}}
{{- define "citaflow.envStringRaw" -}}
{{- $v := toString . -}}
{{- if or (regexMatch "^\\s*(true|false|[-+]?[0-9]+|[-+]?[0-9]*\\.[0-9]*([eE][-+]?[0-9]+)?)\\s*$" $v) (regexMatch "^\\s*[\\[{\"']" $v) (ne $v (trim $v)) -}}
{{- printf "\"%s\"" ($v | replace "\\" "\\\\" | replace "\"" "\\\"") -}}
{{- else -}}
{{- $v -}}
{{- end -}}
{{- end -}}

{{/* The same, as a quoted YAML scalar. */}}
{{- define "citaflow.envString" -}}
{{- include "citaflow.envStringRaw" . | quote -}}
{{- end -}}

{{/* An integer setting (values arrive as float64: never print them raw). */}}
{{- define "citaflow.envInt" -}}
{{- int64 . | toString | quote -}}
{{- end -}}

{{/*
Topics
*/}}

{{/* A scalar as text, integers without the exponent float64 would print (86400000, not 8.64e+07). */}}
{{- define "citaflow.scalar" -}}
{{- if and (kindIs "float64" .) (eq . (float64 (int64 .))) -}}
{{- int64 . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/* `1000` → `1s`, `1500` → `1500ms` (platform::settings::delay_label). */}}
{{- define "citaflow.delayLabel" -}}
{{- $ms := int64 . -}}
{{- if eq (mod $ms 1000) 0 -}}{{ printf "%ds" (div $ms 1000) }}{{- else -}}{{ printf "%dms" $ms }}{{- end -}}
{{- end -}}

{{/*
Every topic the services use, as a JSON list of {name, partitions, config}: requests, one retry
topic per delay (with the requests topic's partition count: a command keeps its partition, so
its doctor's order, across retries), dead letters, events.
*/}}
{{- define "citaflow.topics" -}}
{{- $t := .Values.config.topics -}}
{{- $p := .Values.topics -}}
{{- $list := list (dict "name" $t.requests "partitions" (int64 $p.requests.partitions) "config" $p.requests.config) -}}
{{- range $t.retryDelaysMs -}}
{{- $list = append $list (dict "name" (printf "%s.retry.%s" $t.requests (include "citaflow.delayLabel" .)) "partitions" (int64 $p.requests.partitions) "config" $p.retry.config) -}}
{{- end -}}
{{- $list = append $list (dict "name" $t.dlq "partitions" (int64 $p.dlq.partitions) "config" $p.dlq.config) -}}
{{- $list = append $list (dict "name" $t.events "partitions" (int64 $p.events.partitions) "config" $p.events.config) -}}
{{- toJson $list -}}
{{- end -}}

{{/*
Pods
*/}}

{{/* Grace period: ceil(drain ms / 1000) + margin seconds. (dict "ms" .. "margin" ..) */}}
{{- define "citaflow.graceSeconds" -}}
{{- add (div (add (int64 .ms) 999) 1000) (int64 .margin) -}}
{{- end -}}

{{/* An HTTP probe on the container's `http` port: (dict "probe" values "path" "/health/live"). */}}
{{- define "citaflow.httpProbe" -}}
httpGet:
  path: {{ .path }}
  port: http
initialDelaySeconds: {{ .probe.initialDelaySeconds }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
successThreshold: {{ .probe.successThreshold }}
{{- end -}}

{{/* Liveness, readiness and startup probes of a component: (dict "values" componentValues). */}}
{{- define "citaflow.probes" -}}
{{- if .values.livenessProbe.enabled }}
livenessProbe:
  {{- include "citaflow.httpProbe" (dict "probe" .values.livenessProbe "path" "/health/live") | nindent 2 }}
{{- end }}
{{- if .values.readinessProbe.enabled }}
readinessProbe:
  {{- include "citaflow.httpProbe" (dict "probe" .values.readinessProbe "path" "/health/ready") | nindent 2 }}
{{- end }}
{{- if .values.startupProbe.enabled }}
startupProbe:
  {{- include "citaflow.httpProbe" (dict "probe" .values.startupProbe "path" "/health/live") | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Secret environment of a container: (dict "ctx" $ "component" "ingest-api" "channel" "" "hook" false).
Each component gets only what it uses: the database URL (all), the JWT secret (API), the SASL
password (when SASL is on), the SMTP password (email) and the SMS token (sms).
*/}}
{{- define "citaflow.secretEnv" -}}
{{- $v := .ctx.Values -}}
{{- $secret := include "citaflow.secretName" .ctx -}}
{{- if .hook }}{{ $secret = include "citaflow.hookSecretName" .ctx }}{{ end -}}
{{- $existing := $v.secrets.existingSecret -}}
- name: CITAFLOW__DATABASE__URL
  valueFrom:
    secretKeyRef:
      {{- if include "citaflow.databaseUrlFromSecret" .ctx }}
      name: {{ $v.secrets.databaseUrlFrom.name }}
      key: {{ $v.secrets.databaseUrlFrom.key }}
      {{- else }}
      name: {{ $secret }}
      key: {{ $v.secrets.keys.databaseUrl }}
      {{- end }}
{{- if eq .component "ingest-api" }}
- name: CITAFLOW__AUTH__JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.secrets.keys.jwtSecret }}
{{- end }}
{{- if include "citaflow.kafkaSasl" .ctx }}
- name: CITAFLOW__KAFKA__SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.secrets.keys.kafkaSaslPassword }}
{{- end }}
{{- if and (eq .channel "email") (or $existing $v.secrets.smtpPassword) }}
- name: CITAFLOW__SMTP__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.secrets.keys.smtpPassword }}
      optional: {{ not (empty $existing) }}
{{- end }}
{{- if and (eq .channel "sms") (or $existing $v.secrets.smsAuthToken) }}
- name: CITAFLOW__SMS__AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.secrets.keys.smsAuthToken }}
      optional: {{ not (empty $existing) }}
{{- end }}
{{- end -}}

{{/* Pod annotations that roll the pods when their configuration or secrets change. */}}
{{- define "citaflow.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if .Values.secrets.existingSecret }}
checksum/secret: {{ printf "%s/%s" .Values.secrets.existingSecret (toJson .Values.secrets.keys) | sha256sum }}
{{- else }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end -}}

{{/* The writable /tmp every pod gets (the root filesystem is read-only). */}}
{{- define "citaflow.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{/*
Validation of combinations the schema cannot express; fails the render with a clear message.
*/}}
{{- define "citaflow.validate" -}}
{{- $v := .Values -}}
{{- if and (not $v.secrets.existingSecret) (not $v.secrets.databaseUrlFrom.name) (not $v.secrets.databaseUrl) -}}
{{- fail "secrets.databaseUrl is required (or set secrets.existingSecret, or secrets.databaseUrlFrom.name for e.g. CloudNativePG's <cluster>-app Secret)" -}}
{{- end -}}
{{- if and (include "citaflow.kafkaSasl" .) (not $v.secrets.existingSecret) (not $v.secrets.kafkaSaslPassword) -}}
{{- fail (printf "config.kafka.securityProtocol is %s: set secrets.kafkaSaslPassword (or secrets.existingSecret)" $v.config.kafka.securityProtocol) -}}
{{- end -}}
{{- if and (include "citaflow.kafkaSasl" .) (not $v.config.kafka.saslMechanism) -}}
{{- fail "config.kafka.saslMechanism is required with a sasl_* security protocol" -}}
{{- end -}}
{{- $prev := 0 -}}
{{- range $v.config.topics.retryDelaysMs -}}
{{- if lt (int64 .) (int64 $prev) -}}
{{- fail "config.topics.retryDelaysMs must not decrease (shortest delay first)" -}}
{{- end -}}
{{- $prev = . -}}
{{- end -}}
{{- $names := list -}}
{{- range (include "citaflow.topics" . | fromJsonArray) -}}
{{- if has .name $names -}}
{{- fail (printf "topic %s is named twice: check config.topics and config.topics.retryDelaysMs" .name) -}}
{{- end -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- end -}}
