package deploy

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const (
	manifestDir    = "kubernetes"
	statefulSet    = "sqlraft"
	replicaSet     = "sqlraft-replica"
	peersService   = "sqlraft-peers"
	clientService  = "sqlraft"
	configMapName  = "sqlraft-config"
	containerName  = "sqlraft"
	dockerfilePath = "../Dockerfile"
)

// statefulSets are the voters and the read replicas.
var statefulSets = []string{statefulSet, replicaSet}

// forEachStatefulSet runs check as a subtest for each StatefulSet.
func forEachStatefulSet(t *testing.T, check func(t *testing.T, m *Manifests, sts *appsv1.StatefulSet, c *corev1.Container)) {
	for _, name := range statefulSets {
		t.Run(name, func(t *testing.T) {
			m, sts, c := load(t, name)
			check(t, m, sts, c)
		})
	}
}

func load(t *testing.T, name string) (*Manifests, *appsv1.StatefulSet, *corev1.Container) {
	t.Helper()
	m, err := LoadManifests(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	sts := m.StatefulSets[name]
	if sts == nil {
		t.Fatalf("no StatefulSet %q", name)
	}
	for i := range sts.Spec.Template.Spec.Containers {
		if c := &sts.Spec.Template.Spec.Containers[i]; c.Name == containerName {
			return m, sts, c
		}
	}
	t.Fatalf("no container %q", containerName)
	return nil, nil, nil
}

// args turns ["--a=b", "--c", "d"] into {"a": "b", "c": "d"}.
func args(t *testing.T, c *corev1.Container) map[string]string {
	t.Helper()
	out := map[string]string{}
	list := append(slices.Clone(c.Command), c.Args...)
	for i := 0; i < len(list); i++ {
		a := list[i]
		if !strings.HasPrefix(a, "--") {
			t.Fatalf("argument %q is not a --flag", a)
		}
		name, val, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok && i+1 < len(list) && !strings.HasPrefix(list[i+1], "--") {
			val = list[i+1]
			i++
		}
		if _, dup := out[name]; dup {
			t.Fatalf("flag --%s given twice", name)
		}
		out[name] = val
	}
	return out
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return int32(n)
}

func containerPort(t *testing.T, c *corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container has no port named %q", name)
	return 0
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m, _, _ := load(t, statefulSet)
	if len(m.StatefulSets) != len(statefulSets) {
		t.Errorf("StatefulSets = %v, want %v", keys(m.StatefulSets), statefulSets)
	}
	if len(m.Services) != 2 || m.Services[peersService] == nil || m.Services[clientService] == nil {
		t.Errorf("services = %v, want %s and %s", keys(m.Services), peersService, clientService)
	}
	if m.ConfigMaps[configMapName] == nil {
		t.Errorf("no ConfigMap %q", configMapName)
	}
	if len(m.PodDisruptionBudgets) != 1 {
		t.Errorf("want one PodDisruptionBudget, got %v", keys(m.PodDisruptionBudgets))
	}
}

func TestLoadManifestsRejectsUnknownFields(t *testing.T) {
	dir := t.TempDir()
	bad := "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  clusterIp: None\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadManifests(dir); err == nil || !strings.Contains(err.Error(), "clusterIp") {
		t.Fatalf("err = %v, want an unknown-field error", err)
	}
}

func keys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestStatefulSet(t *testing.T) {
	forEachStatefulSet(t, checkStatefulSet)
	voters, replicas := podLabels(t, statefulSet), podLabels(t, replicaSet)
	for name, other := range map[string]labels.Set{statefulSet: replicas, replicaSet: voters} {
		_, sts, _ := load(t, name)
		if labels.SelectorFromSet(sts.Spec.Selector.MatchLabels).Matches(other) {
			t.Errorf("StatefulSet %s selector also matches the other StatefulSet's pods", name)
		}
	}
}

func podLabels(t *testing.T, name string) labels.Set {
	_, sts, _ := load(t, name)
	return labels.Set(sts.Spec.Template.Labels)
}

