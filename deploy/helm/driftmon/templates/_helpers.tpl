{{/* The name of every object: the release name, with "driftmon" unless it has it. */}}
{{- define "driftmon.fullname" -}}
{{- if contains "driftmon" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-driftmon" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "driftmon.selectorLabels" -}}
app.kubernetes.io/name: driftmon
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "driftmon.labels" -}}
{{ include "driftmon.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The image's paths (deploy/image) and user. */}}
{{- define "driftmon.configDir" -}}/etc/driftmon{{- end -}}
{{- define "driftmon.stateDir" -}}/var/lib/driftmon{{- end -}}

{{/* The secret whose keys become files beside the config, if any. */}}
{{- define "driftmon.secretName" -}}
{{- if .Values.existingSecret -}}{{ .Values.existingSecret }}{{- else if .Values.secrets -}}{{ include "driftmon.fullname" . }}{{- end -}}
{{- end -}}

{{/* driftmon.yaml: the values' config with state.path (one process) or the cluster section. */}}
{{- define "driftmon.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- if .Values.cluster.enabled -}}
{{- if and (hasKey $cfg "state") (get (get $cfg "state" | default dict) "path") -}}
{{- fail "config.state.path: leave it out with cluster.enabled; the cluster's state lives in the partials topic" -}}
{{- end -}}
{{- $group := get (get $cfg "kafka" | default dict) "group_id" | default "driftmon" -}}
{{- $cluster := dict "partials_topic" (.Values.cluster.partialsTopic | default (printf "%s-partials" $group)) -}}
{{- with .Values.cluster.replicationFactor }}{{ $_ := set $cluster "replication_factor" . }}{{ end -}}
{{- with .Values.cluster.sessionTimeout }}{{ $_ := set $cluster "session_timeout" . }}{{ end -}}
{{- $_ := set $cfg "cluster" $cluster -}}
{{- else -}}
{{- $state := deepCopy (get $cfg "state" | default dict) -}}
{{- $_ := set $state "path" (printf "%s/driftmon.db" (include "driftmon.stateDir" .)) -}}
{{- $_ := set $cfg "state" $state -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The pod: the same for the StatefulSet and the Deployment. */}}
{{- define "driftmon.podTemplate" -}}
metadata:
  labels:
    {{- include "driftmon.labels" . | nindent 4 }}
  annotations:
    checksum/config: {{ include "driftmon.config" . | sha256sum }}
    {{- if .Values.secrets }}
    checksum/secrets: {{ toJson .Values.secrets | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "driftmon.fullname" . }}
  automountServiceAccountToken: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    fsGroup: 65532
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: driftmon
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["run", "-c", "{{ include "driftmon.configDir" . }}/driftmon.yaml", "-http", ":8080", "-log-level", {{ .Values.logLevel | quote }}]
      ports:
        - name: http
          containerPort: 8080
          protocol: TCP
      env:
        {{- if include "driftmon.secretName" . }}
        - name: DRIFTMON_API_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ include "driftmon.secretName" . }}
              key: {{ .Values.apiTokenKey }}
              optional: true
        {{- end }}
        {{- with .Values.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      livenessProbe:
        httpGet: {path: /healthz, port: http}
        periodSeconds: 10
        failureThreshold: 3
      readinessProbe:
        httpGet: {path: /readyz, port: http}
        periodSeconds: 5
        failureThreshold: 2
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: {{ include "driftmon.configDir" . }}
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- if not .Values.cluster.enabled }}
        - name: state
          mountPath: {{ include "driftmon.stateDir" . }}
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    # The config and the secrets' files side by side, so *_file keys name them relative
    # to the config.
    - name: config
      projected:
        defaultMode: 0440
        sources:
          - configMap:
              name: {{ include "driftmon.fullname" . }}
          {{- if include "driftmon.secretName" . }}
          - secret:
              name: {{ include "driftmon.secretName" . }}
          {{- end }}
    # The leader's outbox copy and other temporary files (the root file system is read-only).
    - name: tmp
      emptyDir: {}
    {{- if and (not .Values.cluster.enabled) (not .Values.persistence.enabled) }}
    - name: state
      emptyDir: {}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
