// chart-render renders a Helm chart the way `helm template` does, for testing
// charts/kubefold on machines where helm itself cannot be installed.
//
// It uses what Helm's engine is built on: Go's text/template with the sprig
// function map (minus env/expandenv, which Helm removes), plus Helm's own
// functions include, tpl, required, toYaml, fromYaml, fromYamlArray, toJson,
// fromJson, fromJsonArray and lookup (which, as in `helm template`, finds
// nothing). toToml and .Files are not provided: a chart using them fails to
// render, naming the function. Values are coalesced as Helm does (chart values.yaml, then each
// -f file and --set in order; null deletes a key), turned into JSON types
// (numbers are float64, as in Helm), and validated against values.schema.json
// with gojsonschema, the validator Helm 3 uses. Chart.kubeVersion is checked
// against --kube-version. Templates render with missingkey=zero and
// "<no value>" removed, files starting with "_" are helpers only, and NOTES.txt
// is written to --notes instead of the manifest stream.
//
// usage: chart-render --chart DIR [--release NAME] [--namespace NS]
//
//	[-f values.yaml]... [--set path=value]... [--include-crds]
//	[--kube-version v1.32.0] [--notes FILE] [--validate-only] [--skip-tests]
//
// Documents come out as `helm template` prints them: sorted by Helm's install
// order of kinds (stable within a kind), hooks after the manifests.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/semver"
	"github.com/Masterminds/sprig"
	"github.com/xeipuuv/gojsonschema"
	yamlv2 "gopkg.in/yaml.v2"
	yamlv3 "gopkg.in/yaml.v3"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// Capabilities mirrors .Capabilities as templates see it.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions APIVersions
}

type KubeVersion struct {
	Version, Major, Minor, GitVersion string
}

func (k KubeVersion) String() string { return k.Version }

type APIVersions []string

// Has reports whether a group/version or group/version/Kind is served.
func (a APIVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "chart-render: error: "+format+"\n", args...)
	os.Exit(1)
}

// jsonTypes turns YAML-decoded data into what encoding/json would produce
// (map[string]interface{}, []interface{}, float64, string, bool, nil), as
// Helm's values are.
func jsonTypes(v interface{}) (interface{}, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out interface{}
	err = json.Unmarshal(b, &out)
	return out, err
}

