package main

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The schema of each custom resource version we accept, written for Citaflow's manifests
// (see crds/README.md).
//
//go:embed crds/*.json
var crdFiles embed.FS

type crdSchema struct {
	Group   string      `json:"group"`
	Version string      `json:"version"`
	Kind    string      `json:"kind"`
	Source  string      `json:"source"`
	Schema  *jsonSchema `json:"schema"`
}

// jsonSchema is the structural subset of OpenAPI v3 that CRDs use.
type jsonSchema struct {
	Type                 string                 `json:"type"`
	Format               string                 `json:"format"`
	Properties           map[string]*jsonSchema `json:"properties"`
	Items                *jsonSchema            `json:"items"`
	AdditionalProperties *boolOrSchema          `json:"additionalProperties"`
	Required             []string               `json:"required"`
	Enum                 []any                  `json:"enum"`
	Pattern              string                 `json:"pattern"`
	MinLength            *int64                 `json:"minLength"`
	MaxLength            *int64                 `json:"maxLength"`
	MinItems             *int64                 `json:"minItems"`
	MaxItems             *int64                 `json:"maxItems"`
	MinProperties        *int64                 `json:"minProperties"`
	MaxProperties        *int64                 `json:"maxProperties"`
	Minimum              *float64               `json:"minimum"`
	Maximum              *float64               `json:"maximum"`
	ExclusiveMinimum     bool                   `json:"exclusiveMinimum"`
	ExclusiveMaximum     bool                   `json:"exclusiveMaximum"`
	Nullable             bool                   `json:"nullable"`
	OneOf                []*jsonSchema          `json:"oneOf"`
	AnyOf                []*jsonSchema          `json:"anyOf"`
	AllOf                []*jsonSchema          `json:"allOf"`
	Not                  *jsonSchema            `json:"not"`
	PreserveUnknown      bool                   `json:"x-kubernetes-preserve-unknown-fields"`
	IntOrString          bool                   `json:"x-kubernetes-int-or-string"`
	EmbeddedResource     bool                   `json:"x-kubernetes-embedded-resource"`
}

type boolOrSchema struct {
	Allowed bool
	Schema  *jsonSchema
}

func (b *boolOrSchema) UnmarshalJSON(data []byte) error {
	if bytes.Equal(data, []byte("true")) || bytes.Equal(data, []byte("false")) {
		b.Allowed = string(data) == "true"
		return nil
	}
	b.Allowed = true
	return json.Unmarshal(data, &b.Schema)
}

var crds = func() map[string]*crdSchema {
	out := map[string]*crdSchema{}
	entries, err := crdFiles.ReadDir("crds")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		data, err := crdFiles.ReadFile(path.Join("crds", e.Name()))
		if err != nil {
			panic(err)
		}
		var c crdSchema
		if err := json.Unmarshal(data, &c); err != nil {
			panic(fmt.Sprintf("crds/%s: %v", e.Name(), err))
		}
		out[c.Group+"/"+c.Version+"/"+c.Kind] = &c
	}
	return out
}()

func lookupCRD(apiVersion, kind string) *crdSchema {
	return crds[apiVersion+"/"+kind]
}

// crdVersions lists the vendored versions of a custom kind whose group is known.
func crdVersions(apiVersion, kind string) ([]string, bool) {
	group, _, _ := strings.Cut(apiVersion, "/")
	var known []string
	for _, c := range crds {
		if c.Group == group && c.Kind == kind {
			known = append(known, c.Group+"/"+c.Version)
		}
	}
	sort.Strings(known)
	return known, len(known) > 0
}

func validateCustom(d *doc, crd *crdSchema, rep *report) {
	data, err := yaml.YAMLToJSONStrict(d.raw)
	if err != nil {
		rep.add(d, "%v", err)
		return
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		rep.add(d, "not an object: %v", err)
		return
	}
	d.obj = obj

	// metadata is the API server's, not the CRD's: decode it strictly as ObjectMeta.
	var meta metav1.ObjectMeta
	if raw, ok := obj["metadata"]; !ok {
		rep.add(d, "metadata is required")
	} else {
		mdata, _ := json.Marshal(raw)
		strict, err := kjson.UnmarshalStrict(mdata, &meta)
		if err != nil {
			rep.add(d, "metadata: %v", err)
		}
		for _, e := range strict {
			rep.add(d, "metadata: %v", e)
		}
		checkObjectMeta(d, rep, &meta, subdomain)
	}
	if spec, ok := obj["spec"]; !ok {
		rep.add(d, "spec is required")
	} else if _, isObj := spec.(map[string]any); !isObj {
		rep.add(d, "spec must be an object")
	}

	v := &schemaValidator{}
	root := crd.Schema
	for key, val := range obj {
		switch key {
		case "apiVersion", "kind", "metadata":
			continue
		}
		sub, ok := root.Properties[key]
		if !ok {
			v.errorf(key, "unknown field (not in the %s schema)", crd.Kind)
			continue
		}
		v.validate(key, val, sub, true)
	}
	for _, e := range v.errs {
		rep.add(d, "%s", e)
	}
}

type schemaValidator struct{ errs []string }

