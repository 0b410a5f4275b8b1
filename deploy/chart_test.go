package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/driftmon/driftmon/config"
	"github.com/driftmon/driftmon/deploy/image"
)

const chartDir = "helm/driftmon"

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) the chart writes; decoding is strict, so a misspelt or
// misplaced field fails.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is a chart rendered for one set of values, every manifest decoded into its
// Kubernetes API type.
type rendered struct {
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	services        []*corev1.Service
	serviceAccounts []*corev1.ServiceAccount
	statefulSets    []*appsv1.StatefulSet
	deployments     []*appsv1.Deployment
	serviceMonitors []*serviceMonitor
	objects         []metav1.ObjectMeta // of every object above
}

// render renders the chart as helm install would (release "prod" in namespace "ml")
// with values over values.yaml.
func render(t *testing.T, values string) (map[string]string, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("cannot load the chart: %v", err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
		t.Fatalf("test values: %v", err)
	}
	top, err := util.ToRenderValues(chrt, vals, common.ReleaseOptions{Name: "prod", Namespace: "ml", IsInstall: true, Revision: 1}, nil)
	if err != nil {
		return nil, err
	}
	return engine.Render(chrt, top)
}

// decodeAll strictly decodes every manifest of out: yaml to json, then json into the
// kind's API type as the API server would, unknown fields refused.
func decodeAll(out map[string]string) (*rendered, error) {
	r := &rendered{}
	names := make([]string, 0, len(out))
	for name := range out {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue // NOTES.txt, _helpers.tpl
		}
		for i, doc := range strings.Split(out[name], "\n---") {
			if strings.TrimSpace(strings.ReplaceAll(doc, "---", "")) == "" {
				continue
			}
			if err := r.decode([]byte(doc)); err != nil {
				return nil, fmt.Errorf("%s, document %d: %w\n%s", name, i, err, doc)
			}
		}
	}
	return r, nil
}

func (r *rendered) decode(doc []byte) error {
	js, err := yaml.YAMLToJSONStrict(doc) // duplicate keys are errors too
	if err != nil {
		return err
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return err
	}
	// As the API server decodes: field names are case-sensitive (encoding/json's are
	// not: it would take "targetport" for targetPort), unknown and duplicate fields are
	// errors.
	strict := func(v any) error {
		strictErrs, err := kjson.UnmarshalStrict(js, v, kjson.DisallowUnknownFields, kjson.DisallowDuplicateFields)
		if err = errors.Join(append([]error{err}, strictErrs...)...); err != nil {
			return fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
		}
		return nil
	}
	switch gvk := tm.APIVersion + " " + tm.Kind; gvk {
	case "v1 ConfigMap":
		return decodeInto(r, strict, &r.configMaps)
	case "v1 Secret":
		return decodeInto(r, strict, &r.secrets)
	case "v1 Service":
		return decodeInto(r, strict, &r.services)
	case "v1 ServiceAccount":
		return decodeInto(r, strict, &r.serviceAccounts)
	case "apps/v1 StatefulSet":
		return decodeInto(r, strict, &r.statefulSets)
	case "apps/v1 Deployment":
		return decodeInto(r, strict, &r.deployments)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return decodeInto(r, strict, &r.serviceMonitors)
	default:
		return fmt.Errorf("unexpected kind %q", gvk)
	}
}

// decodeInto decodes one object of type T and adds it to list and r.objects.
func decodeInto[T any, PT interface {
	*T
	GetObjectMeta() metav1.Object
}](r *rendered, strict func(any) error, list *[]PT) error {
	v := PT(new(T))
	if err := strict(v); err != nil {
		return err
	}
	*list = append(*list, v)
	m := v.GetObjectMeta()
	r.objects = append(r.objects, metav1.ObjectMeta{Name: m.GetName(), Labels: m.GetLabels()})
	return nil
}

// singleValues run one process with secrets through *_file keys and ${NAME}, an API
// token and a ServiceMonitor.
const singleValues = `
config:
  kafka:
    brokers: ["kafka-0.kafka:9092", "kafka-1.kafka:9092"]
    group_id: driftmon-credit
    sasl: {mechanism: SCRAM-SHA-512, username: driftmon, password: "${KAFKA_PASSWORD}"}
  streams:
    - name: credit
      topic: credit-inferences
      event_time: ts
      features:
        car_value: {type: numeric}
        salary_range: {type: categorical}
      window: {size: 1h}
  alerting:
    dashboard_url: https://driftmon.example.com/
    slack: {token_file: slack-token, channel: "#ml-alerts"}
    webhooks:
      - name: retrain
        url: https://ci.example.com/hooks/retrain
        secret_file: retrain-webhook-secret
secrets:
  slack-token: xoxb-1-2-abc
  retrain-webhook-secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  api-token: s3cret
  kafka-password: hunter2
env:
  - name: KAFKA_PASSWORD
    valueFrom: {secretKeyRef: {name: prod-driftmon, key: kafka-password}}
serviceMonitor: {enabled: true, labels: {release: kube-prometheus}}
`

