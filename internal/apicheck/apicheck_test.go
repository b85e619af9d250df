package apicheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/hashcall/hashcall"

// listed are the public packages the API promise covers; the test fails if
// one of them is no longer found, so a rename cannot silently skip it.
var listed = []string{"dtmf", "media", "media/wav", "sip", "verify", "replay", "prompts", "voicemail", "numbermatch"}

// listPackage is the part of go list -json the test reads.
type listPackage struct {
	ImportPath string
	Name       string
	Export     string
	Imports    []string
	Standard   bool
	Module     *struct{ Path string }
}

// isInternal reports whether path is one of hashcall's internal packages.
func isInternal(path string) bool {
	return path == module+"/internal" || strings.HasPrefix(path, module+"/internal/")
}

// isPublic reports whether p is a public library package of the module:
// not internal, not a command, not a tool.
func isPublic(p listPackage) bool {
	rel, ok := strings.CutPrefix(p.ImportPath, module+"/")
	if !ok || p.Name == "main" || isInternal(p.ImportPath) {
		return false
	}
	return !strings.HasPrefix(rel, "cmd/") && !strings.HasPrefix(rel, "tools/")
}

// goList runs go list -export -deps -json over the module's packages and
// returns every package it printed, keyed by import path.
func goList(t *testing.T) map[string]listPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-export", "-deps", "-json=ImportPath,Name,Export,Imports,Standard,Module", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs := map[string]listPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

func TestPublicAPINoInternal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds export data of the whole module")
	}
	pkgs := goList(t)
	var public []string
	for path, p := range pkgs {
		if isPublic(p) {
			public = append(public, path)
		}
	}
	sort.Strings(public)
	for _, rel := range listed {
		if !slices.Contains(public, module+"/"+rel) {
			t.Errorf("public package %s not found by go list", rel)
		}
	}

	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		p, ok := pkgs[path]
		if !ok || p.Export == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(p.Export)
	})

	var graph strings.Builder
	for _, path := range public {
		tp, err := imp.Import(path)
		if err != nil {
			t.Fatalf("import %s: %v", path, err)
		}
		for _, v := range apiViolations(tp) {
			t.Errorf("%s", v)
		}
		var deps []string
		for _, d := range pkgs[path].Imports {
			if rel, ok := strings.CutPrefix(d, module+"/"); ok {
				deps = append(deps, rel)
			}
		}
		fmt.Fprintf(&graph, "\n  %s → %s", strings.TrimPrefix(path, module+"/"), orNone(strings.Join(deps, ", ")))
	}
	t.Logf("public packages and the hashcall packages they import (internal/ ones only in the implementation):%s", graph.String())
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// apiViolations lists every exported declaration of pkg whose type mentions
// a type of a hashcall internal/ package.
func apiViolations(pkg *types.Package) []string {
	w := &walker{pkg: pkg, seen: map[types.Type]bool{}}
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		w.where = pkg.Path() + "." + name
		clear(w.seen)
		switch obj := obj.(type) {
		case *types.TypeName:
			w.declaredType(obj)
		default: // Func, Var, Const
			w.typ(obj.Type())
		}
	}
	return w.found
}

// walker visits the types an exported declaration makes visible.
type walker struct {
	pkg   *types.Package
	where string // the declaration being checked, for messages
	seen  map[types.Type]bool
	found []string
}

// declaredType checks an exported type: what it is, and the exported
// methods of T and *T (promoted ones included).
func (w *walker) declaredType(tn *types.TypeName) {
	if tn.IsAlias() {
		w.typ(tn.Type())
		return
	}
	named, ok := tn.Type().(*types.Named)
	if !ok {
		w.typ(tn.Type())
		return
	}
	w.seen[named] = true
	w.typeParams(named.TypeParams())
	w.underlying(named.Underlying())
	w.methods(named)
}

func (w *walker) methods(named *types.Named) {
	where := w.where
	ms := types.NewMethodSet(types.NewPointer(named))
	for m := range ms.Methods() {
		if !m.Obj().Exported() {
			continue
		}
		w.where = where + "." + m.Obj().Name()
		w.typ(m.Type())
	}
	w.where = where
}

func (w *walker) typeParams(tps *types.TypeParamList) {
	for tp := range tps.TypeParams() {
		w.typ(tp.Constraint())
	}
}

