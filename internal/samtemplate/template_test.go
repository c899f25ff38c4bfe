package samtemplate

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation/global"
	"gopkg.in/yaml.v3"

	"github.com/halosync/halosync/internal/readapi"
)

const (
	repoRoot       = "../.."
	templatePath   = repoRoot + "/template.yaml"
	makefilePath   = repoRoot + "/Makefile"
	samconfigPath  = repoRoot + "/samconfig.toml"
	templateSource = "template.yaml"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func loadTemplate(t *testing.T, text string) *template {
	t.Helper()
	tp, err := parseTemplate([]byte(text))
	if err != nil {
		t.Fatalf("%s: %v", templateSource, err)
	}
	return tp
}

func realRepo(t *testing.T) repo {
	return repo{root: repoRoot, makefile: readFile(t, makefilePath)}
}

// TestTemplateParsesWithGoformation: goformation reads template.yaml (it rejects a property
// its schema does not know, so a misspelt one fails here), sees the same resources of the same
// types as the wiring checker does, and reads the values we rely on.
func TestTemplateParsesWithGoformation(t *testing.T) {
	view, err := goformationView([]byte(readFile(t, templatePath)))
	if err != nil {
		t.Fatal(err)
	}
	gf, err := goformation.ParseYAML(view)
	if err != nil {
		t.Fatalf("goformation.ParseYAML: %v", err)
	}
	if gf.Transform == nil || gf.Transform.String == nil || *gf.Transform.String != serverlessTransform {
		t.Errorf("Transform = %+v, want %s", gf.Transform, serverlessTransform)
	}
	raw := loadTemplate(t, readFile(t, templatePath))
	if len(gf.Resources) != len(raw.section("Resources")) {
		t.Errorf("goformation read %d resources, the YAML has %d", len(gf.Resources), len(raw.section("Resources")))
	}
	for id, res := range gf.Resources {
		if got, want := res.AWSCloudFormationType(), raw.typeOf(id); got != want {
			t.Errorf("%s: goformation type %s, YAML type %s", id, got, want)
		}
	}

	globalFn, ok := gf.Globals["Function"].(*global.Function)
	if !ok {
		t.Fatalf("Globals.Function = %T", gf.Globals["Function"])
	}
	if globalFn.Runtime == nil || *globalFn.Runtime != "provided.al2023" ||
		globalFn.Handler == nil || *globalFn.Handler != "bootstrap" ||
		globalFn.Architectures == nil || !reflect.DeepEqual(*globalFn.Architectures, []string{"arm64"}) {
		t.Errorf("Globals.Function: runtime %v handler %v architectures %v", deref(globalFn.Runtime), deref(globalFn.Handler), globalFn.Architectures)
	}

	fns := gf.GetAllServerlessFunctionResources()
	if len(fns) != 5 {
		t.Errorf("%d serverless functions, want 5", len(fns))
	}
	for id, want := range map[string]int{"IngestFunction": 10, "WorkerFunction": 120, "PollerFunction": 300, "ReadFunction": 10, "PublisherFunction": 60} {
		fn, ok := fns[id]
		if !ok {
			t.Errorf("no function %s", id)
			continue
		}
		if fn.Timeout == nil || *fn.Timeout != want {
			t.Errorf("%s.Timeout = %v, want %d", id, deref(fn.Timeout), want)
		}
		if fn.CodeUri == nil || fn.CodeUri.String == nil || *fn.CodeUri.String != "." {
			t.Errorf("%s.CodeUri = %+v, want .", id, fn.CodeUri)
		}
		if fn.AWSCloudFormationMetadata["BuildMethod"] != "makefile" {
			t.Errorf("%s.Metadata = %v", id, fn.AWSCloudFormationMetadata)
		}
	}
	if ingest, ok := fns["IngestFunction"]; ok {
		ev, ok := ingest.Events["Webhook"]
		if !ok || ev.Type != "HttpApi" || ev.Properties == nil || ev.Properties.HttpApiEvent == nil {
			t.Fatalf("IngestFunction.Events.Webhook = %+v", ev)
		}
		h := ev.Properties.HttpApiEvent
		if deref(h.Method) != "POST" || deref(h.Path) != "/webhooks/halo/{connection}" || deref(h.PayloadFormatVersion) != "2.0" {
			t.Errorf("webhook event = %s %s payload %s", deref(h.Method), deref(h.Path), deref(h.PayloadFormatVersion))
		}
	}
	if worker, ok := fns["WorkerFunction"]; ok {
		if ev, ok := worker.Events["Changes"]; !ok || ev.Type != "SQS" {
			t.Errorf("WorkerFunction.Events.Changes = %+v", ev)
		}
	}
	if p, ok := fns["PollerFunction"]; ok {
		// goformation reads an event's properties as the first type they fit, silently: a
		// property a Schedule event does not have leaves ScheduleEvent nil.
		ev, ok := p.Events["Schedule"]
		if !ok || ev.Type != "Schedule" || ev.Properties == nil || ev.Properties.ScheduleEvent == nil ||
			ev.Properties.ScheduleEvent.Schedule != "rate(1 minute)" {
			t.Errorf("PollerFunction.Events.Schedule = %+v", ev)
		}
		if deref(p.ReservedConcurrentExecutions) != 1 {
			t.Errorf("PollerFunction.ReservedConcurrentExecutions = %v, want 1", deref(p.ReservedConcurrentExecutions))
		}
		if eic := p.EventInvokeConfig; eic == nil || eic.MaximumRetryAttempts == nil || *eic.MaximumRetryAttempts != 0 || deref(eic.MaximumEventAgeInSeconds) != 60 {
			t.Errorf("PollerFunction.EventInvokeConfig = %+v", eic)
		}
		if deref(p.MemorySize) != 256 {
			t.Errorf("PollerFunction.MemorySize = %v", deref(p.MemorySize))
		}
	}

	q, err := gf.GetSQSQueueWithName("ChangesQueue")
	if err != nil {
		t.Fatal(err)
	}
	if q.VisibilityTimeout == nil || *q.VisibilityTimeout < 6*120 {
		t.Errorf("ChangesQueue.VisibilityTimeout = %v", deref(q.VisibilityTimeout))
	}
	if rp, _ := q.RedrivePolicy.(map[string]any); rp == nil || rp["maxReceiveCount"] != float64(20) {
		t.Errorf("ChangesQueue.RedrivePolicy = %v", q.RedrivePolicy)
	}

	table, err := gf.GetDynamoDBTableWithName("Table")
	if err != nil {
		t.Fatal(err)
	}
	if deref(table.BillingMode) != "PAY_PER_REQUEST" ||
		table.PointInTimeRecoverySpecification == nil || !deref(table.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled) ||
		table.TimeToLiveSpecification == nil || table.TimeToLiveSpecification.AttributeName == nil || *table.TimeToLiveSpecification.AttributeName != "expires_at" ||
		len(table.GlobalSecondaryIndexes) != 3 || table.GlobalSecondaryIndexes[0].IndexName != "GSI1" || table.GlobalSecondaryIndexes[1].IndexName != "GSI2" ||
		table.GlobalSecondaryIndexes[2].IndexName != "GSI3" {
		t.Errorf("Table = billing %v pitr %+v ttl %+v gsis %d", deref(table.BillingMode), table.PointInTimeRecoverySpecification, table.TimeToLiveSpecification, len(table.GlobalSecondaryIndexes))
	}

	alarms := gf.GetAllCloudWatchAlarmResources()
	if len(alarms) != 19 {
		t.Errorf("%d alarms, want 19", len(alarms))
	}
	// The worst connection's estimate: every connection's readings share the [Label] series.
	if v, ok := alarms["VerificationAlarm"]; !ok || deref(v.Namespace) != "halosync" || deref(v.MetricName) != "VerifyEqualShare" ||
		deref(v.Statistic) != "Minimum" || v.ComparisonOperator != "LessThanThreshold" || deref(v.TreatMissingData) != "notBreaching" ||
		len(v.Dimensions) != 1 || v.Dimensions[0].Name != "Label" || v.Dimensions[0].Value != "all" {
		t.Errorf("VerificationAlarm = %+v", v)
	}
	p := raw.section("Parameters")["VerifyAlarmThreshold"]
	if def, _ := asNumber(get(p, "Default")); def != 99 {
		t.Errorf("VerifyAlarmThreshold = %v, want a percent, 99 by default", p)
	}
	if top, _ := asNumber(get(p, "MaxValue")); top != 100 {
		t.Errorf("VerifyAlarmThreshold = %v, want a percent, 99 by default", p)
	}
	if down, ok := alarms["EndpointDownAlarm"]; !ok || len(down.Metrics) != 3 || down.Metrics[0].MetricStat == nil || down.Metrics[1].MetricStat == nil {
		t.Errorf("EndpointDownAlarm = %+v", down)
	}

	// The backup endpoint: the ingest function's URL, public (ingest authenticates), with
	// both permissions a public function URL needs.
	urls := gf.GetAllLambdaUrlResources()
	if u, ok := urls["IngestFunctionUrl"]; len(urls) != 1 || !ok || u.AuthType != "NONE" {
		t.Errorf("function URLs = %+v, want IngestFunctionUrl, AuthType NONE", urls)
	}
	if fn := raw.resourceTargets(raw.props("IngestFunctionUrl")["TargetFunctionArn"]); len(fn) != 1 || fn[0] != "IngestFunction" {
		t.Errorf("IngestFunctionUrl targets %v, want IngestFunction", fn)
	}
	perms := raw.ofType("AWS::Lambda::Permission")
	actions := map[string]bool{}
	for _, id := range perms {
		p := raw.props(id)
		a, _ := asString(p["Action"])
		actions[a] = true
		if fn := raw.resourceTargets(p["FunctionName"]); len(fn) != 1 || fn[0] != "IngestFunction" {
			t.Errorf("%s grants on %v, want IngestFunction", id, p["FunctionName"])
		}
		if a == "lambda:InvokeFunction" && p["InvokedViaFunctionUrl"] != true {
			t.Errorf("%s grants lambda:InvokeFunction to anyone, not only through the function URL", id)
		}
	}
	if !actions["lambda:InvokeFunctionUrl"] || !actions["lambda:InvokeFunction"] {
		t.Errorf("the function URL's permissions grant %v, want lambda:InvokeFunctionUrl and lambda:InvokeFunction", actions)
	}
	if lat, ok := alarms["SyncLatencyAlarm"]; !ok || deref(lat.Namespace) != "halosync" || deref(lat.MetricName) != "SyncLatency" ||
		deref(lat.ExtendedStatistic) != "p95" || deref(lat.Period) != 300 || len(lat.Dimensions) != 0 {
		t.Errorf("SyncLatencyAlarm = %+v", lat)
	}
	if silence, ok := alarms["WebhookSilenceAlarm"]; !ok || len(silence.Metrics) != 3 || deref(silence.Metrics[2].Expression) == "" {
		t.Errorf("WebhookSilenceAlarm = %+v", silence)
	}
	for id, a := range alarms {
		if deref(a.TreatMissingData) == "" || len(a.AlarmActions) != 1 || a.EvaluationPeriods < 1 {
			t.Errorf("%s: TreatMissingData %q, %d actions, %d periods", id, deref(a.TreatMissingData), len(a.AlarmActions), a.EvaluationPeriods)
		}
	}
	if n := len(gf.GetAllCloudWatchCompositeAlarmResources()); n != 1 {
		t.Errorf("%d composite alarms, want 1", n)
	}
	if n := len(gf.GetAllCloudWatchDashboardResources()); n != 1 {
		t.Errorf("%d dashboards, want 1", n)
	}
	if table.DeletionProtectionEnabled == nil || !*table.DeletionProtectionEnabled {
		t.Errorf("Table.DeletionProtectionEnabled = %v", table.DeletionProtectionEnabled)
	}
}

// goformationUnknown are SAM properties goformation v7.14.9's schema lacks (it knows only a
// misspelt AccessLogSetting on an HttpApi, no EnableIamAuthorizer in an HttpApi's Auth, no
// LoggingConfig on a function, only in Globals, and no InvokedViaFunctionUrl on a Lambda
// permission, which function URLs need since October 2025). goformationView drops them
// before goformation parses the template; cfn-lint, which make lint runs, validates them
// with SAM's own translator.
var goformationUnknown = map[string][]string{
	"AWS::Serverless::Function": {"LoggingConfig"},
	"AWS::Serverless::HttpApi":  {"AccessLogSettings", "Auth"},
	"AWS::Lambda::Permission":   {"InvokedViaFunctionUrl"},
}

// goformationView returns the template without the properties in goformationUnknown,
// keeping everything else, short-form tags included.
func goformationView(text []byte) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(text, &root); err != nil {
		return nil, err
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("empty template")
	}
	value := func(m *yaml.Node, key string) *yaml.Node {
		if m == nil || m.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i+1]
			}
		}
		return nil
	}
	resources := value(root.Content[0], "Resources")
	if resources == nil {
		return text, nil
	}
	for i := 1; i < len(resources.Content); i += 2 {
		res := resources.Content[i]
		typ := value(res, "Type")
		props := value(res, "Properties")
		if typ == nil || props == nil {
			continue
		}
		drop := goformationUnknown[typ.Value]
		kept := props.Content[:0:0]
		for j := 0; j+1 < len(props.Content); j += 2 {
			if !slices.Contains(drop, props.Content[j].Value) {
				kept = append(kept, props.Content[j], props.Content[j+1])
			}
		}
		props.Content = kept
	}
	return yaml.Marshal(&root)
}