func checkStatefulSet(t *testing.T, _ *Manifests, sts *appsv1.StatefulSet, c *corev1.Container) {
	spec := sts.Spec
	if spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy = %q, want Parallel", spec.PodManagementPolicy)
	}
	if spec.ServiceName != peersService {
		t.Errorf("serviceName = %q, want the headless service %q", spec.ServiceName, peersService)
	}
	flags := args(t, c)
	_, nonVoter := flags["non-voter"]
	switch {
	case spec.Replicas == nil:
		t.Errorf("replicas must be set")
	case sts.Name == statefulSet && (*spec.Replicas < 3 || *spec.Replicas%2 == 0 || nonVoter):
		t.Errorf("voters: replicas should be an odd number >= 3, without --non-voter")
	case sts.Name == replicaSet && (*spec.Replicas != 0 || !nonVoter):
		t.Errorf("read replicas: start at 0 replicas, with --non-voter")
	}
	if len(spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("want one volumeClaimTemplate")
	}
	claim := spec.VolumeClaimTemplates[0].Name
	if i := slices.IndexFunc(c.VolumeMounts, func(v corev1.VolumeMount) bool { return v.Name == claim }); i < 0 {
		t.Errorf("volumeClaimTemplate %q is not mounted", claim)
	}
	sel, err := metaSelector(spec.Selector.MatchLabels)
	if err != nil || !sel.Matches(labels.Set(spec.Template.Labels)) {
		t.Errorf("selector %v does not match the pod labels %v", spec.Selector.MatchLabels, spec.Template.Labels)
	}
	checkProbesAndShutdown(t, sts, c, flags)
}

func metaSelector(ml map[string]string) (labels.Selector, error) {
	return labels.ValidatedSelectorFromSet(ml)
}

func checkProbesAndShutdown(t *testing.T, sts *appsv1.StatefulSet, c *corev1.Container, flags map[string]string) {
	t.Helper()
	rp := c.ReadinessProbe
	if rp == nil || rp.GRPC == nil {
		t.Fatal("readiness probe must be a native gRPC probe")
	}
	if rp.GRPC.Port != containerPort(t, c, "health") || portOf(t, flags["health-addr"]) != rp.GRPC.Port {
		t.Errorf("readiness probe port %d is not the plaintext health port (--health-addr %q)", rp.GRPC.Port, flags["health-addr"])
	}
	if rp.GRPC.Service != nil && *rp.GRPC.Service != "" {
		t.Errorf("readiness probe should ask for health service \"\", not %q", *rp.GRPC.Service)
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("preStop must be a sleep action (the image has no shell)")
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	shutdown, err := time.ParseDuration(flags["shutdown-timeout"])
	if err != nil {
		t.Fatalf("--shutdown-timeout: %v", err)
	}
	grace := sts.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second < preStop+shutdown+10*time.Second {
		t.Errorf("terminationGracePeriodSeconds must cover preStop %v + shutdown %v + 10s", preStop, shutdown)
	}
}

func TestServicesAndBudget(t *testing.T) {
	forEachStatefulSet(t, checkServicesAndBudget)
}

func checkServicesAndBudget(t *testing.T, m *Manifests, sts *appsv1.StatefulSet, c *corev1.Container) {
	podLabels := labels.Set(sts.Spec.Template.Labels)
	peers := m.Services[peersService]
	if peers.Spec.ClusterIP != corev1.ClusterIPNone || !peers.Spec.PublishNotReadyAddresses {
		t.Errorf("%s must be headless with publishNotReadyAddresses", peersService)
	}
	for _, svc := range m.Services {
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
			t.Errorf("service %s selector %v does not select the pods", svc.Name, svc.Spec.Selector)
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.StrVal != p.Name || p.Port != containerPort(t, c, p.Name) {
				t.Errorf("service %s port %s (%d -> %s) disagrees with the container", svc.Name, p.Name, p.Port, p.TargetPort.String())
			}
		}
	}
	if len(peers.Spec.Ports) != 2 || len(m.Services[clientService].Spec.Ports) != 1 {
		t.Errorf("peers service exposes grpc and raft; client service only grpc")
	}
	for _, pdb := range m.PodDisruptionBudgets {
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil {
			t.Errorf("PodDisruptionBudget %s must have maxUnavailable 1", pdb.Name)
		}
		sel, err := labels.ValidatedSelectorFromSet(pdb.Spec.Selector.MatchLabels)
		if err != nil || !sel.Matches(podLabels) {
			t.Errorf("PodDisruptionBudget %s does not select the pods", pdb.Name)
		}
	}
}

