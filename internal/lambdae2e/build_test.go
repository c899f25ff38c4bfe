package lambdae2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// functions are the Lambda functions the tests run; each has ./functions/<name>.
var functions = []string{"ingest", "worker", "poller", "read", "publish"}

var (
	// root is the module's directory; binDir holds the built binaries for the whole run.
	root   string
	binDir string

	buildOnce sync.Once
	buildErr  error
	buildTook time.Duration
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if root, err = moduleRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "lambdae2e:", err)
		return 1
	}
	if binDir, err = os.MkdirTemp("", "halosync-lambdae2e-"); err != nil {
		fmt.Fprintln(os.Stderr, "lambdae2e:", err)
		return 1
	}
	defer os.RemoveAll(binDir)
	return m.Run()
}

// moduleRoot walks up from the package directory to the go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// binaries are the paths of what build makes.
type binaries struct {
	rie       string
	bootstrap map[string]string // function name → its bootstrap
}

func builtBinaries() binaries {
	b := binaries{rie: filepath.Join(binDir, "aws-lambda-rie"), bootstrap: map[string]string{}}
	for _, fn := range functions {
		b.bootstrap[fn] = filepath.Join(binDir, fn, "bootstrap")
	}
	return b
}

// build compiles, once per test binary, a bootstrap per function (the Makefile's build
// flags, but for the host's architecture: the emulator runs them natively) and the
// runtime interface emulator (a go.mod tool), in one go build.
func build(t *testing.T) binaries {
	t.Helper()
	buildOnce.Do(func() {
		start := time.Now()
		out := filepath.Join(binDir, "out")
		args := []string{"build", "-tags", makefileTags(t), "-trimpath", "-ldflags", "-s -w", "-o", out + string(filepath.Separator)}
		for _, fn := range functions {
			args = append(args, "./functions/"+fn)
		}
		args = append(args, rieCommand)
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
		if output, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, output)
			return
		}
		// go build names each binary after its package's directory.
		b := builtBinaries()
		moves := map[string]string{filepath.Join(out, path.Base(rieCommand)): b.rie}
		for _, fn := range functions {
			moves[filepath.Join(out, fn)] = b.bootstrap[fn]
		}
		for from, to := range moves {
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				buildErr = err
				return
			}
			if err := os.Rename(from, to); err != nil {
				buildErr = err
				return
			}
		}
		buildTook = time.Since(start)
	})
	if buildErr != nil {
		t.Fatalf("building the Lambda binaries failed:\n%v", buildErr)
	}
	return builtBinaries()
}

// rieCommand is the emulator's package.
const rieCommand = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// makefileTags reads LAMBDA_TAGS from the Makefile, so that the bootstraps tested and
// measured here are built with the tags `make build` and `sam build` use.
func makefileTags(tb testing.TB) string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if name, value, ok := strings.Cut(line, ":="); ok && strings.TrimSpace(name) == "LAMBDA_TAGS" {
			return strings.TrimSpace(value)
		}
	}
	tb.Fatal("the Makefile sets no LAMBDA_TAGS")
	return ""
}
