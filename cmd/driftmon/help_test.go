package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// helps is every command's -h with the flags and environment variables it must list.
var helps = []struct {
	args  []string
	flags []string
	env   []string
}{
	{[]string{"check", "-h"}, []string{"c"}, []string{"${NAME}", "*_file", "AWS_REGION"}},
	{[]string{"run", "-h"}, []string{"c", "http", "log-level"}, []string{"${NAME}", "AWS_REGION", "DRIFTMON_API_TOKEN", "DRIFTMON_RESULTS_FILE"}},
	{[]string{"demo", "-h"}, []string{"rate", "shift-after", "window", "exit-after-alert", "seed", "log-level", "http"},
		[]string{"DRIFTMON_API_TOKEN", "DRIFTMON_RESULTS_FILE"}},
	{[]string{"baseline", "-h"}, []string{"c", "input", "o", "stream", "time-column"}, []string{"${NAME}"}},
	{[]string{"backtest", "-h"}, []string{"c", "stream", "input", "reference", "time-column", "window-rows", "window-size",
		"exclude", "format", "fdr", "min-rows", "ks-min", "wasserstein-min", "psi-min", "psi-bins", "topic-range",
		"from", "from-offset", "to", "to-offset"}, []string{"${NAME}", "AWS_REGION"}},
	{[]string{"profile", "show", "-h"}, []string{"top"}, nil},
	{[]string{"profile", "-h"}, []string{"top"}, nil},
	{[]string{"version", "-h"}, nil, nil},
}

// help runs args (a -h) and returns what it printed; it must exit 0.
func help(t *testing.T, args []string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("%v: exit code %d, want 0\n%s%s", args, code, out.String(), errOut.String())
	}
	return out.String() + errOut.String()
}

// TestHelpListsFlagsAndEnvironment: every command's -h names each of its flags and
// each environment variable it reads, under "Environment:".
func TestHelpListsFlagsAndEnvironment(t *testing.T) {
	for _, h := range helps {
		got := help(t, h.args)
		for _, f := range h.flags {
			if !strings.Contains(got, "\n  -"+f+" ") && !strings.Contains(got, "\n  -"+f+"\n") {
				t.Errorf("%v lacks the flag -%s:\n%s", h.args, f, got)
			}
		}
		_, env, ok := strings.Cut(got, "\nEnvironment:\n")
		if !ok {
			t.Errorf("%v has no Environment section:\n%s", h.args, got)
			continue
		}
		if len(h.env) == 0 && strings.TrimSpace(env) != "none" {
			t.Errorf("%v: environment %q, want none", h.args, env)
		}
		for _, e := range h.env {
			if !strings.Contains(env, e) {
				t.Errorf("%v lacks the environment variable %s:\n%s", h.args, e, got)
			}
		}
	}
}

// TestHelpNamesEveryEnvironmentVariable reads the source of every package of this
// module that the binary links and finds each environment variable it reads: every
// os.Getenv and os.LookupEnv of a literal or constant name, and os.LookupEnv passed on
// (the config's ${NAME} expansion). Each must be named by some command's -h, so a new
// variable cannot go undocumented.
func TestHelpNamesEveryEnvironmentVariable(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH; it lists the packages the binary links")
	}
	out, err := exec.Command(goCmd, "list", "-deps",
		"-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}} {{join .GoFiles " "}}{{end}}{{end}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		for _, name := range fields[1:] {
			f, err := parser.ParseFile(fset, filepath.Join(fields[0], name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
	}
	if len(files) < 20 {
		t.Fatalf("found only %d files of the binary's packages", len(files))
	}
	// String constants by name, for os.Getenv(SomeEnv) and os.Getenv(pkg.SomeEnv).
	consts := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, spec := range g.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, v := range vs.Values {
						if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[vs.Names[i].Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
		}
	}
	read := map[string]bool{}
	for _, f := range files {
		calls := map[ast.Expr]bool{} // os.X in a call's function position
		ast.Inspect(f, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok {
				calls[c.Fun] = true
				if isOS(c.Fun, "Getenv", "LookupEnv") {
					name, ok := "", false
					switch a := c.Args[0].(type) {
					case *ast.BasicLit:
						name, _ = strconv.Unquote(a.Value)
						ok = true
					case *ast.Ident:
						name, ok = consts[a.Name]
					case *ast.SelectorExpr:
						name, ok = consts[a.Sel.Name]
					}
					if !ok {
						t.Errorf("%s: cannot tell which variable this reads", fset.Position(c.Pos()))
					}
					read[name] = true
				}
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			if e, ok := n.(ast.Expr); ok && !calls[e] {
				switch {
				case isOS(e, "LookupEnv", "Getenv", "ExpandEnv", "Expand"):
					read["${NAME}"] = true
				case isOS(e, "Environ"):
					t.Errorf("%s: os.Environ reads variables no -h can name", fset.Position(e.Pos()))
				}
			}
			return true
		})
	}
	if !read["DRIFTMON_API_TOKEN"] || !read["${NAME}"] {
		t.Fatalf("the scan missed variables the binary is known to read; found %v", read)
	}
	var all strings.Builder
	for _, h := range helps {
		all.WriteString(help(t, h.args))
	}
	for name := range read {
		if !strings.Contains(all.String(), name) {
			t.Errorf("the binary reads %s but no command's -h names it", name)
		}
	}
}

// isOS reports whether e is os.<one of names>.
func isOS(e ast.Expr, names ...string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	if !ok || pkg.Name != "os" {
		return false
	}
	for _, n := range names {
		if sel.Sel.Name == n {
			return true
		}
	}
	return false
}
