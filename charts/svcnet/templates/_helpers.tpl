{{/* The chart name, overridable with nameOverride. */}}
{{- define "svcnet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: fullnameOverride, else the release name when it already contains
the chart name, else "<release>-<chart>". Kept to 50 characters so the longest suffix
("-controller", "-webhook-tls") still fits in 63.
*/}}
{{- define "svcnet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "svcnet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "svcnet.labels" -}}
helm.sh/chart: {{ include "svcnet.chart" . }}
app.kubernetes.io/name: {{ include "svcnet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: svcnet
{{- end }}

{{- define "svcnet.controller.name" -}}
{{- printf "%s-controller" (include "svcnet.fullname" .) }}
{{- end }}

{{- define "svcnet.proxy.name" -}}
{{- printf "%s-proxy" (include "svcnet.fullname" .) }}
{{- end }}

{{/* The webhook's Service; the serving certificate is issued for <this>.<namespace>.svc. */}}
{{- define "svcnet.webhook.serviceName" -}}
{{- printf "%s-webhook" (include "svcnet.fullname" .) }}
{{- end }}

{{/* The MutatingWebhookConfiguration (cluster-scoped). */}}
{{- define "svcnet.webhook.configurationName" -}}
{{- include "svcnet.fullname" . }}
{{- end }}

{{/*
The Secret with the webhook's CA and serving certificate: written by the controller itself, or by
cert-manager when webhook.certManager.enabled.
*/}}
{{- define "svcnet.webhook.secretName" -}}
{{- default (printf "%s-webhook-tls" (include "svcnet.fullname" .)) .Values.webhook.secretName }}
{{- end }}

{{- define "svcnet.webhook.dnsName" -}}
{{- printf "%s.%s.svc" (include "svcnet.webhook.serviceName" .) .Release.Namespace }}
{{- end }}

{{- define "svcnet.controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "svcnet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "svcnet.proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "svcnet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: proxy
{{- end }}

{{/* The one image both binaries ship in: by digest when set, else by tag (default: appVersion). */}}
{{- define "svcnet.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* KUBERNETES_SERVICE_HOST/PORT when kubernetesAPI.host is set: the apiserver without a ClusterIP. */}}
{{- define "svcnet.kubernetesAPIEnv" -}}
{{- if .Values.kubernetesAPI.host }}
- name: KUBERNETES_SERVICE_HOST
  value: {{ .Values.kubernetesAPI.host | quote }}
- name: KUBERNETES_SERVICE_PORT
  value: {{ .Values.kubernetesAPI.port | quote }}
{{- end }}
{{- end }}
