package main

import (
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	serializerjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// builtinCodec decodes the built-in kinds of the current, served API versions only: a
// manifest still using e.g. autoscaling/v2beta2 or policy/v1beta1 fails as unknown.
var builtinCodec = func() *serializerjson.Serializer {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, networkingv1.AddToScheme,
		policyv1.AddToScheme, autoscalingv2.AddToScheme, rbacv1.AddToScheme, schedulingv1.AddToScheme,
		storagev1.AddToScheme, discoveryv1.AddToScheme, coordinationv1.AddToScheme,
		admissionregistrationv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return serializerjson.NewSerializerWithOptions(serializerjson.DefaultMetaFactory, scheme, scheme,
		serializerjson.SerializerOptions{Yaml: true, Strict: true})
}()

func validateBuiltin(d *doc, rep *report) {
	obj, _, err := builtinCodec.Decode(d.raw, nil, nil)
	switch {
	case err == nil:
	case runtime.IsNotRegisteredError(err):
		rep.add(d, "unknown apiVersion/kind: not a served built-in type nor a vendored CRD (%v)", err)
		return
	case runtime.IsStrictDecodingError(err):
		// The object decoded; every strict error is a field the API server would refuse.
		for _, e := range err.(interface{ Errors() []error }).Errors() {
			rep.add(d, "%v", e)
		}
	default:
		rep.add(d, "does not decode into %s %s: %v", d.apiVersion, d.kind, err)
		return
	}
	if obj == nil {
		return
	}
	d.obj = obj
	if m, ok := obj.(metav1.Object); ok {
		checkObjectMeta(d, rep, m, nameRuleFor(obj))
	}
	checkTyped(d, rep, obj)
}

type nameRule int

const (
	subdomain   nameRule = iota // most kinds
	label1123                   // DNS-1123 label (Namespace)
	label1035                   // DNS-1035 label (Service)
	pathSegment                 // RBAC and a few others: anything but "/" "%" "." ".."
)

func nameRuleFor(obj runtime.Object) nameRule {
	switch obj.(type) {
	case *corev1.Namespace:
		return label1123
	case *corev1.Service:
		return label1035
	case *rbacv1.Role, *rbacv1.ClusterRole, *rbacv1.RoleBinding, *rbacv1.ClusterRoleBinding:
		return pathSegment
	}
	return subdomain
}

func checkObjectMeta(d *doc, rep *report, m metav1.Object, rule nameRule) {
	name := m.GetName()
	if name == "" && m.GetGenerateName() == "" {
		rep.add(d, "metadata.name is required")
	} else if name != "" {
		var errs []string
		switch rule {
		case subdomain:
			errs = validation.IsDNS1123Subdomain(name)
		case label1123:
			errs = validation.IsDNS1123Label(name)
		case label1035:
			errs = validation.IsDNS1035Label(name)
		case pathSegment:
			if name == "." || name == ".." || strings.ContainsAny(name, "/%") {
				errs = []string{"may not be '.', '..' or contain '/' or '%'"}
			}
		}
		for _, e := range errs {
			rep.add(d, "metadata.name %q: %s", name, e)
		}
	}
	if ns := m.GetNamespace(); ns != "" {
		for _, e := range validation.IsDNS1123Label(ns) {
			rep.add(d, "metadata.namespace %q: %s", ns, e)
		}
	}
	checkLabels(d, rep, "metadata.labels", m.GetLabels())
	for k := range m.GetAnnotations() {
		for _, e := range validation.IsQualifiedName(strings.ToLower(k)) {
			rep.add(d, "metadata.annotations key %q: %s", k, e)
		}
	}
}

func checkLabels(d *doc, rep *report, field string, labels map[string]string) {
	for k, v := range labels {
		for _, e := range validation.IsQualifiedName(k) {
			rep.add(d, "%s key %q: %s", field, k, e)
		}
		for _, e := range validation.IsValidLabelValue(v) {
			rep.add(d, "%s[%s] value %q: %s", field, k, v, e)
		}
	}
}

func checkSelector(d *doc, rep *report, field string, sel *metav1.LabelSelector, required bool) {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		if required {
			rep.add(d, "%s must not be empty", field)
		}
		return
	}
	checkLabels(d, rep, field+".matchLabels", sel.MatchLabels)
	if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		rep.add(d, "%s: %v", field, err)
	}
}

