// Command pulumi-language-python is a minimal Pulumi language host for Python programs.
//
// Why our own: the Go module proxy available here refuses upstream's language host module
// (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3), while sdk/v3 is served. This host
// implements only what `pulumi preview/up/destroy` need, against the LanguageRuntime gRPC interface of sdk/v3:
// it runs the program through the SDK's own `pulumi-language-python-exec` script, which does the real work
// (connecting to the engine and resource monitor, loading config, running __main__.py). It does not compute
// required plugins (providers must be on PATH) and does not install dependencies (the virtualenv is prepared
// outside Pulumi).
//
// The engine starts us as `pulumi-language-python [--logtostderr] [-v=N] [--tracing URL] ENGINE_ADDRESS`,
// reads the port we listen on from the first line of our stdout, and forwards the rest of our
// stdout/stderr (so also the Python program's) to the user.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	// version is reported to the engine; it matches the CLI and SDK we build against.
	version = "3.260.0"
	// execScriptName is the SDK's Python entry point that runs a Pulumi program (sdk/python/cmd/).
	execScriptName = "pulumi-language-python-exec"
	// bailExitCode is what the exec script exits with after it already reported the error to the user
	// (e.g. an unhandled exception, shown with its traceback): the engine must then stop without adding a
	// message of its own, which RunResponse.Bail requests.
	bailExitCode = 32
	// healthInterval is how often we check that the engine is still there; if not, we shut down, which kills
	// a running program.
	healthInterval = 10 * time.Second
)

func main() {
	// Our own flag set: the SDK links glog, which already defines -v and -logtostderr on flag.CommandLine.
	flags := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	tracing := flags.String("tracing", "", "Zipkin-compatible tracing endpoint, passed on to the program")
	// The engine passes its own logging flags to every plugin; we accept and ignore them.
	flags.Bool("logtostderr", false, "ignored")
	flags.Int("v", 0, "ignored")
	_ = flags.Parse(os.Args[1:])
	engineAddress := ""
	if flags.NArg() > 0 {
		engineAddress = flags.Arg(flags.NArg() - 1) // positional, always last
	}

	// ctx ends on SIGINT/SIGTERM (the engine interrupts its plugins on shutdown), on the Cancel RPC, or when
	// the engine stops answering health checks. Ending it kills a running program (see host.Run).
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if engineAddress != "" {
		if err := rpcutil.Healthcheck(ctx, engineAddress, healthInterval, cancel); err != nil {
			fatalf("could not watch the engine at %s: %v", engineAddress, err)
		}
	}

	h := &host{ctx: ctx, cancel: cancel, engineAddress: engineAddress, tracing: *tracing}
	h.exec, h.execErr = findExecScript()

	stop := make(chan bool)
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stop,
		Init: func(s *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(s, h)
			return nil
		},
	})
	if err != nil {
		fatalf("could not start the language host's gRPC server: %v", err)
	}
	fmt.Printf("%d\n", handle.Port) // the engine reads this line
	go func() { <-ctx.Done(); close(stop) }()
	if err := <-handle.Done; err != nil {
		fatalf("language host stopped: %v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pulumi-language-python: "+format+"\n", args...)
	os.Exit(1)
}

// findExecScript looks for the exec script beside our own executable (tools/build.sh installs it there),
// then on PATH.
func findExecScript() (string, error) {
	if self, err := os.Executable(); err == nil {
		if self, err = filepath.EvalSymlinks(self); err == nil {
			candidate := filepath.Join(filepath.Dir(self), execScriptName)
			if _, err := os.Stat(candidate); err == nil {
				return candidate, nil
			}
		}
	}
	path, err := exec.LookPath(execScriptName)
	if err != nil {
		return "", fmt.Errorf("%s not found beside the language host nor on PATH", execScriptName)
	}
	return filepath.Abs(path)
}

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	ctx     context.Context // see main
	cancel  context.CancelFunc
	exec    string // path of the exec script
	execErr error  // why exec is empty
	tracing string

	mu            sync.Mutex
	engineAddress string // from the command line; Handshake may override it
}

func (h *host) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.engineAddress = req.GetEngineAddress()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

// GetRequiredPlugins and GetRequiredPackages report nothing: the engine then finds the providers a program
// uses when it registers resources, on PATH, instead of downloading them up front.
func (h *host) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *host) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *host) GetProgramDependencies(context.Context, *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}

func (h *host) RuntimeOptionsPrompts(context.Context, *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

// InstallDependencies succeeds without output: dependencies live in a virtualenv prepared outside Pulumi.
func (h *host) InstallDependencies(*pulumirpc.InstallDependenciesRequest,
	grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	return nil
}

func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	python, _, err := choosePython(req.GetInfo())
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, python, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", python, err)
	}
	return &pulumirpc.AboutResponse{
		Executable: python,
		Version:    strings.TrimPrefix(strings.TrimSpace(string(out)), "Python "),
	}, nil
}

// Cancel asks us to abort: it kills a running program and refuses further runs.
func (h *host) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.cancel()
	return &emptypb.Empty{}, nil
}

