package main

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// podTemplate is a pod shape some workload of the bundle creates.
type podTemplate struct {
	owner  *doc
	labels labels.Set
	spec   *corev1.PodSpec
}

func (t podTemplate) portNames() map[string]bool {
	names := map[string]bool{}
	for _, c := range t.spec.Containers {
		for _, p := range c.Ports {
			if p.Name != "" {
				names[p.Name] = true
			}
		}
	}
	return names
}

// checkBundle checks references between the objects of one bundle (a rendered chart or a
// directory of manifests). References to objects outside the bundle are not judged, except
// where a selector must select something the bundle itself creates.
func checkBundle(docs []*doc, rep *report) {
	// A document that did not decode would make every reference to it look dangling: report
	// the decoding problem alone.
	for _, d := range docs {
		if d.obj == nil {
			fmt.Printf("%s: did not decode, so the bundle's reference checks are skipped\n", d.where())
			return
		}
	}
	var templates []podTemplate
	services := map[string]*corev1.Service{}
	configMaps := map[string]map[string]bool{}
	secrets := map[string]map[string]bool{}
	workloads := map[string]*doc{} // "Kind/name"
	seen := map[string]*doc{}
	kafkas := map[string]bool{}

	for _, d := range docs {
		if d.obj == nil {
			continue
		}
		id := fmt.Sprintf("%s/%s/%s/%s", gvkOf(d).Group, d.kind, d.namespace, d.name)
		if prev, dup := seen[id]; dup && d.name != "" {
			rep.add(d, "duplicates %s (same kind, namespace and name)", prev.where())
		}
		seen[id] = d
		switch o := d.obj.(type) {
		case *appsv1.Deployment:
			templates = append(templates, podTemplate{d, o.Spec.Template.Labels, &o.Spec.Template.Spec})
			workloads["Deployment/"+o.Name] = d
		case *appsv1.StatefulSet:
			templates = append(templates, podTemplate{d, o.Spec.Template.Labels, &o.Spec.Template.Spec})
			workloads["StatefulSet/"+o.Name] = d
		case *appsv1.DaemonSet:
			templates = append(templates, podTemplate{d, o.Spec.Template.Labels, &o.Spec.Template.Spec})
		case *batchv1.Job:
			templates = append(templates, podTemplate{d, o.Spec.Template.Labels, &o.Spec.Template.Spec})
		case *batchv1.CronJob:
			t := &o.Spec.JobTemplate.Spec.Template
			templates = append(templates, podTemplate{d, t.Labels, &t.Spec})
		case *corev1.Pod:
			templates = append(templates, podTemplate{d, o.Labels, &o.Spec})
		case *corev1.Service:
			services[o.Name] = o
		case *corev1.ConfigMap:
			configMaps[o.Name] = keySet(o.Data, o.BinaryData)
		case *corev1.Secret:
			secrets[o.Name] = keySet(o.StringData, o.Data)
		case map[string]any:
			if d.kind == "Kafka" {
				kafkas[d.name] = true
			}
		}
	}

	matching := func(sel labels.Selector) []podTemplate {
		var out []podTemplate
		for _, t := range templates {
			if sel.Matches(t.labels) {
				out = append(out, t)
			}
		}
		return out
	}

	for _, d := range docs {
		switch o := d.obj.(type) {
		case *corev1.Service:
			if len(o.Spec.Selector) == 0 {
				continue
			}
			matched := matching(labels.SelectorFromSet(o.Spec.Selector))
			if len(matched) == 0 {
				rep.add(d, "spec.selector %v matches no pod template in this bundle", o.Spec.Selector)
				continue
			}
			for _, p := range o.Spec.Ports {
				if p.TargetPort.Type != intstr.String {
					continue
				}
				found := false
				for _, t := range matched {
					found = found || t.portNames()[p.TargetPort.StrVal]
				}
				if !found {
					rep.add(d, "port %q targets container port %q, which no selected pod declares", p.Name, p.TargetPort.StrVal)
				}
			}
		case *policyv1.PodDisruptionBudget:
			if sel, err := metav1.LabelSelectorAsSelector(o.Spec.Selector); err == nil && len(matching(sel)) == 0 {
				rep.add(d, "spec.selector matches no pod template in this bundle")
			}
		case *networkingv1.NetworkPolicy:
			if sel, err := metav1.LabelSelectorAsSelector(&o.Spec.PodSelector); err == nil && !sel.Empty() && len(matching(sel)) == 0 {
				rep.add(d, "spec.podSelector matches no pod template in this bundle")
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			ref := o.Spec.ScaleTargetRef
			target, ok := workloads[ref.Kind+"/"+ref.Name]
			if !ok {
				rep.add(d, "spec.scaleTargetRef %s/%s is not in this bundle", ref.Kind, ref.Name)
				continue
			}
			if dep, isDep := target.obj.(*appsv1.Deployment); isDep && dep.Spec.Replicas != nil {
				rep.add(d, "scales Deployment %s, which also sets spec.replicas: every upgrade would reset the autoscaler's choice", dep.Name)
			}
		case *networkingv1.Ingress:
			var backends []*networkingv1.IngressServiceBackend
			if o.Spec.DefaultBackend != nil && o.Spec.DefaultBackend.Service != nil {
				backends = append(backends, o.Spec.DefaultBackend.Service)
			}
			for _, r := range o.Spec.Rules {
				if r.HTTP == nil {
					continue
				}
				for _, p := range r.HTTP.Paths {
					if p.Backend.Service != nil {
						backends = append(backends, p.Backend.Service)
					}
				}
			}
			for _, b := range backends {
				svc, ok := services[b.Name]
				if !ok {
					rep.add(d, "backend Service %q is not in this bundle", b.Name)
					continue
				}
				if !servicePortExists(svc, b.Port) {
					rep.add(d, "backend Service %q has no port %s", b.Name, portText(b.Port))
				}
			}
		case map[string]any:
			checkCustomRefs(d, o, services, kafkas, docs, rep)
		}
		if t := podSpecOf(d.obj); t != nil {
			checkConfigRefs(d, t, configMaps, secrets, rep)
		}
	}
}

func keySet[T any](a map[string]string, b map[string]T) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

func podSpecOf(obj any) *corev1.PodSpec {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template.Spec
	case *appsv1.StatefulSet:
		return &o.Spec.Template.Spec
	case *appsv1.DaemonSet:
		return &o.Spec.Template.Spec
	case *batchv1.Job:
		return &o.Spec.Template.Spec
	case *batchv1.CronJob:
		return &o.Spec.JobTemplate.Spec.Template.Spec
	case *corev1.Pod:
		return &o.Spec
	}
	return nil
}