// TestGoformationView: the view drops only the listed properties, and goformation needs it
// (were goformation to learn them, the list could go).
func TestGoformationView(t *testing.T) {
	text := []byte(readFile(t, templatePath))
	if _, err := goformation.ParseYAML(text); err == nil {
		t.Error("goformation parses template.yaml as it is: goformationUnknown is no longer needed")
	}
	view, err := goformationView(text)
	if err != nil {
		t.Fatal(err)
	}
	before, after := loadTemplate(t, string(text)), loadTemplate(t, string(view))
	for _, id := range sortedKeys(before.section("Resources")) {
		for _, k := range sortedKeys(before.props(id)) {
			_, kept := after.props(id)[k]
			if dropped := slices.Contains(goformationUnknown[before.typeOf(id)], k); kept == dropped {
				t.Errorf("%s.%s: kept %v", id, k, kept)
			}
			if kept && !reflect.DeepEqual(before.props(id)[k], after.props(id)[k]) {
				t.Errorf("%s.%s changed in the view", id, k)
			}
		}
	}
}

// TestGoformationRejectsMisspeltProperties: what TestTemplateParsesWithGoformation relies on.
func TestGoformationRejectsMisspeltProperties(t *testing.T) {
	text := readFile(t, templatePath)
	for _, edit := range [][2]string{
		{"VisibilityTimeout: 720", "VisibilityTimout: 720"},
		{"      Timeout: 120\n", "      Timeout: 120\n      Timeot: 120\n"},
		{"PointInTimeRecoveryEnabled: true", "PointInTimeRecovery: true"},
	} {
		if !strings.Contains(text, edit[0]) {
			t.Fatalf("template.yaml no longer contains %q: update the case", edit[0])
		}
		view, err := goformationView([]byte(strings.Replace(text, edit[0], edit[1], 1)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := goformation.ParseYAML(view); err == nil {
			t.Errorf("goformation accepted %q", edit[1])
		}
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// TestTemplateWiring runs the wiring checker on template.yaml and the Makefile.
func TestTemplateWiring(t *testing.T) {
	tp := loadTemplate(t, readFile(t, templatePath))
	for _, p := range check(tp, realRepo(t)) {
		t.Error(p)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "functions")); err != nil {
		t.Log("functions/ does not exist yet: checked the Makefile targets only")
	}
}

// TestBuildTargetsTakeGOARCHFromTheEnvironment: sam build runs the functions' Makefile targets
// with its own environment, so `GOARCH_LAMBDA=amd64 sam build --parameter-overrides
// Architecture=x86_64` (README) builds x86_64 bootstraps; without it they are built for the
// template's default architecture, arm64.
func TestBuildTargetsTakeGOARCHFromTheEnvironment(t *testing.T) {
	tp := loadTemplate(t, readFile(t, templatePath))
	for _, id := range tp.ofType("AWS::Serverless::Function") {
		for goarch, env := range map[string][]string{"amd64": {"GOARCH_LAMBDA=amd64"}, "arm64": nil} {
			cmd := exec.Command("make", "--no-print-directory", "-n", "build-"+id, "ARTIFACTS_DIR=/artifacts")
			cmd.Dir = repoRoot
			cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOARCH_LAMBDA=") }), env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n build-%s: %v\n%s", id, err, out)
			}
			if got := goarchSetting.FindAllStringSubmatch(string(out), -1); len(got) != 1 || got[0][1] != goarch {
				t.Errorf("build-%s with %v in the environment builds %v, want GOARCH=%s:\n%s", id, env, got, goarch, out)
			}
		}
	}
}

// TestShortFormIntrinsics: the loader turns short forms into the long forms CloudFormation
// means, nested ones included, so the checker sees every reference.
func TestShortFormIntrinsics(t *testing.T) {
	tp := loadTemplate(t, `
A: !Ref X
B: !GetAtt Q.Arn
C: !GetAtt [Q, QueueName]
D: !Sub "${A}-${B.C}-${!Literal}-${AWS::Region}"
E: !Sub ["${v}", {v: !Ref Y}]
F: !If [Cond, !Ref Z, !Ref AWS::NoValue]
G: !Join ["", !Split ["//", !Sub "/${P}"]]
H: {"Fn::GetAtt": "R.Arn"}
I: !Select [0, !GetAZs ""]
J: &anchor {Ref: K}
L: *anchor
M: !Condition HasIt
N: 30
`)
	want := map[string]any{
		"A": map[string]any{"Ref": "X"},
		"B": map[string]any{"Fn::GetAtt": []any{"Q", "Arn"}},
		"C": map[string]any{"Fn::GetAtt": []any{"Q", "QueueName"}},
		"D": map[string]any{"Fn::Sub": "${A}-${B.C}-${!Literal}-${AWS::Region}"},
		"E": map[string]any{"Fn::Sub": []any{"${v}", map[string]any{"v": map[string]any{"Ref": "Y"}}}},
		"F": map[string]any{"Fn::If": []any{"Cond", map[string]any{"Ref": "Z"}, map[string]any{"Ref": "AWS::NoValue"}}},
		"G": map[string]any{"Fn::Join": []any{"", map[string]any{"Fn::Split": []any{"//", map[string]any{"Fn::Sub": "/${P}"}}}}},
		"H": map[string]any{"Fn::GetAtt": "R.Arn"},
		"I": map[string]any{"Fn::Select": []any{0, map[string]any{"Fn::GetAZs": ""}}},
		"J": map[string]any{"Ref": "K"},
		"L": map[string]any{"Ref": "K"},
		"M": map[string]any{"Condition": "HasIt"},
		"N": 30,
	}
	if !reflect.DeepEqual(tp.doc, want) {
		t.Errorf("long form:\n got %#v\nwant %#v", tp.doc, want)
	}

	var got []string
	for _, tg := range targets(tp.doc, "") {
		got = append(got, fmt.Sprintf("%s %s.%s", tg.kind, tg.name, tg.attr))
	}
	wantTargets := []string{
		"Ref X.", "GetAtt Q.Arn", "GetAtt Q.QueueName", "Ref A.", "GetAtt B.C", "Ref AWS::Region.",
		"Ref Y.", "Condition Cond.", "Ref Z.", "Ref AWS::NoValue.", "Ref P.", "GetAtt R.Arn",
		"Ref K.", "Ref K.", "Condition HasIt.",
	}
	if !reflect.DeepEqual(got, wantTargets) {
		t.Errorf("targets:\n got %q\nwant %q", got, wantTargets)
	}

	if _, err := parseTemplate([]byte("Resources:\n  A: {Type: X}\n  A: {Type: Y}\n")); err == nil {
		t.Error("a duplicated logical id was accepted")
	}
}

// TestTemplateEvaluation: the evaluator gives what CloudFormation would, so the checks built on
// it (the SSM parameter's ARN, the configuration document) check the real values.
func TestTemplateEvaluation(t *testing.T) {
	tp := loadTemplate(t, readFile(t, templatePath))
	policies := asList(tp.props("IngestFunction")["Policies"])
	var paramName any
	for _, p := range policies {
		if v := get(p, "SSMParameterReadPolicy", "ParameterName"); v != nil {
			paramName = v
		}
	}
	got, err := tp.eval(paramName)
	if err != nil || got != "halosync/config" {
		t.Errorf("SSMParameterReadPolicy.ParameterName = %v, %v; want halosync/config", got, err)
	}
	c := &checker{t: tp}
	doc, err := c.parseConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Connections) != 1 || doc.Connections[0].ID != "default" {
		t.Fatalf("connections = %+v", doc.Connections)
	}
	auth := doc.Connections[0].Webhook.Auth
	if len(auth) != 1 || auth[0].Scheme != "basic" || auth[0].Username != "halo" ||
		!reflect.DeepEqual(auth[0].Passwords, []string{"secretsmanager:<WebhookSecret>#password"}) {
		t.Errorf("webhook auth = %+v", auth)
	}
}

