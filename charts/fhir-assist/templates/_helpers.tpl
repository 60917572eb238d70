{{/* Names and labels shared by the templates. */}}
{{- define "fhir-assist.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fhir-assist.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fhir-assist.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "fhir-assist.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "fhir-assist.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fhir-assist.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Secret holding the trusted issuers' public keys. */}}
{{- define "fhir-assist.trustSecret" -}}
{{- default (printf "%s-trust" (include "fhir-assist.fullname" .)) .Values.trust.existingSecret -}}
{{- end -}}

{{/* FHIR_ASSIST_TRUST: "ISS=/etc/fhir-assist/trust/FILE" or "ISS=JWKS-URL", space separated. */}}
{{- define "fhir-assist.trustEnv" -}}
{{- $entries := list -}}
{{- range .Values.trust.issuers -}}
{{- if .jwksUrl -}}
{{- $entries = append $entries (printf "%s=%s" .issuer .jwksUrl) -}}
{{- else if .keyFile -}}
{{- $entries = append $entries (printf "%s=/etc/fhir-assist/trust/%s" .issuer .keyFile) -}}
{{- else -}}
{{- fail (printf "trust.issuers: issuer %s needs jwksUrl or keyFile" .issuer) -}}
{{- end -}}
{{- end -}}
{{- join " " $entries -}}
{{- end -}}

{{- define "fhir-assist.secretKeySecret" -}}
{{- default (printf "%s-secret-key" (include "fhir-assist.fullname" .)) .Values.secretKey.existingSecret -}}
{{- end -}}

{{- define "fhir-assist.redisEnabled" -}}
{{- if or .Values.redis.enabled .Values.externalRedis.url .Values.externalRedis.existingSecret -}}true{{- end -}}
{{- end -}}