// Run runs the program to completion. Its stdout/stderr go to ours, which the engine shows to the user.
func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	if h.ctx.Err() != nil {
		return nil, status.Error(codes.Canceled, "the language host is shutting down")
	}
	// The program dies with the request (the engine went away or gave up) or with the host (see main).
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(h.ctx, stop)()

	cmd, err := h.command(ctx, req)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Python gets SIGTERM first and SIGKILL if it has not exited 5 s later.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second

	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case ctx.Err() != nil:
		return &pulumirpc.RunResponse{Error: "program cancelled: " + err.Error()}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == bailExitCode:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() > 0:
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("program exited with non-zero exit code: %d", exitErr.ExitCode()),
		}, nil
	case errors.As(err, &exitErr):
		return &pulumirpc.RunResponse{Error: "program exited unexpectedly: " + err.Error()}, nil
	default:
		return &pulumirpc.RunResponse{
			Error: "problem executing program (could not run language executor): " + err.Error(),
		}, nil
	}
}

// command builds `python pulumi-language-python-exec --flags... PROGRAM ARGS...` with the environment the
// Python SDK reads (pulumi/runtime/config.py: PULUMI_CONFIG, PULUMI_CONFIG_SECRET_KEYS). The exec script's
// argparse flags are the contract; it has no flag for req.LoaderTarget/MapperTarget, which only codegen uses.
func (h *host) command(ctx context.Context, req *pulumirpc.RunRequest) (*exec.Cmd, error) {
	if h.exec == "" {
		return nil, h.execErr
	}
	info := req.GetInfo()
	python, venv, err := choosePython(info)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	engineAddress := h.engineAddress
	h.mu.Unlock()

	// Older engines send only Program (relative to Pwd); current ones send Info. An absolute program path
	// works for both and is what the exec script compares against to trim tracebacks to the user's code.
	program := req.GetProgram()
	if info != nil && info.GetEntryPoint() != "" {
		program = filepath.Join(info.GetProgramDirectory(), info.GetEntryPoint())
	} else if !filepath.IsAbs(program) {
		program = filepath.Join(req.GetPwd(), program)
	}

	args := []string{h.exec}
	flagIf := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name, value)
		}
	}
	flagIf("monitor", req.GetMonitorAddress())
	flagIf("engine", engineAddress)
	flagIf("project", req.GetProject())
	flagIf("root_directory", info.GetRootDirectory())
	flagIf("stack", req.GetStack())
	flagIf("pwd", req.GetPwd())
	flagIf("dry_run", strconv.FormatBool(req.GetDryRun()))   // the script tests == "true"
	flagIf("parallel", strconv.Itoa(int(req.GetParallel()))) // the script calls int() on it: always send
	flagIf("tracing", h.tracing)
	flagIf("organization", req.GetOrganization())
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	config := req.GetConfig()
	if config == nil {
		config = map[string]string{} // "null" would break the SDK's get_config_env
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	secretKeysJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}

	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Dir = req.GetPwd()
	// Later entries win over inherited ones (os/exec keeps the last value of a duplicated key).
	cmd.Env = append(os.Environ(),
		"PULUMI_CONFIG="+string(configJSON),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeysJSON),
		"PYTHONUNBUFFERED=1", // so print() output reaches the user in order, even if the program is killed
	)
	if venv != "" {
		// What `source venv/bin/activate` does, so that subprocesses of the program find the venv's tools.
		cmd.Env = append(cmd.Env, "VIRTUAL_ENV="+venv,
			"PATH="+filepath.Join(venv, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return cmd, nil
}

// choosePython picks the interpreter: the Pulumi.yaml option runtime.options.virtualenv (relative to the
// project root), else $PULUMI_PYTHON_CMD, else python3 on PATH. It returns the venv directory if one is used.
func choosePython(info *pulumirpc.ProgramInfo) (python, venv string, err error) {
	options := info.GetOptions().AsMap()
	if tc, ok := options["toolchain"].(string); ok && tc != "" && tc != "pip" {
		return "", "", fmt.Errorf("runtime option toolchain=%q is not supported by this language host; "+
			"use a virtualenv (runtime.options.virtualenv)", tc)
	}
	if v, ok := options["virtualenv"].(string); ok && v != "" {
		if !filepath.IsAbs(v) {
			v = filepath.Join(info.GetRootDirectory(), v)
		}
		python = filepath.Join(v, "bin", "python")
		if _, err := os.Stat(python); err != nil {
			return "", "", fmt.Errorf("virtualenv %s (runtime.options.virtualenv) has no bin/python: %w", v, err)
		}
		return python, v, nil
	}
	if cmd := os.Getenv("PULUMI_PYTHON_CMD"); cmd != "" {
		python = cmd
	} else {
		python = "python3"
	}
	if python, err = exec.LookPath(python); err != nil {
		return "", "", fmt.Errorf("no Python interpreter: %w", err)
	}
	return python, "", nil
}
