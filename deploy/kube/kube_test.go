package kube

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/vaurien-go/vaurien/pkg/config"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
	"github.com/vaurien-go/vaurien/pkg/vaurientest"
)

const chartDir = "../helm/vaurien"

// valueSets are the chart's values files a user starts from: the defaults
// and the two patterns the chart's README shows.
var valueSets = []string{"", "examples/shared.yaml", "examples/sidecar.yaml"}

// strict decodes YAML into client-go's typed objects, failing on any field
// the type does not have.
var strict = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

// serviceMonitorFields are the ServiceMonitor fields (a Prometheus
// Operator CRD, not in client-go's scheme) that the chart may write.
var serviceMonitorFields = map[string][]string{
	"":                          {"apiVersion", "kind", "metadata", "spec"},
	"metadata":                  {"name", "namespace", "labels", "annotations"},
	"spec":                      {"selector", "endpoints", "namespaceSelector", "jobLabel"},
	"spec.selector":             {"matchLabels", "matchExpressions"},
	"spec.endpoints[]":          {"port", "path", "interval", "scrapeTimeout", "scheme", "bearerTokenSecret", "relabelings", "metricRelabelings"},
	"spec.selector.matchLabels": nil, // free-form
	"metadata.labels":           nil,
}

func checkFields(t *testing.T, where string, v any, path string) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		allowed, known := serviceMonitorFields[path]
		for k, sub := range v {
			if known && allowed != nil && !slices.Contains(allowed, k) {
				t.Errorf("%s: ServiceMonitor field %s.%s is not one the CRD has", where, path, k)
			}
			next := k
			if path != "" {
				next = path + "." + k
			}
			if known && allowed == nil {
				continue
			}
			checkFields(t, where, sub, next)
		}
	case []any:
		for _, e := range v {
			checkFields(t, where, e, path+"[]")
		}
	}
}

// decodeAll decodes every document of a manifest stream strictly.
func decodeAll(t *testing.T, where string, data []byte) []runtime.Object {
	t.Helper()
	var out []runtime.Object
	r := utilyaml.NewYAMLReader(bufioReader(data))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var meta struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if meta.Kind == "ServiceMonitor" {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &u.Object); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			if meta.APIVersion != "monitoring.coreos.com/v1" {
				t.Errorf("%s: ServiceMonitor apiVersion %q", where, meta.APIVersion)
			}
			checkFields(t, where, u.Object, "")
			out = append(out, u)
			continue
		}
		obj, _, err := strict.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: strict decoding of a %s: %v\n%s", where, meta.Kind, err, doc)
		}
		out = append(out, obj)
	}
	return out
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for line := range strings.SplitSeq(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}

// render is helm template of the chart with a values file ("" for the
// defaults), after helm lint passed over the same values.
func render(t *testing.T, valuesFile string) []runtime.Object {
	t.Helper()
	vals := map[string]any{}
	if valuesFile != "" {
		v, err := common.ReadValuesFile(filepath.Join(chartDir, valuesFile))
		if err != nil {
			t.Fatal(err)
		}
		vals = v
	}
	lint := action.NewLint()
	lint.Strict = true
	res := lint.Run([]string{chartDir}, vals)
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		}
	}
	if len(res.Errors) > 0 || res.TotalChartsLinted != 1 {
		t.Fatalf("helm lint: %d charts linted, errors %v", res.TotalChartsLinted, res.Errors)
	}

	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	rv, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: "chaos", Namespace: "staging", IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		if strings.HasSuffix(n, ".yaml") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []runtime.Object
	for _, n := range names {
		out = append(out, decodeAll(t, n, []byte(files[n]))...)
	}
	return out
}

