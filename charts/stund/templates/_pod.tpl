{{/*
The pod template shared by the Deployment and the DaemonSet.
*/}}
{{- define "stund.podTemplate" -}}
metadata:
  labels:
    {{- include "stund.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "stund.serviceAccountName" . }}
  automountServiceAccountToken: {{ or .Values.kubernetes.enabled .Values.serviceAccount.automountToken }}
  {{- /*
  Service links would put <SERVICE>_PORT=udp://… variables into the pod; for a
  Service named "stund" they land in stund's STUND_* environment namespace.
  */}}
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ include "stund.terminationGracePeriodSeconds" . }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: stund
      image: {{ include "stund.imageRef" (list .Values.image .Chart.AppVersion) | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - --listen=:{{ .Values.stunPort }}
        - --http-listen=:{{ .Values.httpPort }}
        - --drain-timeout={{ .Values.shutdown.drainTimeoutSeconds }}s
        - --log-level={{ .Values.logLevel }}
        - --log-format={{ .Values.logFormat }}
        - {{ printf "--software=%s" .Values.software | quote }}
        {{- if .Values.rfc3489 }}
        - --rfc3489
        {{- end }}
        {{- range (kindIs "string" .Values.responseOrigin | ternary (list .Values.responseOrigin) .Values.responseOrigin) }}
        {{- with . }}
        - {{ printf "--response-origin=%s" . | quote }}
        {{- end }}
        {{- end }}
        {{- if .Values.proxyProtocol.enabled }}
        {{- if not .Values.proxyProtocol.trustedCIDRs }}
        {{- fail "proxyProtocol.enabled needs proxyProtocol.trustedCIDRs: a PROXY header is only believed from the load balancer's addresses" }}
        {{- end }}
        - --proxy-protocol
        {{- range .Values.proxyProtocol.trustedCIDRs }}
        - {{ printf "--proxy-trusted-cidr=%s" . | quote }}
        {{- end }}
        {{- if .Values.proxyProtocol.optional }}
        - --proxy-protocol-optional
        {{- end }}
        {{- end }}
        - --rate-limit={{ .Values.rateLimit.perSource }}
        - --rate-limit-burst={{ .Values.rateLimit.burst }}
        - --global-rate-limit={{ .Values.rateLimit.global }}
        {{- range .Values.rateLimit.exemptCIDRs }}
        - {{ printf "--rate-limit-exempt=%s" . | quote }}
        {{- end }}
        - --rate-limit-ipv6-prefix={{ .Values.rateLimit.ipv6Prefix }}
        - --max-tcp-conns={{ .Values.tcp.maxConns }}
        - --max-tcp-conns-per-source={{ .Values.tcp.maxConnsPerSource }}
        - --tcp-idle-timeout={{ .Values.tcp.idleTimeoutSeconds }}s
        {{- if .Values.kubernetes.enabled }}
        {{- range (include "stund.stunServices" . | fromJsonArray) }}
        - --service={{ .name }}
        {{- end }}
        {{- end }}
        {{- range .Values.kubernetes.internalCIDRs }}
        - {{ printf "--internal-cidr=%s" . | quote }}
        {{- end }}
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        {{- if and .Values.resources .Values.resources.limits .Values.resources.limits.memory }}
        - name: GOMEMLIMIT
          valueFrom:
            resourceFieldRef:
              containerName: stund
              resource: limits.memory
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: stun-udp
          containerPort: {{ .Values.stunPort }}
          protocol: UDP
        - name: stun-tcp
          containerPort: {{ .Values.stunPort }}
          protocol: TCP
        - name: http
          containerPort: {{ .Values.httpPort }}
          protocol: TCP
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
        {{- toYaml .Values.livenessProbe | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        {{- toYaml .Values.readinessProbe | nindent 8 }}
      {{- /* The sleep action is on by default from Kubernetes 1.30; older API
      servers would drop it and leave an invalid empty preStop. */}}
      {{- if and (gt (int .Values.shutdown.preStopSleepSeconds) 0) (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version) }}
      lifecycle:
        preStop:
          sleep:
            seconds: {{ int .Values.shutdown.preStopSleepSeconds }}
      {{- end }}
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
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
  {{- if and (eq .Values.kind "Deployment") .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- $selector := include "stund.selectorLabels" . | fromYaml }}
    {{- range .Values.topologySpreadConstraints }}
    {{- $c := deepCopy . }}
    {{- if not (hasKey $c "labelSelector") }}
    {{- $_ := set $c "labelSelector" (dict "matchLabels" $selector) }}
    {{- end }}
    - {{ toYaml $c | indent 6 | trim }}
    {{- end }}
  {{- end }}
{{- end }}