// mutation is a broken copy of the template and the problem the checker must report for it.
type mutation struct {
	name  string
	text  [2]string                                 // replace text[0] by text[1] in template.yaml
	edit  func(t *testing.T, tp *template, r *repo) // change the parsed copy
	wants []string                                  // each must be in some problem
}

// TestCheckerFlagsBrokenTemplates: each broken copy of the template gets the problem it has.
func TestCheckerFlagsBrokenTemplates(t *testing.T) {
	text := readFile(t, templatePath)
	good := loadTemplate(t, text)
	cases := []mutation{
		{name: "Ref to a missing resource", text: [2]string{"TABLE_NAME: !Ref Table", "TABLE_NAME: !Ref Tabel"},
			wants: []string{`refers to "Tabel", which is no resource`, "TABLE_NAME: refers to [], want Table"}},
		{name: "a read route without IAM", text: [2]string{"            Path: /connections/{connection}/{kinds}\n            PayloadFormatVersion: \"2.0\"\n            Auth:\n              Authorizer: AWS_IAM",
			"            Path: /connections/{connection}/{kinds}\n            PayloadFormatVersion: \"2.0\""},
			wants: []string{"Events.Changed.Properties.Auth.Authorizer: is \"\", want AWS_IAM"}},
		{name: "the API without its IAM authoriser", text: [2]string{"        EnableIamAuthorizer: true", "        EnableIamAuthorizer: false"},
			wants: []string{"WebhookApi.Properties.Auth.EnableIamAuthorizer: is not true"}},
		{name: "a read route missing", text: [2]string{"        Delivery:\n          Type: HttpApi", "        Delivered:\n          Type: Schedule"},
			wants: []string{"no HttpApi event for " + readapi.DeliveryRoute, "Events.Delivered.Type: is \"Schedule\""}},
		{name: "a read function that may write", text: [2]string{"        - DynamoDBReadPolicy:\n            TableName: !Ref Table", "        - DynamoDBCrudPolicy:\n            TableName: !Ref Table"},
			wants: []string{"ReadFunction is granted dynamodb:PutItem, which it must not have", "ReadFunction is granted dynamodb:DeleteItem"}},
		{name: "GetAtt of a missing resource", text: [2]string{"Queue: !GetAtt ChangesQueue.Arn", "Queue: !GetAtt ChangeQueue.Arn"},
			wants: []string{`GetAtt of "ChangeQueue"`, "Events.Changes.Properties.Queue: is not a GetAtt <Queue>.Arn"}},
		{name: "GetAtt of an attribute the type lacks", text: [2]string{"!GetAtt ChangesDeadLetterQueue.QueueName", "!GetAtt ChangesDeadLetterQueue.Name"},
			wants: []string{`has no attribute "Name"`}},
		{name: "Sub of an undeclared name", text: [2]string{`${WebhookSecret}#password"]`, `${WebhookSecrets}#password"]`},
			wants: []string{`refers to "WebhookSecrets"`}},
		{name: "Sub of an undeclared resource attribute", text: [2]string{`${Table.Arn}/index/*`, `${Tables.Arn}/index/*`},
			wants: []string{`GetAtt of "Tables"`}},
		{name: "unknown intrinsic function", text: [2]string{"- !GetAtt Table.Arn", "- !GetAttr Table.Arn"},
			wants: []string{"unknown intrinsic function Fn::GetAttr"}},
		{name: "undeclared condition", edit: set(str("NoSuchCondition"), "Resources", "AlarmEmailSubscription", "Condition"),
			wants: []string{"condition NoSuchCondition is not declared"}},
		{name: "Fn::If on an undeclared condition", edit: set(map[string]any{"Fn::If": []any{"IsProd", "a", "b"}}, "Resources", "WorkerFunction", "Properties", "Environment", "Variables", "MODE"),
			wants: []string{`condition "IsProd" is not declared`}},
		{name: "Condition intrinsic on an undeclared condition", text: [2]string{`HasAlarmEmail: !Not [!Equals [!Ref AlarmEmail, ""]]`, `HasAlarmEmail: !Not [!Condition NoEmail]`},
			wants: []string{`Conditions.HasAlarmEmail.Fn::Not[0].Condition: condition "NoEmail" is not declared`}},
		{name: "queue without redrive", edit: del("Resources", "ChangesQueue", "Properties", "RedrivePolicy"),
			wants: []string{"ChangesQueue.Properties: has no RedrivePolicy"}},
		{name: "redrive to an undeclared queue", edit: set(getAtt("Nope", "Arn"), "Resources", "ChangesQueue", "Properties", "RedrivePolicy", "deadLetterTargetArn"),
			wants: []string{`GetAtt of "Nope"`, "Nope is no declared AWS::SQS::Queue"}},
		{name: "redrive to a table", edit: set(getAtt("Table", "Arn"), "Resources", "ChangesQueue", "Properties", "RedrivePolicy", "deadLetterTargetArn"),
			wants: []string{"Table is no declared AWS::SQS::Queue"}},
		{name: "maxReceiveCount too low", edit: set(3, "Resources", "ChangesQueue", "Properties", "RedrivePolicy", "maxReceiveCount"),
			wants: []string{"maxReceiveCount: is 3: with worker.Backoff a failing change is retried for 0s, want at least 1h0m0s"}},
		{name: "maxReceiveCount of the old 8", edit: set(8, "Resources", "ChangesQueue", "Properties", "RedrivePolicy", "maxReceiveCount"),
			wants: []string{"maxReceiveCount: is 8: with worker.Backoff a failing change is retried for 3m0s, want at least 1h0m0s"}},
		{name: "maxReceiveCount apart from the embedded queue's", edit: set(30, "Resources", "ChangesQueue", "Properties", "RedrivePolicy", "maxReceiveCount"),
			wants: []string{"maxReceiveCount: is 30, the embedded queue's default is 20"}},
		{name: "visibility timeout too short", edit: set(60, "Resources", "ChangesQueue", "Properties", "VisibilityTimeout"),
			wants: []string{"VisibilityTimeout: is 60 s, want at least 6 x WorkerFunction's Timeout (120 s) = 720 s"}},
		{name: "worker timeout raised past the queue's visibility", edit: set(300, "Resources", "WorkerFunction", "Properties", "Timeout"),
			wants: []string{"want at least 6 x WorkerFunction's Timeout (300 s) = 1800 s"}},
		{name: "worker timeout no longer than Halo's", edit: set(30, "Resources", "WorkerFunction", "Properties", "Timeout"),
			wants: []string{"WorkerFunction.Properties.Timeout: is 30 s: less worker.Margin (10s) it leaves no room for one Halo request's timeout (30s)"}},
		{name: "DLQ forgets before the queue does", edit: set(86400, "Resources", "ChangesDeadLetterQueue", "Properties", "MessageRetentionPeriod"),
			wants: []string{"not longer than ChangesQueue's"}},
		{name: "unencrypted queue", edit: del("Resources", "ChangesDeadLetterQueue", "Properties", "SqsManagedSseEnabled"),
			wants: []string{"ChangesDeadLetterQueue: is not encrypted"}},
		{name: "change events on any bus", text: [2]string{"                - events:PutEvents\n              Resource: !GetAtt ChangeEventBus.Arn", "                - events:PutEvents\n              Resource: \"*\""},
			wants: []string{`Resource: "*" is a literal`, "PublisherFunction is not granted events:PutEvents on ChangeEventBus"}},
		{name: "the worker publishes change events", text: [2]string{"                - sqs:ChangeMessageVisibility\n", "                - sqs:ChangeMessageVisibility\n                - events:PutEvents\n"},
			wants: []string{"WorkerFunction is granted events:PutEvents, a events action it must not have"}},
		{name: "no batch item failures", edit: del("Resources", "WorkerFunction", "Properties", "Events", "Changes", "Properties", "FunctionResponseTypes"),
			wants: []string{"lacks ReportBatchItemFailures"}},
		{name: "webhook route changed", text: [2]string{"Path: /webhooks/halo/{connection}", "Path: /webhook/{connection}"},
			wants: []string{"no HttpApi event for POST /webhooks/halo/{connection}"}},
		{name: "HttpApi event without its API", edit: del("Resources", "IngestFunction", "Properties", "Events", "Webhook", "Properties", "ApiId"),
			wants: []string{"ApiId: is not a Ref to a declared AWS::Serverless::HttpApi"}},
		{name: "payload format 1.0", edit: set(str("1.0"), "Resources", "IngestFunction", "Properties", "Events", "Webhook", "Properties", "PayloadFormatVersion"),
			wants: []string{"PayloadFormatVersion: is 1.0, want 2.0"}},
		{name: "function not built by make", edit: del("Resources", "WorkerFunction", "Metadata"),
			wants: []string{`WorkerFunction.Metadata.BuildMethod: is "", want makefile`}},
		{name: "function missing from the Makefile", edit: editMakefile("build-WorkerFunction:", "build-Worker:"),
			wants: []string{"the Makefile has no build-WorkerFunction: target"}},
		{name: "Makefile target builds no function", edit: editMakefile("./functions/worker", "./cmd/worker"),
			wants: []string{"Makefile target build-WorkerFunction does not build a ./functions/<name> package"}},
		{name: "Makefile target writes no bootstrap", edit: editMakefile("$(ARTIFACTS_DIR)/bootstrap ./functions/ingest", "bin/ingest ./functions/ingest"),
			wants: []string{"build-IngestFunction does not write $(ARTIFACTS_DIR)/bootstrap"}},
		{name: "Makefile builds for the other architecture", edit: editMakefile("GOARCH_LAMBDA ?= arm64", "GOARCH_LAMBDA ?= amd64"),
			wants: []string{"builds GOARCH=amd64, the function runs on arm64 (GOARCH=arm64)"}},
		{name: "function directory missing", edit: func(t *testing.T, tp *template, r *repo) {
			r.root = t.TempDir()
			writeFile(t, filepath.Join(r.root, "Makefile"), r.makefile)
			writeFile(t, filepath.Join(r.root, "functions", "ingest", "main.go"), "package main\n")
		}, wants: []string{"builds ./functions/worker, which has no Go files"}},
		{name: "x86_64 functions", edit: set([]any{"x86_64"}, "Globals", "Function", "Architectures"),
			wants: []string{"Architectures: are [x86_64] (by default x86_64), want [arm64] by default"}},
		{name: "x86_64 by default", edit: set(str("x86_64"), "Parameters", "Architecture", "Default"),
			wants: []string{"(by default x86_64), want [arm64] by default", "builds GOARCH=arm64, the function runs on x86_64 (GOARCH=amd64)"}},
		{name: "architecture parameter allows another", edit: set([]any{"arm64", "x86_64", "riscv64"}, "Parameters", "Architecture", "AllowedValues"),
			wants: []string{"Parameters.Architecture.AllowedValues: allow riscv64, which is no Lambda architecture"}},
		{name: "architecture parameter allows anything", edit: del("Parameters", "Architecture", "AllowedValues"),
			wants: []string{"Parameters.Architecture.AllowedValues: are not set"}},
		{name: "architecture added on top of the global one", edit: set([]any{"arm64"}, "Resources", "IngestFunction", "Properties", "Architectures"),
			wants: []string{"IngestFunction.Architectures: are [map[Ref:Architecture] arm64], want exactly one"}},
		{name: "text logs", edit: set(str("Text"), "Globals", "Function", "LoggingConfig", "LogFormat"),
			wants: []string{`LoggingConfig.LogFormat: is "Text", want JSON`}},
		{name: "another runtime", edit: set(str("go1.x"), "Resources", "WorkerFunction", "Properties", "Runtime"),
			wants: []string{`WorkerFunction.Runtime: is "go1.x", want provided.al2023`}},
		{name: "wildcard resource in an inline statement", edit: set(str("*"), "Resources", "WorkerFunction", "Properties", "Policies", 0, "Statement", 1, "Resource"),
			wants: []string{`Statement[1].Resource: "*" is a literal`, "grant nothing on Table", "not granted dynamodb:PutItem on Table"}},
		{name: "wildcard action", edit: set([]any{"dynamodb:*"}, "Resources", "WorkerFunction", "Properties", "Policies", 0, "Statement", 1, "Action"),
			wants: []string{`"dynamodb:*" is a wildcard`}},
		{name: "NotAction", edit: set([]any{"iam:PassRole"}, "Resources", "WorkerFunction", "Properties", "Policies", 0, "Statement", 0, "NotAction"),
			wants: []string{"NotAction: grants everything but a list"}},
		{name: "policy template given a wildcard", edit: set(str("*"), "Resources", "IngestFunction", "Properties", "Policies", 0, "SQSSendMessagePolicy", "QueueName"),
			wants: []string{"QueueName: is *, not a reference to a declared resource", "grant nothing on ChangesQueue"}},
		{name: "full-access managed policy", edit: appendTo(str("AmazonDynamoDBFullAccess"), "Resources", "WorkerFunction", "Properties", "Policies"),
			wants: []string{"managed policy AmazonDynamoDBFullAccess is not least-privilege"}},
		{name: "SSM parameter name with its leading slash", edit: set(ref("ConfigParameter"), "Resources", "IngestFunction", "Properties", "Policies", 1, "SSMParameterReadPolicy", "ParameterName"),
			wants: []string{`ParameterName: evaluates to "/halosync/config", want "halosync/config"`}},
		{name: "ingest cannot send to the queue", edit: delIndex(0, "Resources", "IngestFunction", "Properties", "Policies"),
			wants: []string{"IngestFunction.Properties.Policies: grant nothing on ChangesQueue", "IngestFunction is not granted sqs:SendMessage on ChangesQueue"}},
		{name: "ingest cannot read the webhook secret", edit: delIndex(2, "Resources", "IngestFunction", "Properties", "Policies"),
			wants: []string{"grant no secretsmanager:GetSecretValue on WebhookSecret, which the configuration's webhook passwords in ConfigParameter name",
				"IngestFunction is not granted secretsmanager:GetSecretValue on WebhookSecret"}},
		{name: "worker cannot delay retries", edit: delIndex(0, "Resources", "WorkerFunction", "Properties", "Policies", 0, "Statement"),
			wants: []string{"WorkerFunction is not granted sqs:ChangeMessageVisibility on ChangesQueue"}},
		{name: "worker cannot update items", edit: set([]any{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}, "Resources", "WorkerFunction", "Properties", "Policies", 0, "Statement", 1, "Action"),
			wants: []string{"WorkerFunction is not granted dynamodb:UpdateItem on Table"}},
		{name: "ingest given the table", edit: appendTo(map[string]any{"DynamoDBCrudPolicy": map[string]any{"TableName": ref("Table")}}, "Resources", "IngestFunction", "Properties", "Policies"),
			wants: []string{"IngestFunction is granted dynamodb:PutItem, a dynamodb action it must not have"}},
		{name: "unknown policy template", edit: appendTo(map[string]any{"AdministratorAccessPolicy": map[string]any{}}, "Resources", "IngestFunction", "Properties", "Policies"),
			wants: []string{"policy template AdministratorAccessPolicy is not one this project allows"}},
		{name: "SQS poller policy on top of the SQS event", edit: appendTo(map[string]any{"SQSPollerPolicy": map[string]any{"QueueName": getAtt("ChangesQueue", "QueueName")}}, "Resources", "WorkerFunction", "Properties", "Policies"),
			wants: []string{"SQSPollerPolicy on ChangesQueue repeats what SAM grants"}},
		{name: "environment names an undeclared resource", edit: set(ref("Nope"), "Resources", "WorkerFunction", "Properties", "Environment", "Variables", "EXTRA"),
			wants: []string{"Variables.EXTRA: refers to \"Nope\", which is no declared resource"}},
		{name: "environment contract broken", edit: set(ref("ChangesQueue"), "Resources", "WorkerFunction", "Properties", "Environment", "Variables", "TABLE_NAME"),
			wants: []string{"TABLE_NAME: refers to [ChangesQueue], want Table"}},
		{name: "environment variable missing", edit: del("Resources", "IngestFunction", "Properties", "Environment", "Variables", configEnvVar),
			wants: []string{"missing HALOSYNC_CONFIG_PARAMETER", "HALOSYNC_CONFIG_PARAMETER names no AWS::SSM::Parameter"}},
		{name: "worker without its configuration", edit: del("Resources", "WorkerFunction", "Properties", "Environment", "Variables", configEnvVar),
			wants: []string{"WorkerFunction.Environment.Variables: missing HALOSYNC_CONFIG_PARAMETER"}},
		{name: "configuration file deployed", edit: set(str("/var/task/halosync.local.yaml"), "Resources", "IngestFunction", "Properties", "Environment", "Variables", "HALOSYNC_CONFIG_FILE"),
			wants: []string{"IngestFunction.Environment.Variables.HALOSYNC_CONFIG_FILE: is /var/task/halosync.local.yaml, want \"\""}},
		{name: "endpoint override deployed", edit: set(str("http://localhost:8000"), "Resources", "WorkerFunction", "Properties", "Environment", "Variables", "AWS_ENDPOINT_URL_DYNAMODB"),
			wants: []string{"WorkerFunction.Environment.Variables.AWS_ENDPOINT_URL_DYNAMODB: is http://localhost:8000, want \"\""}},
		{name: "secret in a plain environment variable", edit: set(str("{{resolve:secretsmanager:halo}}"), "Resources", "IngestFunction", "Properties", "Environment", "Variables", "PASSWORD"),
			wants: []string{"puts a secret in a plain environment variable"}},
		{name: "table without point-in-time recovery", edit: del("Resources", "Table", "Properties", "PointInTimeRecoverySpecification"),
			wants: []string{"point-in-time recovery is off"}},
		{name: "table TTL on another attribute", edit: set(str("ttl"), "Resources", "Table", "Properties", "TimeToLiveSpecification", "AttributeName"),
			wants: []string{`TimeToLiveSpecification: is "ttl" enabled true, want expires_at enabled`}},
		{name: "table key of another type", edit: set(str("N"), "Resources", "Table", "Properties", "AttributeDefinitions", 0, "AttributeType"),
			wants: []string{`KeySchema: is "pk:N sk:S"`}},
		{name: "table provisioned", edit: set(str("PROVISIONED"), "Resources", "Table", "Properties", "BillingMode"),
			wants: []string{"BillingMode: is \"PROVISIONED\", want PAY_PER_REQUEST"}},
		{name: "table not retained", edit: del("Resources", "Table", "DeletionPolicy"),
			wants: []string{"Table.DeletionPolicy: is \"\", want Retain"}},
		{name: "attribute defined in no key", edit: appendTo(map[string]any{"AttributeName": "extra", "AttributeType": "S"}, "Resources", "Table", "Properties", "AttributeDefinitions"),
			wants: []string{"extra is in no key schema"}},
		{name: "GSI1 gone", edit: del("Resources", "Table", "Properties", "GlobalSecondaryIndexes"),
			wants: []string{"has no GSI1", "gsi1pk is in no key schema"}},
		{name: "GSI2 gone", edit: delIndex(1, "Resources", "Table", "Properties", "GlobalSecondaryIndexes"),
			wants: []string{"GlobalSecondaryIndexes: has no GSI2", "gsi2pk is in no key schema", "gsi2sk is in no key schema"}},
		{name: "GSI2 keyed on another attribute", edit: set(str("gsi1sk"), "Resources", "Table", "Properties", "GlobalSecondaryIndexes", 1, "KeySchema", 1, "AttributeName"),
			wants: []string{`GSI2: keys are "gsi2pk:S gsi1sk:S", want gsi2pk (HASH, S) and gsi2sk (RANGE, S)`, "gsi2sk is in no key schema"}},
		{name: "GSI2 projecting everything", edit: set(map[string]any{"ProjectionType": "ALL"}, "Resources", "Table", "Properties", "GlobalSecondaryIndexes", 1, "Projection"),
			wants: []string{`GSI2.Projection: is "ALL", want INCLUDE`, "GSI2.Projection.NonKeyAttributes: projects [], want [deleted parent_id]"}},
		{name: "GSI2 without the parent id", edit: delIndex(1, "Resources", "Table", "Properties", "GlobalSecondaryIndexes", 1, "Projection", "NonKeyAttributes"),
			wants: []string{"projects [deleted], want [deleted parent_id]"}},
		{name: "an index no code reads", edit: appendTo(map[string]any{"IndexName": "GSI4", "KeySchema": []any{map[string]any{"AttributeName": "gsi2pk", "KeyType": "HASH"}},
			"Projection": map[string]any{"ProjectionType": "KEYS_ONLY"}}, "Resources", "Table", "Properties", "GlobalSecondaryIndexes"),
			wants: []string{"declares GSI4, which dynamo.TableInput has not"}},
		{name: "alarm on an undeclared resource", edit: set(ref("Nope"), "Resources", "IngestErrorsAlarm", "Properties", "Dimensions", 0, "Value"),
			wants: []string{`Dimensions.FunctionName: refers to "Nope", which is no resource`, "no alarm on AWS/Lambda Errors of IngestFunction"}},
		{name: "alarm on a queue by URL", edit: set(ref("ChangesQueue"), "Resources", "QueueAgeAlarm", "Properties", "Dimensions", 0, "Value"),
			wants: []string{"must be GetAtt ChangesQueue.QueueName"}},
		{name: "alarm dimension of the wrong kind", edit: set(ref("Table"), "Resources", "WorkerErrorsAlarm", "Properties", "Dimensions", 0, "Value"),
			wants: []string{"refers to Table, a AWS::DynamoDB::Table; AWS/Lambda FunctionName needs"}},
		{name: "alarm without actions", edit: del("Resources", "IngestErrorsAlarm", "Properties", "AlarmActions"),
			wants: []string{"IngestErrorsAlarm.Properties.AlarmActions: none"}},
		{name: "alarm notifying a non-topic", edit: set([]any{ref("ChangesQueue")}, "Resources", "IngestErrorsAlarm", "Properties", "AlarmActions"),
			wants: []string{"AlarmActions[0]: is not a Ref to a declared AWS::SNS::Topic"}},
		{name: "missing data left to the default", edit: del("Resources", "QueueAgeAlarm", "Properties", "TreatMissingData"),
			wants: []string{`QueueAgeAlarm.Properties.TreatMissingData: is "": choose one of`}},
		{name: "DLQ alarm gone", edit: del("Resources", "DeadLetterQueueAlarm"),
			wants: []string{"no alarm on AWS/SQS ApproximateNumberOfMessagesVisible of ChangesDeadLetterQueue"}},
		{name: "output missing", edit: del("Outputs", "DeadLetterQueueUrl"),
			wants: []string{"Outputs: missing DeadLetterQueueUrl"}},
		{name: "webhook URL for an undeclared connection", text: [2]string{"/webhooks/halo/default\"", "/webhooks/halo/other\""},
			wants: []string{`is for connection "other", which the configuration does not declare`}},
		{name: "webhook URL off the route", text: [2]string{"/webhooks/halo/default\"", "/webhook/default\""},
			wants: []string{`path "/webhook/default" is not the route`}},
		{name: "password in the configuration", text: [2]string{`["secretsmanager:${WebhookSecret}#password"]`, `["hunter2"]`},
			wants: []string{`connection "default": a password that is not a secretsmanager: reference`}},
		{name: "configuration that is not YAML", text: [2]string{"      Value: !Sub |\n        connections:", "      Value: !Sub |\n        connections: ["},
			wants: []string{"Value: Value is not YAML"}},
		{name: "parameter default outside its pattern", edit: set(str("halosync/config"), "Parameters", "ConfigParameterName", "Default"),
			wants: []string{`Default "halosync/config" does not match AllowedPattern`}},
		{name: "poller runs overlap", edit: del("Resources", "PollerFunction", "Properties", "ReservedConcurrentExecutions"),
			wants: []string{"PollerFunction.Properties.ReservedConcurrentExecutions: is <nil>, want 1"}},
		{name: "poller retries a failed run", edit: set(2, "Resources", "PollerFunction", "Properties", "EventInvokeConfig", "MaximumRetryAttempts"),
			wants: []string{"MaximumRetryAttempts: is 2, want 0"}},
		{name: "throttled ticks kept for hours", edit: del("Resources", "PollerFunction", "Properties", "EventInvokeConfig"),
			wants: []string{"MaximumEventAgeInSeconds: is <nil>, want at most 60 s", "MaximumRetryAttempts: is <nil>, want 0"}},
		{name: "schedule EventBridge refuses", text: [2]string{"rate(1 minute)", "rate(1 minutes)"},
			wants: []string{`schedule "rate(1 minutes)": EventBridge wants the singular unit`}},
		{name: "schedule that is no expression", text: [2]string{"rate(1 minute)", "every minute"},
			wants: []string{`schedule "every minute": not rate(N unit) or cron(six fields)`}},
		{name: "poller runs less often than its plans ask", text: [2]string{"rate(1 minute)", "rate(15 minutes)"},
			wants: []string{"the poller runs every 15m0s, but its plans may ask for a poll every 1m0s"}},
		{name: "poller without its schedule", edit: del("Resources", "PollerFunction", "Properties", "Events"),
			wants: []string{"no Schedule event: nothing runs the poller"}},
		{name: "poller cannot enqueue", edit: delIndex(0, "Resources", "PollerFunction", "Properties", "Policies"),
			wants: []string{"PollerFunction is not granted sqs:SendMessage on ChangesQueue", "PollerFunction.Properties.Policies: grant nothing on ChangesQueue"}},
		{name: "poller cannot keep its cursors", edit: set([]any{"dynamodb:GetItem", "dynamodb:Query"}, "Resources", "PollerFunction", "Properties", "Policies", 1, "Statement", 0, "Action"),
			wants: []string{"PollerFunction is not granted dynamodb:PutItem on Table", "PollerFunction is not granted dynamodb:UpdateItem on Table"}},
		{name: "poller cannot read the Halo credentials", edit: delIndex(4, "Resources", "PollerFunction", "Properties", "Policies"),
			wants: []string{"PollerFunction is not granted secretsmanager:GetSecretValue on HaloApiSecret"}},
		{name: "worker cannot read the Halo credentials", edit: delIndex(3, "Resources", "WorkerFunction", "Properties", "Policies"),
			wants: []string{"WorkerFunction is not granted secretsmanager:GetSecretValue on HaloApiSecret"}},
		{name: "ingest reads the Halo credentials", edit: appendTo(map[string]any{"AWSSecretsManagerGetSecretValuePolicy": map[string]any{"SecretArn": ref("HaloApiSecret")}}, "Resources", "IngestFunction", "Properties", "Policies"),
			wants: []string{"IngestFunction may read the secret HaloApiSecret, which it does not need"}},
		{name: "poller consumes the queue", edit: appendTo(map[string]any{"SQSPollerPolicy": map[string]any{"QueueName": getAtt("ChangesQueue", "QueueName")}}, "Resources", "PollerFunction", "Properties", "Policies"),
			wants: []string{"PollerFunction is granted sqs:ReceiveMessage, which it must not have", "PollerFunction is granted sqs:DeleteMessage, which it must not have"}},
		{name: "poller may delete and scan", edit: appendTo(map[string]any{"DynamoDBCrudPolicy": map[string]any{"TableName": ref("Table")}}, "Resources", "PollerFunction", "Properties", "Policies"),
			wants: []string{"PollerFunction is granted dynamodb:DeleteItem, which it must not have", "PollerFunction is granted dynamodb:Scan, which it must not have"}},
		{name: "poller environment without the table", edit: del("Resources", "PollerFunction", "Properties", "Environment", "Variables", "TABLE_NAME"),
			wants: []string{"PollerFunction.Environment.Variables: missing TABLE_NAME"}},
		{name: "poller missing from the Makefile", edit: editMakefile("build-PollerFunction:", "build-Poller:"),
			wants: []string{"the Makefile has no build-PollerFunction: target"}},
		{name: "poller errors alarm gone", edit: del("Resources", "PollerErrorsAlarm"),
			wants: []string{"no alarm on AWS/Lambda Errors of PollerFunction"}},
		{name: "webhook silence alarm gone", edit: del("Resources", "WebhookSilenceAlarm"),
			wants: []string{"no alarm on halosync WebhookGap (the webhooks fall silent)"}},
		{name: "alarm on a metric halosync does not write", edit: set(str("SyncLatencies"), "Resources", "SyncLatencyAlarm", "Properties", "MetricName"),
			wants: []string{"SyncLatencies is no metric halosync writes", "no alarm on halosync SyncLatency"}},
		{name: "metric math on a metric halosync does not write", edit: set(str("WebhookGaps"), "Resources", "WebhookSilenceAlarm", "Properties", "Metrics", 1, "MetricStat", "Metric", "MetricName"),
			wants: []string{"WebhookSilenceAlarm.Properties.Metrics[1]: WebhookGaps is no metric halosync writes", "no alarm on halosync WebhookGap"}},
		{name: "alarm on dimensions the records do not carry", edit: appendTo(map[string]any{"Name": "Kind", "Value": "ticket"}, "Resources", "AuthRejectionsAlarm", "Properties", "Metrics", 0, "MetricStat", "Metric", "Dimensions"),
			wants: []string{"AuthRejectionsAlarm.Properties.Metrics[0]: dimensions {Kind,Label}: halosync's records carry"}},
		{name: "alarm on an undeclared connection", edit: set([]any{map[string]any{"Name": "Connection", "Value": "other"}}, "Resources", "SyncLatencyAlarm", "Properties", "Dimensions"),
			wants: []string{`SyncLatencyAlarm.Properties.Dimensions.Connection: is "other", which the configuration does not declare`}},
		{name: "alarm on a connection named by a resource", edit: set([]any{map[string]any{"Name": "Connection", "Value": ref("Table")}}, "Resources", "PollerFailingAlarm", "Properties", "Dimensions"),
			wants: []string{"PollerFailingAlarm.Properties.Dimensions.Connection: refers to a resource"}},
		{name: "rejection reason ingest never gives", edit: set(str("credentials_bad"), "Resources", "AuthRejectionsAlarm", "Properties", "Metrics", 0, "MetricStat", "Metric", "Dimensions", 0, "Value"),
			wants: []string{`"credentials_bad" is no reason a delivery is rejected for`}},
		{name: "endpoint ingest never tells", edit: set(str("secondary"), "Resources", "EndpointDownAlarm", "Properties", "Metrics", 1, "MetricStat", "Metric", "Dimensions", 0, "Value"),
			wants: []string{`"secondary" is no endpoint (primary, backup)`}},
		{name: "no alarm on an endpoint stopping", edit: del("Resources", "EndpointDownAlarm"),
			wants: []string{"no alarm on halosync DeliveriesByEndpoint"}},
		{name: "no alarm on the copy's verification", edit: del("Resources", "VerificationAlarm"),
			wants: []string{"no alarm on halosync VerifyEqualShare (the copy is not equal to Halo)"}},
		{name: "verification alarm on a label no estimate carries", edit: set(str("everything"), "Resources", "VerificationAlarm", "Properties", "Dimensions", 0, "Value"),
			wants: []string{`VerificationAlarm.Properties.Dimensions.Label: "everything" is neither all (the connection as a whole) nor a kind`}},
		{name: "differences counted under no cause", edit: set(str("VerifyDiffering"), "Resources", "VerificationAlarm", "Properties", "MetricName"),
			wants: []string{`VerificationAlarm.Properties.Dimensions.Label: "all" is no cause of a difference`}},
		{name: "threshold written into the template", edit: set(300, "Resources", "QueueAgeAlarm", "Properties", "Threshold"),
			wants: []string{"QueueAgeAlarm.Properties.Threshold: is 300, want a Ref to a Number template parameter"}},
		{name: "threshold parameter that is no number", edit: set(str("String"), "Parameters", "Api5xxThreshold", "Type"),
			wants: []string{"Api5xxAlarm.Properties.Threshold: is map[Ref:Api5xxThreshold], want a Ref to a Number"}},
		{name: "anomaly band of a fixed width", edit: set(str("ANOMALY_DETECTION_BAND(volume, 2)"), "Resources", "VolumeSpikeAlarm", "Properties", "Metrics", 1, "Expression"),
			wants: []string{"VolumeSpikeAlarm.Properties.Metrics.band: the band's width is no template parameter"}},
		{name: "more datapoints than periods", edit: set(9, "Resources", "AuthRejectionsAlarm", "Properties", "DatapointsToAlarm"),
			wants: []string{"AuthRejectionsAlarm.Properties.DatapointsToAlarm: is 9, want 1..EvaluationPeriods (3)"}},
		{name: "datapoints parameter above its periods", edit: set(9, "Parameters", "DeliveryFailureDatapoints", "Default"),
			wants: []string{"DeliveryFailuresAlarm.Properties.DatapointsToAlarm: is map[Ref:DeliveryFailureDatapoints], want 1..EvaluationPeriods (5)"}},
		{name: "alarm description without its manual", edit: set(str("The poller fails."), "Resources", "PollerFailingAlarm", "Properties", "AlarmDescription"),
			wants: []string{"PollerFailingAlarm.Properties.AlarmDescription: does not point to docs/OPERATIONS.md#pollerfailingalarm"}},
		{name: "alarm missing from the manual", edit: func(t *testing.T, tp *template, r *repo) {
			root := t.TempDir()
			ops := readFile(t, filepath.Join(r.root, operationsDoc))
			if !strings.Contains(ops, "### QueueAgeAlarm\n") {
				t.Fatal("docs/OPERATIONS.md has no ### QueueAgeAlarm heading: update the case")
			}
			writeFile(t, filepath.Join(root, operationsDoc), strings.Replace(ops, "### QueueAgeAlarm\n", "### Queue age\n", 1))
			writeFile(t, filepath.Join(root, "internal", "metrics", "metrics.go"), readFile(t, filepath.Join(r.root, "internal", "metrics", "metrics.go")))
			r.root = root
		}, wants: []string{"QueueAgeAlarm.Properties: docs/OPERATIONS.md has no heading QueueAgeAlarm"}},
		{name: "alarm left out of the composite", text: [2]string{` OR ALARM("${PollerFailingAlarm}")`, ``},
			wants: []string{"Resources.PollerFailingAlarm: is in no composite alarm's rule"}},
		{name: "no composite alarm", edit: del("Resources", "UnhealthyAlarm"),
			wants: []string{"no AWS::CloudWatch::CompositeAlarm"}},
		{name: "composite alarm on a topic", text: [2]string{`ALARM("${PollerFailingAlarm}")`, `ALARM("${AlarmTopic}")`},
			wants: []string{"names AlarmTopic, which is no alarm"}},
		{name: "throttles alarm without the worker", edit: delIndex(1, "Resources", "FunctionThrottlesAlarm", "Properties", "Metrics"),
			wants: []string{"no alarm on AWS/Lambda Throttles of WorkerFunction"}},
		{name: "graph of a metric halosync does not write", text: [2]string{`["halosync", "WebhookGap", {`, `["halosync", "WebhookGaps", {`},
			wants: []string{"widgets[6].metrics[0]: WebhookGaps is no metric halosync writes"}},
		{name: "graph repeating a metric halosync does not write", text: [2]string{`["halosync", "DeliveriesRejected", {"id": "rejected"`, `[".", "DeliveriesRefused", {"id": "rejected"`},
			wants: []string{"widgets[1].metrics[1]: DeliveriesRefused is no metric halosync writes"}},
		{name: "SEARCH of a metric halosync does not write", text: [2]string{`MetricName=\"EventsByName\"`, `MetricName=\"EventNames\"`},
			wants: []string{"EventNames is no metric halosync writes"}},
		{name: "SEARCH on dimensions the records do not carry", text: [2]string{`{halosync,Connection,Kind} MetricName=\"ChangesByKind\"`, `{halosync,Kind} MetricName=\"ChangesByKind\"`},
			wants: []string{"widgets[7].metrics[0]: dimensions {Kind}"}},
		{name: "graph on dimensions the records do not carry", text: [2]string{`["halosync", "IngestDuration", {`, `["halosync", "IngestDuration", "Kind", "ticket", {`},
			wants: []string{"widgets[12].metrics[0]: dimensions {Kind}"}},
		{name: "dashboard that is not JSON", text: [2]string{`"start": "-PT12H",`, `"start": "-PT12H",,`},
			wants: []string{"Dashboard.Properties.DashboardBody: is not JSON"}},
		{name: "alarm missing from the dashboard", text: [2]string{`, "${PollerFailingAlarm.Arn}"`, ``},
			wants: []string{"the alarm widget does not show PollerFailingAlarm"}},
		{name: "recent errors of an undeclared log group", text: [2]string{`SOURCE '${PollerFunctionLogGroup}'`, `SOURCE '/aws/lambda/poller'`},
			wants: []string{`SOURCE "/aws/lambda/poller" is no declared log group's ${X}`}},
		{name: "insight rule on an undeclared log group", text: [2]string{`"LogGroupNames": ["${WorkerFunctionLogGroup}"]`, `"LogGroupNames": ["/aws/lambda/worker"]`},
			wants: []string{`RuleBody.LogGroupNames: "/aws/lambda/worker" is no declared log group's ${X}`}},
		{name: "top contributors widget of no rule", text: [2]string{`"ruleName": "${TopContributorsRule.RuleName}"`, `"ruleName": "top"`},
			wants: []string{`insightRule.ruleName: "top" is no declared insight rule's name`}},
		{name: "function logs kept forever", edit: del("Resources", "WorkerFunctionLogGroup", "Properties", "RetentionInDays"),
			wants: []string{"WorkerFunctionLogGroup.Properties.RetentionInDays: is not set"}},
		{name: "function logging to Lambda's own group", edit: del("Resources", "PollerFunction", "Properties", "LoggingConfig"),
			wants: []string{"PollerFunction.Properties.LoggingConfig.LogGroup: is not a Ref to the function's log group"}},
		{name: "log level written into the template", edit: set(str("INFO"), "Globals", "Function", "LoggingConfig", "ApplicationLogLevel"),
			wants: []string{"IngestFunction.Properties.LoggingConfig.ApplicationLogLevel: is INFO, want a Ref to a parameter"}},
		{name: "no access log", edit: del("Resources", "WebhookApi", "Properties", "AccessLogSettings"),
			wants: []string{"WebhookApi.Properties.AccessLogSettings: is not set"}},
		{name: "access log with the path", text: [2]string{`"routeKey":"$context.routeKey"`, `"path":"$context.path"`},
			wants: []string{"logs $context.path, which may carry the path secret", "AccessLogSettings.Format: lacks $context.routeKey"}},
		{name: "route throttling written into the template", edit: set(100, "Resources", "WebhookApi", "Properties", "DefaultRouteSettings", "ThrottlingRateLimit"),
			wants: []string{"DefaultRouteSettings.ThrottlingRateLimit: is 100, want a Ref to a parameter"}},
		{name: "table without deletion protection", edit: del("Resources", "Table", "Properties", "DeletionProtectionEnabled"),
			wants: []string{"Table.Properties.DeletionProtectionEnabled: is not true"}},
		{name: "Halo secret not retained", edit: del("Resources", "HaloApiSecret", "DeletionPolicy"),
			wants: []string{`HaloApiSecret.DeletionPolicy: is "", want Retain`}},
		{name: "dead-letter queue replaced without a trace", edit: del("Resources", "ChangesDeadLetterQueue", "UpdateReplacePolicy"),
			wants: []string{`ChangesDeadLetterQueue.UpdateReplacePolicy: is "", want Retain`}},
		{name: "configuration deleted with the stack", edit: del("Resources", "ConfigParameter", "DeletionPolicy"),
			wants: []string{`ConfigParameter.DeletionPolicy: is "", want Retain`}},
		{name: "worker cannot dead-letter permanent failures", edit: delIndex(2, "Resources", "WorkerFunction", "Properties", "Policies", 0, "Statement"),
			wants: []string{"WorkerFunction is not granted sqs:SendMessage on ChangesDeadLetterQueue"}},
		{name: "no serverless transform", edit: del("Transform"),
			wants: []string{"Transform: is <nil>"}},
	}
	names := map[string]bool{}
	for _, tc := range cases {
		if names[tc.name] {
			t.Fatalf("case %q twice", tc.name)
		}
		names[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			tp, r := good.clone(), realRepo(t)
			if tc.text[0] != "" {
				if !strings.Contains(text, tc.text[0]) {
					t.Fatalf("template.yaml no longer contains %q: update the case", tc.text[0])
				}
				tp = loadTemplate(t, strings.Replace(text, tc.text[0], tc.text[1], 1))
			}
			if tc.edit != nil {
				tc.edit(t, tp, &r)
			}
			problems := check(tp, r)
			if len(problems) == 0 {
				t.Fatal("the checker found nothing wrong")
			}
			for _, want := range tc.wants {
				if !containsProblem(problems, want) {
					t.Errorf("no problem mentions %q; got:\n  %s", want, strings.Join(problems, "\n  "))
				}
			}
		})
	}
}