// checkTyped runs a subset of the API server's validation on the kinds charts render.
func checkTyped(d *doc, rep *report, obj runtime.Object) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		checkWorkloadSelector(d, rep, o.Spec.Selector, &o.Spec.Template)
		checkPodSpec(d, rep, "spec.template.spec", &o.Spec.Template.Spec, false)
	case *appsv1.StatefulSet:
		checkWorkloadSelector(d, rep, o.Spec.Selector, &o.Spec.Template)
		checkPodSpec(d, rep, "spec.template.spec", &o.Spec.Template.Spec, false)
	case *appsv1.DaemonSet:
		checkWorkloadSelector(d, rep, o.Spec.Selector, &o.Spec.Template)
		checkPodSpec(d, rep, "spec.template.spec", &o.Spec.Template.Spec, false)
	case *batchv1.Job:
		checkLabels(d, rep, "spec.template.metadata.labels", o.Spec.Template.Labels)
		checkPodSpec(d, rep, "spec.template.spec", &o.Spec.Template.Spec, true)
	case *batchv1.CronJob:
		checkPodSpec(d, rep, "spec.jobTemplate.spec.template.spec", &o.Spec.JobTemplate.Spec.Template.Spec, true)
	case *corev1.Pod:
		checkPodSpec(d, rep, "spec", &o.Spec, false)
	case *corev1.Service:
		checkService(d, rep, o)
	case *corev1.ConfigMap:
		for k := range o.Data {
			checkConfigKey(d, rep, "data", k)
		}
		for k := range o.BinaryData {
			checkConfigKey(d, rep, "binaryData", k)
		}
	case *corev1.Secret:
		for k := range o.Data {
			checkConfigKey(d, rep, "data", k)
		}
		for k := range o.StringData {
			checkConfigKey(d, rep, "stringData", k)
		}
	case *policyv1.PodDisruptionBudget:
		checkSelector(d, rep, "spec.selector", o.Spec.Selector, true)
		if o.Spec.MinAvailable != nil && o.Spec.MaxUnavailable != nil {
			rep.add(d, "spec: minAvailable and maxUnavailable are mutually exclusive")
		}
	case *autoscalingv2.HorizontalPodAutoscaler:
		if o.Spec.MaxReplicas < 1 {
			rep.add(d, "spec.maxReplicas must be at least 1")
		}
		if o.Spec.MinReplicas != nil && *o.Spec.MinReplicas > o.Spec.MaxReplicas {
			rep.add(d, "spec.minReplicas (%d) is greater than spec.maxReplicas (%d)", *o.Spec.MinReplicas, o.Spec.MaxReplicas)
		}
		if o.Spec.ScaleTargetRef.Kind == "" || o.Spec.ScaleTargetRef.Name == "" {
			rep.add(d, "spec.scaleTargetRef needs kind and name")
		}
	case *networkingv1.NetworkPolicy:
		checkSelector(d, rep, "spec.podSelector", &o.Spec.PodSelector, false)
		for _, t := range o.Spec.PolicyTypes {
			if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
				rep.add(d, "spec.policyTypes: unknown type %q", t)
			}
		}
	case *networkingv1.Ingress:
		for i, r := range o.Spec.Rules {
			if r.Host != "" {
				for _, e := range validation.IsDNS1123Subdomain(strings.TrimPrefix(r.Host, "*.")) {
					rep.add(d, "spec.rules[%d].host %q: %s", i, r.Host, e)
				}
			}
			if r.HTTP == nil {
				continue
			}
			for j, p := range r.HTTP.Paths {
				if p.PathType == nil {
					rep.add(d, "spec.rules[%d].http.paths[%d].pathType is required", i, j)
				}
				if !strings.HasPrefix(p.Path, "/") {
					rep.add(d, "spec.rules[%d].http.paths[%d].path %q must be absolute", i, j, p.Path)
				}
			}
		}
	}
}

func checkConfigKey(d *doc, rep *report, field, key string) {
	for _, e := range validation.IsConfigMapKey(key) {
		rep.add(d, "%s key %q: %s", field, key, e)
	}
}

func checkWorkloadSelector(d *doc, rep *report, sel *metav1.LabelSelector, tpl *corev1.PodTemplateSpec) {
	checkSelector(d, rep, "spec.selector", sel, true)
	checkLabels(d, rep, "spec.template.metadata.labels", tpl.Labels)
	if sel == nil {
		return
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err == nil && !s.Matches(labels.Set(tpl.Labels)) {
		rep.add(d, "spec.selector does not match spec.template.metadata.labels")
	}
}

func checkPodSpec(d *doc, rep *report, field string, spec *corev1.PodSpec, job bool) {
	if job && spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		rep.add(d, "%s.restartPolicy must be Never or OnFailure for a Job, not %q", field, spec.RestartPolicy)
	}
	if len(spec.Containers) == 0 {
		rep.add(d, "%s.containers must not be empty", field)
	}
	volumes := map[string]bool{}
	for i, v := range spec.Volumes {
		for _, e := range validation.IsDNS1123Label(v.Name) {
			rep.add(d, "%s.volumes[%d].name %q: %s", field, i, v.Name, e)
		}
		if volumes[v.Name] {
			rep.add(d, "%s.volumes[%d].name %q is duplicated", field, i, v.Name)
		}
		volumes[v.Name] = true
	}
	names := map[string]bool{}
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for i := range all {
		c := &all[i]
		cf := fmt.Sprintf("%s.containers[%s]", field, c.Name)
		for _, e := range validation.IsDNS1123Label(c.Name) {
			rep.add(d, "%s.name: %s", cf, e)
		}
		if names[c.Name] {
			rep.add(d, "%s: container name is duplicated", cf)
		}
		names[c.Name] = true
		if c.Image == "" {
			rep.add(d, "%s.image is required", cf)
		}
		checkContainer(d, rep, cf, c, volumes)
	}
}

