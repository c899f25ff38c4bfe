package samtemplate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"gopkg.in/yaml.v3"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/readapi"
	"github.com/halosync/halosync/internal/worker"
)

// This file is the wiring checker: check returns every problem it finds in a template, as
// "where: what" lines. Its rules are of two kinds: general ones that hold for any template of
// this project (references resolve, functions build, queues redrive, alarms point at real
// metrics, policies are least-privilege), and halosync's own contract with its code (the
// environment variables the functions read, the webhook route, the table's keys, the outputs
// the README and the CLI use).

// repo gives the checker the files next to the template.
type repo struct {
	root     string // the directory holding template.yaml, the Makefile and functions/
	makefile string // the Makefile's text
}

// checker accumulates problems.
type checker struct {
	t        *template
	repo     repo
	problems []string
}

func (c *checker) addf(where, format string, args ...any) {
	c.problems = append(c.problems, strings.TrimPrefix(where, ".")+": "+fmt.Sprintf(format, args...))
}

// check runs every rule on t.
func check(t *template, r repo) []string {
	c := &checker{t: t, repo: r}
	c.checkTop()
	c.checkReferences()
	c.checkParameters()
	c.checkFunctions()
	c.checkQueues()
	c.checkEvents()
	c.checkReadRoutes()
	c.checkSchedules()
	c.checkPolicies()
	c.checkTable()
	c.checkConfigDocument()
	c.checkAlarms()
	c.checkDashboards()
	c.checkLogging()
	c.checkRetained()
	c.checkOutputs()
	return c.problems
}

// The names halosync's code and docs rely on.
const (
	serverlessTransform = "AWS::Serverless-2016-10-31"
	webhookRoute        = "POST /webhooks/halo/{connection}"
	configEnvVar        = "HALOSYNC_CONFIG_PARAMETER"
)

// wantEnv is each function's environment contract: variable name -> the resource it must name.
var wantEnv = map[string]map[string]string{
	"IngestFunction": {"QUEUE_URL": "ChangesQueue", configEnvVar: "ConfigParameter"},
	"WorkerFunction": {"TABLE_NAME": "Table", "QUEUE_URL": "ChangesQueue", configEnvVar: "ConfigParameter"},
	"PollerFunction": {"TABLE_NAME": "Table", "QUEUE_URL": "ChangesQueue", configEnvVar: "ConfigParameter"},
	"ReadFunction":   {"TABLE_NAME": "Table"},
}

// minRetryHorizon is the shortest dependency outage the queue's redrive policy must wait
// out before it dead-letters a change that may still apply.
const minRetryHorizon = time.Hour

// pollerFunction is the function the schedule runs: it must run at least as often as the
// poller's plans may ask (poller.PlanOf), one run at a time.
const pollerFunction = "PollerFunction"

// wantOutputs are the outputs the README and `halosync` read after a deploy.
var wantOutputs = []string{"WebhookUrl", "ChangesQueueUrl", "DeadLetterQueueUrl", "TableName", "WebhookSecretArn", "ConfigParameterName"}

// --- template as a whole --------------------------------------------------------------------

func (c *checker) checkTop() {
	tr := c.t.doc["Transform"]
	found := false
	for _, e := range asList(tr) {
		if s, _ := asString(e); s == serverlessTransform {
			found = true
		}
	}
	if !found {
		c.addf("Transform", "is %v, want %s", tr, serverlessTransform)
	}
	if len(c.t.section("Resources")) == 0 {
		c.addf("Resources", "none declared")
	}
	for _, id := range sortedKeys(c.t.section("Resources")) {
		if c.t.typeOf(id) == "" {
			c.addf("Resources."+id, "has no Type")
		}
	}
}

// --- references -----------------------------------------------------------------------------

// getAttNames are the attributes GetAtt may read, for the resource types this project uses.
// Types not listed here are not checked attribute by attribute.
var getAttNames = map[string][]string{
	"AWS::SQS::Queue":                 {"Arn", "QueueName", "QueueUrl"},
	"AWS::DynamoDB::Table":            {"Arn", "StreamArn"},
	"AWS::Serverless::Function":       {"Arn"},
	"AWS::Serverless::HttpApi":        {"ApiEndpoint", "ApiId"},
	"AWS::Logs::LogGroup":             {"Arn"},
	"AWS::SNS::Topic":                 {"TopicArn", "TopicName"},
	"AWS::SecretsManager::Secret":     {"Id"},
	"AWS::SSM::Parameter":             {"Type", "Value"},
	"AWS::CloudWatch::Alarm":          {"Arn"},
	"AWS::CloudWatch::CompositeAlarm": {"Arn"},
	"AWS::CloudWatch::InsightRule":    {"Arn", "RuleName"},
}

// checkReferences: every Ref, GetAtt, Sub ${X} and ${X.Attr}, Fn::If and Condition names
// something declared; no unknown intrinsic function; DependsOn and resource conditions exist.
func (c *checker) checkReferences() {
	for _, sec := range []string{"Globals", "Conditions", "Resources", "Outputs"} {
		c.checkIntrinsicNames(c.t.doc[sec], sec)
		for _, tg := range targets(c.t.doc[sec], sec) {
			switch tg.kind {
			case "Ref":
				if !c.t.isResource(tg.name) && !c.t.isParameter(tg.name) && !pseudoParameters[tg.name] {
					c.addf(tg.path, "refers to %q, which is no resource, parameter or pseudo parameter", tg.name)
				}
			case "GetAtt":
				if !c.t.isResource(tg.name) {
					c.addf(tg.path, "GetAtt of %q, which is no resource", tg.name)
					continue
				}
				if attrs, known := getAttNames[c.t.typeOf(tg.name)]; known && !slices.Contains(attrs, tg.attr) {
					c.addf(tg.path, "GetAtt %s.%s: a %s has no attribute %q (has %s)", tg.name, tg.attr, c.t.typeOf(tg.name), tg.attr, strings.Join(attrs, ", "))
				}
			case "Condition":
				if !c.t.isCondition(tg.name) {
					c.addf(tg.path, "condition %q is not declared in Conditions", tg.name)
				}
			}
		}
	}
	for _, id := range sortedKeys(c.t.section("Resources")) {
		res := c.t.resource(id)
		if cond, ok := res["Condition"]; ok {
			if s, _ := asString(cond); !c.t.isCondition(s) {
				c.addf("Resources."+id+".Condition", "condition %v is not declared in Conditions", cond)
			}
		}
		for _, dep := range asList(res["DependsOn"]) {
			if s, _ := asString(dep); !c.t.isResource(s) {
				c.addf("Resources."+id+".DependsOn", "%v is no resource", dep)
			}
		}
	}
	for _, id := range sortedKeys(c.t.section("Outputs")) {
		if cond, ok := asMap(c.t.section("Outputs")[id])["Condition"]; ok {
			if s, _ := asString(cond); !c.t.isCondition(s) {
				c.addf("Outputs."+id+".Condition", "condition %v is not declared in Conditions", cond)
			}
		}
	}
}