func containsProblem(problems []string, want string) bool {
	for _, p := range problems {
		if strings.Contains(p, want) {
			return true
		}
	}
	return false
}

// --- mutations ------------------------------------------------------------------------------

func str(s string) any            { return s }
func ref(name string) any         { return map[string]any{"Ref": name} }
func getAtt(res, attr string) any { return map[string]any{"Fn::GetAtt": []any{res, attr}} }

// parent walks path but its last step, failing the test if the template lacks it (a mutation
// that silently did nothing would prove nothing).
func parent(t *testing.T, doc any, path []any) any {
	t.Helper()
	cur := doc
	for i, step := range path[:len(path)-1] {
		switch k := step.(type) {
		case string:
			m := asMap(cur)
			if m == nil || m[k] == nil {
				t.Fatalf("template has no %v", path[:i+1])
			}
			cur = m[k]
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("template has no %v", path[:i+1])
			}
			cur = l[k]
		}
	}
	return cur
}

func set(value any, path ...any) func(*testing.T, *template, *repo) {
	return func(t *testing.T, tp *template, _ *repo) {
		t.Helper()
		switch p := parent(t, tp.doc, path).(type) {
		case map[string]any:
			p[path[len(path)-1].(string)] = deepCopy(value)
		case []any:
			p[path[len(path)-1].(int)] = deepCopy(value)
		default:
			t.Fatalf("cannot set %v", path)
		}
	}
}