func checkContainer(d *doc, rep *report, cf string, c *corev1.Container, volumes map[string]bool) {
	ports := map[string]bool{}
	for i, p := range c.Ports {
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			rep.add(d, "%s.ports[%d].containerPort %d out of range", cf, i, p.ContainerPort)
		}
		if p.Name != "" {
			for _, e := range validation.IsValidPortName(p.Name) {
				rep.add(d, "%s.ports[%d].name %q: %s", cf, i, p.Name, e)
			}
			if ports[p.Name] {
				rep.add(d, "%s.ports[%d].name %q is duplicated", cf, i, p.Name)
			}
			ports[p.Name] = true
		}
	}
	env := map[string]bool{}
	for i, e := range c.Env {
		for _, msg := range validation.IsEnvVarName(e.Name) {
			rep.add(d, "%s.env[%d].name %q: %s", cf, i, e.Name, msg)
		}
		if env[e.Name] {
			rep.add(d, "%s.env[%d].name %q is set twice (the last one silently wins)", cf, i, e.Name)
		}
		env[e.Name] = true
		if e.Value != "" && e.ValueFrom != nil {
			rep.add(d, "%s.env[%d] %q: value and valueFrom are mutually exclusive", cf, i, e.Name)
		}
	}
	for i, m := range c.VolumeMounts {
		if !volumes[m.Name] {
			rep.add(d, "%s.volumeMounts[%d] refers to unknown volume %q", cf, i, m.Name)
		}
	}
	for name, probe := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe} {
		if probe == nil {
			continue
		}
		var port *string
		switch {
		case probe.HTTPGet != nil:
			if probe.HTTPGet.Port.Type == intstr.String {
				s := probe.HTTPGet.Port.StrVal
				port = &s
			}
			if !strings.HasPrefix(probe.HTTPGet.Path, "/") {
				rep.add(d, "%s.%s.httpGet.path %q must be absolute", cf, name, probe.HTTPGet.Path)
			}
		case probe.TCPSocket != nil:
			if probe.TCPSocket.Port.Type == intstr.String {
				s := probe.TCPSocket.Port.StrVal
				port = &s
			}
		case probe.Exec == nil && probe.GRPC == nil:
			rep.add(d, "%s.%s needs a handler", cf, name)
		}
		if port != nil && !ports[*port] {
			rep.add(d, "%s.%s uses port %q, which the container does not declare", cf, name, *port)
		}
	}
	for res, q := range c.Resources.Requests {
		if lim, ok := c.Resources.Limits[res]; ok && q.Cmp(lim) > 0 {
			rep.add(d, "%s.resources: request %s=%s exceeds its limit %s", cf, res, q.String(), lim.String())
		}
	}
}

func checkService(d *doc, rep *report, s *corev1.Service) {
	checkLabels(d, rep, "spec.selector", s.Spec.Selector)
	if len(s.Spec.Ports) == 0 && s.Spec.Type != corev1.ServiceTypeExternalName && s.Spec.ClusterIP != "None" {
		rep.add(d, "spec.ports must not be empty")
	}
	seen := map[string]bool{}
	for i, p := range s.Spec.Ports {
		if len(s.Spec.Ports) > 1 && p.Name == "" {
			rep.add(d, "spec.ports[%d].name is required when a Service has several ports", i)
		}
		if p.Name != "" {
			for _, e := range validation.IsDNS1123Label(p.Name) {
				rep.add(d, "spec.ports[%d].name %q: %s", i, p.Name, e)
			}
			if seen[p.Name] {
				rep.add(d, "spec.ports[%d].name %q is duplicated", i, p.Name)
			}
			seen[p.Name] = true
		}
		if p.Port < 1 || p.Port > 65535 {
			rep.add(d, "spec.ports[%d].port %d out of range", i, p.Port)
		}
	}
}

// gvkOf is the group/kind of a built-in object (for bundle lookups).
func gvkOf(d *doc) schema.GroupKind {
	gv, _ := schema.ParseGroupVersion(d.apiVersion)
	return schema.GroupKind{Group: gv.Group, Kind: d.kind}
}
