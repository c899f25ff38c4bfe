package layering_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/halosync/halosync/"

// root is the module's directory.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// deps lists a package's dependencies, itself included, as `go list -deps` does.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// packages lists the module's packages below dir (internal, cmd, functions).
func packages(t *testing.T, patterns ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, patterns...)...)
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}

func importsAWS(ds []string) (sdk, lambda bool) {
	for _, d := range ds {
		sdk = sdk || strings.HasPrefix(d, "github.com/aws/aws-sdk-go-v2") || strings.HasPrefix(d, "github.com/aws/smithy-go")
		lambda = lambda || strings.HasPrefix(d, "github.com/aws/aws-lambda-go")
	}
	return sdk, lambda
}

// pure are the packages that hold business rules or product code every adapter shares:
// none may import the AWS SDK or aws-lambda-go, directly or not.
var pure = []string{
	"change", "changeevent", "config", "connection", "auth", "filter", "storedfields", "halo", "haloapi", "halosim",
	"message", "metrics", "apierror", "ingest", "worker", "poller", "webhooks", "pipeline", "sqlite", "localserver",
	"readapi", "verify",
}

func TestRulesImportNoAWS(t *testing.T) {
	for _, p := range pure {
		sdk, lambda := importsAWS(deps(t, module+"internal/"+p))
		if sdk || lambda {
			t.Errorf("internal/%s imports the AWS SDK (%v) or aws-lambda-go (%v)", p, sdk, lambda)
		}
	}
}

func TestProductCarriesNoTestCode(t *testing.T) {
	for _, pkg := range []string{"cmd/halosync", "functions/ingest", "functions/worker", "functions/poller", "functions/read", "functions/publish"} {
		for _, d := range deps(t, module+pkg) {
			if d == "testing" || d == "net/http/httptest" || strings.HasSuffix(d, "test") && strings.HasPrefix(d, module) {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}

func TestMainsAreThin(t *testing.T) {
	for _, fn := range []string{"ingest", "worker", "poller", "read", "publish"} {
		b, err := os.ReadFile(filepath.Join(root(t), "functions", fn, "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), "\n"); n > 30 {
			t.Errorf("functions/%s/main.go has %d lines; start-up wiring belongs in internal/lambdaenv", fn, n)
		}
	}
}

// row is one line of ARCHITECTURE.md's package table: `| `internal/x`, `internal/y` | what | imports AWS? |`.
var row = regexp.MustCompile("^\\| (`[a-z0-9/*-]+`(?:, `[a-z0-9/*-]+`)*) \\|.*\\| ([^|]+) \\|$")

func TestArchitecturePackageTableMatchesTheCode(t *testing.T) {
	f, err := os.Open(filepath.Join(root(t), "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	documented := map[string]string{} // package → the table's "imports AWS?" cell
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		for _, name := range strings.Split(m[1], ", ") {
			documented[strings.Trim(name, "`")] = strings.TrimSpace(m[2])
		}
	}
	if len(documented) == 0 {
		t.Fatal("no package table found in docs/ARCHITECTURE.md")
	}
	var code []string
	for _, p := range packages(t, "./internal/...", "./cmd/...", "./functions/...") {
		code = append(code, strings.TrimPrefix(p, module))
	}
	for _, p := range code {
		cell, ok := documented[p]
		if !ok && strings.HasPrefix(p, "functions/") {
			cell, ok = documented["functions/*"]
		}
		if !ok {
			t.Errorf("package %s is not in docs/ARCHITECTURE.md's package table", p)
			continue
		}
		sdk, lambda := importsAWS(deps(t, module+p))
		if saysNo := strings.HasPrefix(cell, "no"); saysNo == (sdk || lambda) {
			t.Errorf("docs/ARCHITECTURE.md says %s imports AWS: %q; it imports the SDK: %v, aws-lambda-go: %v", p, cell, sdk, lambda)
		}
	}
	for p := range documented {
		if p != "functions/*" && !slices.Contains(code, p) {
			t.Errorf("docs/ARCHITECTURE.md's package table names %s, which does not exist", p)
		}
	}
}
