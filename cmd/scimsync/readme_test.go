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

// TestReadmeWebhookExample keeps README.md's webhook example the body of
// Example_receiveWebhooks, which the compiler checks.
func TestReadmeWebhookExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(src), "func Example_receiveWebhooks() {\n")
	body, _, ok2 := strings.Cut(body, "\n}\n")
	if !ok || !ok2 {
		t.Fatal("example_test.go has no Example_receiveWebhooks")
	}
	lines := strings.Split(body, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\t")
	}
	want := "```go\n" + strings.Join(lines, "\n") + "\n```\n"
	if !strings.Contains(string(readme), want) {
		t.Errorf("README.md lacks the example as in example_test.go:\n%s", want)
	}
}
