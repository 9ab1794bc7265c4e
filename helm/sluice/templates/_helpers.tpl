{{/* The release-scoped name of a service: <release>-<service>, cut to 63 characters. */}}
{{- define "sluice.name" -}}
{{- printf "%s-%s" .root.Release.Name .service | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: sluice
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end -}}

{{- define "sluice.labels" -}}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
sluice.dev/region: {{ .root.Values.region | quote }}
{{- end -}}

{{/* A service's settings: the defaults block overlaid with its own entry. */}}
{{- define "sluice.settings" -}}
{{- $own := index .root.Values.services .service -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy $own)) -}}
{{- end -}}

{{- define "sluice.image" -}}
{{- printf "%s-%s:%s" .root.Values.image.repository .service (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{/* The request topics each consumer reads, with the deployment's prefix: KEDA's lag trigger watches these. */}}
{{- define "sluice.topics" -}}
{{- $p := .root.Values.kafka.topicPrefix -}}
{{- if eq .service "batch-worker" -}}
{{- printf "%ssluice.requests.high.v1,%ssluice.requests.v1,%ssluice.requests.low.v1" $p $p $p -}}
{{- else if eq .service "aggregator" -}}
{{- printf "%ssluice.results.v1" $p -}}
{{- else if eq .service "delivery" -}}
{{- printf "%ssluice.completions.v1" $p -}}
{{- end -}}
{{- end -}}

{{- define "sluice.group" -}}
{{- printf "%ssluice.%s" .root.Values.kafka.topicPrefix .service -}}
{{- end -}}

{{/* KEDA is used when asked for, or on "auto" when the cluster serves its API. */}}
{{- define "sluice.useKeda" -}}
{{- $keda := .Values.keda -}}
{{- if or (eq (toString $keda) "true") (and (eq (toString $keda) "auto") (.Capabilities.APIVersions.Has "keda.sh/v1alpha1")) -}}
true
{{- end -}}
{{- end -}}

{{/* How to reach Kafka (packages/config): the services and the topic-provisioning Job alike. */}}
{{- define "sluice.kafkaEnv" -}}
- name: KAFKA_BROKERS
  value: {{ required "kafka.bootstrapServers is required" .Values.kafka.bootstrapServers | quote }}
- name: KAFKA_CLIENT
  value: {{ .Values.kafka.client | quote }}
- name: KAFKA_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: KAFKA_REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
- name: KAFKA_TOPIC_PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
- name: KAFKA_PROVISION_TOPICS
  value: {{ not .Values.kafka.provisioningJob.enabled | quote }}
- name: KAFKA_TLS
  value: {{ .Values.kafka.tls.enabled | quote }}
{{- if .Values.kafka.sasl.enabled }}
- name: KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ .Values.kafka.sasl.username | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.existingSecret is required with SASL" .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.passwordKey }}
{{- end }}
{{- end -}}

{{/* Environment every service reads (packages/config): Kafka, identity, telemetry, the gateway files. */}}
{{- define "sluice.env" -}}
{{ include "sluice.kafkaEnv" .root }}
- name: HTTP_PORT
  value: "8080"
- name: REGION
  value: {{ .root.Values.region | quote }}
{{- if .root.Values.zone }}
- name: ZONE
  value: {{ .root.Values.zone | quote }}
{{- end }}
- name: SERVICE_INSTANCE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: SERVICE_VERSION
  value: {{ default .root.Chart.AppVersion .root.Values.image.tag | quote }}
- name: SLUICE_GATEWAY_CONFIG
  value: /etc/sluice/gateway/gateway.yaml
- name: SLUICE_GATEWAY_SECRETS
  value: /etc/sluice/secrets/secrets.yaml
- name: STATE_STORE
  value: {{ .root.Values.state.store | quote }}
{{- if eq .root.Values.state.store "redis" }}
{{ include "sluice.redisEnv" .root }}
{{- end }}
{{- if .root.Values.observability.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .root.Values.observability.otlpEndpoint | quote }}
{{- end }}
- name: TRACES_SAMPLE_RATIO
  value: {{ .root.Values.observability.traceSampleRatio | quote }}
{{- end -}}

{{/* Where the ingress finds Redis: the chart's own, a cluster, a Secret of yours, or a url in the values. */}}
{{- define "sluice.redisEnv" -}}
{{- $r := .Values.state.redis -}}
{{- if $r.deploy -}}
- name: REDIS_URL
  value: {{ printf "redis://%s-redis:6379" .Release.Name | quote }}
{{- else if $r.clusterNodes -}}
- name: REDIS_CLUSTER_NODES
  value: {{ join "," $r.clusterNodes | quote }}
- name: REDIS_TLS
  value: {{ $r.tls | quote }}
{{- if $r.existingSecret }}
{{- if $r.usernameKey }}
- name: REDIS_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $r.existingSecret }}
      key: {{ $r.usernameKey }}
{{- end }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $r.existingSecret }}
      key: {{ $r.passwordKey }}
{{- end }}
{{- else if $r.existingSecret -}}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $r.existingSecret }}
      key: {{ $r.urlKey }}
{{- else -}}
- name: REDIS_URL
  value: {{ required "state.redis.url, clusterNodes or existingSecret is required when state.store is redis and the chart does not deploy Redis" $r.url | quote }}
{{- end -}}
{{- end -}}

{{- define "sluice.secretName" -}}
{{- default (printf "%s-gateway-secrets" .Release.Name) .Values.gateway.existingSecret -}}
{{- end -}}

{{/* KEDA's name of the SASL mechanism the services use (KAFKA_SASL_MECHANISM). */}}
{{- define "sluice.kedaSasl" -}}
{{- $m := .Values.kafka.sasl.mechanism -}}
{{- if eq $m "plain" -}}plaintext
{{- else if eq $m "scram-sha-256" -}}scram_sha256
{{- else if eq $m "scram-sha-512" -}}scram_sha512
{{- else -}}{{ fail (printf "kafka.sasl.mechanism %q has no KEDA equivalent" $m) }}
{{- end -}}
{{- end -}}
