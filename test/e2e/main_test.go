//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Run-wide settings, set by TestMain.
var (
	runID       string // unique per run; prefixes every Docker object
	image       string // sqlraftd image built for this run
	clientImage string // e2eclient image built for this run
	repoRoot    string
)

// label marks every Docker object of the suite, for cleanup.
const label = "io.sqlraft.e2e"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if reason := dockerUnavailable(); reason != "" {
		fmt.Printf("SKIP e2e: no Docker engine answers (%s)\n", reason)
		return 0
	}
	var err error
	if repoRoot, err = filepath.Abs(envOr("SQLRAFT_E2E_SRC", "../..")); err != nil {
		fmt.Println("e2e:", err)
		return 1
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	runID = "sqlraft-e2e-" + hex.EncodeToString(b)
	sweepStale()
	defer removeByLabel(label + ".run=" + runID)
	cleanupOnSignal()
	start := time.Now()
	if err := buildImages(); err != nil {
		fmt.Println("e2e: building images:", err)
		return 1
	}
	fmt.Printf("e2e: built %s and %s in %s\n", image, clientImage, time.Since(start).Round(time.Second))
	defer func() {
		_, _ = docker(context.Background(), "rmi", "-f", image, clientImage)
	}()
	armTimeoutCleanup()
	return m.Run()
}

// cleanupOnSignal removes this run's Docker objects when the run is
// interrupted (SIGINT, SIGTERM).
func cleanupOnSignal() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Printf("e2e: %v: removing this run's containers, networks, volumes and images\n", sig)
		removeByLabel(label + ".run=" + runID)
		os.Exit(1)
	}()
}

// armTimeoutCleanup removes this run's Docker objects shortly before go
// test's -timeout (which starts with m.Run) panics, since that panic skips
// every deferred and t.Cleanup function.
func armTimeoutCleanup() {
	flag.Parse()
	f := flag.Lookup("test.timeout")
	if f == nil {
		return
	}
	d, _ := f.Value.(flag.Getter).Get().(time.Duration)
	if d <= 0 {
		return
	}
	margin := min(30*time.Second, d/5)
	time.AfterFunc(d-margin, func() {
		fmt.Printf("e2e: -timeout %s is near: removing this run's Docker objects\n", d)
		removeByLabel(label + ".run=" + runID)
	})
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// dockerUnavailable returns why the Docker engine cannot be used, or "".
func dockerUnavailable() string {
	if _, err := exec.LookPath("docker"); err != nil {
		return "docker CLI not found in PATH"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		return strings.TrimSpace(firstLine(string(out)) + " " + err.Error())
	}
	return ""
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// buildImages builds the static sqlraftd (or takes $SQLRAFT_E2E_BIN), the
// e2eclient, and their FROM scratch images.
func buildImages() error {
	dir, err := os.MkdirTemp("", runID)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "sqlraftd")
	if pre := os.Getenv("SQLRAFT_E2E_BIN"); pre != "" {
		err = copyFile(pre, bin, 0o755)
	} else {
		err = goBuild(ctx, bin, "./cmd/sqlraftd", "1", "-tags", "netgo osusergo sqlite_omit_load_extension sqlite_preupdate_hook",
			"-ldflags", `-s -w -linkmode external -extldflags "-static"`)
	}
	if err != nil {
		return err
	}
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		if err := copyFile(filepath.Join(repoRoot, f), filepath.Join(dir, f), 0o644); err != nil {
			return err
		}
	}
	if out, err := exec.Command("cp", "-r", filepath.Join(repoRoot, "deploy"), filepath.Join(dir, "deploy")).CombinedOutput(); err != nil {
		return fmt.Errorf("copy deploy/: %v: %s", err, out)
	}
	image = runID + ":sqlraftd"
	pidLabel := label + ".pid=" + strconv.Itoa(os.Getpid())
	if _, err := docker(ctx, "build", "-q", "--label", label+".run="+runID, "--label", pidLabel, "-t", image, dir); err != nil {
		return err
	}
	cdir := filepath.Join(dir, "client")
	if err := os.Mkdir(cdir, 0o755); err != nil {
		return err
	}
	if err := goBuild(ctx, filepath.Join(cdir, "e2eclient"), "./test/e2e/e2eclient", "0"); err != nil {
		return err
	}
	df := "FROM scratch\nCOPY e2eclient /e2eclient\nUSER 65532:65532\nENTRYPOINT [\"/e2eclient\"]\n"
	if err := os.WriteFile(filepath.Join(cdir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err
	}
	clientImage = runID + ":client"
	_, err = docker(ctx, "build", "-q", "--label", label+".run="+runID, "--label", pidLabel, "-t", clientImage, cdir)
	return err
}

func goBuild(ctx context.Context, out, pkg, cgo string, extra ...string) error {
	args := append([]string{"build", "-trimpath", "-o", out}, extra...)
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

func copyFile(from, to string, mode os.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, mode)
}

// docker runs the docker CLI and returns its trimmed stdout.
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// removeByLabel removes the containers, networks, volumes and images that
// carry the label (key=value).
func removeByLabel(sel string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if ids, _ := docker(ctx, "ps", "-aq", "--filter", "label="+sel); ids != "" {
		_, _ = docker(ctx, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
	}
	if ids, _ := docker(ctx, "network", "ls", "-q", "--filter", "label="+sel); ids != "" {
		_, _ = docker(ctx, append([]string{"network", "rm"}, strings.Fields(ids)...)...)
	}
	if ids, _ := docker(ctx, "volume", "ls", "-q", "--filter", "label="+sel); ids != "" {
		_, _ = docker(ctx, append([]string{"volume", "rm", "-f"}, strings.Fields(ids)...)...)
	}
	if ids, _ := docker(ctx, "images", "-q", "--filter", "label="+sel); ids != "" {
		_, _ = docker(ctx, append([]string{"rmi", "-f"}, strings.Fields(ids)...)...)
	}
}

// sweepStale removes what earlier runs left behind when they were killed
// before their cleanup ran (objects of runs whose process is gone).
func sweepStale() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _ := docker(ctx, "ps", "-a", "--filter", "label="+label+".pid", "--format", `{{.Label "`+label+`.pid"}} {{.Label "`+label+`.run"}}`)
	out2, _ := docker(ctx, "network", "ls", "--filter", "label="+label+".pid", "--format", `{{.Label "`+label+`.pid"}} {{.Label "`+label+`.run"}}`)
	out3, _ := docker(ctx, "images", "--filter", "label="+label+".pid", "--format", `{{.ID}}`)
	for _, id := range strings.Fields(out3) {
		l, _ := docker(ctx, "inspect", "-f", `{{index .Config.Labels "`+label+`.pid"}} {{index .Config.Labels "`+label+`.run"}}`, id)
		out2 += "\n" + l
	}
	seen := map[string]bool{}
	for line := range strings.Lines(out + "\n" + out2) {
		pid, run, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || seen[run] {
			continue
		}
		seen[run] = true
		if _, err := os.Stat("/proc/" + pid); err != nil {
			removeByLabel(label + ".run=" + run)
		}
	}
}
