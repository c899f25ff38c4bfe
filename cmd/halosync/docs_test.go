package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The commands and flags of halosync, read from this directory's source, against README.md
// and docs/: every one is documented, and every one the documentation names exists.

// cliCommand is a top-level command: its subcommands and every flag it or they take.
type cliCommand struct {
	subs  []string
	flags map[string]bool
}

// flagMethods are the flag.FlagSet methods that define a flag, and which argument names it.
var flagMethods = map[string]int{
	"String": 0, "Bool": 0, "Int": 0, "Int64": 0, "Uint": 0, "Uint64": 0, "Float64": 0,
	"Duration": 0, "Func": 0, "BoolFunc": 0, "Var": 1, "TextVar": 1,
}

// readCLI reads the commands from run's switch, each command's subcommands from its
// function's switch or map of functions, and the flags from the file of that function.
func readCLI(t *testing.T) map[string]*cliCommand {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	funcs := map[string]*ast.FuncDecl{}
	funcFile := map[string]string{}
	parsed := map[string]*ast.File{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed[name] = f
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil {
				funcs[fn.Name.Name], funcFile[fn.Name.Name] = fn, name
			}
		}
	}
	str := func(e ast.Expr) (string, bool) {
		if l, ok := e.(*ast.BasicLit); ok && l.Kind == token.STRING {
			s, err := strconv.Unquote(l.Value)
			return s, err == nil
		}
		return "", false
	}
	// Flag-like aliases of commands (-h, --help, --version) are not commands of their own.
	help := func(s string) bool { return strings.HasPrefix(s, "-") }
	// dispatch lists the names fn's switch cases and maps of functions dispatch on, with
	// the function each calls.
	dispatch := func(fn *ast.FuncDecl) map[string]string {
		out := map[string]string{}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CaseClause:
				called := ""
				for _, s := range n.Body {
					if r, ok := s.(*ast.ReturnStmt); ok && len(r.Results) == 1 {
						if c, ok := r.Results[0].(*ast.CallExpr); ok {
							if id, ok := c.Fun.(*ast.Ident); ok {
								called = id.Name
							}
						}
					}
				}
				for _, e := range n.List {
					if s, ok := str(e); ok && !help(s) {
						out[s] = called
					}
				}
			case *ast.KeyValueExpr:
				if s, ok := str(n.Key); ok {
					if id, ok := n.Value.(*ast.Ident); ok && funcs[id.Name] != nil {
						out[s] = id.Name
					}
				}
			}
			return true
		})
		return out
	}

	cmds := map[string]*cliCommand{}
	fileCmd := map[string]string{}
	for name, fn := range dispatch(funcs["run"]) {
		if funcs[fn] == nil {
			t.Fatalf("run: command %q calls no function of this package", name)
		}
		c := &cliCommand{flags: map[string]bool{}}
		for sub := range dispatch(funcs[fn]) {
			c.subs = append(c.subs, sub)
		}
		sort.Strings(c.subs)
		cmds[name] = c
		fileCmd[funcFile[fn]] = name
	}
	if len(cmds) < 5 {
		t.Fatalf("read %d commands from run", len(cmds))
	}
	for name, f := range parsed {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			arg, isFlag := flagMethods[sel.Sel.Name]
			recv := sel.X
			if s, ok := recv.(*ast.SelectorExpr); ok {
				recv = s.Sel
			}
			if id, ok := recv.(*ast.Ident); !isFlag || !ok || id.Name != "fs" || len(call.Args) <= arg {
				return true
			}
			flagName, ok := str(call.Args[arg])
			if !ok {
				t.Errorf("%s: a flag whose name is not a literal", fset.Position(call.Pos()))
				return true
			}
			cmd, ok := fileCmd[name]
			if !ok {
				t.Errorf("%s: flag --%s is defined outside a command's file; teach this test whose it is", fset.Position(call.Pos()), flagName)
				return true
			}
			cmds[cmd].flags[flagName] = true
			return true
		})
	}
	return cmds
}

// docSection is the text under one heading of README.md or docs/*.md.
type docSection struct {
	where, heading, text string
}

