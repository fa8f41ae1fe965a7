{{/* Names and labels. */}}
{{- define "rewind.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rewind.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "rewind.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "rewind.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "rewind.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rewind.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rewind.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "rewind.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rewind
{{- end }}

{{- define "rewind.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rewind.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Refuses values that cannot work, so the mistake shows at render time and
not as a crash-looping pod.
*/}}
{{- define "rewind.validate" -}}
{{- if not (has .Values.database.kind (list "sqlite" "postgres")) }}
{{- fail (printf "database.kind must be \"sqlite\" or \"postgres\", not %q" .Values.database.kind) }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (ne .Values.database.kind "postgres") }}
{{- fail (printf "replicaCount %d needs database.kind: postgres: several replicas share one PostgreSQL database, and a second replica on one SQLite file is refused" (int .Values.replicaCount)) }}
{{- end }}
{{- if hasKey (.Values.config.database | default dict) "url" }}
{{- fail "config.database.url would put the database password in a ConfigMap: set database.kind and the Secret key secrets.keys.databaseUrl instead" }}
{{- end }}
{{- range $section, $keys := dict "webhooks" (list "argocd_token" "alertmanager_token" "flux_hmac_key" "flagger_token" "rollouts_token") "git" (list "token") "forge" (list "token" "webhook_secret") }}
{{- range $key := $keys }}
{{- if hasKey (index $.Values.config $section | default dict) $key }}
{{- fail (printf "config.%s.%s is a secret: reference it from the Secret %q (values secrets.keys) instead of writing it in values" $section $key $.Values.secrets.name) }}
{{- end }}
{{- end }}
{{- end }}
{{- if (.Values.config.api | default dict).tokens }}
{{- fail "config.api.tokens would put API tokens in a ConfigMap: use apiTokens (environment from the Secret) or secrets.files.apiTokensFile" }}
{{- end }}
{{- end }}

{{/*
TOML for rewind's configuration. Helm reads every number in values as a
float, and toToml would write `required_approvals = 1.0`: this writer
prints whole numbers as integers.
*/}}
{{- define "rewind.tomlValue" -}}
{{- if kindIs "map" . -}}
{ {{- $first := true }}{{ range $k, $v := . }}{{ if not $first }}, {{ end }}{{ $first = false }}{{ $k }} = {{ include "rewind.tomlValue" $v }}{{ end -}} }
{{- else if kindIs "slice" . -}}
[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ include "rewind.tomlValue" $v }}{{ end }}]
{{- else if kindIs "string" . -}}
{{ toJson . }}
{{- else if kindIs "bool" . -}}
{{ . }}
{{- else if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) -}}
{{- if eq (float64 .) (floor .) }}{{ int64 . }}{{ else }}{{ . }}{{ end -}}
{{- else -}}
{{ fail (printf "config: cannot write %v (%s) as TOML" . (kindOf .)) }}
{{- end -}}
{{- end }}

{{/* A list of tables, as opposed to a list of plain values. */}}
{{- define "rewind.isTableList" -}}
{{- if and (kindIs "slice" .) (gt (len .) 0) (kindIs "map" (first .)) }}yes{{ end }}
{{- end }}

{{/* One table: its plain keys, then sub-tables, then lists of tables. */}}
{{- define "rewind.tomlTable" -}}
{{- $prefix := .prefix }}
{{- range $k, $v := .table }}
{{- if and (not (kindIs "map" $v)) (not (include "rewind.isTableList" $v)) }}
{{ $k }} = {{ include "rewind.tomlValue" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := .table }}
{{- if kindIs "map" $v }}
{{- $name := ternary $k (printf "%s.%s" $prefix $k) (eq $prefix "") }}

[{{ $name }}]
{{- include "rewind.tomlTable" (dict "prefix" $name "table" $v) }}
{{- end }}
{{- end }}
{{- range $k, $v := .table }}
{{- if include "rewind.isTableList" $v }}
{{- $name := ternary $k (printf "%s.%s" $prefix $k) (eq $prefix "") }}
{{- range $entry := $v }}

[[{{ $name }}]]
{{- range $ek, $ev := $entry }}
{{ $ek }} = {{ include "rewind.tomlValue" $ev }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where mounted secret files live, by values key. */}}
{{- define "rewind.secretFilesDir" -}}/etc/rewind/secrets{{- end }}