func (c *checker) checkIntrinsicNames(v any, path string) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if strings.HasPrefix(k, "Fn::") && !knownIntrinsics[k] {
				c.addf(path+"."+k, "unknown intrinsic function %s", k)
			}
			c.checkIntrinsicNames(x[k], path+"."+k)
		}
	case []any:
		for i, e := range x {
			c.checkIntrinsicNames(e, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// --- parameters -----------------------------------------------------------------------------

func (c *checker) checkParameters() {
	params := c.t.section("Parameters")
	for _, name := range sortedKeys(params) {
		p := asMap(params[name])
		where := "Parameters." + name
		if _, ok := p["Type"]; !ok {
			c.addf(where, "has no Type")
		}
		def, hasDefault := p["Default"]
		if !hasDefault {
			continue // sam deploy --guided asks for it
		}
		defStr := fmt.Sprint(def)
		if allowed, ok := p["AllowedValues"]; ok {
			in := false
			for _, a := range asList(allowed) {
				if fmt.Sprint(a) == defStr {
					in = true
				}
			}
			if !in {
				c.addf(where, "Default %q is not one of AllowedValues %v", defStr, allowed)
			}
		}
		if pat, ok := asString(p["AllowedPattern"]); ok {
			re, err := regexp.Compile("^(?:" + pat + ")$")
			if err != nil {
				c.addf(where, "AllowedPattern does not compile: %v", err)
			} else if !re.MatchString(defStr) {
				c.addf(where, "Default %q does not match AllowedPattern %q", defStr, pat)
			}
		}
	}
	for _, want := range []string{"LogLevel", "AlarmEmail", "ConfigParameterName"} {
		if params[want] == nil {
			c.addf("Parameters", "missing %s", want)
		}
	}
	if ll := asMap(params["LogLevel"]); ll != nil {
		var got []string
		for _, v := range asList(ll["AllowedValues"]) {
			got = append(got, fmt.Sprint(v))
		}
		sort.Strings(got)
		if strings.Join(got, ",") != "DEBUG,ERROR,INFO,WARN" {
			c.addf("Parameters.LogLevel.AllowedValues", "are %v, want DEBUG, INFO, WARN, ERROR (Lambda's application log levels)", got)
		}
	}
	if ae := asMap(params["AlarmEmail"]); ae != nil {
		if def, _ := asString(ae["Default"]); def != "" || ae["Default"] == nil {
			c.addf("Parameters.AlarmEmail", "must default to \"\" (no subscription)")
		}
	}
}

// --- functions ------------------------------------------------------------------------------

// effectiveFunction is a function's properties with the Globals applied the way SAM does:
// the function's scalars win, maps merge, lists are appended to the global ones.
func (t *template) effectiveFunction(id string) map[string]any {
	glob := asMap(get(t.doc, "Globals", "Function"))
	return mergeGlobals(deepCopy(glob), t.props(id)).(map[string]any)
}

func mergeGlobals(global, local any) any {
	gm, gIsMap := global.(map[string]any)
	lm, lIsMap := local.(map[string]any)
	if gIsMap && lIsMap {
		if _, _, isIntrinsic := intrinsic(lm); !isIntrinsic {
			out := map[string]any{}
			for k, v := range gm {
				out[k] = v
			}
			for k, v := range lm {
				if g, ok := out[k]; ok {
					out[k] = mergeGlobals(g, v)
				} else {
					out[k] = v
				}
			}
			return out
		}
	}
	gl, gIsList := global.([]any)
	ll, lIsList := local.([]any)
	if gIsList && lIsList {
		return append(append([]any{}, gl...), ll...)
	}
	if local == nil {
		if global == nil {
			return map[string]any{}
		}
		return global
	}
	return local
}

// goarchFor maps a Lambda architecture to the Go architecture its bootstrap must be built for.
var goarchFor = map[string]string{"arm64": "arm64", "x86_64": "amd64"}

func (c *checker) checkFunctions() {
	fns := c.t.ofType("AWS::Serverless::Function")
	if len(fns) == 0 {
		c.addf("Resources", "no AWS::Serverless::Function")
	}
	for id := range wantEnv {
		if c.t.typeOf(id) != "AWS::Serverless::Function" {
			c.addf("Resources", "missing function %s", id)
		}
	}
	mk := parseMakefile(c.repo.makefile)
	for _, id := range fns {
		where := "Resources." + id
		p := c.t.effectiveFunction(id)
		if bm, _ := asString(get(c.t.resource(id), "Metadata", "BuildMethod")); bm != "makefile" {
			c.addf(where+".Metadata.BuildMethod", "is %q, want makefile (sam build runs make build-%s)", bm, id)
		}
		if s, _ := asString(p["Runtime"]); s != "provided.al2023" {
			c.addf(where+".Runtime", "is %q, want provided.al2023", s)
		}
		if s, _ := asString(p["Handler"]); s != "bootstrap" {
			c.addf(where+".Handler", "is %q, want bootstrap", s)
		}
		arch := c.architecture(where, p["Architectures"])
		if s, _ := asString(get(p, "LoggingConfig", "LogFormat")); s != "JSON" {
			c.addf(where+".LoggingConfig.LogFormat", "is %q, want JSON", s)
		}
		if get(p, "LoggingConfig", "ApplicationLogLevel") == nil {
			c.addf(where+".LoggingConfig.ApplicationLogLevel", "is not set")
		}
		if n, ok := asNumber(p["Timeout"]); !ok || n < 1 || n > 900 {
			c.addf(where+".Timeout", "is %v, want 1..900 seconds", p["Timeout"])
		}
		if n, ok := asNumber(p["MemorySize"]); !ok || n < 128 || n > 10240 {
			c.addf(where+".MemorySize", "is %v, want 128..10240 MB", p["MemorySize"])
		}
		codeURI, _ := asString(p["CodeUri"])
		if codeURI == "" {
			c.addf(where+".CodeUri", "is not a local directory")
		} else if _, err := os.Stat(filepath.Join(c.repo.root, codeURI, "Makefile")); err != nil {
			c.addf(where+".CodeUri", "%q has no Makefile for BuildMethod makefile", codeURI)
		}
		c.checkBuildTarget(where, id, arch, mk)
		c.checkEnvironment(where, id, p)
	}
}

// architecture checks a function's Architectures: one entry, arm64 as deployed by default,
// either literal or a Ref to a parameter that allows only architectures the Makefile can
// build for (GOARCH_LAMBDA). It returns the default architecture, or "" when it has none.
func (c *checker) architecture(where string, v any) string {
	archs := asList(v)
	if len(archs) != 1 {
		c.addf(where+".Architectures", "are %v, want exactly one, by default arm64", v)
		return ""
	}
	if name, operand, ok := intrinsic(archs[0]); ok && name == "Ref" {
		param, _ := asString(operand)
		allowed := asList(get(c.t.section("Parameters")[param], "AllowedValues"))
		if len(allowed) == 0 {
			c.addf("Parameters."+param+".AllowedValues", "are not set: only arm64 and x86_64 are Lambda architectures")
		}
		for _, a := range allowed {
			if s, _ := asString(a); goarchFor[s] == "" {
				c.addf("Parameters."+param+".AllowedValues", "allow %v, which is no Lambda architecture", a)
			}
		}
	}
	def, err := c.t.eval(archs[0])
	arch, _ := def.(string)
	if err != nil || arch != "arm64" {
		c.addf(where+".Architectures", "are %v (by default %v), want [arm64] by default", archs, def)
	}
	return arch
}

// makefile is what the checker needs of a Makefile: variables and explicit targets' recipes.
type makefile struct {
	vars    map[string]string
	recipes map[string]string // target -> recipe, continuation lines joined
}

var (
	makeVarLine    = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\?=|:=|::=|=)\s*(.*)$`)
	makeTargetLine = regexp.MustCompile(`^([^\s:=#][^:=#]*):(?:[^=]|$)`)
	functionDir    = regexp.MustCompile(`(?:^|\s)\./functions/([A-Za-z0-9_-]+)(?:\s|$)`)
	goarchSetting  = regexp.MustCompile(`\bGOARCH=(\S+)`)
	makeVarUse     = regexp.MustCompile(`^\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]$`)
)

func parseMakefile(text string) makefile {
	mk := makefile{vars: map[string]string{}, recipes: map[string]string{}}
	lines := strings.Split(strings.ReplaceAll(text, "\\\n", " "), "\n")
	var current []string
	for _, line := range lines {
		if strings.HasPrefix(line, "\t") {
			for _, tgt := range current {
				mk.recipes[tgt] += strings.TrimSpace(line) + "\n"
			}
			continue
		}
		current = nil
		if m := makeVarLine.FindStringSubmatch(line); m != nil {
			mk.vars[m[1]] = strings.TrimSpace(m[2])
			continue
		}
		if m := makeTargetLine.FindStringSubmatch(line); m != nil {
			for _, tgt := range strings.Fields(m[1]) {
				if _, ok := mk.recipes[tgt]; !ok {
					mk.recipes[tgt] = ""
				}
				current = append(current, tgt)
			}
		}
	}
	return mk
}

// checkBuildTarget: the Makefile has build-<LogicalId> (what sam build calls for BuildMethod
// makefile), it builds ./functions/<name> for linux and the function's architecture into
// $(ARTIFACTS_DIR)/bootstrap, and functions/<name> exists once functions/ does.
func (c *checker) checkBuildTarget(where, id, arch string, mk makefile) {
	target := "build-" + id
	recipe, ok := mk.recipes[target]
	if !ok {
		c.addf(where, "the Makefile has no %s: target (sam build runs it for BuildMethod makefile)", target)
		return
	}
	m := functionDir.FindStringSubmatch(recipe)
	if m == nil {
		c.addf(where, "Makefile target %s does not build a ./functions/<name> package", target)
		return
	}
	dir := m[1]
	if !strings.Contains(recipe, "$(ARTIFACTS_DIR)/bootstrap") {
		c.addf(where, "Makefile target %s does not write $(ARTIFACTS_DIR)/bootstrap", target)
	}
	if !strings.Contains(recipe, "GOOS=linux") {
		c.addf(where, "Makefile target %s does not build for GOOS=linux", target)
	}
	if g := goarchSetting.FindStringSubmatch(recipe); g == nil {
		c.addf(where, "Makefile target %s does not set GOARCH", target)
	} else {
		goarch := g[1]
		if v := makeVarUse.FindStringSubmatch(goarch); v != nil {
			goarch = mk.vars[v[1]]
		}
		if want := goarchFor[arch]; arch != "" && goarch != want {
			c.addf(where, "Makefile target %s builds GOARCH=%s, the function runs on %s (GOARCH=%s)", target, goarch, arch, want)
		}
	}
	functions := filepath.Join(c.repo.root, "functions")
	if _, err := os.Stat(functions); err != nil {
		return // functions/ is not written yet; the target is all there is to check
	}
	goFiles, _ := filepath.Glob(filepath.Join(functions, dir, "*.go"))
	if len(goFiles) == 0 {
		c.addf(where, "Makefile target %s builds ./functions/%s, which has no Go files", target, dir)
	}
}

// localOnly reports whether a function's variable is declared only for `sam local invoke
// --env-vars` to set (SAM overrides only declared variables): the configuration file, which
// wins over the SSM parameter, and the SDK's endpoint overrides for local stand-ins.
func localOnly(name string) bool {
	return name == "HALOSYNC_CONFIG_FILE" || strings.HasPrefix(name, "AWS_ENDPOINT_URL")
}

// checkEnvironment: every variable names a declared resource (or parameter), no secret is put
// in a plain variable, the local-only variables are empty, and the function's contract in
// wantEnv holds.
func (c *checker) checkEnvironment(where, id string, p map[string]any) {
	vars := asMap(get(p, "Environment", "Variables"))
	for _, name := range sortedKeys(vars) {
		v := vars[name]
		w := where + ".Environment.Variables." + name
		if localOnly(name) && v != "" {
			c.addf(w, "is %v, want \"\": it is declared for `sam local invoke --env-vars` only; deployed, the function reads %s and reaches AWS", v, configEnvVar)
		}
		if s, ok := asString(v); ok {
			if strings.Contains(s, "{{resolve:secretsmanager") || strings.Contains(s, "{{resolve:ssm-secure") {
				c.addf(w, "puts a secret in a plain environment variable")
			}
			continue
		}
		tgs := targets(v, w)
		if len(tgs) == 0 {
			c.addf(w, "is neither a string nor a reference")
		}
		for _, tg := range tgs {
			if tg.kind == "Ref" && (c.t.isParameter(tg.name) || pseudoParameters[tg.name]) {
				continue
			}
			if !c.t.isResource(tg.name) {
				c.addf(w, "refers to %q, which is no declared resource", tg.name)
			}
		}
	}
	for _, name := range sortedKeys(wantEnv[id]) {
		want := wantEnv[id][name]
		v, ok := vars[name]
		if !ok {
			c.addf(where+".Environment.Variables", "missing %s (the function reads it)", name)
			continue
		}
		if got := c.t.resourceTargets(v); len(got) != 1 || got[0] != want {
			c.addf(where+".Environment.Variables."+name, "refers to %v, want %s", got, want)
		}
	}
}

// --- queues and event sources ---------------------------------------------------------------

// sqsEvent is one SQS event of one function.
type sqsEvent struct {
	function, name, queue string
	props                 map[string]any
}

func (c *checker) sqsEvents() []sqsEvent {
	var out []sqsEvent
	for _, fn := range c.t.ofType("AWS::Serverless::Function") {
		events := asMap(c.t.props(fn)["Events"])
		for _, name := range sortedKeys(events) {
			ev := asMap(events[name])
			if typ, _ := asString(ev["Type"]); typ != "SQS" {
				continue
			}
			props := asMap(ev["Properties"])
			res, attr := "", ""
			if n, op, ok := intrinsic(props["Queue"]); ok && n == "Fn::GetAtt" {
				res, attr = getAttOperand(op)
			}
			if attr != "Arn" {
				res = ""
			}
			out = append(out, sqsEvent{function: fn, name: name, queue: res, props: props})
		}
	}
	return out
}

// dlqOf returns the queue a queue's RedrivePolicy sends to, "" if none.
func (c *checker) dlqOf(queue string) string {
	rp := asMap(c.t.props(queue)["RedrivePolicy"])
	if n, op, ok := intrinsic(rp["deadLetterTargetArn"]); ok && n == "Fn::GetAtt" {
		if res, attr := getAttOperand(op); attr == "Arn" {
			return res
		}
	}
	return ""
}

// checkQueues: a queue a function consumes has a RedrivePolicy to a declared queue with a
// maxReceiveCount whose retry horizon (worker.RetryHorizon) is at least minRetryHorizon,
// equal to the embedded queue's default, a VisibilityTimeout of at least 6 times each consumer's Timeout (AWS's
// advice for event source mappings), and a dead-letter queue that keeps messages longer than
// the queue does. Every queue is encrypted.
func (c *checker) checkQueues() {
	queues := c.t.ofType("AWS::SQS::Queue")
	for _, q := range queues {
		p := c.t.props(q)
		if sse, _ := asBool(p["SqsManagedSseEnabled"]); !sse && p["KmsMasterKeyId"] == nil {
			c.addf("Resources."+q, "is not encrypted (SqsManagedSseEnabled or KmsMasterKeyId)")
		}
	}
	consumers := map[string][]string{}
	for _, ev := range c.sqsEvents() {
		if ev.queue != "" {
			consumers[ev.queue] = append(consumers[ev.queue], ev.function)
		}
	}
	for _, q := range sortedKeys(consumers) {
		where := "Resources." + q + ".Properties"
		p := c.t.props(q)
		rp := asMap(p["RedrivePolicy"])
		if rp == nil {
			c.addf(where, "has no RedrivePolicy: a message that always fails would be retried until it expires")
			continue
		}
		dlq := c.dlqOf(q)
		switch {
		case dlq == "":
			c.addf(where+".RedrivePolicy.deadLetterTargetArn", "is not a GetAtt <Queue>.Arn")
		case c.t.typeOf(dlq) != "AWS::SQS::Queue":
			c.addf(where+".RedrivePolicy.deadLetterTargetArn", "%s is no declared AWS::SQS::Queue", dlq)
		case dlq == q:
			c.addf(where+".RedrivePolicy.deadLetterTargetArn", "is the queue itself")
		}
		if n, ok := asNumber(rp["maxReceiveCount"]); !ok || worker.RetryHorizon(int(n)) < minRetryHorizon {
			c.addf(where+".RedrivePolicy.maxReceiveCount", "is %v: with worker.Backoff a failing change is retried for %v, want at least %v (an outage of the table or of Halo's API must not dead-letter changes)",
				rp["maxReceiveCount"], worker.RetryHorizon(int(n)).Round(time.Minute), minRetryHorizon)
		} else if int(n) != config.DefaultMaxReceive {
			c.addf(where+".RedrivePolicy.maxReceiveCount", "is %v, the embedded queue's default is %d: keep them equal, so both wait out the same outage", n, config.DefaultMaxReceive)
		}
		vt, ok := asNumber(p["VisibilityTimeout"])
		if !ok {
			vt = 30 // SQS's default
		}
		for _, fn := range consumers[q] {
			if to, ok := asNumber(c.t.effectiveFunction(fn)["Timeout"]); ok && vt < 6*to {
				c.addf(where+".VisibilityTimeout", "is %v s, want at least 6 x %s's Timeout (%v s) = %v s", vt, fn, to, 6*to)
			}
		}
		if c.t.typeOf(dlq) == "AWS::SQS::Queue" {
			retention := func(id string) float64 {
				if n, ok := asNumber(c.t.props(id)["MessageRetentionPeriod"]); ok {
					return n
				}
				return 345600 // SQS's default, 4 days
			}
			if retention(dlq) <= retention(q) {
				c.addf("Resources."+dlq+".Properties.MessageRetentionPeriod", "is %v s, not longer than %s's %v s: a message's age carries over into the DLQ", retention(dlq), q, retention(q))
			}
			if retention(q) < 4*86400 {
				c.addf(where+".MessageRetentionPeriod", "is %v s, want at least 4 days", retention(q))
			}
		}
	}
}

// checkEvents: each SQS event reads a declared queue (GetAtt .Arn) and reports batch item
// failures; each HttpApi event is on a declared HttpApi with payload format 2.0; the ingest
// function serves the webhook route.
func (c *checker) checkEvents() {
	for _, ev := range c.sqsEvents() {
		where := "Resources." + ev.function + ".Properties.Events." + ev.name + ".Properties"
		if ev.queue == "" || c.t.typeOf(ev.queue) != "AWS::SQS::Queue" {
			c.addf(where+".Queue", "is not a GetAtt <Queue>.Arn of a declared AWS::SQS::Queue")
		}
		reports := false
		for _, r := range asList(ev.props["FunctionResponseTypes"]) {
			if s, _ := asString(r); s == "ReportBatchItemFailures" {
				reports = true
			}
		}
		if !reports {
			c.addf(where+".FunctionResponseTypes", "lacks ReportBatchItemFailures: one failed change would retry the whole batch")
		}
		if n, ok := asNumber(ev.props["BatchSize"]); ok && n > 10 {
			if w, _ := asNumber(ev.props["MaximumBatchingWindowInSeconds"]); w < 1 {
				c.addf(where+".BatchSize", "above 10 needs MaximumBatchingWindowInSeconds >= 1")
			}
		}
		// The worker starts no message with less than worker.Margin of the invocation left:
		// a started one must have room for a Halo request that takes its whole timeout.
		if to, ok := asNumber(c.t.effectiveFunction(ev.function)["Timeout"]); ok && time.Duration(to)*time.Second-worker.Margin <= haloapi.DefaultTimeout {
			c.addf("Resources."+ev.function+".Properties.Timeout", "is %v s: less worker.Margin (%v) it leaves no room for one Halo request's timeout (%v)", to, worker.Margin, haloapi.DefaultTimeout)
		}
		if mc := get(ev.props, "ScalingConfig", "MaximumConcurrency"); mc != nil {
			if n, ok := asNumber(mc); !ok || n < 2 || n > 1000 {
				c.addf(where+".ScalingConfig.MaximumConcurrency", "is %v, want 2..1000", mc)
			}
		}
	}
	routes := map[string]string{}
	for _, fn := range c.t.ofType("AWS::Serverless::Function") {
		events := asMap(c.t.props(fn)["Events"])
		for _, name := range sortedKeys(events) {
			ev := asMap(events[name])
			if typ, _ := asString(ev["Type"]); typ != "HttpApi" {
				continue
			}
			where := "Resources." + fn + ".Properties.Events." + name + ".Properties"
			props := asMap(ev["Properties"])
			api := ""
			if n, op, ok := intrinsic(props["ApiId"]); ok && n == "Ref" {
				api, _ = asString(op)
			}
			if c.t.typeOf(api) != "AWS::Serverless::HttpApi" {
				c.addf(where+".ApiId", "is not a Ref to a declared AWS::Serverless::HttpApi (without it SAM makes an implicit API)")
			}
			if v, ok := props["PayloadFormatVersion"]; ok && fmt.Sprint(v) != "2.0" {
				c.addf(where+".PayloadFormatVersion", "is %v, want 2.0", v)
			}
			method, _ := asString(props["Method"])
			path, _ := asString(props["Path"])
			routes[strings.ToUpper(method)+" "+path] = fn
		}
	}
	if fn := routes[webhookRoute]; fn != "IngestFunction" {
		c.addf("Resources.IngestFunction.Properties.Events", "no HttpApi event for %s (routes: %v)", webhookRoute, sortedKeys(routes))
	}
}

// readFunction serves the read routes (internal/readapi) in AWS.
const readFunction = "ReadFunction"

// checkReadRoutes: the read function serves every read route of internal/readapi, on an
// HttpApi that enables the IAM authoriser, each route authorised by AWS_IAM, and nothing
// else invokes it: the copy is never readable without AWS credentials.
func (c *checker) checkReadRoutes() {
	if c.t.typeOf(readFunction) != "AWS::Serverless::Function" {
		c.addf("Resources", "missing function %s (the read routes)", readFunction)
		return
	}
	served := map[string]bool{}
	events := asMap(c.t.props(readFunction)["Events"])
	for _, name := range sortedKeys(events) {
		ev := asMap(events[name])
		where := "Resources." + readFunction + ".Properties.Events." + name
		if typ, _ := asString(ev["Type"]); typ != "HttpApi" {
			c.addf(where+".Type", "is %q: the read function answers its HttpApi routes only", typ)
			continue
		}
		props := asMap(ev["Properties"])
		method, _ := asString(props["Method"])
		path, _ := asString(props["Path"])
		served[strings.ToUpper(method)+" "+path] = true
		if a, _ := asString(get(props, "Auth", "Authorizer")); a != "AWS_IAM" {
			c.addf(where+".Properties.Auth.Authorizer", "is %q, want AWS_IAM: a read route answers requests signed with AWS credentials only", a)
		}
		for _, api := range c.t.resourceTargets(props["ApiId"]) {
			if on, _ := asBool(get(c.t.props(api), "Auth", "EnableIamAuthorizer")); !on {
				c.addf("Resources."+api+".Properties.Auth.EnableIamAuthorizer", "is not true, which the read routes' AWS_IAM needs")
			}
		}
	}
	for _, route := range []string{readapi.ObjectRoute, readapi.NoteRoute, readapi.DeliveryRoute, readapi.ChangedRoute} {
		if !served[route] {
			c.addf("Resources."+readFunction+".Properties.Events", "no HttpApi event for %s", route)
		}
	}
	for _, route := range sortedKeys(served) {
		if !slices.Contains([]string{readapi.ObjectRoute, readapi.NoteRoute, readapi.DeliveryRoute, readapi.ChangedRoute}, route) {
			c.addf("Resources."+readFunction+".Properties.Events", "%s is no route of internal/readapi", route)
		}
	}
}

// --- schedules ------------------------------------------------------------------------------

var (
	rateExpr = regexp.MustCompile(`^rate\((\d+) (minutes?|hours?|days?)\)$`)
	cronExpr = regexp.MustCompile(`^cron\((\S+ ){5}\S+\)$`)
)

// schedulePeriod reads an EventBridge schedule expression: rate(N unit), singular for 1 and
// plural otherwise as EventBridge insists, or cron(six fields), whose period is not worked
// out (0).
func schedulePeriod(expr string) (time.Duration, error) {
	if cronExpr.MatchString(expr) {
		return 0, nil
	}
	m := rateExpr.FindStringSubmatch(expr)
	if m == nil {
		return 0, fmt.Errorf("not rate(N unit) or cron(six fields)")
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return 0, fmt.Errorf("the rate must be a positive whole number")
	}
	unit := strings.TrimSuffix(m[2], "s")
	if (n == 1) != (unit == m[2]) {
		return 0, fmt.Errorf("EventBridge wants the singular unit for 1 and the plural otherwise")
	}
	d := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[unit]
	return time.Duration(n) * d, nil
}

// scheduleEvents lists a function's Schedule and ScheduleV2 events: name -> expression.
func (c *checker) scheduleEvents(fn string) map[string]any {
	out := map[string]any{}
	events := asMap(c.t.props(fn)["Events"])
	for _, name := range sortedKeys(events) {
		ev := asMap(events[name])
		switch typ, _ := asString(ev["Type"]); typ {
		case "Schedule":
			out[name] = get(ev, "Properties", "Schedule")
		case "ScheduleV2":
			out[name] = get(ev, "Properties", "ScheduleExpression")
		}
	}
	return out
}

// checkSchedules: every schedule expression is one EventBridge accepts; a scheduled
// function runs one invocation at a time (ReservedConcurrentExecutions 1: two runs would
// read and write the same cursors), does not retry a failed run (the next tick is the
// retry) and drops a tick throttled behind a running one instead of keeping it for Lambda's
// default 6 hours. The poller function has a rate schedule at least as frequent as the
// shortest interval its plans ask for (hybrid mode's fallback).
func (c *checker) checkSchedules() {
	for _, fn := range c.t.ofType("AWS::Serverless::Function") {
		where := "Resources." + fn + ".Properties"
		schedules := c.scheduleEvents(fn)
		shortest := time.Duration(0)
		for _, name := range sortedKeys(schedules) {
			expr, _ := asString(schedules[name])
			period, err := schedulePeriod(expr)
			if err != nil {
				c.addf(where+".Events."+name, "schedule %q: %v", expr, err)
				continue
			}
			if period > 0 && (shortest == 0 || period < shortest) {
				shortest = period
			}
		}
		if len(schedules) == 0 {
			if fn == pollerFunction {
				c.addf(where+".Events", "no Schedule event: nothing runs the poller")
			}
			continue
		}
		p := c.t.effectiveFunction(fn)
		if n, ok := asNumber(p["ReservedConcurrentExecutions"]); !ok || n != 1 {
			c.addf(where+".ReservedConcurrentExecutions", "is %v, want 1: a scheduled run must not overlap the one before (Timeout %v s)", p["ReservedConcurrentExecutions"], p["Timeout"])
		}
		eic := get(p, "EventInvokeConfig")
		if n, ok := asNumber(get(eic, "MaximumRetryAttempts")); !ok || n != 0 {
			c.addf(where+".EventInvokeConfig.MaximumRetryAttempts", "is %v, want 0: the next tick retries a failed run (Lambda's default retries it twice more)", get(eic, "MaximumRetryAttempts"))
		}
		maxAge := max(60, shortest.Seconds())
		if n, ok := asNumber(get(eic, "MaximumEventAgeInSeconds")); !ok || n > maxAge {
			c.addf(where+".EventInvokeConfig.MaximumEventAgeInSeconds", "is %v, want at most %v s: a tick throttled behind a running one would otherwise be kept up to 6 hours and run late", get(eic, "MaximumEventAgeInSeconds"), maxAge)
		}
		if fn == pollerFunction {
			want := poller.PlanOf(connection.PollOf(config.Poll{})).Fallback
			switch {
			case shortest == 0:
				c.addf(where+".Events", "the poller's schedule is no rate(...): the check cannot tell whether it runs every %v", want)
			case shortest > want:
				c.addf(where+".Events", "the poller runs every %v, but its plans may ask for a poll every %v (poller.PlanOf: hybrid mode's fallback)", shortest, want)
			}
		}
	}
}

// --- IAM ------------------------------------------------------------------------------------

// samPolicyTemplates are the SAM policy templates this project may use, with the actions each
// grants on the resource its parameter names (from SAM's policy_templates.json).
var samPolicyTemplates = map[string][]string{
	"SQSSendMessagePolicy":                  {"sqs:SendMessage", "sqs:SendMessageBatch"},
	"SQSPollerPolicy":                       {"sqs:ChangeMessageVisibility", "sqs:ChangeMessageVisibilityBatch", "sqs:DeleteMessage", "sqs:DeleteMessageBatch", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"},
	"SSMParameterReadPolicy":                {"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"},
	"AWSSecretsManagerGetSecretValuePolicy": {"secretsmanager:GetSecretValue"},
	"DynamoDBCrudPolicy":                    {"dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"},
	"DynamoDBReadPolicy":                    {"dynamodb:GetItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:DescribeTable"},
	"DynamoDBWritePolicy":                   {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"},
}

// sqsEventActions are what SAM grants a function for an SQS event (it attaches the managed
// policy AWSLambdaSQSQueueExecutionRole; ChangeMessageVisibility is not in it).
var sqsEventActions = []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}

// wantGrants is what halosync's functions do at run time: function -> action -> resource.
var wantGrants = map[string]map[string]string{
	"IngestFunction": {
		"sqs:SendMessage":  "ChangesQueue",
		"ssm:GetParameter": "ConfigParameter",
	},
	"WorkerFunction": {
		"sqs:ReceiveMessage":          "ChangesQueue",
		"sqs:DeleteMessage":           "ChangesQueue",
		"sqs:ChangeMessageVisibility": "ChangesQueue",           // the worker delays its retries
		"sqs:SendMessage":             "ChangesDeadLetterQueue", // it moves permanent failures there, with their reason
		"dynamodb:GetItem":            "Table",
		"dynamodb:PutItem":            "Table",
		"dynamodb:UpdateItem":         "Table",
		"dynamodb:Query":              "Table",
	},
	"ReadFunction": {
		"dynamodb:GetItem": "Table", // an object, a note
		"dynamodb:Query":   "Table", // a delivery's records, what changed (GSI3)
	},
	"PollerFunction": {
		"sqs:SendMessage":     "ChangesQueue", // what it finds goes to the worker
		"dynamodb:GetItem":    "Table",        // the copy's versions, its cursors
		"dynamodb:PutItem":    "Table",        // its cursors and schedule state
		"dynamodb:UpdateItem": "Table",
		"dynamodb:Query":      "Table", // stored ids, through the indexes
		"ssm:GetParameter":    "ConfigParameter",
	},
	"PublisherFunction": {
		"events:PutEvents": "ChangeEventBus",           // change events, on the stack's bus only
		"sqs:SendMessage":  "PublisherDeadLetterQueue", // its event source mapping's on-failure destination
	},
}

// wantSecrets are the secrets each function reads, and the only ones it may: every function
// resolves the configuration's webhook passwords; only the worker and the poller call Halo's
// API, so only they read its credentials (the ingest function faces the internet).
var wantSecrets = map[string][]string{
	"IngestFunction": {"WebhookSecret"},
	"WorkerFunction": {"WebhookSecret", "HaloApiSecret"},
	"PollerFunction": {"WebhookSecret", "HaloApiSecret"},
}

// deniedServices are services a function must not reach: ingest makes no DynamoDB call and no
// Halo call (docs/ARCHITECTURE.md, "Ingest"); it verifies, enqueues and answers.
// The read function reads the table and nothing else: no queue, no configuration, no secret.
// The publisher reads the table's stream only (its event source mapping's role) and puts
// events: it reads neither the configuration nor a secret, and writes no item. Only it
// publishes change events.
var deniedServices = map[string][]string{
	"IngestFunction":    {"dynamodb", "events"},
	"WorkerFunction":    {"events"},
	"PollerFunction":    {"events"},
	"ReadFunction":      {"sqs", "ssm", "secretsmanager", "events"},
	"PublisherFunction": {"dynamodb", "ssm", "secretsmanager"},
}

// deniedActions are actions a function must not have: the poller only enqueues (the worker
// consumes the queue and is the only writer of object state, docs/ARCHITECTURE.md, "Flow"), and lists ids by
// index queries, never by scanning every tenant's items.
var deniedActions = map[string][]string{
	"PollerFunction": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "dynamodb:DeleteItem", "dynamodb:Scan", "dynamodb:BatchWriteItem"},
	// The read function is read only: it writes nothing, whatever its code would try.
	"ReadFunction": {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
		"dynamodb:ConditionCheckItem", "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"},
}

// grants maps action -> resources a function is granted, from its policy templates, inline
// statements and SQS events.
type grants map[string]map[string]bool

func (g grants) add(action string, resources ...string) {
	if g[action] == nil {
		g[action] = map[string]bool{}
	}
	for _, r := range resources {
		g[action][r] = true
	}
}

func (g grants) on(resource string) bool {
	for _, rs := range g {
		if rs[resource] {
			return true
		}
	}
	return false
}

// checkPolicies: policies are least-privilege. Policy templates take declared resources;
// inline statements name actions without wildcards and declared resources, never "*". Each
// function may do what its code does (wantGrants) and reach what its environment and its
// configuration name, and does not repeat what SAM grants for its SQS events.
func (c *checker) checkPolicies() {
	for _, fn := range c.t.ofType("AWS::Serverless::Function") {
		where := "Resources." + fn + ".Properties.Policies"
		p := c.t.props(fn)
		if p["Role"] != nil {
			c.addf("Resources."+fn+".Properties.Role", "is set: let SAM make the role from Policies, so it is checked here")
		}
		g := grants{}
		for i, pol := range asList(p["Policies"]) {
			w := fmt.Sprintf("%s[%d]", where, i)
			switch x := pol.(type) {
			case string:
				if strings.Contains(x, "FullAccess") || strings.HasSuffix(x, "AdministratorAccess") || strings.HasSuffix(x, "PowerUserAccess") {
					c.addf(w, "managed policy %s is not least-privilege", x)
				}
			case map[string]any:
				if _, ok := x["Statement"]; ok {
					c.checkStatements(w+".Statement", x["Statement"])
					for _, st := range asList(x["Statement"]) {
						if e, _ := asString(get(st, "Effect")); e != "Allow" {
							continue
						}
						res := c.t.resourceTargets(get(st, "Resource"))
						for _, a := range asList(get(st, "Action")) {
							if as, ok := asString(a); ok {
								g.add(as, res...)
							}
						}
					}
					continue
				}
				if len(x) != 1 {
					c.addf(w, "is neither a policy template nor a policy document")
					continue
				}
				for name, params := range x {
					actions, known := samPolicyTemplates[name]
					if !known {
						c.addf(w, "policy template %s is not one this project allows", name)
						continue
					}
					c.checkTemplateParams(w+"."+name, name, params)
					res := c.t.resourceTargets(params)
					for _, a := range actions {
						g.add(a, res...)
					}
					if name == "SQSPollerPolicy" {
						for _, ev := range c.sqsEvents() {
							if ev.function == fn && len(res) == 1 && res[0] == ev.queue {
								c.addf(w, "SQSPollerPolicy on %s repeats what SAM grants for the SQS event %s", ev.queue, ev.name)
							}
						}
					}
				}
			default:
				c.addf(w, "cannot be verified (a %T)", pol)
			}
		}
		for _, ev := range c.sqsEvents() {
			if ev.function == fn && ev.queue != "" {
				for _, a := range sqsEventActions {
					g.add(a, ev.queue)
				}
			}
		}

		for _, action := range sortedKeys(wantGrants[fn]) {
			if res := wantGrants[fn][action]; !g[action][res] {
				c.addf(where, "%s is not granted %s on %s", fn, action, res)
			}
		}
		for _, s := range wantSecrets[fn] {
			if !g["secretsmanager:GetSecretValue"][s] {
				c.addf(where, "%s is not granted secretsmanager:GetSecretValue on %s", fn, s)
			}
		}
		for _, s := range sortedKeys(g["secretsmanager:GetSecretValue"]) {
			if !slices.Contains(wantSecrets[fn], s) {
				c.addf(where, "%s may read the secret %s, which it does not need", fn, s)
			}
		}
		for _, action := range sortedKeys(g) {
			service, _, _ := strings.Cut(action, ":")
			if slices.Contains(deniedServices[fn], service) {
				c.addf(where, "%s is granted %s, a %s action it must not have", fn, action, service)
			}
			if slices.Contains(deniedActions[fn], action) {
				c.addf(where, "%s is granted %s, which it must not have", fn, action)
			}
		}
		envVars := asMap(get(c.t.effectiveFunction(fn), "Environment", "Variables"))
		for _, r := range c.t.resourceTargets(envVars) {
			if !g.on(r) {
				c.addf(where, "grant nothing on %s, which the function's environment names", r)
			}
			if c.t.typeOf(r) == "AWS::SSM::Parameter" {
				for _, s := range c.webhookSecrets(r) {
					if !g["secretsmanager:GetSecretValue"][s] {
						c.addf(where, "grant no secretsmanager:GetSecretValue on %s, which the configuration's webhook passwords in %s name", s, r)
					}
				}
			}
		}
	}
	for _, typ := range []string{"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		for _, id := range c.t.ofType(typ) {
			p := c.t.props(id)
			if doc := asMap(p["PolicyDocument"]); doc != nil {
				c.checkStatements("Resources."+id+".Properties.PolicyDocument.Statement", doc["Statement"])
			}
			for i, pol := range asList(p["Policies"]) {
				c.checkStatements(fmt.Sprintf("Resources.%s.Properties.Policies[%d].PolicyDocument.Statement", id, i), get(pol, "PolicyDocument", "Statement"))
			}
		}
	}
}

// checkTemplateParams: every parameter of a policy template names a declared resource (a
// literal would be a hard-coded name, or "*" a wildcard), and SSMParameterReadPolicy gets the
// parameter's name without its leading slash, as SAM's ARN pattern needs.
func (c *checker) checkTemplateParams(where, name string, params any) {
	pm := asMap(params)
	if len(pm) == 0 {
		c.addf(where, "has no parameters")
	}
	for _, k := range sortedKeys(pm) {
		res := c.t.resourceTargets(pm[k])
		if len(res) == 0 {
			c.addf(where+"."+k, "is %v, not a reference to a declared resource", pm[k])
			continue
		}
		if name == "SSMParameterReadPolicy" && k == "ParameterName" && c.t.typeOf(res[0]) == "AWS::SSM::Parameter" {
			got, err := c.t.eval(pm[k])
			full, err2 := c.t.evalRef(res[0])
			if err != nil || err2 != nil {
				c.addf(where+"."+k, "cannot be evaluated: %v %v", err, err2)
				continue
			}
			if want := strings.TrimPrefix(fmt.Sprint(full), "/"); got != want {
				c.addf(where+"."+k, "evaluates to %q, want %q (SAM writes arn:...:parameter/${ParameterName})", got, want)
			}
		}
	}
}

func (c *checker) checkStatements(where string, statements any) {
	if statements == nil {
		c.addf(where, "no Statement")
		return
	}
	for i, st := range asList(statements) {
		w := fmt.Sprintf("%s[%d]", where, i)
		s := asMap(st)
		if s == nil {
			c.addf(w, "is not a statement")
			continue
		}
		if e, _ := asString(s["Effect"]); e != "Allow" {
			continue // a Deny only narrows
		}
		for _, k := range []string{"NotAction", "NotResource", "NotPrincipal"} {
			if _, ok := s[k]; ok {
				c.addf(w+"."+k, "grants everything but a list: not least-privilege")
			}
		}
		actions := asList(s["Action"])
		if len(actions) == 0 {
			c.addf(w+".Action", "is empty")
		}
		for _, a := range actions {
			as, ok := asString(a)
			if !ok {
				c.addf(w+".Action", "%v is not a literal action", a)
				continue
			}
			if as == "*" || strings.Contains(as, "*") || !strings.Contains(as, ":") {
				c.addf(w+".Action", "%q is a wildcard or not a service:Action", as)
			}
		}
		resources := asList(s["Resource"])
		if len(resources) == 0 {
			c.addf(w+".Resource", "is empty")
		}
		for _, r := range resources {
			if rs, ok := asString(r); ok {
				c.addf(w+".Resource", "%q is a literal, not a declared resource (\"*\" is every resource)", rs)
				continue
			}
			if len(c.t.resourceTargets(r)) == 0 {
				c.addf(w+".Resource", "%v refers to no declared resource", r)
			}
		}
	}
}

// --- table ----------------------------------------------------------------------------------

func (c *checker) checkTable() {
	for _, id := range c.t.ofType("AWS::DynamoDB::Table") {
		p := c.t.props(id)
		defined := map[string]string{}
		for _, ad := range asList(p["AttributeDefinitions"]) {
			n, _ := asString(get(ad, "AttributeName"))
			typ, _ := asString(get(ad, "AttributeType"))
			defined[n] = typ
		}
		used := map[string]bool{}
		keys := func(where string, ks any) map[string]string {
			out := map[string]string{}
			for _, k := range asList(ks) {
				n, _ := asString(get(k, "AttributeName"))
				kt, _ := asString(get(k, "KeyType"))
				out[kt] = n
				used[n] = true
				if _, ok := defined[n]; !ok {
					c.addf(where, "key %s is not in AttributeDefinitions", n)
				}
			}
			return out
		}
		where := "Resources." + id + ".Properties"
		keys(where+".KeySchema", p["KeySchema"])
		for i, gsi := range asList(p["GlobalSecondaryIndexes"]) {
			keys(fmt.Sprintf("%s.GlobalSecondaryIndexes[%d].KeySchema", where, i), get(gsi, "KeySchema"))
		}
		for _, n := range sortedKeys(defined) {
			if !used[n] {
				c.addf(where+".AttributeDefinitions", "%s is in no key schema (CloudFormation rejects that)", n)
			}
		}
	}

	id := "Table"
	if c.t.typeOf(id) != "AWS::DynamoDB::Table" {
		c.addf("Resources", "missing the AWS::DynamoDB::Table %s", id)
		return
	}
	where := "Resources." + id
	p := c.t.props(id)
	res := c.t.resource(id)
	for _, k := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
		if s, _ := asString(res[k]); s != "Retain" {
			c.addf(where+"."+k, "is %q, want Retain: the copy must survive a stack delete or replacement", s)
		}
	}
	if s, _ := asString(p["BillingMode"]); s != "PAY_PER_REQUEST" {
		c.addf(where+".Properties.BillingMode", "is %q, want PAY_PER_REQUEST", s)
	}
	attrType := map[string]string{}
	for _, ad := range asList(p["AttributeDefinitions"]) {
		n, _ := asString(get(ad, "AttributeName"))
		attrType[n], _ = asString(get(ad, "AttributeType"))
	}
	keyPair := func(ks any) string {
		var hash, rng string
		for _, k := range asList(ks) {
			n, _ := asString(get(k, "AttributeName"))
			switch get(k, "KeyType") {
			case "HASH":
				hash = n + ":" + attrType[n]
			case "RANGE":
				rng = n + ":" + attrType[n]
			}
		}
		return hash + " " + rng
	}
	if got := keyPair(p["KeySchema"]); got != "pk:S sk:S" {
		c.addf(where+".Properties.KeySchema", "is %q, want pk (HASH, S) and sk (RANGE, S)", got)
	}
	// The indexes are the store's (dynamo.TableInput, which the tests' tables are made
	// from): the same names, keys, types and projections, and no other.
	code := dynamo.TableInput("")
	codeType := map[string]string{}
	for _, ad := range code.AttributeDefinitions {
		codeType[aws.ToString(ad.AttributeName)] = string(ad.AttributeType)
	}
	declared := map[string]any{}
	for _, gsi := range asList(p["GlobalSecondaryIndexes"]) {
		name, _ := asString(get(gsi, "IndexName"))
		declared[name] = gsi
	}
	for _, want := range code.GlobalSecondaryIndexes {
		name := aws.ToString(want.IndexName)
		gsi, ok := declared[name]
		delete(declared, name)
		if !ok {
			c.addf(where+".Properties.GlobalSecondaryIndexes", "has no %s", name)
			continue
		}
		at := where + ".Properties.GlobalSecondaryIndexes." + name
		var hash, rng string
		for _, k := range want.KeySchema {
			n := aws.ToString(k.AttributeName)
			if k.KeyType == "HASH" {
				hash = n
			} else {
				rng = n
			}
		}
		wantKeys := hash + ":" + codeType[hash] + " " + rng + ":" + codeType[rng]
		if got := keyPair(get(gsi, "KeySchema")); got != wantKeys {
			c.addf(at, "keys are %q, want %s (HASH, %s) and %s (RANGE, %s)", got, hash, codeType[hash], rng, codeType[rng])
		}
		wantType := string(want.Projection.ProjectionType)
		if s, _ := asString(get(gsi, "Projection", "ProjectionType")); s != wantType {
			c.addf(at+".Projection", "is %q, want %s", s, wantType)
		}
		var got []string
		for _, a := range asList(get(gsi, "Projection", "NonKeyAttributes")) {
			n, _ := asString(a)
			got = append(got, n)
		}
		wantAttrs := append([]string(nil), want.Projection.NonKeyAttributes...)
		sort.Strings(got)
		sort.Strings(wantAttrs)
		if strings.Join(got, ",") != strings.Join(wantAttrs, ",") {
			c.addf(at+".Projection.NonKeyAttributes", "projects %v, want %v (what the store reads)", got, wantAttrs)
		}
	}
	for _, name := range sortedKeys(declared) {
		c.addf(where+".Properties.GlobalSecondaryIndexes", "declares %s, which dynamo.TableInput has not (an index no code reads still costs a write per item)", name)
	}
	if b, _ := asBool(p["DeletionProtectionEnabled"]); !b {
		c.addf(where+".Properties.DeletionProtectionEnabled", "is not true: a stack delete or a console click could drop the copy")
	}
	if b, _ := asBool(get(p, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled")); !b {
		c.addf(where+".Properties.PointInTimeRecoverySpecification", "point-in-time recovery is off")
	}
	ttlAttr, _ := asString(get(p, "TimeToLiveSpecification", "AttributeName"))
	ttlOn, _ := asBool(get(p, "TimeToLiveSpecification", "Enabled"))
	if ttlAttr != "expires_at" || !ttlOn {
		c.addf(where+".Properties.TimeToLiveSpecification", "is %q enabled %v, want expires_at enabled", ttlAttr, ttlOn)
	}
	if b, _ := asBool(get(p, "SSESpecification", "SSEEnabled")); !b {
		c.addf(where+".Properties.SSESpecification", "SSE is off")
	}
}

// --- configuration document -----------------------------------------------------------------

// configDoc is the part of halosync's configuration the template writes.
type configDoc struct {
	Connections []struct {
		ID      string `yaml:"id"`
		Webhook struct {
			Auth []struct {
				Scheme    string   `yaml:"scheme"`
				Username  string   `yaml:"username"`
				Passwords []string `yaml:"passwords"`
			} `yaml:"auth"`
		} `yaml:"webhook"`
	} `yaml:"connections"`
}

// configParameter is the SSM parameter the ingest function's configuration variable names.
func (c *checker) configParameter() string {
	v := get(c.t.effectiveFunction("IngestFunction"), "Environment", "Variables", configEnvVar)
	if r := c.t.resourceTargets(v); len(r) == 1 && c.t.typeOf(r[0]) == "AWS::SSM::Parameter" {
		return r[0]
	}
	return ""
}

// parseConfig evaluates the configuration parameter's Value and reads it as YAML.
func (c *checker) parseConfig() (configDoc, error) {
	var doc configDoc
	id := c.configParameter()
	if id == "" {
		return doc, fmt.Errorf("%s names no AWS::SSM::Parameter", configEnvVar)
	}
	v, err := c.t.eval(c.t.props(id)["Value"])
	if err != nil {
		return doc, err
	}
	s, ok := v.(string)
	if !ok {
		return doc, fmt.Errorf("Value is not a string")
	}
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		return doc, fmt.Errorf("Value is not YAML: %w", err)
	}
	return doc, nil
}

// checkConfigDocument: the configuration in SSM is YAML with at least one connection, and its
// webhook passwords are Secrets Manager references, never values.
func (c *checker) checkConfigDocument() {
	id := c.configParameter()
	if id == "" {
		c.addf("Resources.IngestFunction", "%s names no AWS::SSM::Parameter", configEnvVar)
		return
	}
	where := "Resources." + id + ".Properties"
	if s, _ := asString(c.t.props(id)["Type"]); s != "String" {
		c.addf(where+".Type", "is %q, want String (secrets live in Secrets Manager)", s)
	}
	doc, err := c.parseConfig()
	if err != nil {
		c.addf(where+".Value", "%v", err)
		return
	}
	if len(doc.Connections) == 0 {
		c.addf(where+".Value", "declares no connection")
	}
	for i, conn := range doc.Connections {
		if conn.ID == "" {
			c.addf(where+".Value", "connection %d has no id", i)
		}
		if len(conn.Webhook.Auth) == 0 {
			c.addf(where+".Value", "connection %q accepts unauthenticated webhooks", conn.ID)
		}
		for _, a := range conn.Webhook.Auth {
			if a.Scheme == "basic" && (a.Username == "" || len(a.Passwords) == 0) {
				c.addf(where+".Value", "connection %q: basic auth needs a username and a password", conn.ID)
			}
			for _, pw := range a.Passwords {
				if !strings.HasPrefix(pw, "secretsmanager:") {
					c.addf(where+".Value", "connection %q: a password that is not a secretsmanager: reference", conn.ID)
				}
			}
		}
	}
}

// --- outputs --------------------------------------------------------------------------------

// checkOutputs: the outputs exist, and WebhookUrl is the webhook route on the declared API for
// a connection the configuration declares.
func (c *checker) checkOutputs() {
	outs := c.t.section("Outputs")
	for _, name := range wantOutputs {
		if get(outs, name, "Value") == nil {
			c.addf("Outputs", "missing %s", name)
		}
	}
	v := get(outs, "WebhookUrl", "Value")
	if v == nil {
		return
	}
	n, op, ok := intrinsic(v)
	body, _ := subOperand(op)
	if !ok || n != "Fn::Sub" {
		c.addf("Outputs.WebhookUrl", "is not a Fn::Sub")
		return
	}
	var api string
	for _, r := range c.t.resourceTargets(v) {
		if c.t.typeOf(r) == "AWS::Serverless::HttpApi" {
			api = r
		}
	}
	if api == "" || !strings.HasPrefix(body, "https://${"+api+"}.execute-api.${AWS::Region}.${AWS::URLSuffix}/") {
		c.addf("Outputs.WebhookUrl", "%q is not https://${<HttpApi>}.execute-api.${AWS::Region}.${AWS::URLSuffix}/...", body)
		return
	}
	_, path, _ := strings.Cut(webhookRoute, " ")
	prefix := strings.TrimSuffix(path, "{connection}")
	i := strings.Index(body, ".${AWS::URLSuffix}")
	gotPath := body[i+len(".${AWS::URLSuffix}"):]
	conn, isRoute := strings.CutPrefix(gotPath, prefix)
	if !isRoute || conn == "" || strings.Contains(conn, "/") {
		c.addf("Outputs.WebhookUrl", "path %q is not the route %s", gotPath, path)
		return
	}
	if !c.declaresConnection(conn) {
		c.addf("Outputs.WebhookUrl", "is for connection %q, which the configuration does not declare", conn)
	}
}