func readDocs(t *testing.T) []docSection {
	t.Helper()
	paths, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []docSection
	for _, p := range append([]string{"../../README.md"}, paths...) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cur := docSection{where: filepath.Base(p)}
		fenced := false
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "```") {
				fenced = !fenced
			}
			if !fenced && strings.HasPrefix(line, "#") {
				out = append(out, cur)
				cur = docSection{where: cur.where, heading: line}
			}
			cur.text += line + "\n"
		}
		out = append(out, cur)
	}
	return out
}

var (
	docFlag = regexp.MustCompile(`(^|[^\w-])--([a-z][a-z0-9-]*)`)
	// cliSpan is a command line in the documentation: a code span, or a line of a code
	// block, that starts with halosync (or go run ./cmd/halosync).
	cliSpan = regexp.MustCompile("(?m)`halosync ([^`]*)`|^\\s*(?:go run \\./cmd/)?halosync ([a-z][^#\\n]*)")
)

func docFlags(text string) map[string]bool {
	out := map[string]bool{}
	for _, m := range docFlag.FindAllStringSubmatch(text, -1) {
		out[m[2]] = true
	}
	return out
}

func TestDocsNameEveryCommandAndFlag(t *testing.T) {
	cmds := readCLI(t)
	docs := readDocs(t)
	all := ""
	for _, s := range docs {
		all += s.text
	}
	flat := strings.Join(strings.Fields(all), " ")
	for name, c := range cmds {
		if !strings.Contains(flat, "halosync "+name) {
			t.Errorf("README.md and docs/ never name `halosync %s`", name)
		}
		for _, sub := range c.subs {
			if sub == "help" {
				continue // `halosync COMMAND help` is the command's --help
			}
			if !strings.Contains(flat, "halosync "+name+" "+sub) {
				t.Errorf("README.md and docs/ never name `halosync %s %s`", name, sub)
			}
		}
		// A flag is documented in a section that names its command.
		for f := range c.flags {
			found := false
			for _, s := range docs {
				found = found || (strings.Contains(strings.Join(strings.Fields(s.text), " "), "halosync "+name) && docFlags(s.text)[f])
			}
			if !found {
				t.Errorf("no section of README.md or docs/ that names `halosync %s` names its flag --%s", name, f)
			}
		}
	}
}

func TestDocsNameOnlyRealCommandsAndFlags(t *testing.T) {
	cmds := readCLI(t)
	for _, s := range readDocs(t) {
		for _, m := range cliSpan.FindAllStringSubmatch(s.text, -1) {
			line := strings.Join(strings.Fields(m[1]+m[2]), " ")
			words := strings.Fields(line)
			if len(words) == 0 {
				continue
			}
			words[0] = strings.TrimRight(words[0], ":,.")
			if strings.ToUpper(words[0]) == words[0] {
				continue // a placeholder: `halosync COMMAND --help`
			}
			c, ok := cmds[words[0]]
			if !ok {
				t.Errorf("%s: `halosync %s` names no command", s.where, line)
				continue
			}
			if len(c.subs) > 0 && len(words) > 1 && !strings.HasPrefix(words[1], "-") && strings.ToUpper(words[1]) != words[1] {
				for _, sub := range strings.Split(words[1], "|") {
					if !slices.Contains(c.subs, sub) {
						t.Errorf("%s: `halosync %s`: %s is not a subcommand of %s", s.where, line, sub, words[0])
					}
				}
			}
			for f := range docFlags(line) {
				if !c.flags[f] && f != "help" {
					t.Errorf("%s: `halosync %s`: %s takes no flag --%s", s.where, line, words[0], f)
				}
			}
		}
		// The flag tables of a command's own section name its flags only.
		for name, c := range cmds {
			if !strings.Contains(s.heading, "`halosync "+name) {
				continue
			}
			for _, line := range strings.Split(s.text, "\n") {
				if !strings.HasPrefix(line, "| `") {
					continue
				}
				cell, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
				for f := range docFlags(cell) {
					if !c.flags[f] && f != "help" {
						t.Errorf("%s: %q: %s takes no flag --%s", s.where, cell, name, f)
					}
				}
			}
		}
	}
}

// TestReadmeNamesTheGoVersion: the README's prerequisites name the Go version go.mod asks for.
func TestReadmeNamesTheGoVersion(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := "- Go " + string(m[1]) + " or newer"; !strings.Contains(string(readme), want) {
		t.Errorf("README.md's prerequisites do not say %q", want)
	}
}
