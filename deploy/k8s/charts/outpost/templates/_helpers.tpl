{{/* Names, labels and shared pod parts of the Outpost control plane chart. */}}

{{- define "outpost.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart> unless the release name already contains the chart name. */}}
{{- define "outpost.fullname" -}}
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

{{- define "outpost.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; "component" is the service (registry, scheduler, gateway). */}}
{{- define "outpost.labels" -}}
helm.sh/chart: {{ include "outpost.chart" .root }}
{{ include "outpost.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: outpost
{{- end }}

{{- define "outpost.selectorLabels" -}}
app.kubernetes.io/name: {{ include "outpost.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "outpost.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "outpost.serviceTokensSecret" -}}
{{- default (printf "%s-service-tokens" (include "outpost.fullname" .)) .Values.serviceTokens.existingSecret }}
{{- end }}

{{- define "outpost.tlsSecret" -}}
{{- if .Values.tls.certManager.enabled }}
{{- printf "%s-gateway-tls" (include "outpost.fullname" .) }}
{{- else }}
{{- required "tls.existingSecret (a kubernetes.io/tls Secret) or tls.certManager.enabled is required when tls.enabled" .Values.tls.existingSecret }}
{{- end }}
{{- end }}

{{/* The database URL from the operator's Secret, as the service's own environment variable. */}}
{{- define "outpost.databaseEnv" -}}
- name: OUTPOST_{{ upper .service }}_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret (a Secret holding the PostgreSQL URL) is required" .root.Values.database.existingSecret }}
      key: {{ .root.Values.database.urlKey }}
{{- end }}

{{- define "outpost.topologySpread" -}}
{{- if .root.Values.topologySpread.enabled }}
topologySpreadConstraints:
{{- range list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
  - maxSkew: {{ $.root.Values.topologySpread.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $.root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "outpost.selectorLabels" $ | nindent 8 }}
{{- end }}
{{- end }}
{{- end }}

{{/* Scheduling, pull secrets and the pod security context of a service's pods. */}}
{{- define "outpost.podCommon" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{ include "outpost.topologySpread" . }}
{{- end }}

{{- define "outpost.grpcProbes" -}}
startupProbe:
  grpc:
    port: {{ .port }}
  periodSeconds: 2
  failureThreshold: 90
readinessProbe:
  grpc:
    port: {{ .port }}
  periodSeconds: 5
  failureThreshold: 2
livenessProbe:
  grpc:
    port: {{ .port }}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
{{- end }}

{{- define "outpost.migrateContainer" -}}
- name: migrate-{{ .service }}
  image: {{ include "outpost.image" .root }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  command: [outpost-{{ .service }}]
  args: [migrate]
  env:
    {{- include "outpost.databaseEnv" . | nindent 4 }}
    - name: OUTPOST_{{ upper .service }}_LOG_FORMAT
      value: json
    - name: OUTPOST_{{ upper .service }}_LOG_LEVEL
      value: {{ .root.Values.logLevel | quote }}
  securityContext:
    {{- toYaml .root.Values.containerSecurityContext | nindent 4 }}
  resources:
    {{- toYaml .root.Values.migrations.resources | nindent 4 }}
{{- end }}

{{/* Who may reach an internal or admin port: this namespace and the configured CIDRs. */}}
{{- define "outpost.internalPeers" -}}
- podSelector: {}
{{- range .Values.networkPolicy.adminCIDRs }}
- ipBlock:
    cidr: {{ . }}
{{- end }}
{{- end }}
{{- define "outpost.metricsPeers" -}}
{{- if .Values.networkPolicy.metricsNamespaceSelector }}
- namespaceSelector:
    {{- toYaml .Values.networkPolicy.metricsNamespaceSelector | nindent 4 }}
{{- else }}
- podSelector: {}
{{- end }}
{{- end }}
