package samtemplate

import (
	"regexp"
	"strings"
	"testing"
)

// logicalID is a code span that looks like a CloudFormation logical id.
var logicalID = regexp.MustCompile("`([A-Z][A-Za-z0-9]+)`")

// readmeStack is the README's description of the stack: from "The stack (`template.yaml`"
// to the outputs.
func readmeStack(t *testing.T) string {
	t.Helper()
	readme := readFile(t, repoRoot+"/README.md")
	_, text, ok := strings.Cut(readme, "The stack (`template.yaml`")
	if !ok {
		t.Fatal("README.md has no paragraph starting \"The stack (`template.yaml`\"")
	}
	text, _, ok = strings.Cut(text, "\nOutputs:")
	if !ok {
		t.Fatal("README.md's stack description does not end with its outputs")
	}
	return text
}

// TestReadmeNamesTheStack: the README's stack description names every resource of
// template.yaml by its logical id, names only resources and parameters that exist, and
// lists what is kept when the stack is deleted as the template retains it.
func TestReadmeNamesTheStack(t *testing.T) {
	tp := loadTemplate(t, readFile(t, templatePath))
	text := readmeStack(t)
	named := map[string]bool{}
	for _, m := range logicalID.FindAllStringSubmatch(text, -1) {
		named[m[1]] = true
	}
	resources := tp.section("Resources")
	for _, id := range sortedKeys(resources) {
		if !named[id] {
			t.Errorf("README.md's stack description does not name %s (%s)", id, tp.typeOf(id))
		}
	}
	for _, id := range sortedKeys(named) {
		if resources[id] == nil && tp.section("Parameters")[id] == nil && tp.section("Outputs")[id] == nil {
			t.Errorf("README.md's stack description names %s, which template.yaml does not declare", id)
		}
	}

	_, kept, ok := strings.Cut(text, "Kept when the stack is deleted:")
	if !ok {
		t.Fatal("README.md's stack description does not say what is kept when the stack is deleted")
	}
	kept, _, _ = strings.Cut(kept, "(`DeletionPolicy")
	keptNamed := map[string]bool{}
	for _, m := range logicalID.FindAllStringSubmatch(kept, -1) {
		keptNamed[m[1]] = true
	}
	for _, id := range sortedKeys(resources) {
		retained := tp.resource(id)["DeletionPolicy"] == "Retain"
		if retained != keptNamed[id] {
			t.Errorf("%s: DeletionPolicy Retain is %v in template.yaml, kept is %v in README.md", id, retained, keptNamed[id])
		}
	}
}

// TestReadmeNamesTheOutputs: the outputs the README lists are the template's.
func TestReadmeNamesTheOutputs(t *testing.T) {
	tp := loadTemplate(t, readFile(t, templatePath))
	readme := readFile(t, repoRoot+"/README.md")
	_, list, _ := strings.Cut(readme, readmeStack(t)+"\nOutputs:")
	list, _, _ = strings.Cut(list, "\n\n")
	named := map[string]bool{}
	for _, m := range logicalID.FindAllStringSubmatch(list, -1) {
		named[m[1]] = true
	}
	outputs := tp.section("Outputs")
	for _, id := range sortedKeys(outputs) {
		if !named[id] {
			t.Errorf("README.md's outputs do not list %s", id)
		}
	}
	for _, id := range sortedKeys(named) {
		if outputs[id] == nil {
			t.Errorf("README.md lists the output %s, which template.yaml does not declare", id)
		}
	}
}