func del(path ...any) func(*testing.T, *template, *repo) {
	return func(t *testing.T, tp *template, _ *repo) {
		t.Helper()
		m := asMap(parent(t, tp.doc, path))
		k := path[len(path)-1].(string)
		if _, ok := m[k]; !ok {
			t.Fatalf("template has no %v", path)
		}
		delete(m, k)
	}
}

// appendTo appends value to the list at path.
func appendTo(value any, path ...any) func(*testing.T, *template, *repo) {
	return func(t *testing.T, tp *template, _ *repo) {
		t.Helper()
		m := asMap(parent(t, tp.doc, path))
		k := path[len(path)-1].(string)
		l, ok := m[k].([]any)
		if !ok {
			t.Fatalf("%v is not a list", path)
		}
		m[k] = append(l, deepCopy(value))
	}
}

// delIndex removes element i of the list at path.
func delIndex(i int, path ...any) func(*testing.T, *template, *repo) {
	return func(t *testing.T, tp *template, _ *repo) {
		t.Helper()
		m := asMap(parent(t, tp.doc, path))
		k := path[len(path)-1].(string)
		l, ok := m[k].([]any)
		if !ok || i >= len(l) {
			t.Fatalf("%v has no element %d", path, i)
		}
		m[k] = append(append([]any{}, l[:i]...), l[i+1:]...)
	}
}