var varRef = regexp.MustCompile(`\$\(([A-Z0-9_]+)\)`)

// TestFlagsAgreeWithBinary checks the container's arguments against the
// flags `sqlraftd --help` lists, the ports, the services and the ConfigMap.
func TestFlagsAgreeWithBinary(t *testing.T) {
	forEachStatefulSet(t, checkFlags)
}

func checkFlags(t *testing.T, m *Manifests, sts *appsv1.StatefulSet, c *corev1.Container) {
	flags := args(t, c)
	known := binaryFlags(t)
	for name := range flags {
		if _, ok := known[name]; !ok {
			t.Errorf("--%s is not a flag of sqlraftd", name)
		}
	}
	for _, need := range []string{"node-id", "grpc-addr", "raft-addr", "grpc-advertise", "raft-advertise", "data-dir", "bootstrap-expect", "discover-dns"} {
		if _, ok := flags[need]; !ok {
			t.Errorf("--%s is missing", need)
		}
	}
	grpcPort, raftPort := containerPort(t, c, "grpc"), containerPort(t, c, "raft")
	for flag, want := range map[string]int32{"grpc-addr": grpcPort, "grpc-advertise": grpcPort, "raft-addr": raftPort, "raft-advertise": raftPort} {
		if got := portOf(t, flags[flag]); got != want {
			t.Errorf("--%s port %d, container port %d", flag, got, want)
		}
		if def := known[flag].Default; def != "" && portOf(t, def) != want {
			t.Errorf("--%s: binary default %q disagrees with container port %d", flag, def, want)
		}
	}
	for _, flag := range []string{"grpc-advertise", "raft-advertise"} {
		if !strings.HasPrefix(flags[flag], "$(POD_NAME)."+peersService+".") {
			t.Errorf("--%s should be the pod's DNS name under %s: %q", flag, peersService, flags[flag])
		}
	}
	if !strings.HasPrefix(flags["discover-dns"], peersService+".") && flags["discover-dns"] != peersService {
		t.Errorf("--discover-dns %q is not the headless service", flags["discover-dns"])
	}
	if !strings.HasPrefix(flags["data-dir"], c.VolumeMounts[0].MountPath+"/") {
		t.Errorf("--data-dir %q is not on the volume %q", flags["data-dir"], c.VolumeMounts[0].MountPath)
	}
	checkEnv(t, m, sts, c, flags)
}

