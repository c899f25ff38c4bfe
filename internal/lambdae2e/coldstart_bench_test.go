package lambdae2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// BenchmarkColdStart is each function's initialisation: from exec of its bootstrap to its
// first request for an invocation from a stand-in Runtime API, with its environment set as
// in the emulator tests and every AWS endpoint a closed local port (no function calls AWS
// before its first invocation). It reports init-ms and each bootstrap's size built for
// Lambda (arm64 and amd64, the Makefile's flags) as MB-arm64 and MB-amd64.
func BenchmarkColdStart(b *testing.B) {
	for _, fn := range functions {
		b.Run(fn, func(b *testing.B) { benchColdStart(b, "./functions/"+fn, fn) })
	}
}

// BenchmarkFloorColdStart is BenchmarkColdStart for a hello-world aws-lambda-go function,
// built the same way: the start-up and size of the runtime client alone.
func BenchmarkFloorColdStart(b *testing.B) {
	benchColdStart(b, "./internal/lambdae2e/testdata/hello", "hello")
}

func benchColdStart(b *testing.B, pkg, name string) {
	dir := b.TempDir()
	sizes := map[string]int64{}
	for _, arch := range []string{"arm64", "amd64"} {
		out := filepath.Join(dir, arch, "bootstrap")
		buildBootstrap(b, pkg, arch, out)
		info, err := os.Stat(out)
		if err != nil {
			b.Fatal(err)
		}
		sizes[arch] = info.Size()
	}
	bootstrap := filepath.Join(dir, runtime.GOARCH, "bootstrap")

	cfgFile := filepath.Join(dir, "halosync.yaml")
	example, err := os.ReadFile(filepath.Join(root, "halosync.example.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, example, 0o600); err != nil {
		b.Fatal(err)
	}
	// A port nothing listens on: a call to AWS during start-up fails fast instead of
	// leaving the machine.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	next := make(chan time.Time, 1)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/runtime/invocation/next") {
			select {
			case next <- time.Now():
			default:
			}
			<-r.Context().Done() // no invocation: the process is killed while it waits
			return
		}
		http.NotFound(w, r)
	}))
	defer api.Close()

	env := append(lambdaEnv(b, "halosync-"+name),
		"AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(api.URL, "http://"),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench",
		"AWS_ENDPOINT_URL="+closedURL,
		"QUEUE_URL="+closedURL+"/000000000000/halosync-changes",
		"TABLE_NAME=halosync", "EVENT_BUS_NAME=halosync-changes",
		"HALOSYNC_CONFIG_FILE="+cfgFile, "LOG_LEVEL=info",
	)
	var total time.Duration
	for b.Loop() {
		total += startOnce(b, bootstrap, env, next)
	}
	// Reported after the loop: the loop's first iteration clears reported metrics.
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "init-ms")
	for arch, size := range sizes {
		b.ReportMetric(float64(size)/(1<<20), "MB-"+arch)
	}
}

// startOnce runs bootstrap until its first request for an invocation and returns how long
// that took from exec; the process is then killed.
func startOnce(b *testing.B, bootstrap string, env []string, next <-chan time.Time) time.Duration {
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bootstrap)
	cmd.Dir, cmd.Env = filepath.Dir(bootstrap), env
	var output strings.Builder
	cmd.Stdout, cmd.Stderr = &output, &output
	exited := make(chan error, 1)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { exited <- cmd.Wait() }()
	select {
	case at := <-next:
		_ = cmd.Process.Kill()
		<-exited
		return at.Sub(start)
	case err := <-exited:
		b.Fatalf("%s exited before asking for an invocation (%v):\n%s", bootstrap, err, output.String())
	}
	return 0
}

// buildBootstrap builds pkg as a Lambda bootstrap for linux/arch, with the Makefile's flags.
func buildBootstrap(b *testing.B, pkg, arch, out string) {
	cmd := exec.Command("go", "build", "-tags", makefileTags(b), "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if output, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build %s for %s: %v\n%s", pkg, arch, err, output)
	}
}