func editMakefile(old, repl string) func(*testing.T, *template, *repo) {
	return func(t *testing.T, _ *template, r *repo) {
		t.Helper()
		if !strings.Contains(r.makefile, old) {
			t.Fatalf("the Makefile no longer contains %q: update the case", old)
		}
		r.makefile = strings.Replace(r.makefile, old, repl, 1)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// --- samconfig.toml -------------------------------------------------------------------------

// TestSamconfig: samconfig.toml parses, names the stack, and gives `sam build`, `sam deploy`
// and `sam validate` working defaults for this template.
func TestSamconfig(t *testing.T) {
	var cfg map[string]any
	if _, err := toml.DecodeFile(samconfigPath, &cfg); err != nil {
		t.Fatalf("samconfig.toml: %v", err)
	}
	for _, p := range checkSamconfig(cfg, loadTemplate(t, readFile(t, templatePath))) {
		t.Error(p)
	}

	broken := map[string]string{
		"no stack name":        "version = 0.1\n[default.deploy.parameters]\ncapabilities = \"CAPABILITY_IAM\"\nresolve_s3 = true\n",
		"no IAM capability":    "version = 0.1\n[default.global.parameters]\nstack_name = \"halosync\"\n[default.deploy.parameters]\nresolve_s3 = true\n",
		"undeclared parameter": "version = 0.1\n[default.global.parameters]\nstack_name = \"halosync\"\n[default.deploy.parameters]\ncapabilities = \"CAPABILITY_IAM\"\nresolve_s3 = true\nparameter_overrides = \"LogLevel=DEBUG Nope=1\"\n",
	}
	wants := map[string]string{"no stack name": "stack_name", "no IAM capability": "CAPABILITY_IAM", "undeclared parameter": "Nope"}
	for name, text := range broken {
		var bad map[string]any
		if _, err := toml.Decode(text, &bad); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if problems := checkSamconfig(bad, loadTemplate(t, readFile(t, templatePath))); !containsProblem(problems, wants[name]) {
			t.Errorf("%s: problems %q do not mention %s", name, problems, wants[name])
		}
	}
}

func checkSamconfig(cfg map[string]any, tp *template) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if v, ok := cfg["version"].(float64); !ok || v != 0.1 {
		add("version = %v, want 0.1", cfg["version"])
	}
	params := func(cmd string) map[string]any { return asMap(get(cfg, "default", cmd, "parameters")) }
	if s, _ := asString(params("global")["stack_name"]); s != "halosync" {
		add("default.global.parameters.stack_name = %q, want halosync", s)
	}
	deploy := params("deploy")
	var caps []string
	switch c := deploy["capabilities"].(type) {
	case string:
		caps = strings.Fields(c)
	case []any:
		for _, e := range c {
			caps = append(caps, fmt.Sprint(e))
		}
	}
	if !slices.Contains(caps, "CAPABILITY_IAM") && !slices.Contains(caps, "CAPABILITY_NAMED_IAM") {
		add("default.deploy.parameters.capabilities = %v: SAM makes IAM roles, CAPABILITY_IAM is needed", caps)
	}
	if len(tp.ofType("AWS::Serverless::Application")) > 0 && !slices.Contains(caps, "CAPABILITY_AUTO_EXPAND") {
		add("nested applications need CAPABILITY_AUTO_EXPAND")
	}
	if b, _ := asBool(deploy["resolve_s3"]); !b && deploy["s3_bucket"] == nil {
		add("default.deploy.parameters: neither resolve_s3 nor s3_bucket: sam deploy has nowhere to upload the code")
	}
	if overrides, ok := asString(deploy["parameter_overrides"]); ok {
		for _, kv := range strings.Fields(overrides) {
			name, _, _ := strings.Cut(kv, "=")
			if !tp.isParameter(name) {
				add("parameter_overrides sets %s, which the template does not declare", name)
			}
		}
	}
	if len(problems) > 0 {
		return problems // the rest is about the real file's defaults
	}
	if b, _ := asBool(deploy["confirm_changeset"]); !b {
		add("default.deploy.parameters.confirm_changeset is not true")
	}
	for _, k := range []string{"cached", "parallel"} {
		if b, _ := asBool(params("build")[k]); !b {
			add("default.build.parameters.%s is not true", k)
		}
	}
	if b, _ := asBool(params("validate")["lint"]); !b {
		add("default.validate.parameters.lint is not true")
	}
	return problems
}
