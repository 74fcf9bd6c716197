// Package deploy holds sqlraft's deployment artifacts (Kubernetes manifests
// under kubernetes/, the container image skeleton under docker/) and the
// helpers its tests use to check them against the Kubernetes API types, the
// Dockerfile and the sqlraftd binary. It is a separate Go module so the
// Kubernetes dependencies stay out of the main module.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Manifests is every object found in a manifest directory, decoded strictly.
type Manifests struct {
	// ConfigMaps by name.
	ConfigMaps map[string]*corev1.ConfigMap
	// Services by name.
	Services map[string]*corev1.Service
	// StatefulSets by name.
	StatefulSets map[string]*appsv1.StatefulSet
	// PodDisruptionBudgets by name.
	PodDisruptionBudgets map[string]*policyv1.PodDisruptionBudget
}

// LoadManifests decodes every document of every *.yaml file in dir into its
// Kubernetes API type. Unknown kinds, unknown or duplicate fields, and
// duplicate object names are errors.
func LoadManifests(dir string) (*Manifests, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.yaml files in %s", dir)
	}
	m := &Manifests{
		ConfigMaps:           map[string]*corev1.ConfigMap{},
		Services:             map[string]*corev1.Service{},
		StatefulSets:         map[string]*appsv1.StatefulSet{},
		PodDisruptionBudgets: map[string]*policyv1.PodDisruptionBudget{},
	}
	for _, f := range files {
		docs, err := splitDocuments(f)
		if err != nil {
			return nil, err
		}
		for i, doc := range docs {
			if err := m.add(doc); err != nil {
				return nil, fmt.Errorf("%s document %d: %w", filepath.Base(f), i+1, err)
			}
		}
	}
	return m, nil
}

func splitDocuments(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

func (m *Manifests) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	switch tm.APIVersion + "/" + tm.Kind {
	case "v1/ConfigMap":
		return decodeInto(doc, m.ConfigMaps, func(o *corev1.ConfigMap) string { return o.Name })
	case "v1/Service":
		return decodeInto(doc, m.Services, func(o *corev1.Service) string { return o.Name })
	case "apps/v1/StatefulSet":
		return decodeInto(doc, m.StatefulSets, func(o *appsv1.StatefulSet) string { return o.Name })
	case "policy/v1/PodDisruptionBudget":
		return decodeInto(doc, m.PodDisruptionBudgets, func(o *policyv1.PodDisruptionBudget) string { return o.Name })
	default:
		return fmt.Errorf("unexpected kind %q (apiVersion %q)", tm.Kind, tm.APIVersion)
	}
}

// decodeInto decodes doc the way the API server does in strict mode: YAML
// to JSON refusing duplicate keys, then a case-sensitive JSON decode that
// refuses unknown and duplicate fields.
func decodeInto[T any](doc []byte, into map[string]*T, name func(*T) string) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("strict decode: %w", err)
	}
	obj := new(T)
	strictErrs, err := k8sjson.UnmarshalStrict(js, obj, k8sjson.DisallowDuplicateFields, k8sjson.DisallowUnknownFields)
	if err = errors.Join(append([]error{err}, strictErrs...)...); err != nil {
		return fmt.Errorf("strict decode: %w", err)
	}
	n := name(obj)
	if n == "" {
		return errors.New("object has no metadata.name")
	}
	if _, dup := into[n]; dup {
		return fmt.Errorf("duplicate object %q", n)
	}
	into[n] = obj
	return nil
}

// Flag is one flag of a binary as its --help output lists it.
type Flag struct {
	// Name without the leading dashes.
	Name string
	// Type as printed by pflag ("string", "int", "duration", ...); empty for
	// booleans.
	Type string
	// Default value as printed, without quotes; empty if none is printed.
	Default string
}

var (
	flagLine    = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9][a-z0-9-]*)(?: ([a-zA-Z0-9]+))?\s{2,}(.*)$`)
	flagDefault = regexp.MustCompile(`\(default "?([^")]*)"?\)\s*$`)
)

// ParseHelp extracts the flags from pflag/cobra --help output.
func ParseHelp(help string) map[string]Flag {
	flags := map[string]Flag{}
	for line := range strings.Lines(help) {
		m := flagLine.FindStringSubmatch(strings.TrimRight(line, "\n"))
		if m == nil {
			continue
		}
		f := Flag{Name: m[1], Type: m[2]}
		if d := flagDefault.FindStringSubmatch(m[3]); d != nil {
			f.Default = d[1]
		}
		flags[f.Name] = f
	}
	return flags
}

// Dockerfile is what the tests need from the Dockerfile.
type Dockerfile struct {
	// User is the USER instruction's argument.
	User string
	// Expose lists the EXPOSEd ports, sorted.
	Expose []string
	// Volumes lists the VOLUME paths.
	Volumes []string
	// Entrypoint is the ENTRYPOINT instruction's raw argument.
	Entrypoint string
}

// ParseDockerfile reads the instructions the checks care about. It handles
// one instruction per line, which is all the project's Dockerfile uses.
func ParseDockerfile(path string) (*Dockerfile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := &Dockerfile{}
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		arg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), fields[0]))
		switch strings.ToUpper(fields[0]) {
		case "USER":
			d.User = arg
		case "EXPOSE":
			d.Expose = append(d.Expose, fields[1:]...)
		case "VOLUME":
			d.Volumes = append(d.Volumes, parseList(arg)...)
		case "ENTRYPOINT":
			d.Entrypoint = arg
		}
	}
	sort.Strings(d.Expose)
	return d, nil
}

// parseList reads a JSON-array or space-separated instruction argument.
func parseList(arg string) []string {
	if strings.HasPrefix(arg, "[") {
		var out []string
		if err := yaml.Unmarshal([]byte(arg), &out); err == nil {
			return out
		}
	}
	return strings.Fields(arg)
}
