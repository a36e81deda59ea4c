package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run validates one bundle written to a temporary file and returns the problems.
func run(t *testing.T, manifest string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bundle.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	docs, err := loadBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	rep := &report{}
	for _, d := range docs {
		validateDoc(d, rep)
	}
	checkBundle(docs, rep)
	return rep.problems
}

const goodApp = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, labels: {app: api}}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: citaflow:1
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /health/ready, port: http}}
          env: [{name: CITAFLOW__HTTP__PORT, value: "8080"}]
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{name: http, port: 80, targetPort: http}]
`

func TestAcceptsAValidBundle(t *testing.T) {
	if problems := run(t, goodApp); len(problems) > 0 {
		t.Fatalf("unexpected problems: %v", problems)
	}
}

func TestRefuses(t *testing.T) {
	cases := []struct {
		name, manifest, want string
	}{
		{"unknown field", strings.Replace(goodApp, "image: citaflow:1", "image: citaflow:1\n          imagePullPolicyy: Always", 1),
			`unknown field "spec.template.spec.containers[0].imagePullPolicyy"`},
		{"wrong type", strings.Replace(goodApp, `value: "8080"`, "value: 8080", 1),
			"cannot unmarshal number into Go struct field EnvVar"},
		{"duplicate key", strings.Replace(goodApp, "metadata: {name: api}", "metadata: {name: api, name: api2}", 1),
			"duplicate"},
		{"selector matching nothing", strings.Replace(goodApp, "selector: {app: api}", "selector: {app: apii}", 1),
			"matches no pod template"},
		{"undeclared probe port", strings.Replace(goodApp, "port: http}}", "port: metrics}}", 1),
			`uses port "metrics"`},
		{"removed API version", "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec: {}\n",
			"unknown apiVersion/kind"},
		{"unknown kind", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\nspec: {}\n",
			"unknown apiVersion/kind"},
		{"CRD unknown field", "apiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata: {name: t, labels: {strimzi.io/cluster: c}}\nspec: {partitions: 3, replica: 3}\n",
			"spec.replica: unknown field"},
		{"CRD wrong type", "apiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata: {name: t, labels: {strimzi.io/cluster: c}}\nspec: {partitions: \"3\"}\n",
			"spec.partitions: must be of type integer"},
		{"CRD version not served", "apiVersion: kafka.strimzi.io/v1beta2\nkind: Kafka\nmetadata: {name: k}\nspec: {}\n",
			"not served by the vendored CRD"},
		{"CRD without spec", "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg}\n",
			"spec is required"},
		{"Kafka without controllers", "apiVersion: kafka.strimzi.io/v1\nkind: Kafka\nmetadata: {name: k}\nspec: {kafka: {listeners: [{name: plain, port: 9092, type: internal, tls: false}]}}\n",
			"KRaft role(s) broker, controller"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			problems := run(t, c.manifest)
			for _, p := range problems {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Fatalf("want a problem containing %q, got %v", c.want, problems)
		})
	}
}

func TestValuesDoc(t *testing.T) {
	dir := t.TempDir()
	values := filepath.Join(dir, "values.yaml")
	text := "## @section S\n## @param a.b The b\n## @param gone Not a value\na:\n  b: 1\n  c: x\n## @param free Free-form\n## @skip free\nfree:\n  any.key: 1\n"
	if err := os.WriteFile(values, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	problems, _, err := checkValuesDoc(values)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(problems, "\n")
	for _, want := range []string{"value a.c has no ## @param", "@param gone documents no value"} {
		if !strings.Contains(joined, want) {
			t.Errorf("want %q in %q", want, joined)
		}
	}
	if len(problems) != 2 {
		t.Errorf("want exactly 2 problems, got %v", problems)
	}
}
