package main

// These tests build the real binary, start it the way the engine does (engine address as the last argument,
// port read from stdout) and talk gRPC to it. A fake "engine" serves only gRPC health checks; a fake Python
// in a fake virtualenv records the command line and environment it was started with.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

var binDir string // the built host and a stand-in exec script beside it

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plp-test-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "pulumi-language-python"), ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		panic(err)
	}
	if err := os.WriteFile(filepath.Join(dir, execScriptName), []byte("# stand-in\n"), 0o755); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fakePython records "$@" and the environment in $FAKE_OUT/<tag>.{args,env}, where tag and the exit code
// are the last two program arguments; exit code "sleep" writes the pid to <tag>.pid and sleeps instead.
const fakePython = `#!/bin/sh
eval tag=\${$(($# - 1))}
eval code=\${$#}
for a in "$@"; do printf '%s\n' "$a"; done > "$FAKE_OUT/$tag.args"
env > "$FAKE_OUT/$tag.env"
if [ "$code" = sleep ]; then echo $$ > "$FAKE_OUT/$tag.pid"; exec sleep 300; fi
exit "$code"
`

type fixture struct {
	client     pulumirpc.LanguageRuntimeClient
	host       *exec.Cmd
	hostExited chan struct{}
	stopEngine func()
	engine     string
	project    string // project root, holds venv/bin/python
	out        string // FAKE_OUT
}

func start(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{project: t.TempDir(), out: t.TempDir()}

	// The fake engine: an empty gRPC server still answers health checks.
	stop := make(chan bool)
	engine, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{Cancel: stop})
	if err != nil {
		t.Fatal(err)
	}
	f.engine = fmt.Sprintf("127.0.0.1:%d", engine.Port)
	stopped := false
	f.stopEngine = func() {
		if !stopped {
			stopped = true
			close(stop)
			<-engine.Done
		}
	}
	t.Cleanup(f.stopEngine)

	venvBin := filepath.Join(f.project, "venv", "bin")
	if err := os.MkdirAll(venvBin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(venvBin, "python"), []byte(fakePython), 0o755); err != nil {
		t.Fatal(err)
	}

	// Started like the engine does it, with its logging flags before the address.
	f.host = exec.Command(filepath.Join(binDir, "pulumi-language-python"), "--logtostderr", "-v=9", f.engine)
	f.host.Env = append(os.Environ(), "FAKE_OUT="+f.out)
	f.host.Stderr = os.Stderr
	stdout, err := f.host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.host.Start(); err != nil {
		t.Fatal(err)
	}
	f.hostExited = make(chan struct{})
	go func() { f.host.Wait(); close(f.hostExited) }()
	t.Cleanup(func() {
		f.host.Process.Kill()
		<-f.hostExited
	})
	port, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading port: %v", err)
	}
	conn, err := grpc.NewClient("127.0.0.1:"+strings.TrimSpace(port),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f.client = pulumirpc.NewLanguageRuntimeClient(conn)
	return f
}

// request is what the engine sends for a program in the project root with runtime.options.virtualenv=venv.
func (f *fixture) request(tag, code string) *pulumirpc.RunRequest {
	options, _ := structpb.NewStruct(map[string]any{"virtualenv": "venv"})
	return &pulumirpc.RunRequest{
		MonitorAddress: "127.0.0.1:1111", Project: "proj", Stack: "dev", Organization: "organization",
		Pwd: f.project, Program: ".", DryRun: true, Parallel: 16, Args: []string{tag, code},
		Config:           map[string]string{"proj:name": "world", "proj:token": "s3cret"},
		ConfigSecretKeys: []string{"proj:token"},
		Info: &pulumirpc.ProgramInfo{
			RootDirectory: f.project, ProgramDirectory: f.project, EntryPoint: ".", Options: options,
		},
	}
}

