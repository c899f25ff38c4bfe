package localserver

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/readapi"
)

// servedRoutes reads the patterns handler registers from server.go: "METHOD /path", or
// "/path" for a route that takes any method.
func servedRoutes(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "server.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{"ingest.PathPrefix": ingest.PathPrefix,
		"readapi.ObjectRoute": readapi.ObjectRoute, "readapi.NoteRoute": readapi.NoteRoute,
		"readapi.DeliveryRoute": readapi.DeliveryRoute, "readapi.ChangedRoute": readapi.ChangedRoute}
	var eval func(ast.Expr) string
	eval = func(e ast.Expr) string {
		switch e := e.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(e.Value)
			if err != nil {
				t.Fatal(err)
			}
			return s
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				return eval(e.X) + eval(e.Y)
			}
		case *ast.SelectorExpr:
			if x, ok := e.X.(*ast.Ident); ok {
				if v, ok := consts[x.Name+"."+e.Sel.Name]; ok {
					return v
				}
			}
		}
		t.Fatalf("server.go: a route pattern this test cannot read (%T); teach it", e)
		return ""
	}
	// The muxes: variables assigned http.NewServeMux().
	muxes := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if a, ok := n.(*ast.AssignStmt); ok && len(a.Lhs) == 1 && len(a.Rhs) == 1 {
			if call, ok := a.Rhs[0].(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "NewServeMux" {
					muxes[a.Lhs[0].(*ast.Ident).Name] = true
				}
			}
		}
		return true
	})
	var routes []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && muxes[x.Name] {
			routes = append(routes, eval(call.Args[0]))
		}
		return true
	})
	if len(routes) < 5 {
		t.Fatalf("read %d routes from server.go: %q", len(routes), routes)
	}
	return routes
}

var (
	wildcard = regexp.MustCompile(`\{[^}]*\}`)
	// docRoute is a route as README.md writes it: `GET /status`.
	docRoute = regexp.MustCompile("`((?:GET|POST|PUT|PATCH|DELETE|HEAD) /[^`]*)`")
)

// normalRoute drops the wildcards' names ({kinds} and {tickets\|clients...} are one) and
// the method of a route that takes any method.
func normalRoute(r string, anyMethod bool) string {
	r = wildcard.ReplaceAllString(r, "{}")
	if anyMethod {
		if _, path, ok := strings.Cut(r, " "); ok {
			return path
		}
	}
	return r
}

// TestReadmeNamesEveryRoute: the README's table of routes (under `halosync serve`) names
// every route the server serves, and nothing else.
func TestReadmeNamesEveryRoute(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "\nRoutes:\n")
	if !ok {
		t.Fatal(`README.md has no "Routes:" table`)
	}
	table, _, _ = strings.Cut(table, "\n\n")
	var documented []string
	for _, m := range docRoute.FindAllStringSubmatch(table, -1) {
		documented = append(documented, m[1])
	}

	served := servedRoutes(t)
	match := func(doc, route string) bool {
		any := !strings.Contains(route, " ")
		return normalRoute(doc, any) == normalRoute(route, any)
	}
	for _, route := range served {
		found := false
		for _, doc := range documented {
			found = found || match(doc, route)
		}
		if !found {
			t.Errorf("README.md's routes table does not name %q", route)
		}
	}
	for _, doc := range documented {
		found := false
		for _, route := range served {
			found = found || match(doc, route)
		}
		if !found {
			t.Errorf("README.md names the route %q, which the server does not serve", doc)
		}
	}
}
