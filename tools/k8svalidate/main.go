// Command k8svalidate checks Kubernetes manifests offline, the way an API server would
// refuse them, plus the cross-references a chart most often gets wrong.
//
//	k8svalidate PATH...                      validate manifests (files or directories)
//	k8svalidate values-doc VALUES [README]   check `## @param` docs of a Helm values.yaml
//
// Each PATH is one bundle: a rendered chart (one file) or a directory of manifests (all its
// *.yaml files together). Every YAML document in it is checked:
//
//   - built-in kinds are decoded STRICTLY into the k8s.io/api types (unknown or duplicate
//     fields, wrong types, unparsable quantities all fail), then given a few of the API
//     server's own checks (names, labels, selectors, ports, env names);
//   - custom resources (Strimzi, CloudNativePG, Prometheus Operator) are checked against the
//     schema of the CRD version they name in crds/ (KafkaTopic fields and types; for the
//     others, spec is an object), metadata strictly as ObjectMeta;
//   - any other apiVersion/kind is an error;
//   - across the bundle: Service, PodDisruptionBudget and NetworkPolicy selectors must match a
//     pod template, HPA and Ingress targets must exist, ServiceMonitor selectors and ports must
//     match a Service, references to ConfigMap/Secret keys defined in the bundle must exist.
//
// It prints one line per problem (file, document, source template, object, reason) and exits 1
// when there is any.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// doc is one YAML document of a bundle.
type doc struct {
	file   string
	index  int    // 1-based position in its file
	source string // the template it came from (`# Source:` line of `helm template`)
	raw    []byte

	apiVersion, kind, name, namespace string
	obj                               any // typed object (built-in) or map (custom resource)
}

func (d *doc) where() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: doc %d", d.file, d.index)
	if d.source != "" {
		fmt.Fprintf(&b, " [%s]", d.source)
	}
	if d.kind != "" {
		fmt.Fprintf(&b, " %s %s", d.apiVersion, d.kind)
		if d.name != "" {
			fmt.Fprintf(&b, "/%s", d.name)
		}
	}
	return b.String()
}

// report collects problems.
type report struct{ problems []string }

func (r *report) add(d *doc, format string, args ...any) {
	r.problems = append(r.problems, d.where()+": "+fmt.Sprintf(format, args...))
}

func (r *report) addPlain(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "values-doc" {
		os.Exit(valuesDocMain(os.Args[2:]))
	}
	args := os.Args[1:]
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: k8svalidate PATH...  |  k8svalidate values-doc VALUES.yaml [README.md] [-write]")
		os.Exit(2)
	}
	rep := &report{}
	total := 0
	for _, path := range args {
		docs, err := loadBundle(path)
		if err != nil {
			rep.addPlain("%s: %v", path, err)
			continue
		}
		if len(docs) == 0 {
			rep.addPlain("%s: no Kubernetes objects found", path)
			continue
		}
		total += len(docs)
		for _, d := range docs {
			validateDoc(d, rep)
		}
		checkBundle(docs, rep)
	}
	for _, p := range rep.problems {
		fmt.Println(p)
	}
	if len(rep.problems) > 0 {
		fmt.Printf("k8svalidate: %d problem(s) in %d object(s)\n", len(rep.problems), total)
		os.Exit(1)
	}
	fmt.Printf("k8svalidate: %d object(s) in %d bundle(s) OK\n", total, len(args))
}

// loadBundle reads a file, or every *.yaml / *.yml file of a directory (not recursive).
func loadBundle(path string) ([]*doc, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if info.IsDir() {
		files = nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
	}
	var docs []*doc
	for _, f := range files {
		ds, err := splitFile(f)
		if err != nil {
			return nil, err
		}
		docs = append(docs, ds...)
	}
	return docs, nil
}

// splitFile splits a multi-document YAML file, dropping documents that hold only comments.
func splitFile(file string) ([]*doc, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []*doc
	for i := 1; ; i++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("doc %d: %w", i, err)
		}
		source, empty := scanComments(raw)
		if empty {
			continue
		}
		docs = append(docs, &doc{file: file, index: i, source: source, raw: raw})
	}
	return docs, nil
}

// scanComments returns the `# Source:` of a rendered template and whether the document has
// no content besides comments and blank lines.
func scanComments(raw []byte) (source string, empty bool) {
	empty = true
	for _, line := range strings.Split(string(raw), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "# Source: "):
			source = strings.TrimPrefix(t, "# Source: ")
		case t == "", t == "---", strings.HasPrefix(t, "#"):
		default:
			empty = false
		}
	}
	if !empty {
		var v any
		if err := yaml.Unmarshal(raw, &v); err == nil && v == nil {
			empty = true
		}
	}
	return source, empty
}

// validateDoc decodes one document and runs the per-object checks.
func validateDoc(d *doc, rep *report) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(d.raw, &head); err != nil {
		rep.add(d, "not a Kubernetes object: %v", err)
		return
	}
	d.apiVersion, d.kind, d.name, d.namespace = head.APIVersion, head.Kind, head.Metadata.Name, head.Metadata.Namespace
	if d.apiVersion == "" || d.kind == "" {
		rep.add(d, "apiVersion and kind are required")
		return
	}
	if crd := lookupCRD(d.apiVersion, d.kind); crd != nil {
		validateCustom(d, crd, rep)
		return
	}
	if known, ok := crdVersions(d.apiVersion, d.kind); ok {
		rep.add(d, "apiVersion %s is not served by the vendored CRD of %s (served: %s)", d.apiVersion, d.kind, strings.Join(known, ", "))
		return
	}
	validateBuiltin(d, rep)
}
