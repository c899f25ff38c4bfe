// Package samtemplate holds the wiring test of the deployment bundle (docs/ARCHITECTURE.md, "Tests"): it parses
// template.yaml with goformation and checks, on the raw YAML, that every Ref, GetAtt and Sub
// names something declared, that each function has its Makefile build target (building for
// its architecture, GOARCH_LAMBDA from sam build's environment), that the variables declared
// empty for `sam local invoke` stay empty, that the queue has its dead-letter queue, the
// events their queues, the alarms their metrics and topic, and that the IAM policies stay
// least-privilege. It also checks samconfig.toml.
//
// The package has no code of its own outside its tests.
package samtemplate