// clusterValues run three processes sharing the stream.
const clusterValues = `
config:
  kafka: {brokers: ["kafka:9092"], group_id: driftmon-credit}
  streams:
    - name: credit
      topic: credit-inferences
      features: {car_value: {type: numeric}}
      window: {size: 10m}
cluster: {enabled: true, replicas: 3, replicationFactor: 3, sessionTimeout: 15s}
persistence: {enabled: true}
serviceAccount: {annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::123456789012:role/driftmon"}}
extraVolumes:
  - name: kafka-token
    projected:
      sources:
        - serviceAccountToken: {path: token, audience: kafka, expirationSeconds: 3600}
extraVolumeMounts:
  - {name: kafka-token, mountPath: /var/run/secrets/kafka, readOnly: true}
`

// TestChartRendersValidManifests renders the chart for one process and for a cluster,
// decodes every manifest strictly into the Kubernetes API types, and checks that they
// fit together (selectors, named ports, volumes, the config's secrets) and with the
// image (its user, paths and port), and that the config driftmon reads passes its
// own validation.
func TestChartRendersValidManifests(t *testing.T) {
	for _, tc := range []struct {
		name, values string
		cluster      bool
	}{
		{"defaults", "", false},
		{"one process", singleValues, false},
		{"cluster", clusterValues, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := render(t, tc.values)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			r, err := decodeAll(out)
			if err != nil {
				t.Fatal(err)
			}
			checkObjects(t, r)
			var pod corev1.PodTemplateSpec
			var selector *metav1.LabelSelector
			if tc.cluster {
				if len(r.deployments) != 1 || len(r.statefulSets) != 0 {
					t.Fatalf("cluster: %d Deployments, %d StatefulSets; want a Deployment", len(r.deployments), len(r.statefulSets))
				}
				d := r.deployments[0]
				if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
					t.Errorf("replicas %v, want 3", d.Spec.Replicas)
				}
				pod, selector = d.Spec.Template, d.Spec.Selector
			} else {
				if len(r.statefulSets) != 1 || len(r.deployments) != 0 {
					t.Fatalf("one process: %d StatefulSets, %d Deployments; want a StatefulSet", len(r.statefulSets), len(r.deployments))
				}
				s := r.statefulSets[0]
				if s.Spec.Replicas == nil || *s.Spec.Replicas != 1 {
					t.Errorf("replicas %v, want 1: two would read the same partitions with separate state", s.Spec.Replicas)
				}
				if !slices.ContainsFunc(r.services, func(svc *corev1.Service) bool {
					return svc.Name == s.Spec.ServiceName && svc.Spec.ClusterIP == corev1.ClusterIPNone
				}) {
					t.Errorf("serviceName %q is no rendered headless Service", s.Spec.ServiceName)
				}
				if len(s.Spec.VolumeClaimTemplates) != 1 || s.Spec.VolumeClaimTemplates[0].Name != "state" {
					t.Errorf("volumeClaimTemplates %+v, want one named state", s.Spec.VolumeClaimTemplates)
				}
				pod, selector = s.Spec.Template, s.Spec.Selector
			}
			sel, err := metav1.LabelSelectorAsSelector(selector)
			if err != nil || !sel.Matches(labelSet(pod.Labels)) {
				t.Errorf("selector %v (%v) does not match the pod's labels %v", selector, err, pod.Labels)
			}
			for _, svc := range r.services {
				if !labelSet(pod.Labels).matchesAll(svc.Spec.Selector) {
					t.Errorf("Service %s selects %v, not the pod (%v)", svc.Name, svc.Spec.Selector, pod.Labels)
				}
			}
			for _, sm := range r.serviceMonitors {
				ssel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
				if err != nil || !slices.ContainsFunc(r.services, func(svc *corev1.Service) bool {
					return ssel.Matches(labelSet(svc.Labels)) && slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
						return p.Name == sm.Spec.Endpoints[0].Port
					})
				}) {
					t.Errorf("ServiceMonitor %s selects no Service with a port %q", sm.Name, sm.Spec.Endpoints[0].Port)
				}
				if sm.Spec.Endpoints[0].Path != "/metrics" {
					t.Errorf("ServiceMonitor path %q", sm.Spec.Endpoints[0].Path)
				}
			}
			files := checkPod(t, r, pod.Spec, tc.cluster)
			checkConfig(t, r, pod.Spec, files, tc.cluster)
		})
	}
}

