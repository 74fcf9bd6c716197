package deploy

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// secretFlags are the file flags that must come from a mounted Secret, and
// the Secret each comes from.
var secretFlags = map[string]string{
	"tls-cert": "sqlraft-tls", "tls-key": "sqlraft-tls",
	"node-cert": "sqlraft-tls", "node-key": "sqlraft-tls", "node-ca": "sqlraft-tls",
	"users-file": "sqlraft-users",
}

// TestSecretsMounted checks that TLS, node mTLS and users are configured
// from whole-directory Secret mounts (which Kubernetes updates in place, so
// rotation needs no restart) and that the probes use the plaintext health
// port.
func TestSecretsMounted(t *testing.T) {
	forEachStatefulSet(t, func(t *testing.T, _ *Manifests, sts *appsv1.StatefulSet, c *corev1.Container) {
		flags := args(t, c)
		for flag, secret := range secretFlags {
			path, ok := flags[flag]
			if !ok {
				t.Errorf("--%s is missing", flag)
				continue
			}
			m := mountFor(c, path)
			if m == nil {
				t.Errorf("--%s %s is on no volume mount", flag, path)
				continue
			}
			if m.SubPath != "" || !m.ReadOnly {
				t.Errorf("mount %s must be read-only and without subPath (subPath mounts never see a rotated Secret)", m.Name)
			}
			v := volume(sts, m.Name)
			if v == nil || v.Secret == nil || v.Secret.SecretName != secret {
				t.Errorf("--%s: volume %s is not Secret %s", flag, m.Name, secret)
			}
		}
		if _, ok := flags["health-addr"]; !ok {
			t.Error("--health-addr is missing: the kubelet's gRPC probe cannot speak TLS")
		}
	})
}

func mountFor(c *corev1.Container, path string) *corev1.VolumeMount {
	for i, m := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func volume(sts *appsv1.StatefulSet, name string) *corev1.Volume {
	for i, v := range sts.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &sts.Spec.Template.Spec.Volumes[i]
		}
	}
	return nil
}

// TestMakeSecrets runs make-secrets.sh and checks what it writes against the
// StatefulSets: the Secrets decode strictly, hold the files the flags name,
// the certificate verifies against the CA for every name a pod advertises
// (for both uses: server and client), and sqlraftd accepts the users file.
func TestMakeSecrets(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	bin := sqlraftdBinary(t)
	out := filepath.Join(t.TempDir(), "secrets")
	cmd := exec.Command("kubernetes/make-secrets.sh", "-n", "prod", "-o", out)
	cmd.Env = append(os.Environ(), "SQLRAFTD="+bin)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make-secrets.sh: %v\n%s", err, msg)
	}
	secrets := decodeSecrets(t, filepath.Join(out, "secrets.yaml"))
	_, _, c := load(t, statefulSet)
	flags := args(t, c)
	for flag, name := range secretFlags {
		s := secrets[name]
		if s == nil {
			t.Fatalf("make-secrets.sh wrote no Secret %s", name)
		}
		if _, ok := s.Data[filepath.Base(flags[flag])]; !ok {
			t.Errorf("Secret %s lacks key %s (for --%s)", name, filepath.Base(flags[flag]), flag)
		}
	}
	tlsData := secrets["sqlraft-tls"].Data
	cert, roots := parseCert(t, tlsData["tls.crt"]), x509.NewCertPool()
	if !roots.AppendCertsFromPEM(tlsData["ca.crt"]) {
		t.Fatal("ca.crt holds no certificate")
	}
	names := []string{"localhost", "sqlraft.prod.svc.cluster.local"}
	for _, flag := range []string{"grpc-advertise", "raft-advertise"} {
		host := strings.SplitN(flags[flag], ":", 2)[0]
		host = strings.NewReplacer("$(POD_NAME)", "sqlraft-2", "$(POD_NAMESPACE)", "prod").Replace(host)
		names = append(names, host)
	}
	for _, name := range names {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			_, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage},
				CurrentTime: time.Now().Add(24 * time.Hour)})
			if err != nil {
				t.Errorf("certificate for %s (usage %v): %v", name, usage, err)
			}
		}
	}
	users := filepath.Join(out, "users-from-secret.yaml")
	if err := os.WriteFile(users, secrets["sqlraft-users"].Data["users.yaml"], 0o600); err != nil {
		t.Fatal(err)
	}
	checkUsersFileAccepted(t, bin, users)
}

func decodeSecrets(t *testing.T, path string) map[string]*corev1.Secret {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*corev1.Secret{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := r.Read()
		if err != nil {
			break
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		var s corev1.Secret
		if strict, err := k8sjson.UnmarshalStrict(js, &s); err != nil || len(strict) > 0 {
			t.Fatalf("secret does not decode strictly: %v %v", err, strict)
		}
		if s.Kind != "Secret" || s.APIVersion != "v1" {
			t.Fatalf("unexpected object %s/%s", s.APIVersion, s.Kind)
		}
		out[s.Name] = &s
	}
	return out
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("tls.crt holds no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkUsersFileAccepted starts sqlraftd with the users file and stops it
// once it has started: a users file it cannot read stops it at once.
func checkUsersFileAccepted(t *testing.T, bin, users string) {
	t.Helper()
	cmd := exec.Command(bin, "--users-file", users, "--data-dir", t.TempDir(),
		"--grpc-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0", "--node-id", "check")
	logPath := filepath.Join(t.TempDir(), "sqlraftd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	logged := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	deadline := time.After(60 * time.Second)
	for !strings.Contains(logged(), "sqlraftd started") {
		select {
		case err := <-done:
			t.Fatalf("sqlraftd stopped with the generated users file: %v\n%s", err, logged())
		case <-deadline:
			cmd.Process.Kill()
			<-done
			t.Fatalf("sqlraftd did not start:\n%s", logged())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cmd.Process.Signal(os.Interrupt)
	<-done
}
