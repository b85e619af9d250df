package service

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/hashcall/hashcall/verify"
)

type openapiDoc struct {
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]yaml.Node `yaml:"properties"`
			Required   []string             `yaml:"required"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

type operation struct {
	Responses map[string]yaml.Node `yaml:"responses"`
}

func loadDoc(t *testing.T) openapiDoc {
	t.Helper()
	var d openapiDoc
	if err := yaml.Unmarshal(OpenAPI, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestOpenAPIRoutes: the document's operations are exactly the handler's.
func TestOpenAPIRoutes(t *testing.T) {
	d := loadDoc(t)
	var doc []string
	for p, ops := range d.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			doc = append(doc, strings.ToUpper(m)+" "+p)
		}
	}
	var code []string
	for _, r := range Routes() {
		code = append(code, r.Method+" "+r.Path)
	}
	slices.Sort(doc)
	slices.Sort(code)
	if !slices.Equal(doc, code) {
		t.Fatalf("document %v\nhandler  %v", doc, code)
	}
}

// TestOpenAPISchemas: the Verification and CreateRequest schemas list the
// JSON fields the handler writes and reads.
func TestOpenAPISchemas(t *testing.T) {
	d := loadDoc(t)
	check := func(schema string, typ reflect.Type) {
		var fields []string
		var walk func(reflect.Type)
		walk = func(tt reflect.Type) {
			for i := 0; i < tt.NumField(); i++ {
				f := tt.Field(i)
				if f.Anonymous {
					ft := f.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					walk(ft)
					continue
				}
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if name != "" && name != "-" && !slices.Contains(fields, name) {
					fields = append(fields, name)
				}
			}
		}
		walk(typ)
		var props []string
		for p := range d.Components.Schemas[schema].Properties {
			props = append(props, p)
		}
		slices.Sort(fields)
		slices.Sort(props)
		if !slices.Equal(fields, props) {
			t.Errorf("%s: struct fields %v\ndocument        %v", schema, fields, props)
		}
	}
	check("Verification", reflect.TypeFor[Verification]())
	check("CreateRequest", reflect.TypeFor[CreateRequest]())
	// Every outcome is documented.
	var outcome struct {
		Enum []string `yaml:"enum"`
	}
	n := d.Components.Schemas["Verification"].Properties["outcome"]
	if err := n.Decode(&outcome); err != nil {
		t.Fatal(err)
	}
	for _, o := range verify.Outcomes() {
		if !slices.Contains(outcome.Enum, string(o)) {
			t.Errorf("outcome %s not in the document", o)
		}
	}
	// early_keys' items are verify.EarlyKey, every reason documented.
	var early struct {
		Items struct {
			Properties map[string]struct {
				Enum []string `yaml:"enum"`
			} `yaml:"properties"`
		} `yaml:"items"`
	}
	en := d.Components.Schemas["Verification"].Properties["early_keys"]
	if err := en.Decode(&early); err != nil {
		t.Fatal(err)
	}
	var fields, props []string
	typ := reflect.TypeFor[verify.EarlyKey]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	for p := range early.Items.Properties {
		props = append(props, p)
	}
	slices.Sort(fields)
	slices.Sort(props)
	if !slices.Equal(fields, props) {
		t.Errorf("early_keys items: struct fields %v\ndocument %v", fields, props)
	}
	for _, r := range []verify.EarlyReason{verify.EarlyMinKeyDelay, verify.EarlyBeforePhrase} {
		if !slices.Contains(early.Items.Properties["reason"].Enum, string(r)) {
			t.Errorf("early key reason %s not in the document", r)
		}
	}
}

// TestOpenAPIStatuses: every status the handler answers in the tests'
// requests is documented for that operation.
func TestOpenAPIStatuses(t *testing.T) {
	d := loadDoc(t)
	documented := func(method, path string, status int) bool {
		var op operation
		n := d.Paths[path][strings.ToLower(method)]
		if err := n.Decode(&op); err != nil {
			return false
		}
		_, ok := op.Responses[strconv.Itoa(status)]
		return ok
	}
	fc := &fakeCaller{hold: make(chan struct{})}
	_, srv := newTestService(t, fc, func(o *Options) { o.MaxConcurrent = 1 })
	id := do(t, srv, "POST", "/v1/verifications", `{"to":"+447700900123"}`).body["id"].(string)
	cases := []struct{ method, path, route, body string }{
		{"POST", "/v1/verifications", "/v1/verifications", `{"to":"+447700900124"}`}, // 429 max_concurrent
		{"POST", "/v1/verifications", "/v1/verifications", `{"to":"+442079460000"}`}, // 422
		{"POST", "/v1/verifications", "/v1/verifications", `{`},                      // 400
		{"POST", "/v1/verifications", "/v1/verifications", strings.Repeat("x", 20000)},
		{"GET", "/v1/verifications/" + id, "/v1/verifications/{id}", ""},
		{"GET", "/v1/verifications/" + id + "?wait=x", "/v1/verifications/{id}", ""},
		{"GET", "/v1/verifications/none", "/v1/verifications/{id}", ""},
		{"DELETE", "/v1/verifications/none", "/v1/verifications/{id}", ""},
		{"DELETE", "/v1/verifications/" + id, "/v1/verifications/{id}", ""},
		{"GET", "/healthz", "/healthz", ""},
		{"GET", "/readyz", "/readyz", ""},
		{"GET", "/metrics", "/metrics", ""},
		{"GET", "/openapi.yaml", "/openapi.yaml", ""},
	}
	close(fc.hold)
	for _, c := range cases {
		r := do(t, srv, c.method, c.path, c.body)
		if !documented(c.method, c.route, r.status) {
			t.Errorf("%s %s answered %d, which the document does not list", c.method, c.path, r.status)
		}
		if r := do(t, srv, c.method, c.path, c.body, "Authorization", ""); strings.HasPrefix(c.route, "/v1") && !documented(c.method, c.route, r.status) {
			t.Errorf("%s %s without token answered %d, not documented", c.method, c.path, r.status)
		}
	}
}