func readYAMLMap(file string) (map[string]interface{}, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var raw interface{}
	if err := yamlv3.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if raw == nil {
		return map[string]interface{}{}, nil
	}
	conv, err := jsonTypes(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	m, ok := conv.(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("%s: the top level is not a map", file)
	}
	return m, nil
}

// coalesce merges src over dst as Helm's coalesceValues does for user
// values: maps merge key by key, anything else replaces, null deletes.
func coalesce(dst, src map[string]interface{}) map[string]interface{} {
	for k, sv := range src {
		if sv == nil {
			delete(dst, k)
			continue
		}
		sm, sIsMap := sv.(map[string]interface{})
		dm, dIsMap := dst[k].(map[string]interface{})
		if sIsMap && dIsMap {
			dst[k] = coalesce(dm, sm)
		} else {
			dst[k] = sv
		}
	}
	return dst
}

// setValue applies one --set path=value (dotted keys; value typed as YAML).
func setValue(values map[string]interface{}, expr string) error {
	eq := strings.IndexByte(expr, '=')
	if eq <= 0 {
		return fmt.Errorf("--set %q: want path=value", expr)
	}
	keys := strings.Split(expr[:eq], ".")
	var v interface{}
	if err := yamlv3.Unmarshal([]byte(expr[eq+1:]), &v); err != nil {
		return fmt.Errorf("--set %q: %v", expr, err)
	}
	v, err := jsonTypes(v)
	if err != nil {
		return err
	}
	m := values
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
	return nil
}

func toYAML(v interface{}) string {
	b, err := yamlv2.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

func fromYAML(s string) map[string]interface{} {
	var raw interface{}
	if err := yamlv3.Unmarshal([]byte(s), &raw); err != nil {
		return map[string]interface{}{"Error": err.Error()}
	}
	conv, err := jsonTypes(raw)
	if err != nil {
		return map[string]interface{}{"Error": err.Error()}
	}
	m, _ := conv.(map[string]interface{})
	if m == nil {
		m = map[string]interface{}{}
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	var raw interface{}
	if err := yamlv3.Unmarshal([]byte(s), &raw); err != nil {
		return []interface{}{err.Error()}
	}
	conv, err := jsonTypes(raw)
	if err != nil {
		return []interface{}{err.Error()}
	}
	a, _ := conv.([]interface{})
	return a
}

func toJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(s string) []interface{} {
	var a []interface{}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

// engine holds the parsed template set and the functions bound to it.
type engine struct {
	t        *template.Template
	includes map[string]int
}

const recursionMaxNums = 1000

// installOrder is Helm's releaseutil.InstallOrder; other kinds come after.
var installOrder = []string{"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap",
	"StorageClass", "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
	"RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService"}

// sep splits a rendered file into documents, as Helm's SplitManifests does.
var sep = regexp.MustCompile("(?:^|\\s*\n)---\\s*")

type doc struct {
	source, text string
	kind         string
	hook         bool
}

func kindRank(kind string) int {
	for i, k := range installOrder {
		if k == kind {
			return i
		}
	}
	return len(installOrder)
}

func (e *engine) funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = toYAML
	f["fromYaml"] = fromYAML
	f["fromYamlArray"] = fromYAMLArray
	f["toJson"] = toJSON
	f["fromJson"] = fromJSON
	f["fromJsonArray"] = fromJSONArray
	f["include"] = func(name string, data interface{}) (string, error) {
		if e.includes[name] > recursionMaxNums {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		e.includes[name]++
		defer func() { e.includes[name]-- }()
		var buf bytes.Buffer
		if err := e.t.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := e.t.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Option("missingkey=zero").Parse(text)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %v", text, err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %v", text, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	f["required"] = func(msg string, val interface{}) (interface{}, error) {
		if val == nil {
			return val, errors.New(msg)
		}
		if s, ok := val.(string); ok && s == "" {
			return val, errors.New(msg)
		}
		return val, nil
	}
	f["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	return f
}

func main() {
	var valueFiles, sets multiFlag
	chartDir := flag.String("chart", "", "the chart's directory")
	release := flag.String("release", "kubefold", "release name")
	namespace := flag.String("namespace", "kubefold-system", "release namespace")
	kubeVersion := flag.String("kube-version", "v1.32.0", "Kubernetes version for .Capabilities and Chart.kubeVersion")
	includeCRDs := flag.Bool("include-crds", false, "also print the chart's crds/")
	notesFile := flag.String("notes", "", "write the rendered NOTES.txt here")
	validateOnly := flag.Bool("validate-only", false, "only coalesce and validate the values")
	skipTests := flag.Bool("skip-tests", false, "leave out the helm test hooks (templates/tests/)")
	flag.Var(&valueFiles, "f", "a values file (repeatable)")
	flag.Var(&sets, "set", "path=value (repeatable)")
	flag.Parse()
	if *chartDir == "" || flag.NArg() != 0 {
		fail("usage: chart-render --chart DIR [-f values.yaml]... [--set k=v]...")
	}

	meta, err := readYAMLMap(filepath.Join(*chartDir, "Chart.yaml"))
	if err != nil {
		fail("Chart.yaml: %v", err)
	}
	chartName, _ := meta["name"].(string)
	if chartName == "" {
		fail("Chart.yaml: name is required")
	}
	if av, _ := meta["apiVersion"].(string); av != "v2" {
		fail("Chart.yaml: apiVersion must be v2, not %q", av)
	}

	// Chart.kubeVersion against the cluster version, as helm install does.
	kv, err := semver.NewVersion(*kubeVersion)
	if err != nil {
		fail("--kube-version %q: %v", *kubeVersion, err)
	}
	if c, ok := meta["kubeVersion"].(string); ok && c != "" {
		constraint, err := semver.NewConstraint(c)
		if err != nil {
			fail("Chart.yaml: kubeVersion %q: %v", c, err)
		}
		if !constraint.Check(kv) {
			fail("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", c, *kubeVersion)
		}
	}

	values, err := readYAMLMap(filepath.Join(*chartDir, "values.yaml"))
	if err != nil {
		fail("%v", err)
	}
	for _, f := range valueFiles {
		user, err := readYAMLMap(f)
		if err != nil {
			fail("%v", err)
		}
		values = coalesce(values, user)
	}
	for _, s := range sets {
		if err := setValue(values, s); err != nil {
			fail("%v", err)
		}
	}

	// values.schema.json, against the coalesced values (as Helm validates).
	if schema, err := os.ReadFile(filepath.Join(*chartDir, "values.schema.json")); err == nil {
		result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewGoLoader(values))
		if err != nil {
			fail("values.schema.json: %v", err)
		}
		if !result.Valid() {
			var b strings.Builder
			fmt.Fprintf(&b, "values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n", chartName)
			for _, e := range result.Errors() {
				fmt.Fprintf(&b, "- %s\n", e)
			}
			fmt.Fprint(os.Stderr, b.String())
			os.Exit(1)
		}
	} else if !os.IsNotExist(err) {
		fail("values.schema.json: %v", err)
	}
	if *validateOnly {
		return
	}

	// .Chart with Helm's field names.
	chart := map[string]interface{}{}
	for k, v := range meta {
		if k == "apiVersion" {
			chart["APIVersion"] = v
			continue
		}
		chart[strings.ToUpper(k[:1])+k[1:]] = v
	}
	caps := Capabilities{
		KubeVersion: KubeVersion{
			Version:    "v" + kv.String(),
			Major:      strconv.FormatUint(kv.Major(), 10),
			Minor:      strconv.FormatUint(kv.Minor(), 10),
			GitVersion: "v" + kv.String(),
		},
		APIVersions: APIVersions{"v1", "apps/v1", "policy/v1", "rbac.authorization.k8s.io/v1",
			"coordination.k8s.io/v1", "apiextensions.k8s.io/v1"},
	}

	e := &engine{includes: map[string]int{}}
	e.t = template.New("gotpl").Option("missingkey=zero").Funcs(e.funcMap())

	// Every file under templates/ joins one set, named chart/templates/...
	var files []string
	root := filepath.Join(*chartDir, "templates")
	err = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		fail("templates/: %v", err)
	}
	sort.Strings(files)
	names := map[string]string{}
	for _, p := range files {
		rel, _ := filepath.Rel(*chartDir, p)
		name := path.Join(chartName, filepath.ToSlash(rel))
		b, err := os.ReadFile(p)
		if err != nil {
			fail("%v", err)
		}
		if _, err := e.t.New(name).Parse(string(b)); err != nil {
			fail("parse error in %q: %v", name, err)
		}
		names[name] = p
	}

	var out strings.Builder
	if *includeCRDs {
		crds, _ := filepath.Glob(filepath.Join(*chartDir, "crds", "*.yaml"))
		sort.Strings(crds)
		for _, c := range crds {
			b, err := os.ReadFile(c)
			if err != nil {
				fail("%v", err)
			}
			fmt.Fprintf(&out, "---\n# Source: %s/crds/%s\n%s", chartName, filepath.Base(c), b)
		}
	}
	var docs []doc
	ordered := make([]string, 0, len(names))
	for n := range names {
		ordered = append(ordered, n)
	}
	sort.Strings(ordered)
	for _, name := range ordered {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") {
			continue
		}
		top := map[string]interface{}{
			"Values": values,
			"Release": map[string]interface{}{
				"Name": *release, "Namespace": *namespace, "IsInstall": true, "IsUpgrade": false,
				"Revision": 1, "Service": "Helm",
			},
			"Chart":        chart,
			"Capabilities": caps,
			"Template":     map[string]interface{}{"Name": name, "BasePath": path.Join(chartName, "templates")},
		}
		var buf bytes.Buffer
		if err := e.t.ExecuteTemplate(&buf, name, top); err != nil {
			fail("%v", err)
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if base == "NOTES.txt" {
			if *notesFile != "" {
				if err := os.WriteFile(*notesFile, []byte(text), 0o644); err != nil {
					fail("%v", err)
				}
			}
			continue
		}
		if *skipTests && strings.HasPrefix(name, path.Join(chartName, "templates", "tests")+"/") {
			continue
		}
		for _, part := range sep.Split(text, -1) {
			if strings.TrimSpace(part) == "" {
				continue
			}
			var head struct {
				Kind     string `yaml:"kind"`
				Metadata struct {
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"metadata"`
			}
			if err := yamlv3.Unmarshal([]byte(part), &head); err != nil {
				fail("%s: the rendered YAML does not parse: %v\n%s", name, err, part)
			}
			if head.Kind == "" {
				fail("%s: a rendered document has no kind:\n%s", name, part)
			}
			_, hook := head.Metadata.Annotations["helm.sh/hook"]
			docs = append(docs, doc{source: name, text: strings.Trim(part, "\n"), kind: head.Kind, hook: hook})
		}
	}
	sort.SliceStable(docs, func(i, j int) bool {
		if docs[i].hook != docs[j].hook {
			return !docs[i].hook
		}
		return kindRank(docs[i].kind) < kindRank(docs[j].kind)
	})
	for _, d := range docs {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", d.source, d.text)
	}
	fmt.Print(out.String())
}