// checkConfigRefs: a key read from a ConfigMap or Secret that this bundle defines must exist.
func checkConfigRefs(d *doc, spec *corev1.PodSpec, configMaps, secrets map[string]map[string]bool, rep *report) {
	containers := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range containers {
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil && !isTrue(r.Optional) {
				if keys, ok := configMaps[r.Name]; ok && !keys[r.Key] {
					rep.add(d, "container %s env %s reads key %q of ConfigMap %s, which does not define it", c.Name, e.Name, r.Key, r.Name)
				}
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil && !isTrue(r.Optional) {
				if keys, ok := secrets[r.Name]; ok && !keys[r.Key] {
					rep.add(d, "container %s env %s reads key %q of Secret %s, which does not define it", c.Name, e.Name, r.Key, r.Name)
				}
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil && !isTrue(v.ConfigMap.Optional) {
			if keys, ok := configMaps[v.ConfigMap.Name]; ok {
				for _, item := range v.ConfigMap.Items {
					if !keys[item.Key] {
						rep.add(d, "volume %s projects key %q of ConfigMap %s, which does not define it", v.Name, item.Key, v.ConfigMap.Name)
					}
				}
			}
		}
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

func servicePortExists(svc *corev1.Service, port networkingv1.ServiceBackendPort) bool {
	for _, p := range svc.Spec.Ports {
		if (port.Name != "" && p.Name == port.Name) || (port.Name == "" && p.Port == port.Number) {
			return true
		}
	}
	return false
}

func portText(p networkingv1.ServiceBackendPort) string {
	if p.Name != "" {
		return fmt.Sprintf("named %q", p.Name)
	}
	return fmt.Sprint(p.Number)
}

// checkCustomRefs covers the custom resources' references: ServiceMonitor → Service,
// Strimzi resources → their Kafka cluster, Kafka → node pools with both KRaft roles.
func checkCustomRefs(d *doc, obj map[string]any, services map[string]*corev1.Service, kafkas map[string]bool, docs []*doc, rep *report) {
	spec, _ := obj["spec"].(map[string]any)
	switch d.kind {
	case "ServiceMonitor":
		sel, _ := spec["selector"].(map[string]any)
		matchLabels := map[string]string{}
		if ml, ok := sel["matchLabels"].(map[string]any); ok {
			for k, v := range ml {
				matchLabels[k], _ = v.(string)
			}
		}
		var matched []*corev1.Service
		for _, svc := range services {
			if labels.SelectorFromSet(matchLabels).Matches(labels.Set(svc.Labels)) {
				matched = append(matched, svc)
			}
		}
		sort.Slice(matched, func(i, j int) bool { return matched[i].Name < matched[j].Name })
		if len(matched) == 0 {
			rep.add(d, "spec.selector matches no Service in this bundle")
			return
		}
		endpoints, _ := spec["endpoints"].([]any)
		for i, e := range endpoints {
			ep, _ := e.(map[string]any)
			port, _ := ep["port"].(string)
			if port == "" {
				continue
			}
			for _, svc := range matched {
				if !servicePortExists(svc, networkingv1.ServiceBackendPort{Name: port}) {
					rep.add(d, "spec.endpoints[%d].port %q is not a port of selected Service %s", i, port, svc.Name)
				}
			}
		}
	case "KafkaTopic", "KafkaNodePool", "KafkaUser":
		cluster := labelOf(obj, "strimzi.io/cluster")
		if cluster == "" {
			rep.add(d, "metadata.labels[strimzi.io/cluster] is required: it names the Kafka cluster")
		} else if len(kafkas) > 0 && !kafkas[cluster] {
			rep.add(d, "metadata.labels[strimzi.io/cluster] %q names no Kafka in this bundle", cluster)
		}
	case "Kafka":
		roles := map[string]bool{}
		for _, other := range docs {
			pool, ok := other.obj.(map[string]any)
			if !ok || other.kind != "KafkaNodePool" || labelOf(pool, "strimzi.io/cluster") != d.name {
				continue
			}
			pspec, _ := pool["spec"].(map[string]any)
			rs, _ := pspec["roles"].([]any)
			for _, r := range rs {
				if s, ok := r.(string); ok {
					roles[s] = true
				}
			}
		}
		var missing []string
		for _, r := range []string{"broker", "controller"} {
			if !roles[r] {
				missing = append(missing, r)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			rep.add(d, "no KafkaNodePool in this bundle gives it the KRaft role(s) %s", strings.Join(missing, ", "))
		}
	}
}

func labelOf(obj map[string]any, key string) string {
	meta, _ := obj["metadata"].(map[string]any)
	ls, _ := meta["labels"].(map[string]any)
	v, _ := ls[key].(string)
	return v
}
