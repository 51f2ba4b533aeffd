// The layout's arrows, as tests: directory state → plan → converge → local
// state, and push → outbox → jobs, with storage below them all and the
// IdP clients beside it.
package scimsync_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/internal/deptest"
)

const module = "github.com/scimsync/scimsync"

func TestDependencyRules(t *testing.T) {
	rules := []deptest.Rule{
		{
			Pkgs: "./store/...", Tests: true,
			BadDeps: map[string]string{
				module + "/jobs/...":       "storage stores; the job transport sits above it and writes through it",
				module + "/connectors/...": "storage stores; the IdP clients know nothing of it, the reconciler carries what they list",
			},
		},
		{
			Pkgs: "./connectors/...", Tests: true,
			BadDeps: map[string]string{
				module + "/store/...": "a connector only reads its IdP; what it lists is written by the reconciler",
			},
		},
		{
			Pkgs: "./converge/...", Tests: true,
			BadDeps: map[string]string{
				"github.com/hibiken/asynq/...": "converge decides and applies; the transport hands it work, so it runs the same from a worker, the reconciler, an operator's settlement or a test",
			},
		},
		{
			Pkgs: "./lifecycle", Tests: true,
			BadDeps: map[string]string{
				deptest.NonStandard: "the domain's words are imported by store, converge, the reconciler and the admin API; they depend on none of them, nor on how they are stored or applied",
			},
		},
		{
			Pkgs: "./jobs/task", Tests: true,
			BadDeps: map[string]string{
				"github.com/hibiken/asynq/...": "the catalogue is shared with converge, which writes rows of the work it implies; package jobs alone turns rows into asynq tasks",
			},
		},
		{
			Pkgs: "./...", Tests: true,
			Except: []string{module + "/cmd/...", module + "/connectors/all"},
			BadDeps: map[string]string{
				module + "/connectors/all": "only a command decides which connectors it links in; libraries open them by type name, tests import the ones they use",
			},
		},
	}
	for _, r := range rules {
		t.Run(r.Pkgs, func(t *testing.T) {
			t.Parallel()
			r.Check(t)
		})
	}
}

// TestReadmeLayout keeps README.md's layout table whole: every top-level
// package and every command has its row.
func TestReadmeLayout(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "list", "./...").Output()
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, pkg := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(pkg, module+"/")
		if !ok {
			continue // the module root: this test
		}
		parts := strings.Split(rel, "/")
		if parts[0] == "internal" || (len(parts) > 1 && parts[0] != "cmd") || len(parts) > 2 {
			continue // internal helpers and subpackages go by their parent
		}
		rows++
		if !bytes.Contains(raw, []byte("| `"+rel+"` |")) {
			t.Errorf("README.md's layout has no row for %s", rel)
		}
	}
	if rows == 0 {
		t.Fatal("go list found no package")
	}
}
