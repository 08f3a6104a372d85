{{/*
Names, labels and images shared by every template.
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "flatnet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every object's name. At most 40 characters: the longest suffix the chart adds is
"-lbcontroller-uninstall" (23), and a Job's name must fit a 63-character label.
*/}}
{{- define "flatnet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "flatnet.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "flatnet.ipamd.name" -}}{{ include "flatnet.fullname" . }}-ipamd{{- end -}}
{{- define "flatnet.lbcontroller.name" -}}{{ include "flatnet.fullname" . }}-lbcontroller{{- end -}}
{{- define "flatnet.ipamd.uninstall.name" -}}{{ include "flatnet.fullname" . }}-ipamd-uninstall{{- end -}}
{{- define "flatnet.uninstall.name" -}}{{ include "flatnet.fullname" . }}-lbcontroller-uninstall{{- end -}}

{{/* The Secret holding the cloud token, and its key. */}}
{{- define "flatnet.credentials.secret" -}}
{{- .Values.cloud.credentials.existingSecret | default (printf "%s-cloud-credentials" (include "flatnet.fullname" .)) -}}
{{- end -}}
{{- define "flatnet.credentials.key" -}}
{{- if .Values.cloud.credentials.existingSecret -}}{{ .Values.cloud.credentials.key }}{{- else -}}token{{- end -}}
{{- end -}}

{{/*
Selector labels of a component: never anything that changes between releases (version, chart),
since a workload's selector is immutable.
Call with (dict "ctx" $ "component" "ipamd").
*/}}
{{- define "flatnet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flatnet.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Every label of a component's objects. Call with (dict "ctx" $ "component" "ipamd" "tag" "0.1.0").
*/}}
{{- define "flatnet.labels" -}}
{{ include "flatnet.selectorLabels" . }}
app.kubernetes.io/version: {{ .tag | default .ctx.Chart.AppVersion | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: flatnet
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* The tag of a component's image: its own, image.tag, then the chart's appVersion. */}}
{{- define "flatnet.tag" -}}
{{- .img.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion -}}
{{- end -}}

{{/* <registry>/<repository>:<tag> of a component. Call with (dict "ctx" $ "img" .Values.ipamd.image). */}}
{{- define "flatnet.image" -}}
{{- $registry := .img.registry | default .ctx.Values.image.registry | trimSuffix "/" -}}
{{- printf "%s/%s:%s" $registry .img.repository (include "flatnet.tag" .) -}}
{{- end -}}

{{- define "flatnet.pullPolicy" -}}
{{- .img.pullPolicy | default .ctx.Values.image.pullPolicy -}}
{{- end -}}

{{/* The entries of imagePullSecrets, from image.pullSecrets (names or {name: ...}). Call with the list. */}}
{{- define "flatnet.pullSecrets" -}}
{{- range . }}
- name: {{ kindIs "string" . | ternary . (get (kindIs "map" . | ternary . dict) "name") }}
{{- end }}
{{- end -}}

{{/*
The AWS driver's settings as the SDK's standard environment (cloud.provider aws): region and
endpoint override, for both components.
*/}}
{{- define "flatnet.aws.env" -}}
{{- if eq .Values.cloud.provider "aws" -}}
{{- with .Values.cloud.aws.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.cloud.aws.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- end -}}
{{- end -}}

{{/*
lbcontroller's AWS keys from cloud.credentials.existingSecret, as the environment variables
the SDK reads (never arguments). Without existingSecret: none, for a pod identity.
*/}}
{{- define "flatnet.aws.credentialsEnv" -}}
{{- $c := .Values.cloud.credentials -}}
{{- if and (eq .Values.cloud.provider "aws") $c.existingSecret -}}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $c.existingSecret }}
      key: {{ $c.aws.accessKeyIDKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $c.existingSecret }}
      key: {{ $c.aws.secretAccessKeyKey }}
{{- end -}}
{{- end -}}

{{/*
Checks the schema cannot express in a way a person reads easily; each fails with what to change.
*/}}
{{- define "flatnet.validate" -}}
{{- $c := .Values.cloud.credentials -}}
{{- if and .Values.lbcontroller.enabled $c.existingSecret $c.token -}}
{{- fail "cloud.credentials: both existingSecret and token are set; give one of them (existingSecret is preferred: the token then stays out of the release)" -}}
{{- end -}}
{{- if and .Values.lbcontroller.enabled (eq .Values.cloud.provider "aws") $c.token -}}
{{- fail "cloud.credentials.token is fakecloud's: with cloud.provider aws give the AWS keys in cloud.credentials.existingSecret (or none, for a pod identity)" -}}
{{- end -}}
{{- $i := .Values.ipamd -}}
{{- if and (not (kindIs "invalid" $i.warmLow)) (not (kindIs "invalid" $i.warmHigh)) -}}
{{- if lt (int $i.warmHigh) (int $i.warmLow) -}}
{{- fail (printf "ipamd.warmHigh (%v) is below ipamd.warmLow (%v): the pool would give back what it just grew" $i.warmHigh $i.warmLow) -}}
{{- end -}}
{{- end -}}
{{- if eq (int $i.metrics.port) (int $i.introspection.port) -}}
{{- fail (printf "ipamd.metrics.port and ipamd.introspection.port are both %v: they need different ports" $i.metrics.port) -}}
{{- end -}}
{{- if eq (int .Values.lbcontroller.metrics.port) (int .Values.lbcontroller.health.port) -}}
{{- fail (printf "lbcontroller.metrics.port and lbcontroller.health.port are both %v: they need different ports" .Values.lbcontroller.metrics.port) -}}
{{- end -}}
{{- end -}}
