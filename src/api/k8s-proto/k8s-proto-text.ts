// The Kubernetes protobuf messages Bramble decodes, trimmed from the generated.proto files of
// k8s.io/api (core/v1, apps/v1, batch/v1, policy/v1) and k8s.io/apimachinery (meta/v1, runtime,
// api/resource, util/intstr). Field names are the JSON names; numbers are Kubernetes'.
// Messages Bramble does not model are declared as `bytes` (see UNMODELED in protobuf.ts), so a
// body that uses them is refused instead of losing data. Kept as a module so dist/ needs no .proto.

export const K8S_PROTO = `
syntax = "proto2";
package k8s;

message Unknown { optional TypeMeta typeMeta = 1; optional bytes raw = 2; optional string contentEncoding = 3; optional string contentType = 4; }
message TypeMeta { optional string apiVersion = 1; optional string kind = 2; }

message Quantity { optional string string = 1; }
message IntOrString { optional int64 type = 1; optional int32 intVal = 2; optional string strVal = 3; }
message Time { optional int64 seconds = 1; optional int32 nanos = 2; }

message ObjectMeta {
  optional string name = 1; optional string generateName = 2; optional string namespace = 3; optional string selfLink = 4;
  optional string uid = 5; optional string resourceVersion = 6; optional int64 generation = 7;
  optional Time creationTimestamp = 8; optional Time deletionTimestamp = 9; optional int64 deletionGracePeriodSeconds = 10;
  map<string, string> labels = 11; map<string, string> annotations = 12;
  repeated OwnerReference ownerReferences = 13; repeated string finalizers = 14; repeated bytes managedFields = 17;
}
message OwnerReference { optional string kind = 1; optional string name = 3; optional string uid = 4; optional string apiVersion = 5; optional bool controller = 6; optional bool blockOwnerDeletion = 7; }
message LabelSelector { map<string, string> matchLabels = 1; repeated LabelSelectorRequirement matchExpressions = 2; }
message LabelSelectorRequirement { optional string key = 1; optional string operator = 2; repeated string values = 3; }

message Namespace { optional ObjectMeta metadata = 1; optional NamespaceSpec spec = 2; optional bytes status = 3; }
message NamespaceSpec { repeated string finalizers = 1; }

message ConfigMap { optional ObjectMeta metadata = 1; map<string, string> data = 2; map<string, bytes> binaryData = 3; optional bool immutable = 4; }
message Secret { optional ObjectMeta metadata = 1; map<string, bytes> data = 2; optional string type = 3; map<string, string> stringData = 4; optional bool immutable = 5; }

message Service { optional ObjectMeta metadata = 1; optional ServiceSpec spec = 2; optional ServiceStatus status = 3; }
message ServiceStatus { optional bytes loadBalancer = 1; repeated bytes conditions = 2; }
message ServiceSpec {
  repeated ServicePort ports = 1; map<string, string> selector = 2; optional string clusterIP = 3; repeated string clusterIPs = 18;
  optional string type = 4; repeated string externalIPs = 5; optional string sessionAffinity = 7; optional string loadBalancerIP = 8;
  repeated string loadBalancerSourceRanges = 9; optional string externalName = 10; optional string externalTrafficPolicy = 11;
  optional int32 healthCheckNodePort = 12; optional bool publishNotReadyAddresses = 13; optional bytes sessionAffinityConfig = 14;
  repeated string ipFamilies = 19; optional string ipFamilyPolicy = 17; optional bool allocateLoadBalancerNodePorts = 20;
  optional string loadBalancerClass = 21; optional string internalTrafficPolicy = 22; optional string trafficDistribution = 23;
}
message ServicePort { optional string name = 1; optional string protocol = 2; optional string appProtocol = 6; optional int32 port = 3; optional IntOrString targetPort = 4; optional int32 nodePort = 5; }

message Pod { optional ObjectMeta metadata = 1; optional PodSpec spec = 2; optional bytes status = 3; }
message PodTemplateSpec { optional ObjectMeta metadata = 1; optional PodSpec spec = 2; }
message PodSpec {
  repeated Volume volumes = 1; repeated Container initContainers = 20; repeated Container containers = 2; repeated bytes ephemeralContainers = 34;
  optional string restartPolicy = 3; optional int64 terminationGracePeriodSeconds = 4; optional int64 activeDeadlineSeconds = 5;
  optional string dnsPolicy = 6; map<string, string> nodeSelector = 7; optional string serviceAccountName = 8; optional string serviceAccount = 9;
  optional bool automountServiceAccountToken = 21; optional string nodeName = 10; optional bool hostNetwork = 11; optional bool hostPID = 12;
  optional bool hostIPC = 13; optional bool shareProcessNamespace = 27; optional bytes securityContext = 14;
  repeated LocalObjectReference imagePullSecrets = 15; optional string hostname = 16; optional string subdomain = 17; optional bytes affinity = 18;
  optional string schedulerName = 19; repeated bytes tolerations = 22; repeated bytes hostAliases = 23; optional string priorityClassName = 24;
  optional int32 priority = 25; optional bytes dnsConfig = 26; repeated bytes readinessGates = 28; optional string runtimeClassName = 29;
  optional bool enableServiceLinks = 30; optional string preemptionPolicy = 31; map<string, Quantity> overhead = 32;
  repeated bytes topologySpreadConstraints = 33; optional bool setHostnameAsFQDN = 35; optional bytes os = 36; optional bool hostUsers = 37;
  repeated bytes schedulingGates = 38; repeated bytes resourceClaims = 39; optional bytes resources = 40; optional string hostnameOverride = 41;
}
message Container {
  optional string name = 1; optional string image = 2; repeated string command = 3; repeated string args = 4; optional string workingDir = 5;
  repeated ContainerPort ports = 6; repeated EnvFromSource envFrom = 19; repeated EnvVar env = 7; optional ResourceRequirements resources = 8;
  repeated bytes resizePolicy = 23; optional string restartPolicy = 24; repeated bytes restartPolicyRules = 25; repeated VolumeMount volumeMounts = 9;
  repeated bytes volumeDevices = 21; optional bytes livenessProbe = 10; optional bytes readinessProbe = 11; optional bytes startupProbe = 22;
  optional bytes lifecycle = 12; optional string terminationMessagePath = 13; optional string terminationMessagePolicy = 20;
  optional string imagePullPolicy = 14; optional bytes securityContext = 15; optional bool stdin = 16; optional bool stdinOnce = 17; optional bool tty = 18;
}
message ContainerPort { optional string name = 1; optional int32 hostPort = 2; optional int32 containerPort = 3; optional string protocol = 4; optional string hostIP = 5; }
message EnvVar { optional string name = 1; optional string value = 2; optional EnvVarSource valueFrom = 3; }
message EnvVarSource { optional ObjectFieldSelector fieldRef = 1; optional bytes resourceFieldRef = 2; optional ConfigMapKeySelector configMapKeyRef = 3; optional SecretKeySelector secretKeyRef = 4; optional bytes fileKeyRef = 5; }
message ObjectFieldSelector { optional string apiVersion = 1; optional string fieldPath = 2; }
message ConfigMapKeySelector { optional LocalObjectReference localObjectReference = 1; optional string key = 2; optional bool optional = 3; }
message SecretKeySelector { optional LocalObjectReference localObjectReference = 1; optional string key = 2; optional bool optional = 3; }
message EnvFromSource { optional string prefix = 1; optional ConfigMapEnvSource configMapRef = 2; optional SecretEnvSource secretRef = 3; }
message ConfigMapEnvSource { optional LocalObjectReference localObjectReference = 1; optional bool optional = 2; }
message SecretEnvSource { optional LocalObjectReference localObjectReference = 1; optional bool optional = 2; }
message LocalObjectReference { optional string name = 1; }
message ResourceRequirements { map<string, Quantity> limits = 1; map<string, Quantity> requests = 2; repeated bytes claims = 3; }
message VolumeMount { optional string name = 1; optional bool readOnly = 2; optional string recursiveReadOnly = 7; optional string mountPath = 3; optional string subPath = 4; optional string mountPropagation = 5; optional string subPathExpr = 6; }
message Volume { optional string name = 1; optional VolumeSource volumeSource = 2; }
message VolumeSource {
  optional HostPathVolumeSource hostPath = 1; optional EmptyDirVolumeSource emptyDir = 2; optional SecretVolumeSource secret = 6;
  optional PersistentVolumeClaimVolumeSource persistentVolumeClaim = 10; optional ConfigMapVolumeSource configMap = 19;
  optional bytes gcePersistentDisk = 3; optional bytes awsElasticBlockStore = 4; optional bytes gitRepo = 5; optional bytes nfs = 7;
  optional bytes iscsi = 8; optional bytes glusterfs = 9; optional bytes rbd = 11; optional bytes flexVolume = 12; optional bytes cinder = 13;
  optional bytes cephfs = 14; optional bytes flocker = 15; optional bytes downwardAPI = 16; optional bytes fc = 17; optional bytes azureFile = 18;
  optional bytes vsphereVolume = 20; optional bytes quobyte = 21; optional bytes azureDisk = 22; optional bytes photonPersistentDisk = 23;
  optional bytes portworxVolume = 24; optional bytes scaleIO = 25; optional bytes projected = 26; optional bytes storageos = 27;
  optional bytes csi = 28; optional bytes ephemeral = 29; optional bytes image = 30;
}
message HostPathVolumeSource { optional string path = 1; optional string type = 2; }
message EmptyDirVolumeSource { optional string medium = 1; optional Quantity sizeLimit = 2; }
message SecretVolumeSource { optional string secretName = 1; repeated KeyToPath items = 2; optional int32 defaultMode = 3; optional bool optional = 4; }
message ConfigMapVolumeSource { optional LocalObjectReference localObjectReference = 1; repeated KeyToPath items = 2; optional int32 defaultMode = 3; optional bool optional = 4; }
message PersistentVolumeClaimVolumeSource { optional string claimName = 1; optional bool readOnly = 2; }
message KeyToPath { optional string key = 1; optional string path = 2; optional int32 mode = 3; }

message Deployment { optional ObjectMeta metadata = 1; optional DeploymentSpec spec = 2; optional bytes status = 3; }
message DeploymentSpec {
  optional int32 replicas = 1; optional LabelSelector selector = 2; optional PodTemplateSpec template = 3; optional DeploymentStrategy strategy = 4;
  optional int32 minReadySeconds = 5; optional int32 revisionHistoryLimit = 6; optional bool paused = 7; optional int32 progressDeadlineSeconds = 9;
}
message DeploymentStrategy { optional string type = 1; optional RollingUpdateDeployment rollingUpdate = 2; }
message RollingUpdateDeployment { optional IntOrString maxUnavailable = 1; optional IntOrString maxSurge = 2; }

message Job { optional ObjectMeta metadata = 1; optional JobSpec spec = 2; optional bytes status = 3; }
message JobSpec {
  optional int32 parallelism = 1; optional int32 completions = 2; optional int64 activeDeadlineSeconds = 3; optional bytes podFailurePolicy = 11;
  optional bytes successPolicy = 16; optional int32 backoffLimit = 7; optional int32 backoffLimitPerIndex = 12; optional int32 maxFailedIndexes = 13;
  optional LabelSelector selector = 4; optional bool manualSelector = 5; optional PodTemplateSpec template = 6; optional int32 ttlSecondsAfterFinished = 8;
  optional string completionMode = 9; optional bool suspend = 10; optional string podReplacementPolicy = 14; optional string managedBy = 15;
}
message CronJob { optional ObjectMeta metadata = 1; optional CronJobSpec spec = 2; optional bytes status = 3; }
message CronJobSpec {
  optional string schedule = 1; optional string timeZone = 8; optional int64 startingDeadlineSeconds = 2; optional string concurrencyPolicy = 3;
  optional bool suspend = 4; optional JobTemplateSpec jobTemplate = 5; optional int32 successfulJobsHistoryLimit = 6; optional int32 failedJobsHistoryLimit = 7;
}
message JobTemplateSpec { optional ObjectMeta metadata = 1; optional JobSpec spec = 2; }

message Eviction { optional ObjectMeta metadata = 1; optional DeleteOptions deleteOptions = 2; }
message DeleteOptions {
  optional int64 gracePeriodSeconds = 1; optional Preconditions preconditions = 2; optional bool orphanDependents = 3;
  optional string propagationPolicy = 4; repeated string dryRun = 5; optional bool ignoreStoreReadErrorWithClusterBreakingPotential = 6;
}
message Preconditions { optional string uid = 1; optional string resourceVersion = 2; }
`