func checkEnv(t *testing.T, m *Manifests, sts *appsv1.StatefulSet, c *corev1.Container, flags map[string]string) {
	t.Helper()
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		for _, ref := range varRef.FindAllStringSubmatch(a, -1) {
			if _, ok := env[ref[1]]; !ok {
				t.Errorf("argument %q uses $(%s), which is not in env", a, ref[1])
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.ConfigMapKeyRef
		cm := m.ConfigMaps[ref.Name]
		if cm == nil {
			t.Errorf("env %s refers to missing ConfigMap %q", e.Name, ref.Name)
		} else if _, ok := cm.Data[ref.Key]; !ok {
			t.Errorf("env %s refers to missing key %s/%s", e.Name, ref.Name, ref.Key)
		}
	}
	if flags["bootstrap-expect"] != "$(BOOTSTRAP_EXPECT)" || env["BOOTSTRAP_EXPECT"].ValueFrom == nil {
		t.Fatal("--bootstrap-expect must come from the ConfigMap")
	}
	expect, err := strconv.Atoi(m.ConfigMaps[configMapName].Data["BOOTSTRAP_EXPECT"])
	if sts.Name == statefulSet && (err != nil || int32(expect) != *sts.Spec.Replicas) {
		t.Errorf("BOOTSTRAP_EXPECT %q must equal the initial replicas %d", m.ConfigMaps[configMapName].Data["BOOTSTRAP_EXPECT"], *sts.Spec.Replicas)
	}
}

// TestDockerfileAgrees checks the image's ports, user and volume against the
// StatefulSet.
func TestDockerfileAgrees(t *testing.T) {
	forEachStatefulSet(t, checkDockerfile)
}

func checkDockerfile(t *testing.T, _ *Manifests, sts *appsv1.StatefulSet, c *corev1.Container) {
	d, err := ParseDockerfile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{strconv.Itoa(int(containerPort(t, c, "grpc"))), strconv.Itoa(int(containerPort(t, c, "raft")))}
	slices.Sort(want)
	if !slices.Equal(d.Expose, want) {
		t.Errorf("Dockerfile EXPOSE %v, container ports %v", d.Expose, want)
	}
	uid, _, _ := strings.Cut(d.User, ":")
	sc := sts.Spec.Template.Spec.SecurityContext
	if uid == "" || uid == "0" || sc == nil || sc.RunAsUser == nil || strconv.FormatInt(*sc.RunAsUser, 10) != uid {
		t.Errorf("Dockerfile USER %q must be numeric, non-root and equal runAsUser", d.User)
	}
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("pod must set runAsNonRoot")
	}
	if !slices.Contains(d.Volumes, c.VolumeMounts[0].MountPath) {
		t.Errorf("Dockerfile VOLUME %v does not include the mount path %q", d.Volumes, c.VolumeMounts[0].MountPath)
	}
	if !strings.Contains(d.Entrypoint, "/sqlraftd") {
		t.Errorf("ENTRYPOINT %q should run /sqlraftd", d.Entrypoint)
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binOut  string
)

// TestMain removes the sqlraftd the tests built, if they built one.
func TestMain(m *testing.M) {
	code := m.Run()
	if os.Getenv("SQLRAFTD_BIN") == "" && binPath != "" {
		os.Remove(binPath)
	}
	os.Exit(code)
}

// sqlraftdBinary returns $SQLRAFTD_BIN if set, else a fresh build of
// ../cmd/sqlraftd (built once per test run).
func sqlraftdBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binPath = os.Getenv("SQLRAFTD_BIN"); binPath != "" {
			return
		}
		binPath = filepath.Join(os.TempDir(), "sqlraftd-deploytest-"+strconv.Itoa(os.Getpid()))
		build := exec.Command("go", "build", "-tags", "sqlite_preupdate_hook", "-o", binPath, "./cmd/sqlraftd")
		build.Dir = ".."
		if out, err := build.CombinedOutput(); err != nil {
			binErr, binOut = err, string(out)
		}
	})
	if binErr != nil {
		t.Fatalf("build sqlraftd: %v\n%s", binErr, binOut)
	}
	return binPath
}

// binaryFlags returns the flags `sqlraftd --help` lists.
func binaryFlags(t *testing.T) map[string]Flag {
	t.Helper()
	out, err := exec.Command(sqlraftdBinary(t), "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("sqlraftd --help: %v\n%s", err, out)
	}
	flags := ParseHelp(string(out))
	if len(flags) < 5 {
		t.Fatalf("could not parse flags from --help output:\n%s", out)
	}
	return flags
}

func TestParseHelp(t *testing.T) {
	help := "Flags:\n      --grpc-addr string     address (default \"localhost:6001\")\n" +
		"      --bootstrap-expect int   count\n  -h, --help      help for sqlraftd\n" +
		"      --snapshot-interval duration   how often (default 30s)\n"
	got := ParseHelp(help)
	want := map[string]Flag{
		"grpc-addr":         {Name: "grpc-addr", Type: "string", Default: "localhost:6001"},
		"bootstrap-expect":  {Name: "bootstrap-expect", Type: "int"},
		"help":              {Name: "help"},
		"snapshot-interval": {Name: "snapshot-interval", Type: "duration", Default: "30s"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %+v, want %+v", k, got[k], v)
		}
	}
}
