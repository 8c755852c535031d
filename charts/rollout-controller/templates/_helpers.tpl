{{- define "rollout-controller.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rollout-controller.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rollout-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rollout-controller.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rollout-controller.labels" -}}
{{ include "rollout-controller.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "rollout-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rollout-controller.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /*
The RBAC rules: exactly the (apiGroup, resource, verb) triples the controller uses, no wildcards.
tests/integration/test_rbac.py compares them with every request the emulated API server served
to the controller; when the controller's calls change, these lists are all that changes.
*/ -}}

{{- /* In each watched namespace (all of them without watchNamespaces). */ -}}
{{- define "rollout-controller.namespacedRules" -}}
- apiGroups: ["rollout.dev"]
  resources: ["rollouts"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["rollout.dev"]
  resources: ["rollouts/status"]
  verbs: ["patch"]
- apiGroups: ["rollout.dev"]
  resources: ["analysistemplates"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "patch"]
{{- /* Secrets: `get` only, never list or watch; the controller reads the few that analysis
headers name (rollout/controller/cached.py). */}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "patch"]
- apiGroups: [""]
  resources: ["pods/eviction"]
  verbs: ["create"]
{{- /* Job metrics: a Job per measurement, read with GETs (never listed or watched) and deleted
when its run ends; the last lines of its pod's log go into the measurement's message. */}}
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "create", "delete"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes", "grpcroutes", "tcproutes"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices", "destinationrules"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end -}}

{{- /* Cluster-scoped, needed in both modes: ClusterAnalysisTemplates are cluster-scoped objects
(listed and watched into the controller's cache), and kopf lists and watches
CustomResourceDefinitions to learn which resources exist. */ -}}
{{- define "rollout-controller.clusterRules" -}}
- apiGroups: ["rollout.dev"]
  resources: ["clusteranalysistemplates"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end -}}

{{- /* Only with watchNamespaces: kopf lists and watches Namespaces to follow the watched ones. */ -}}
{{- define "rollout-controller.namespaceModeClusterRules" -}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end -}}

{{- /* In the release's namespace, with leader election: the Lease. */ -}}
{{- define "rollout-controller.leaderElectionRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end -}}

{{- /* In the release's namespace, with shards > 1: the shard Leases and each replica's member
Lease (listed to count the live replicas; a long-dead replica's is deleted). Leases only. */ -}}
{{- define "rollout-controller.shardRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "list", "create", "patch", "delete"]
{{- end -}}

{{- /* In the release's namespace, with notifications.configMap: that ConfigMap, and the Secrets
holding its webhooks' URLs. */ -}}
{{- define "rollout-controller.notificationsRules" -}}
- apiGroups: [""]
  resources: ["configmaps"]
  resourceNames: [{{ .Values.notifications.configMap | quote }}]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end -}}

{{- define "rollout-controller.args" -}}
- controller
{{- range .Values.watchNamespaces }}
- --namespace={{ . }}
{{- end }}
{{- with .Values.controller.prometheusAddress }}
- --prometheus-address={{ . }}
{{- end }}
- --log-level={{ .Values.controller.logLevel }}
- --log-format={{ .Values.controller.logFormat }}
- --resync-seconds={{ .Values.controller.resyncSeconds }}
- --http-port={{ .Values.controller.port }}
{{- with .Values.notifications.configMap }}
- --notifications-configmap={{ $.Release.Namespace }}/{{ . }}
{{- end }}
- --notifications-timeout={{ .Values.notifications.timeoutSeconds }}
{{- if gt (int .Values.shards) 1 }}
- --shards={{ .Values.shards }}
- --leader-election-id={{ include "rollout-controller.fullname" . }}
- --leader-election-lease-duration={{ .Values.leaderElection.leaseDuration }}
- --leader-election-renew-deadline={{ .Values.leaderElection.renewDeadline }}
- --leader-election-retry-period={{ .Values.leaderElection.retryPeriod }}
{{- else if .Values.leaderElection.enabled }}
- --leader-elect
- --leader-election-id={{ include "rollout-controller.fullname" . }}
- --leader-election-lease-duration={{ .Values.leaderElection.leaseDuration }}
- --leader-election-renew-deadline={{ .Values.leaderElection.renewDeadline }}
- --leader-election-retry-period={{ .Values.leaderElection.retryPeriod }}
{{- end }}
{{- range .Values.controller.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
