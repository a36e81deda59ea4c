{{/*
The Deployment of one service. Parameters (a dict):
  ctx        the root context
  component  ingest-api | booking-processor | notifier-<channel>
  values     the component's values (ports, probes, placement, ...)
  command    the container command (list)
  env        extra per-pod environment (list of EnvVar maps), before the secrets
  channel    notifier channel ("" otherwise)
  replicas   replica count, or nil when an autoscaler owns it
  resources  container resources
  grace      terminationGracePeriodSeconds
  preStop    seconds of pre-stop pause (0: none)
*/}}
{{- define "citaflow.deployment" -}}
{{- $ := .ctx -}}
{{- $v := .values -}}
{{- $name := include "citaflow.componentName" (dict "ctx" $ "component" .component) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ include "citaflow.namespace" $ }}
  labels:
    {{- include "citaflow.labels" (dict "ctx" $ "component" .component) | nindent 4 }}
  {{- include "citaflow.annotations" (dict "ctx" $) }}
spec:
  {{- if not (kindIs "invalid" .replicas) }}
  replicas: {{ int64 .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- with $v.updateStrategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "citaflow.selectorLabels" (dict "ctx" $ "component" .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "citaflow.labels" (dict "ctx" $ "component" .component) | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- include "citaflow.checksums" $ | nindent 8 }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "citaflow.serviceAccountName" $ }}
      automountServiceAccountToken: {{ $.Values.serviceAccount.automountServiceAccountToken }}
      {{- include "citaflow.imagePullSecrets" $ }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ int64 .grace }}
      containers:
        - name: {{ .component }}
          image: {{ include "citaflow.image" $ }}
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          command:
            {{- toYaml .command | nindent 12 }}
          securityContext:
            {{- toYaml $.Values.containerSecurityContext | nindent 12 }}
          ports:
            - name: http
              containerPort: {{ int64 $v.containerPorts.http }}
              protocol: TCP
            {{- with $v.containerPorts.metrics }}
            # The ops listener (ingest-api): /metrics, kept off the API port.
            - name: metrics
              containerPort: {{ int64 . }}
              protocol: TCP
            {{- end }}
          envFrom:
            - configMapRef:
                name: {{ include "citaflow.configMapName" $ }}
          env:
            - name: CITAFLOW__HTTP__PORT
              value: {{ include "citaflow.envInt" $v.containerPorts.http }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- include "citaflow.secretEnv" (dict "ctx" $ "component" .component "channel" .channel "hook" false) | nindent 12 }}
            {{- with $v.extraEnvVars }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- include "citaflow.probes" (dict "values" $v) | trim | nindent 10 }}
          {{- if gt (int64 .preStop) 0 }}
          lifecycle:
            preStop:
              sleep:
                seconds: {{ int64 .preStop }}
          {{- end }}
          {{- with .resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        {{- include "citaflow.tmpVolume" $ | nindent 8 }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* The ClusterIP Service of a component's HTTP port: (dict "ctx" $ "component" .. "service" values). */}}
{{- define "citaflow.service" -}}
{{- $ := .ctx -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "citaflow.componentName" (dict "ctx" $ "component" .component) }}
  namespace: {{ include "citaflow.namespace" $ }}
  labels:
    {{- include "citaflow.labels" (dict "ctx" $ "component" .component) | nindent 4 }}
  {{- include "citaflow.annotations" (dict "ctx" $ "extra" .service.annotations) }}
spec:
  type: {{ default "ClusterIP" .service.type }}
  ports:
    - name: http
      port: {{ int64 .service.port }}
      targetPort: http
      protocol: TCP
    {{- with .service.metricsPort }}
    - name: metrics
      port: {{ int64 . }}
      targetPort: metrics
      protocol: TCP
    {{- end }}
  selector:
    {{- include "citaflow.selectorLabels" (dict "ctx" $ "component" .component) | nindent 4 }}
{{- end -}}

{{/* The PodDisruptionBudget of a component: (dict "ctx" $ "component" .. "pdb" values). */}}
{{- define "citaflow.pdb" -}}
{{- $ := .ctx -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "citaflow.componentName" (dict "ctx" $ "component" .component) }}
  namespace: {{ include "citaflow.namespace" $ }}
  labels:
    {{- include "citaflow.labels" (dict "ctx" $ "component" .component) | nindent 4 }}
  {{- include "citaflow.annotations" (dict "ctx" $) }}
spec:
  {{- if not (eq (toString .pdb.minAvailable) "") }}
  minAvailable: {{ .pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ default 1 .pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "citaflow.selectorLabels" (dict "ctx" $ "component" .component) | nindent 6 }}
{{- end -}}