func (f *fixture) read(t *testing.T, name string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.out, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func TestPluginInfoAndEmptyAnswers(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	info, err := f.client.GetPluginInfo(ctx, &emptypb.Empty{})
	if err != nil || info.Version != "3.260.0" {
		t.Fatalf("GetPluginInfo = %v, %v", info, err)
	}
	if _, err := f.client.Handshake(ctx, &pulumirpc.LanguageHandshakeRequest{EngineAddress: f.engine}); err != nil {
		t.Fatal(err)
	}
	pkgs, err := f.client.GetRequiredPackages(ctx, &pulumirpc.GetRequiredPackagesRequest{Info: &pulumirpc.ProgramInfo{}})
	if err != nil || len(pkgs.Packages) != 0 {
		t.Fatalf("GetRequiredPackages = %v, %v", pkgs, err)
	}
	plugins, err := f.client.GetRequiredPlugins(ctx, &pulumirpc.GetRequiredPluginsRequest{})
	if err != nil || len(plugins.Plugins) != 0 {
		t.Fatalf("GetRequiredPlugins = %v, %v", plugins, err)
	}
	stream, err := f.client.InstallDependencies(ctx, &pulumirpc.InstallDependenciesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := stream.Recv(); err == nil || !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("InstallDependencies: want an empty stream, got %v, %v", msg, err)
	}
}

func TestRunCommandLineAndEnvironment(t *testing.T) {
	f := start(t)
	resp, err := f.client.Run(context.Background(), f.request("ok", "0"))
	if err != nil || resp.Error != "" || resp.Bail {
		t.Fatalf("Run = %v, %v", resp, err)
	}
	want := []string{
		filepath.Join(binDir, execScriptName), // found beside the host binary
		"--monitor", "127.0.0.1:1111", "--engine", f.engine, "--project", "proj", "--root_directory", f.project,
		"--stack", "dev", "--pwd", f.project, "--dry_run", "true", "--parallel", "16",
		"--organization", "organization", f.project, "ok", "0",
	}
	if got := f.read(t, "ok.args"); !slices.Equal(got, want) {
		t.Errorf("argv\n got %q\nwant %q", got, want)
	}
	env := map[string]string{}
	for _, kv := range f.read(t, "ok.env") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	var config map[string]string
	if err := json.Unmarshal([]byte(env["PULUMI_CONFIG"]), &config); err != nil ||
		config["proj:name"] != "world" || config["proj:token"] != "s3cret" {
		t.Errorf("PULUMI_CONFIG = %q", env["PULUMI_CONFIG"])
	}
	if env["PULUMI_CONFIG_SECRET_KEYS"] != `["proj:token"]` {
		t.Errorf("PULUMI_CONFIG_SECRET_KEYS = %q", env["PULUMI_CONFIG_SECRET_KEYS"])
	}
	venv := filepath.Join(f.project, "venv")
	if env["VIRTUAL_ENV"] != venv || !strings.HasPrefix(env["PATH"], venv+"/bin:") {
		t.Errorf("VIRTUAL_ENV = %q, PATH = %q", env["VIRTUAL_ENV"], env["PATH"])
	}
}

func TestRunExitCodes(t *testing.T) {
	f := start(t)
	resp, err := f.client.Run(context.Background(), f.request("bail", "32"))
	if err != nil || !resp.Bail || resp.Error != "" {
		t.Errorf("exit 32: want bail, got %v, %v", resp, err)
	}
	resp, err = f.client.Run(context.Background(), f.request("fail", "3"))
	if err != nil || resp.Bail || resp.Error != "program exited with non-zero exit code: 3" {
		t.Errorf("exit 3: got %v, %v", resp, err)
	}
	req := f.request("novenv", "0")
	req.Info.Options, _ = structpb.NewStruct(map[string]any{"virtualenv": "missing"})
	if _, err := f.client.Run(context.Background(), req); err == nil || !strings.Contains(err.Error(), "has no bin/python") {
		t.Errorf("missing virtualenv: got %v", err)
	}
}

func waitFile(t *testing.T, path string) string {
	t.Helper()
	for range 100 {
		if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
			return strings.TrimSpace(string(data))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
	return ""
}

func alive(pid string) bool {
	var n int
	fmt.Sscan(pid, &n)
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
	return err == nil && !strings.Contains(string(stat), ") Z ") && syscall.Kill(n, 0) == nil
}

// The engine cancels the Run call (e.g. it gave up): the program is killed and the host stays up.
func TestRunCancelledKillsProgram(t *testing.T) {
	f := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := f.client.Run(ctx, f.request("cancel", "sleep")); done <- err }()
	pid := waitFile(t, filepath.Join(f.out, "cancel.pid"))
	cancel()
	<-done
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		t.Fatalf("program %s still running after the Run call was cancelled", pid)
	}
	if _, err := f.client.GetPluginInfo(context.Background(), &emptypb.Empty{}); err != nil {
		t.Fatalf("host should still serve: %v", err)
	}
}

// The engine disappears while the program runs: the host notices (health check), kills it and exits.
func TestEngineGoneKillsProgramAndHost(t *testing.T) {
	f := start(t)
	go f.client.Run(context.Background(), f.request("orphan", "sleep"))
	pid := waitFile(t, filepath.Join(f.out, "orphan.pid"))
	f.stopEngine()
	select {
	case <-f.hostExited:
	case <-time.After(3 * healthInterval):
		t.Fatal("host did not exit after the engine went away")
	}
	if alive(pid) {
		t.Fatalf("program %s still running after the host exited", pid)
	}
}

// SIGINT (what the engine sends its plugins on shutdown) kills the program and stops the host.
func TestInterruptKillsProgram(t *testing.T) {
	f := start(t)
	go f.client.Run(context.Background(), f.request("sigint", "sleep"))
	pid := waitFile(t, filepath.Join(f.out, "sigint.pid"))
	f.host.Process.Signal(os.Interrupt)
	select {
	case <-f.hostExited:
	case <-time.After(10 * time.Second):
		t.Fatal("host did not exit on SIGINT")
	}
	if alive(pid) {
		t.Fatalf("program %s still running after SIGINT", pid)
	}
}