// checkObjects checks what an operator relies on in a set of objects: the
// config validates, the probes hit what vaurien serves, the pod runs
// locked down, and the admin API is reachable through a headless Service.
func checkObjects(t *testing.T, objs []runtime.Object, wantServiceMonitor bool) {
	t.Helper()
	var cms []*corev1.ConfigMap
	var deps []*appsv1.Deployment
	var svcs []*corev1.Service
	monitors := 0
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.ConfigMap:
			cms = append(cms, o)
		case *appsv1.Deployment:
			deps = append(deps, o)
		case *corev1.Service:
			svcs = append(svcs, o)
		case *unstructured.Unstructured:
			monitors++
		default:
			t.Errorf("unexpected object %T", o)
		}
	}
	if len(cms) != 1 || len(deps) != 1 {
		t.Fatalf("%d ConfigMaps and %d Deployments, want one of each", len(cms), len(deps))
	}
	if got := monitors > 0; got != wantServiceMonitor {
		t.Errorf("ServiceMonitor rendered = %v, want %v", got, wantServiceMonitor)
	}

	// The ConfigMap's vaurien.hcl passes vaurien validate (config.Load).
	path := filepath.Join(t.TempDir(), "vaurien.hcl")
	if err := os.WriteFile(path, []byte(cms[0].Data["vaurien.hcl"]), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(path)
	if err != nil {
		t.Fatalf("the ConfigMap's vaurien.hcl does not validate:\n%v\n%s", err, cms[0].Data["vaurien.hcl"])
	}
	_, adminPort, _ := net.SplitHostPort(f.Admin.Listen)

	d := deps[0]
	spec := d.Spec.Template.Spec
	if v := spec.Volumes; len(v) == 0 || v[0].ConfigMap == nil || v[0].ConfigMap.Name != cms[0].Name {
		t.Errorf("the Deployment does not mount ConfigMap %s", cms[0].Name)
	}
	i := slices.IndexFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == "vaurien" })
	if i < 0 {
		t.Fatal("no container named vaurien")
	}
	c := spec.Containers[i]
	portOf := func(name string) string {
		for _, p := range c.Ports {
			if p.Name == name {
				return fmt.Sprint(p.ContainerPort)
			}
		}
		return ""
	}
	probes := map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe}
	for want, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no HTTP probe for %s", want)
			continue
		}
		if p.HTTPGet.Path != want {
			t.Errorf("probe path %q, want %q", p.HTTPGet.Path, want)
		}
		if got := portOf(p.HTTPGet.Port.String()); got != adminPort {
			t.Errorf("probe %s on port %q (%s), but the admin API listens on %s", want, p.HTTPGet.Port.String(), got, f.Admin.Listen)
		}
		assertServes(t, p.HTTPGet.Path)
	}
	for _, r := range f.Routes {
		host, port, _ := net.SplitHostPort(r.Listen)
		if host == "127.0.0.1" {
			continue // pod-local: the sidecar pattern
		}
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return fmt.Sprint(p.ContainerPort) == port }) {
			t.Errorf("route %s listens on %s, which the container does not declare", r.Name, r.Listen)
		}
	}
	if len(c.Args) < 3 || c.Args[2] != "/etc/vaurien/vaurien.hcl" || c.VolumeMounts[0].MountPath != "/etc/vaurien" {
		t.Errorf("vaurien runs %v with the ConfigMap at %s", c.Args, c.VolumeMounts[0].MountPath)
	}
	sc, psc := c.SecurityContext, spec.SecurityContext
	if sc == nil || psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("vaurien's container is not locked down: pod %+v, container %+v", psc, sc)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("vaurien's container has no memory request or limit: %+v", c.Resources)
	}
	if a := d.Spec.Template.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != adminPort || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v, want the admin port %s and /metrics", a, adminPort)
	}
	headless := slices.IndexFunc(svcs, func(s *corev1.Service) bool {
		return s.Spec.ClusterIP == corev1.ClusterIPNone && len(s.Spec.Ports) == 1 && portOf(s.Spec.Ports[0].TargetPort.String()) == adminPort
	})
	if headless < 0 {
		t.Error("no headless Service for the admin port")
	}
	for _, s := range svcs {
		for k, v := range s.Spec.Selector {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("Service %s selects %s=%s, which the pods do not carry", s.Name, k, v)
			}
		}
	}
}

// assertServes checks that a running vaurien answers path with 200.
func assertServes(t *testing.T, path string) {
	t.Helper()
	p := vaurientest.Start(t, `route "r" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:1"
}`)
	resp, err := http.Get(p.Client.Addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("vaurien answers %s with %d, want 200", path, resp.StatusCode)
	}
}

func TestHelmChart(t *testing.T) {
	for _, vf := range valueSets {
		t.Run(cmpOr(vf, "defaults"), func(t *testing.T) {
			checkObjects(t, render(t, vf), vf == "examples/shared.yaml")
		})
	}
}

func TestPlainManifests(t *testing.T) {
	for _, name := range []string{"vaurien.yaml", "sidecar.yaml"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("../kubernetes", name))
			if err != nil {
				t.Fatal(err)
			}
			objs := decodeAll(t, name, data)
			checkObjects(t, objs, false)
		})
	}
}

// TestStrictDecodingRejectsUnknownFields proves the check above can fail.
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	doc := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  clusterIp: None\n")
	if _, _, err := strict.Decode(doc, nil, nil); err == nil || !strings.Contains(err.Error(), "clusterIp") {
		t.Fatalf("strict decoding of a misspelt field = %v, want an error naming clusterIp", err)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