func (v *schemaValidator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Sprintf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// validate checks val against s. structural is false inside oneOf/anyOf/allOf/not branches,
// which only constrain values and never declare fields.
func (v *schemaValidator) validate(p string, val any, s *jsonSchema, structural bool) {
	if s == nil {
		return
	}
	if val == nil {
		// The API server drops nulls of non-nullable fields; nothing else to check.
		return
	}
	if s.IntOrString {
		switch x := val.(type) {
		case string:
		case json.Number:
			if !isInteger(x) {
				v.errorf(p, "must be an integer or a string, got %s", x)
			}
		default:
			v.errorf(p, "must be an integer or a string, got %s", typeName(val))
		}
	} else if s.Type != "" && !hasType(val, s.Type) {
		v.errorf(p, "must be of type %s, got %s", s.Type, typeName(val))
		return
	}
	if len(s.Enum) > 0 && !inEnum(val, s.Enum) {
		v.errorf(p, "unsupported value %s; allowed: %s", jsonText(val), enumText(s.Enum))
	}
	switch x := val.(type) {
	case string:
		if s.Pattern != "" {
			if re, err := regexp.Compile(s.Pattern); err == nil && !re.MatchString(x) {
				v.errorf(p, "%q does not match the pattern %s", x, s.Pattern)
			}
		}
		if s.MinLength != nil && int64(len([]rune(x))) < *s.MinLength {
			v.errorf(p, "must be at least %d characters long", *s.MinLength)
		}
		if s.MaxLength != nil && int64(len([]rune(x))) > *s.MaxLength {
			v.errorf(p, "must be at most %d characters long", *s.MaxLength)
		}
	case json.Number:
		f, _ := x.Float64()
		if s.Minimum != nil && (f < *s.Minimum || (s.ExclusiveMinimum && f == *s.Minimum)) {
			v.errorf(p, "%s is below the minimum %v", x, *s.Minimum)
		}
		if s.Maximum != nil && (f > *s.Maximum || (s.ExclusiveMaximum && f == *s.Maximum)) {
			v.errorf(p, "%s is above the maximum %v", x, *s.Maximum)
		}
	case []any:
		if s.MinItems != nil && int64(len(x)) < *s.MinItems {
			v.errorf(p, "must have at least %d items", *s.MinItems)
		}
		if s.MaxItems != nil && int64(len(x)) > *s.MaxItems {
			v.errorf(p, "must have at most %d items", *s.MaxItems)
		}
		for i, item := range x {
			v.validate(fmt.Sprintf("%s[%d]", p, i), item, s.Items, structural)
		}
	case map[string]any:
		v.validateObject(p, x, s, structural)
	}
	v.validateCombinators(p, val, s)
}

func (v *schemaValidator) validateObject(p string, obj map[string]any, s *jsonSchema, structural bool) {
	for _, r := range s.Required {
		if _, ok := obj[r]; !ok {
			v.errorf(p, "missing required field %q", r)
		}
	}
	if s.MinProperties != nil && int64(len(obj)) < *s.MinProperties {
		v.errorf(p, "must have at least %d properties", *s.MinProperties)
	}
	if s.MaxProperties != nil && int64(len(obj)) > *s.MaxProperties {
		v.errorf(p, "must have at most %d properties", *s.MaxProperties)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		child := p + "." + k
		if sub, ok := s.Properties[k]; ok {
			v.validate(child, obj[k], sub, structural)
			continue
		}
		if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
			v.validate(child, obj[k], s.AdditionalProperties.Schema, structural)
			continue
		}
		if !structural || s.PreserveUnknown || (s.AdditionalProperties != nil && s.AdditionalProperties.Allowed) {
			continue
		}
		if s.EmbeddedResource && (k == "apiVersion" || k == "kind" || k == "metadata") {
			continue
		}
		// The API server would prune it silently: the setting would never take effect.
		v.errorf(child, "unknown field")
	}
}

func (v *schemaValidator) validateCombinators(p string, val any, s *jsonSchema) {
	passes := func(b *jsonSchema) bool {
		sub := &schemaValidator{}
		sub.validate(p, val, b, false)
		return len(sub.errs) == 0
	}
	if len(s.OneOf) > 0 {
		n := 0
		for _, b := range s.OneOf {
			if passes(b) {
				n++
			}
		}
		if n != 1 {
			v.errorf(p, "must match exactly one of %d alternatives (oneOf), matches %d", len(s.OneOf), n)
		}
	}
	if len(s.AnyOf) > 0 {
		ok := false
		for _, b := range s.AnyOf {
			if passes(b) {
				ok = true
				break
			}
		}
		if !ok {
			v.errorf(p, "matches none of the %d alternatives (anyOf)", len(s.AnyOf))
		}
	}
	for _, b := range s.AllOf {
		sub := &schemaValidator{}
		sub.validate(p, val, b, false)
		v.errs = append(v.errs, sub.errs...)
	}
	if s.Not != nil && passes(s.Not) {
		v.errorf(p, "must not match the excluded schema (not)")
	}
}

func hasType(val any, t string) bool {
	switch t {
	case "object":
		_, ok := val.(map[string]any)
		return ok
	case "array":
		_, ok := val.([]any)
		return ok
	case "string":
		_, ok := val.(string)
		return ok
	case "boolean":
		_, ok := val.(bool)
		return ok
	case "integer":
		n, ok := val.(json.Number)
		return ok && isInteger(n)
	case "number":
		_, ok := val.(json.Number)
		return ok
	}
	return true
}

func isInteger(n json.Number) bool {
	_, err := n.Int64()
	return err == nil
}

func typeName(val any) string {
	switch x := val.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return fmt.Sprintf("string %q", x)
	case bool:
		return "boolean"
	case json.Number:
		if isInteger(x) {
			return "integer " + x.String()
		}
		return "number " + x.String()
	}
	return fmt.Sprintf("%T", val)
}

func inEnum(val any, enum []any) bool {
	for _, e := range enum {
		if jsonText(e) == jsonText(val) {
			return true
		}
	}
	return false
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func enumText(enum []any) string {
	parts := make([]string, len(enum))
	for i, e := range enum {
		parts[i] = jsonText(e)
	}
	return strings.Join(parts, ", ")
}
