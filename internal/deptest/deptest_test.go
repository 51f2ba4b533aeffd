package deptest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// graph: app → store → sql; app's test → fake → jobs/task;
// cmd/tool → jobs/task.
var graph = []Package{
	{ImportPath: "m/cmd/tool", Imports: []string{"m/jobs/task"}},
	{ImportPath: "m/app", Imports: []string{"m/store"}},
	{ImportPath: "m/app [m/app.test]", Imports: []string{"m/store"}, ForTest: "m/app"},
	{ImportPath: "m/app_test [m/app.test]", Imports: []string{"m/app [m/app.test]", "m/fake"}, ForTest: "m/app"},
	{ImportPath: "m/app.test", Imports: []string{"m/app_test [m/app.test]"}},
	{ImportPath: "m/store", Imports: []string{"database/sql"}, DepOnly: true},
	{ImportPath: "m/fake", Imports: []string{"m/jobs/task"}, DepOnly: true},
	{ImportPath: "m/jobs/task", DepOnly: true},
	{ImportPath: "database/sql", Standard: true, DepOnly: true},
}

func TestViolations(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		want []string
	}{
		{"allowed", Rule{BadDeps: map[string]string{"m/jobs": "no"}}, nil},
		{"direct", Rule{BadDeps: map[string]string{"m/store": "no store"}}, []string{
			"m/app must not depend on m/store: no store\n\tvia m/store",
			"m/app (test) must not depend on m/store: no store\n\tvia m/store",
		}},
		{"through another package", Rule{BadDeps: map[string]string{"database/sql": "no SQL"}}, []string{
			"m/app must not depend on database/sql: no SQL\n\tvia m/store → database/sql",
			"m/app (test) must not depend on database/sql: no SQL\n\tvia m/store → database/sql",
		}},
		{"a tree", Rule{BadDeps: map[string]string{"m/jobs/...": "no jobs"}}, []string{
			"m/app (test) must not depend on m/jobs/task: no jobs\n\tvia m/fake → m/jobs/task",
			"m/cmd/tool must not depend on m/jobs/task: no jobs\n\tvia m/jobs/task",
		}},
		{"excepted", Rule{Except: []string{"m/cmd/..."}, BadDeps: map[string]string{"m/jobs/...": "no jobs"}}, []string{
			"m/app (test) must not depend on m/jobs/task: no jobs\n\tvia m/fake → m/jobs/task",
		}},
		{"outside the standard library", Rule{Except: []string{"m/app"}, BadDeps: map[string]string{NonStandard: "std only"}}, []string{
			"m/cmd/tool must not depend on m/jobs/task: std only\n\tvia m/jobs/task",
		}},
		{"the standard library allowed", Rule{Except: []string{"m/cmd/..."}, BadDeps: map[string]string{NonStandard: "std only"}}, []string{
			"m/app must not depend on m/store: std only\n\tvia m/store",
			"m/app (test) must not depend on m/store: std only\n\tvia m/store",
		}},
		{"excepted with its tests", Rule{Except: []string{"m/cmd/...", "m/app"}, BadDeps: map[string]string{"m/jobs/...": "no jobs"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, err := tt.rule.Violations(graph)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range vs {
				got = append(got, v.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestViolationsNeedPackages(t *testing.T) {
	if _, err := (Rule{Pkgs: "./gone"}).Violations(graph[5:]); err == nil || !strings.Contains(err.Error(), "covers no package") {
		t.Errorf("a rule over dependencies only = %v, want an error", err)
	}
	broken := []Package{{ImportPath: "m/x", Error: &struct{ Err string }{"no Go files"}}}
	if _, err := (Rule{}).Violations(broken); err == nil {
		t.Error("a package go list could not load passed")
	}
}