// typ checks a type that the API shows.
func (w *walker) typ(t types.Type) {
	if t == nil {
		return
	}
	if n, ok := types.Unalias(t).(*types.Named); ok && n.Obj().Pkg() != nil && isInternal(n.Obj().Pkg().Path()) {
		w.found = append(w.found, fmt.Sprintf("%s mentions %s.%s", w.where, n.Obj().Pkg().Path(), n.Obj().Name()))
		return
	}
	if w.seen[t] {
		return
	}
	w.seen[t] = true
	switch t := t.(type) {
	case *types.Alias:
		for a := range t.TypeArgs().Types() {
			w.typ(a)
		}
		w.typ(types.Unalias(t))
	case *types.Named:
		obj := t.Obj()
		for a := range t.TypeArgs().Types() {
			w.typ(a)
		}
		if obj.Pkg() == w.pkg && !obj.Exported() {
			// An unexported type handed out by an exported declaration:
			// what it shows is part of the API too.
			w.underlying(t.Underlying())
			w.methods(t)
		}
		// Exported types of this or another public package are checked
		// as their own declarations; other modules cannot name hashcall's
		// internal packages.
	default:
		w.underlying(t)
	}
}

// underlying checks a type literal.
func (w *walker) underlying(t types.Type) {
	switch t := t.(type) {
	case *types.Basic, *types.TypeParam:
	case *types.Pointer:
		w.typ(t.Elem())
	case *types.Slice:
		w.typ(t.Elem())
	case *types.Array:
		w.typ(t.Elem())
	case *types.Chan:
		w.typ(t.Elem())
	case *types.Map:
		w.typ(t.Key())
		w.typ(t.Elem())
	case *types.Signature:
		w.typeParams(t.TypeParams())
		for v := range t.Params().Variables() {
			w.typ(v.Type())
		}
		for v := range t.Results().Variables() {
			w.typ(v.Type())
		}
	case *types.Struct:
		where := w.where
		for f := range t.Fields() {
			// An embedded field, even of an unexported type, promotes
			// that type's exported fields and methods.
			if f.Exported() || f.Embedded() {
				w.where = where + "." + f.Name()
				w.typ(f.Type())
			}
		}
		w.where = where
	case *types.Interface:
		where := w.where
		for m := range t.Methods() {
			if m.Exported() {
				w.where = where + "." + m.Name()
				w.typ(m.Type())
			}
		}
		w.where = where
		for e := range t.EmbeddedTypes() {
			w.typ(e)
		}
	case *types.Union:
		for term := range t.Terms() {
			w.typ(term.Type())
		}
	default:
		w.typ(t)
	}
}

// importerFunc adapts a function to types.Importer.
type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// check type-checks one file as package path.
func check(t *testing.T, fset *token.FileSet, path, src string, imp types.Importer) *types.Package {
	t.Helper()
	f, err := parser.ParseFile(fset, path+".go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := (&types.Config{Importer: imp}).Check(path, fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

// TestWalkerFindsEveryKindOfMention keeps TestPublicAPINoInternal honest:
// each way a public package can hand out an internal type is reported, and
// implementation-only uses are not.
func TestWalkerFindsEveryKindOfMention(t *testing.T) {
	fset := token.NewFileSet()
	fake := check(t, fset, module+"/internal/fake", `package fake
type T struct{ N int }
type I interface{ M() }
type Kind int
func Helper() int { return 1 }
`, nil)
	pub := check(t, fset, module+"/pub", `package pub

import "`+module+`/internal/fake"

func Ret() *fake.T              { return nil }
func Arg(func(fake.Kind))       {}
var V []fake.T
const C fake.Kind = 1
type Alias = fake.T
type S struct {
	Field map[string]fake.I
	fake.T
	hidden fake.T
}
type G[X any] struct{ X X }
var GV G[fake.Kind]
type Iface interface{ Get() chan fake.T }
type R struct{}
func (R) Method(fake.T)  {}
func (R) method(fake.T)  {}
type hidden struct{ Out fake.Kind }
func Hidden() hidden { return hidden{} }
type Cons interface{ ~string | fake.Kind }
type inner struct{ Out fake.T }
func (inner) Promoted() fake.Kind { return 0 }
type P struct{ inner }

// Implementation-only uses: not reported.
func Impl() int                 { return fake.Helper() }
func impl(fake.T)               {}
var v fake.T
type Clean struct{ n fake.Kind; N int; quiet }
type quiet struct{ n fake.T }
`, importerFunc(func(path string) (*types.Package, error) {
		if path == fake.Path() {
			return fake, nil
		}
		return nil, fmt.Errorf("no package %s", path)
	}))
	var got []string
	for _, v := range apiViolations(pub) {
		where, _, _ := strings.Cut(v, " mentions ")
		got = append(got, strings.TrimPrefix(where, module+"/pub."))
	}
	sort.Strings(got)
	want := []string{"Alias", "Arg", "C", "Cons", "GV", "Hidden.Out", "Iface.Get", "P.Promoted", "P.inner.Out", "P.inner.Promoted", "R.Method", "Ret", "S.Field", "S.T", "V"}
	if !slices.Equal(got, want) {
		t.Errorf("reported %q\nwant     %q", got, want)
	}
}