// labelSet is a pod's or service's labels, as the selectors see them.
type labelSet map[string]string

func (l labelSet) Has(k string) bool              { _, ok := l[k]; return ok }
func (l labelSet) Get(k string) string            { return l[k] }
func (l labelSet) Lookup(k string) (string, bool) { v, ok := l[k]; return v, ok }
func (l labelSet) matchesAll(sel map[string]string) bool {
	for k, v := range sel {
		if l[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

// checkObjects: names and labels are ones the API server accepts.
func checkObjects(t *testing.T, r *rendered) {
	t.Helper()
	for _, o := range r.objects {
		for _, msg := range validation.IsDNS1123Subdomain(o.Name) {
			t.Errorf("name %q: %s", o.Name, msg)
		}
		for k, v := range o.Labels {
			for _, msg := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				t.Errorf("%s label %s=%q: %s", o.Name, k, v, msg)
			}
		}
	}
	for _, s := range r.services {
		for _, msg := range validation.IsDNS1035Label(s.Name) {
			t.Errorf("Service name %q: %s", s.Name, msg)
		}
	}
}

// checkPod checks the pod against the image and returns the files its config volume
// holds, by name: the ConfigMap's and the secrets'.
func checkPod(t *testing.T, r *rendered, spec corev1.PodSpec, cluster bool) map[string]string {
	t.Helper()
	sc := spec.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != image.UID || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.FSGroup == nil || *sc.FSGroup != image.GID {
		t.Errorf("pod securityContext %+v: want non-root %d, fsGroup %d (the image's user)", sc, image.UID, image.GID)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	if !slices.Contains(c.Args, image.ConfigPath) || c.Args[0] != "run" {
		t.Errorf("args %v: want run -c %s", c.Args, image.ConfigPath)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != image.HTTPPort {
		t.Errorf("container ports %v: want http on %d", ports, image.HTTPPort)
	}
	for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || ports[probe.HTTPGet.Port.String()] == 0 {
			t.Errorf("probe %+v: want GET %s on a named container port", probe, path)
		}
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	var claims []string
	for _, s := range r.statefulSets {
		for _, pvc := range s.Spec.VolumeClaimTemplates {
			claims = append(claims, pvc.Name)
		}
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok && !slices.Contains(claims, m.Name) {
			t.Errorf("volumeMount %s: no such volume or claim", m.Name)
		}
		mounts[m.MountPath] = m.Name
	}
	if mounts[filepath.Dir(image.ConfigPath)] != "config" || mounts["/tmp"] == "" {
		t.Errorf("mounts %v: want the config at %s and a writable /tmp (the root file system is read-only)", mounts, filepath.Dir(image.ConfigPath))
	}
	if (mounts[image.StateDir] == "state") == cluster {
		t.Errorf("cluster %v: mounts %v; the state volume belongs at %s for one process only", cluster, mounts, image.StateDir)
	}

	// The files of the projected config volume, as the kubelet lays them out.
	files := map[string]string{}
	cfgVol := volumes["config"]
	if cfgVol.Projected == nil {
		t.Fatalf("config volume %+v: want a projected volume of the ConfigMap and the Secret", cfgVol)
	}
	for _, src := range cfgVol.Projected.Sources {
		switch {
		case src.ConfigMap != nil:
			cm := find(r.configMaps, src.ConfigMap.Name, func(o *corev1.ConfigMap) string { return o.Name })
			if cm == nil {
				t.Fatalf("config volume names ConfigMap %s, which is not rendered", src.ConfigMap.Name)
			}
			for k, v := range cm.Data {
				files[k] = v
			}
		case src.Secret != nil:
			s := find(r.secrets, src.Secret.Name, func(o *corev1.Secret) string { return o.Name })
			if s == nil {
				t.Fatalf("config volume names Secret %s, which is not rendered", src.Secret.Name)
			}
			for k, v := range s.StringData {
				files[k] = v
			}
		}
	}
	return files
}

func find[T any](list []*T, name string, nameOf func(*T) string) *T {
	for _, o := range list {
		if nameOf(o) == name {
			return o
		}
	}
	return nil
}

// checkConfig lays out the pod's config volume in a directory and has driftmon's own
// config package load it with the pod's environment, as `driftmon check` would.
func checkConfig(t *testing.T, r *rendered, spec corev1.PodSpec, files map[string]string, cluster bool) {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{}
	for _, e := range spec.Containers[0].Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s := find(r.secrets, ref.Name, func(o *corev1.Secret) string { return o.Name })
			v, ok := "", false
			if s != nil {
				v, ok = s.StringData[ref.Key]
			}
			if !ok && (ref.Optional == nil || !*ref.Optional) {
				t.Errorf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			if ok {
				env[e.Name] = v
			}
		}
	}
	cfgYAML, ok := files[filepath.Base(image.ConfigPath)]
	if !ok {
		t.Fatalf("the config volume has no %s", filepath.Base(image.ConfigPath))
	}
	cfg, err := config.Parse([]byte(cfgYAML), config.ParseOptions{Dir: dir, LookupEnv: func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}})
	if err != nil {
		t.Fatalf("the rendered config is not valid:\n%v\n%s", err, cfgYAML)
	}
	if cluster {
		if cfg.Cluster == nil || cfg.Cluster.PartialsTopic == "" || cfg.State.Path != "" {
			t.Errorf("cluster config: cluster %+v, state.path %q", cfg.Cluster, cfg.State.Path)
		}
	} else if cfg.Cluster != nil || filepath.Dir(cfg.State.Path) != image.StateDir {
		t.Errorf("one process: cluster %+v, state.path %q; want the state file in %s", cfg.Cluster, cfg.State.Path, image.StateDir)
	}
}

// TestChartValuesReachTheManifests: the values that matter end where they should.
func TestChartValuesReachTheManifests(t *testing.T) {
	out, err := render(t, singleValues)
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeAll(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.secrets) != 1 || r.secrets[0].StringData["slack-token"] != "xoxb-1-2-abc" {
		t.Errorf("secrets: %+v", r.secrets)
	}
	c := r.statefulSets[0].Spec.Template.Spec.Containers[0]
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "DRIFTMON_API_TOKEN" })
	if i < 0 || c.Env[i].ValueFrom.SecretKeyRef.Key != "api-token" {
		t.Errorf("DRIFTMON_API_TOKEN: %+v", c.Env)
	}
	if len(r.serviceMonitors) != 1 || r.serviceMonitors[0].Labels["release"] != "kube-prometheus" {
		t.Errorf("serviceMonitors: %+v", r.serviceMonitors)
	}

	out, err = render(t, clusterValues)
	if err != nil {
		t.Fatal(err)
	}
	cm := out["driftmon/templates/configmap.yaml"]
	for _, want := range []string{"partials_topic: driftmon-credit-partials", "replication_factor: 3", "session_timeout: 15s"} {
		if !strings.Contains(cm, want) {
			t.Errorf("cluster ConfigMap lacks %q:\n%s", want, cm)
		}
	}
	if strings.Contains(cm, "state:") {
		t.Errorf("cluster ConfigMap has a state section:\n%s", cm)
	}
	// IRSA (AWS MSK IAM) and a projected token for kafka.sasl.token_file.
	r, err = decodeAll(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.serviceAccounts) != 1 || r.serviceAccounts[0].Annotations["eks.amazonaws.com/role-arn"] != "arn:aws:iam::123456789012:role/driftmon" {
		t.Errorf("service account annotations: %+v", r.serviceAccounts)
	}
	pod := r.deployments[0].Spec.Template.Spec
	vi := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "kafka-token" })
	mi := slices.IndexFunc(pod.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "kafka-token" })
	if vi < 0 || mi < 0 {
		t.Fatalf("no kafka-token volume or mount: %+v, %+v", pod.Volumes, pod.Containers[0].VolumeMounts)
	}
	if v, m := pod.Volumes[vi], pod.Containers[0].VolumeMounts[mi]; v.Projected == nil || v.Projected.Sources[0].ServiceAccountToken.Audience != "kafka" || m.MountPath != "/var/run/secrets/kafka" {
		t.Errorf("extra volume %+v, mount %+v", v, m)
	}
}

// TestChartRefusesStatePathInACluster: a state.path in cluster mode, which driftmon
// refuses, fails at helm install with the reason.
func TestChartRefusesStatePathInACluster(t *testing.T) {
	_, err := render(t, clusterValues+"\n"+`config: {state: {path: /var/lib/driftmon/x.db}}`)
	if err == nil || !strings.Contains(err.Error(), "leave it out with cluster.enabled") {
		t.Errorf("render: %v", err)
	}
}

// TestDecodeIsStrict: the checks above can fail: an unknown or misplaced field, or a
// kind the test does not know, is an error.
func TestDecodeIsStrict(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {replica: 1}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{name: http, port: 8080, targetport: http}]}\n",
		"apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {endpoints: [{port: http, scrapeInterval: 30s}]}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n",
	} {
		if _, err := decodeAll(map[string]string{"x.yaml": doc}); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
}

// TestChartLints: helm lint's rules (Chart.yaml, values, templates) pass for both modes.
func TestChartLints(t *testing.T) {
	for _, values := range []string{singleValues, clusterValues} {
		var vals map[string]any
		if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
			t.Fatal(err)
		}
		res := lint.RunAll(chartDir, vals, "ml")
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("helm lint: %s", m)
			}
		}
	}
}
