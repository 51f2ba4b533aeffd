package main

import (
	"os"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/config"
)

// TestReadmeDocumentsConfiguration keeps README.md's configuration table and
// command list in step with the binary.
func TestReadmeDocumentsConfiguration(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	for _, v := range config.Vars {
		row := "| `" + v.Env + "` |"
		if !strings.Contains(readme, row) {
			t.Errorf("README.md has no configuration row for %s", v.Env)
		}
	}
	for _, c := range commands() {
		if !strings.Contains(readme, "scimsync "+c.name) && !strings.Contains(readme, "`"+c.name+"`") {
			t.Errorf("README.md does not mention the %s command", c.name)
		}
	}
	if !strings.Contains(readme, "go test ./...") {
		t.Error("README.md does not give the test command")
	}
}
