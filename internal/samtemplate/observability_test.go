package samtemplate

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/halosync/halosync/internal/auth"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/verify"
)

// This file checks the stack's observability and hardening: the alarms, the dashboard, the
// Contributor Insights rule, the log groups and the resources that must outlive the stack.
// docs/OPERATIONS.md is their manual; docs/ARCHITECTURE.md, "Observability", the metrics'.

// metricNames are the metric names internal/metrics declares: its string constants named
// as their value (DeliveriesAccepted = "DeliveriesAccepted"; not Namespace, units or
// special connections), read from its source so a metric added there is known here at once.
func metricNames(root string) (map[string]bool, error) {
	if v, ok := metricNamesCache.Load(root); ok {
		return v.(map[string]bool), nil
	}
	names, err := readMetricNames(root)
	if err == nil {
		metricNamesCache.Store(root, names)
	}
	return names, err
}

var metricNamesCache sync.Map // root -> map[string]bool

func readMetricNames(root string) (map[string]bool, error) {
	fset := token.NewFileSet()
	dir := filepath.Join(root, "internal", "metrics")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			return nil, err
		}
		for _, decl := range file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name == "Namespace" || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if v, _ := strconv.Unquote(lit.Value); v == n.Name {
							names[v] = true
						}
					}
				}
			}
		}
	}
	return names, nil
}

// metricDimensionSets are the dimension sets every halosync record is published with: the
// total, per connection, per connection and kind, per label and per connection and label.
var metricDimensionSets = []string{"", "Connection", "Connection,Kind", "Label", "Connection,Label"}

// rejectionReasons are the labels of DeliveriesRejected.
var rejectionReasons = []string{
	auth.ReasonMissing, auth.ReasonMalformed, auth.ReasonWrong, auth.ReasonTimestamp,
	ingest.ReasonIPNotAllowed, ingest.ReasonNoContentType, ingest.ReasonNotJSONType, ingest.ReasonEncoding,
	ingest.ReasonBadGzip, ingest.ReasonDecompressedTooLarge, ingest.ReasonAuthThrottled, ingest.ReasonBacklogFull,
}

// Verification's metrics (docs/OPERATIONS.md, "Metrics"): the gauges of the share equal,
// labelled by kind or verifyAll, and the counts of differences and repairs, labelled by cause.
var (
	verifyShares = []string{metrics.VerifyEqualShare, metrics.VerifyEqualShareLow}
	verifyCounts = []string{"VerifyDiffering", "VerifyRepaired"}
)

// verifyAll is the label of a connection's estimate as a whole.
const verifyAll = "all"

// metricUse is one metric an alarm or a widget names: its dimensions' names and values (nil
// when a SEARCH leaves them open).
type metricUse struct {
	where, namespace, name string
	dims                   map[string]any
}

func (m metricUse) dimSet() string {
	keys := sortedKeys(m.dims)
	return strings.Join(keys, ",")
}

// checkCustomMetric: a halosync metric is one internal/metrics names, on a dimension set the
// records carry (an alarm or a graph matches dimensions exactly), for a connection the
// configuration declares, with literal labels and kinds.
func (c *checker) checkCustomMetric(m metricUse) {
	names, err := metricNames(c.repo.root)
	if err != nil {
		c.addf(m.where, "cannot read internal/metrics: %v", err)
		return
	}
	if !names[m.name] {
		c.addf(m.where, "%s is no metric halosync writes in namespace %s (internal/metrics)", m.name, metrics.Namespace)
	}
	if set := m.dimSet(); !slices.Contains(metricDimensionSets, set) {
		c.addf(m.where, "dimensions {%s}: halosync's records carry {}, {Connection}, {Connection, Kind}, {Label} and {Connection, Label}, and CloudWatch matches dimensions exactly", set)
		return
	}
	for _, k := range sortedKeys(m.dims) {
		v := m.dims[k]
		if v == nil {
			continue
		}
		if k == "Connection" {
			c.checkConnectionValue(m.where+".Connection", v)
			continue
		}
		s, ok := asString(v)
		if !ok {
			c.addf(m.where+"."+k, "a %s is a literal", k)
			continue
		}
		if m.name == metrics.DeliveriesRejected && k == "Label" && !slices.Contains(rejectionReasons, s) {
			c.addf(m.where+".Label", "%q is no reason a delivery is rejected for", s)
		}
		if m.name == metrics.DeliveriesByEndpoint && k == "Label" && s != change.EndpointPrimary && s != change.EndpointBackup {
			c.addf(m.where+".Label", "%q is no endpoint (%s, %s)", s, change.EndpointPrimary, change.EndpointBackup)
		}
		if slices.Contains(verifyShares, m.name) && k == "Label" && s != verifyAll && !slices.Contains(change.KindNames(), s) {
			c.addf(m.where+".Label", "%q is neither %s (the connection as a whole) nor a kind (%s)", s, verifyAll, strings.Join(change.KindNames(), ", "))
		}
		if slices.Contains(verifyCounts, m.name) && k == "Label" && (s == string(verify.Equal) || !slices.Contains(verify.Causes, verify.Cause(s))) {
			c.addf(m.where+".Label", "%q is no cause of a difference", s)
		}
	}
}

func (c *checker) checkConnectionValue(where string, v any) {
	if len(c.t.resourceTargets(v)) > 0 {
		c.addf(where, "refers to a resource; it must be a connection id, literal or a parameter")
		return
	}
	ev, err := c.t.eval(v)
	conn, isString := ev.(string)
	if err != nil || !isString || conn == "" {
		c.addf(where, "is %v (%v), not a connection id", v, err)
		return
	}
	if !c.declaresConnection(conn) {
		c.addf(where, "is %q, which the configuration does not declare", conn)
	}
}

// declaresConnection reports whether the configuration declares a connection; a
// configuration that cannot be read is reported by checkConfigDocument, not here.
func (c *checker) declaresConnection(id string) bool {
	doc, err := c.parseConfig()
	if err != nil {
		return true
	}
	for _, cn := range doc.Connections {
		if cn.ID == id {
			return true
		}
	}
	return false
}

// alarmMetrics lists the metrics an alarm reads: its single metric, or its Metrics' stats.
func (c *checker) alarmMetrics(id string) []metricUse {
	p := c.t.props(id)
	where := "Resources." + id + ".Properties"
	dimsOf := func(v any) map[string]any {
		out := map[string]any{}
		for _, d := range asList(v) {
			n, _ := asString(get(d, "Name"))
			out[n] = get(d, "Value")
		}
		return out
	}
	var out []metricUse
	if name, ok := asString(p["MetricName"]); ok {
		ns, _ := asString(p["Namespace"])
		out = append(out, metricUse{where + ".Dimensions", ns, name, dimsOf(p["Dimensions"])})
	}
	for i, q := range asList(p["Metrics"]) {
		m := get(q, "MetricStat", "Metric")
		if m == nil {
			continue
		}
		ns, _ := asString(get(m, "Namespace"))
		name, _ := asString(get(m, "MetricName"))
		out = append(out, metricUse{fmt.Sprintf("%s.Metrics[%d]", where, i), ns, name, dimsOf(get(m, "Dimensions"))})
	}
	return out
}

// dimensionRef says what an alarm dimension must refer to: a Ref (attr "") or a GetAtt of attr,
// of a resource of one of types.
type dimensionRef struct {
	attr  string
	types []string
}

var alarmDimensions = map[string]dimensionRef{
	"AWS/SQS QueueName":       {attr: "QueueName", types: []string{"AWS::SQS::Queue"}},
	"AWS/Lambda FunctionName": {types: []string{"AWS::Serverless::Function", "AWS::Lambda::Function"}},
	"AWS/ApiGateway ApiId":    {types: []string{"AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"}},
	"AWS/DynamoDB TableName":  {types: []string{"AWS::DynamoDB::Table"}},
	"AWS/SNS TopicName":       {attr: "TopicName", types: []string{"AWS::SNS::Topic"}},
	"AWS/ApiGateway Stage":    {}, // a literal stage name such as $default
}

// alarmKey identifies what an alarm watches: namespace, metric, and the resource of its
// dimension ("" for halosync's own metrics).
type alarmKey struct{ namespace, metric, resource string }

// wantCustomAlarms are halosync's metrics some alarm must read (docs/OPERATIONS.md, "Alarms").
var wantCustomAlarms = map[string]string{
	metrics.DeliveriesRejected:   "deliveries refused",
	metrics.SyncLatency:          "the copy lags",
	metrics.ChangesByKind:        "a volume spike",
	metrics.WebhookGap:           "the webhooks fall silent",
	metrics.PollsFailed:          "the poller fails",
	metrics.DeliveriesByEndpoint: "one endpoint stops while the other delivers",
	"VerifyEqualShare":           "the copy is not equal to Halo",
}

// informationalAlarms notify but are left out of the composite "unhealthy" alarm.
var informationalAlarms = []string{"VolumeSpikeAlarm", "ReadErrorsAlarm"}

var treatMissingData = []string{"breaching", "notBreaching", "ignore", "missing"}

// operationsDoc is the operators' manual each alarm points to.
const operationsDoc = "docs/OPERATIONS.md"

// checkAlarms: each alarm watches metrics of declared resources (or halosync's own metrics on
// the dimension sets they carry), takes its threshold from a template parameter, evaluates
// M of N datapoints with M <= N, treats missing data as chosen, notifies a declared SNS
// topic and points to its entry in docs/OPERATIONS.md; a composite alarm gathers them; and
// each part of the flow has its alarm.
func (c *checker) checkAlarms() {
	watched := map[alarmKey]bool{}
	doc, docErr := os.ReadFile(filepath.Join(c.repo.root, operationsDoc))
	alarms := c.t.ofType("AWS::CloudWatch::Alarm")
	for _, id := range alarms {
		where := "Resources." + id + ".Properties"
		p := c.t.props(id)
		uses := c.alarmMetrics(id)
		if len(uses) == 0 {
			c.addf(where, "reads no metric (neither MetricName nor Metrics with a MetricStat)")
		}
		for _, m := range uses {
			if m.namespace == "" || m.name == "" {
				c.addf(m.where, "has no Namespace and MetricName")
				continue
			}
			if m.namespace == metrics.Namespace {
				c.checkCustomMetric(m)
				watched[alarmKey{m.namespace, m.name, ""}] = true
				continue
			}
			if len(m.dims) == 0 {
				c.addf(m.where, "none: the alarm would watch the whole account's %s %s", m.namespace, m.name)
			}
			for _, name := range sortedKeys(m.dims) {
				w := m.where + "." + name
				want, known := alarmDimensions[m.namespace+" "+name]
				if !known {
					c.addf(w, "dimension %s is not one the checker knows for %s", name, m.namespace)
					continue
				}
				if len(want.types) == 0 {
					continue // a literal dimension such as a stage name
				}
				tgs := targets(m.dims[name], w)
				if len(tgs) != 1 {
					c.addf(w, "should refer to exactly one resource")
					continue
				}
				tg := tgs[0]
				switch {
				case !c.t.isResource(tg.name):
					c.addf(w, "refers to %q, which is no resource", tg.name)
				case !slices.Contains(want.types, c.t.typeOf(tg.name)):
					c.addf(w, "refers to %s, a %s; %s %s needs a %s", tg.name, c.t.typeOf(tg.name), m.namespace, name, strings.Join(want.types, " or "))
				case want.attr == "" && tg.kind != "Ref":
					c.addf(w, "must be a Ref to %s, not a GetAtt", tg.name)
				case want.attr != "" && (tg.kind != "GetAtt" || tg.attr != want.attr):
					c.addf(w, "must be GetAtt %s.%s (a Ref gives something else)", tg.name, want.attr)
				default:
					watched[alarmKey{m.namespace, m.name, tg.name}] = true
				}
			}
		}
		c.checkThreshold(id)
		n, nOK := c.evalNumber(p["EvaluationPeriods"])
		m, mOK := c.evalNumber(p["DatapointsToAlarm"])
		if !nOK || n < 1 {
			c.addf(where+".EvaluationPeriods", "is %v, want a number of periods of at least 1", p["EvaluationPeriods"])
		}
		if p["DatapointsToAlarm"] != nil && (!mOK || m < 1 || (nOK && m > n)) {
			c.addf(where+".DatapointsToAlarm", "is %v, want 1..EvaluationPeriods (%v)", p["DatapointsToAlarm"], n)
		}
		if s, _ := asString(p["TreatMissingData"]); !slices.Contains(treatMissingData, s) {
			c.addf(where+".TreatMissingData", "is %q: choose one of %s (CloudWatch's default, missing, keeps a stale state)", s, strings.Join(treatMissingData, ", "))
		}
		c.checkActions(where, p)
		anchor := operationsDoc + "#" + strings.ToLower(id)
		desc, _ := c.t.eval(p["AlarmDescription"])
		if s, _ := desc.(string); !strings.Contains(s, anchor) {
			c.addf(where+".AlarmDescription", "does not point to %s (what to check first)", anchor)
		}
		if docErr == nil && !regexp.MustCompile(`(?m)^#+ +`+regexp.QuoteMeta(id)+` *$`).Match(doc) {
			c.addf(where, "%s has no heading %s", operationsDoc, id)
		}
	}
	if docErr != nil {
		c.addf(operationsDoc, "%v", docErr)
	}

	composites := c.t.ofType("AWS::CloudWatch::CompositeAlarm")
	inComposite := map[string]bool{}
	for _, id := range composites {
		where := "Resources." + id + ".Properties"
		p := c.t.props(id)
		rule := p["AlarmRule"]
		for _, tg := range targets(rule, where+".AlarmRule") {
			if typ := c.t.typeOf(tg.name); typ != "AWS::CloudWatch::Alarm" && typ != "AWS::CloudWatch::CompositeAlarm" {
				c.addf(tg.path, "names %s, which is no alarm", tg.name)
			}
			inComposite[tg.name] = true
		}
		c.checkActions(where, p)
	}
	if len(composites) == 0 {
		c.addf("Resources", "no AWS::CloudWatch::CompositeAlarm: nothing says \"halosync unhealthy\" in one alarm")
	}
	for _, id := range alarms {
		if len(composites) > 0 && !inComposite[id] && !slices.Contains(informationalAlarms, id) {
			c.addf("Resources."+id, "is in no composite alarm's rule")
		}
	}

	need := func(k alarmKey, why string) {
		if !watched[k] {
			c.addf("Resources", "no alarm on %s %s of %s (%s)", k.namespace, k.metric, k.resource, why)
		}
	}
	for _, ev := range c.sqsEvents() {
		if ev.queue == "" {
			continue
		}
		need(alarmKey{"AWS/SQS", "ApproximateAgeOfOldestMessage", ev.queue}, "the consumer lags")
		if dlq := c.dlqOf(ev.queue); dlq != "" {
			need(alarmKey{"AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq}, "changes failed for good")
		}
		need(alarmKey{"AWS/Lambda", "Throttles", ev.function}, "the consumer is throttled")
	}
	for _, fn := range c.t.ofType("AWS::Serverless::Function") {
		need(alarmKey{"AWS/Lambda", "Errors", fn}, "the function fails")
	}
	for _, api := range c.t.ofType("AWS::Serverless::HttpApi") {
		need(alarmKey{"AWS/ApiGateway", "5xx", api}, "Halo gets server errors")
		for _, fn := range c.apiFunctions(api) {
			need(alarmKey{"AWS/Lambda", "Throttles", fn}, "Halo's deliveries are throttled")
		}
	}
	for _, name := range sortedKeys(wantCustomAlarms) {
		if !watched[alarmKey{metrics.Namespace, name, ""}] {
			c.addf("Resources", "no alarm on %s %s (%s)", metrics.Namespace, name, wantCustomAlarms[name])
		}
	}
}

// apiFunctions lists the functions an HttpApi's routes invoke.
func (c *checker) apiFunctions(api string) []string {
	var out []string
	for _, fn := range c.t.ofType("AWS::Serverless::Function") {
		for _, ev := range asMap(c.t.props(fn)["Events"]) {
			if typ, _ := asString(get(ev, "Type")); typ != "HttpApi" {
				continue
			}
			if r := c.t.resourceTargets(get(ev, "Properties", "ApiId")); len(r) == 1 && r[0] == api && !slices.Contains(out, fn) {
				out = append(out, fn)
			}
		}
	}
	return out
}

func (c *checker) checkActions(where string, p map[string]any) {
	actions := asList(p["AlarmActions"])
	if len(actions) == 0 {
		c.addf(where+".AlarmActions", "none: nobody would hear of it")
	}
	for i, a := range actions {
		r := c.t.resourceTargets(a)
		if len(r) != 1 || c.t.typeOf(r[0]) != "AWS::SNS::Topic" {
			c.addf(fmt.Sprintf("%s.AlarmActions[%d]", where, i), "is not a Ref to a declared AWS::SNS::Topic")
		}
	}
}

// checkThreshold: a static alarm's Threshold is a Ref to a Number parameter; an anomaly
// alarm's band (ThresholdMetricId) is an ANOMALY_DETECTION_BAND whose width is one.
func (c *checker) checkThreshold(id string) {
	where := "Resources." + id + ".Properties"
	p := c.t.props(id)
	if tid, ok := asString(p["ThresholdMetricId"]); ok {
		for _, q := range asList(p["Metrics"]) {
			if qid, _ := asString(get(q, "Id")); qid != tid {
				continue
			}
			expr := get(q, "Expression")
			body, _ := asString(expr)
			if n, op, ok := intrinsic(expr); ok && n == "Fn::Sub" {
				body, _ = subOperand(op)
			}
			if !strings.HasPrefix(body, "ANOMALY_DETECTION_BAND(") {
				c.addf(where+".ThresholdMetricId", "%s is no ANOMALY_DETECTION_BAND expression", tid)
			}
			if !c.refsNumberParameter(expr) {
				c.addf(where+".Metrics."+tid, "the band's width is no template parameter")
			}
			return
		}
		c.addf(where+".ThresholdMetricId", "names %s, which is none of the alarm's Metrics", tid)
		return
	}
	if !c.refsNumberParameter(p["Threshold"]) {
		c.addf(where+".Threshold", "is %v, want a Ref to a Number template parameter (thresholds are tuned at deploy time)", p["Threshold"])
	}
}

func (c *checker) refsNumberParameter(v any) bool {
	for _, tg := range targets(v, "") {
		if tg.kind == "Ref" && c.t.isParameter(tg.name) {
			if typ, _ := asString(get(c.t.section("Parameters")[tg.name], "Type")); typ == "Number" {
				return true
			}
		}
	}
	return false
}

// evalNumber reads a literal number or a parameter's default.
func (c *checker) evalNumber(v any) (float64, bool) {
	if n, op, ok := intrinsic(v); ok && n == "Ref" {
		name, _ := asString(op)
		v = get(c.t.section("Parameters")[name], "Default")
	}
	return asNumber(v)
}

// --- dashboard ------------------------------------------------------------------------------

var (
	searchSchema = regexp.MustCompile(`SEARCH\(\s*'\{([^}]*)\}([^']*)'`)
	searchMetric = regexp.MustCompile(`MetricName\s*=\s*"([^"]+)"`)
	logSource    = regexp.MustCompile(`SOURCE '([^']*)'`)
	placeholder  = regexp.MustCompile(`^<([A-Za-z0-9]+)(?:\.([A-Za-z]+))?>$`)
)

// checkDashboards: a dashboard's body is JSON once its ${...} are substituted; every halosync
// metric a graph names (directly or in a SEARCH) is one internal/metrics writes, on a
// dimension set its records carry; the alarm widget shows every alarm; the log widgets read
// declared log groups; a Contributor Insights widget shows a declared rule.
func (c *checker) checkDashboards() {
	dashboards := c.t.ofType("AWS::CloudWatch::Dashboard")
	if len(dashboards) == 0 {
		c.addf("Resources", "no AWS::CloudWatch::Dashboard")
	}
	for _, id := range dashboards {
		where := "Resources." + id + ".Properties.DashboardBody"
		var body struct {
			Widgets []struct {
				Type       string         `json:"type"`
				Properties map[string]any `json:"properties"`
			} `json:"widgets"`
		}
		if !c.evalJSON(where, c.t.props(id)["DashboardBody"], &body) {
			continue
		}
		shown := map[string]bool{}
		for i, w := range body.Widgets {
			ww := fmt.Sprintf("%s.widgets[%d]", where, i)
			switch w.Type {
			case "alarm":
				for _, a := range asList(w.Properties["alarms"]) {
					s, _ := asString(a)
					m := placeholder.FindStringSubmatch(s)
					if m == nil || m[2] != "Arn" || !strings.HasPrefix(c.t.typeOf(m[1]), "AWS::CloudWatch::") {
						c.addf(ww+".alarms", "%q is no declared alarm's ${X.Arn}", s)
						continue
					}
					shown[m[1]] = true
				}
			case "log":
				q, _ := asString(w.Properties["query"])
				sources := logSource.FindAllStringSubmatch(q, -1)
				if len(sources) == 0 {
					c.addf(ww+".query", "reads no log group (SOURCE '...')")
				}
				for _, s := range sources {
					if m := placeholder.FindStringSubmatch(s[1]); m == nil || m[2] != "" || c.t.typeOf(m[1]) != "AWS::Logs::LogGroup" {
						c.addf(ww+".query", "SOURCE %q is no declared log group's ${X}", s[1])
					}
				}
			case "metric":
				if ir := asMap(w.Properties["insightRule"]); ir != nil {
					s, _ := asString(ir["ruleName"])
					if m := placeholder.FindStringSubmatch(s); m == nil || c.t.typeOf(m[1]) != "AWS::CloudWatch::InsightRule" {
						c.addf(ww+".insightRule.ruleName", "%q is no declared insight rule's name", s)
					}
				}
				c.checkWidgetMetrics(ww, w.Properties["metrics"])
			}
		}
		for _, typ := range []string{"AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"} {
			for _, a := range c.t.ofType(typ) {
				if !shown[a] {
					c.addf(where, "the alarm widget does not show %s", a)
				}
			}
		}
	}
	for _, id := range c.t.ofType("AWS::CloudWatch::InsightRule") {
		where := "Resources." + id + ".Properties.RuleBody"
		var body struct {
			LogGroupNames []string `json:"LogGroupNames"`
			Contribution  struct {
				Keys []string `json:"Keys"`
			} `json:"Contribution"`
		}
		if !c.evalJSON(where, c.t.props(id)["RuleBody"], &body) {
			continue
		}
		if len(body.LogGroupNames) == 0 || len(body.Contribution.Keys) == 0 {
			c.addf(where, "names no log group or no key")
		}
		for _, g := range body.LogGroupNames {
			if m := placeholder.FindStringSubmatch(g); m == nil || c.t.typeOf(m[1]) != "AWS::Logs::LogGroup" {
				c.addf(where+".LogGroupNames", "%q is no declared log group's ${X}", g)
			}
		}
	}
}

// evalJSON evaluates a Fn::Sub (with the parameters' defaults) and decodes it as JSON.
func (c *checker) evalJSON(where string, v any, into any) bool {
	ev, err := c.t.eval(v)
	s, ok := ev.(string)
	if err != nil || !ok {
		c.addf(where, "cannot be evaluated: %v", err)
		return false
	}
	if err := json.Unmarshal([]byte(s), into); err != nil {
		c.addf(where, "is not JSON: %v", err)
		return false
	}
	return true
}

// checkWidgetMetrics reads a metric widget's rows: [namespace, name, dim, value, ...,
// {options}] where "." repeats the row above, or [{expression}].
func (c *checker) checkWidgetMetrics(where string, rows any) {
	var prev []any
	for i, r := range asList(rows) {
		w := fmt.Sprintf("%s.metrics[%d]", where, i)
		row := asList(r)
		var fields []any
		for _, e := range row {
			if m := asMap(e); m != nil {
				if expr, ok := asString(m["expression"]); ok {
					c.checkExpression(w, expr)
				}
				continue
			}
			fields = append(fields, e)
		}
		if len(fields) == 0 {
			continue
		}
		for j, f := range fields {
			if s, _ := asString(f); s == "." && j < len(prev) {
				fields[j] = prev[j]
			}
		}
		prev = fields
		if len(fields) < 2 || len(fields)%2 != 0 {
			c.addf(w, "is not [namespace, metric, dimension, value, ...]")
			continue
		}
		ns, _ := asString(fields[0])
		name, _ := asString(fields[1])
		if ns != metrics.Namespace {
			continue
		}
		dims := map[string]any{}
		for j := 2; j+1 < len(fields); j += 2 {
			k, _ := asString(fields[j])
			dims[k] = fields[j+1]
		}
		c.checkCustomMetric(metricUse{w, ns, name, dims})
	}
}

// checkExpression checks the halosync metrics a SEARCH names.
func (c *checker) checkExpression(where, expr string) {
	for _, m := range searchSchema.FindAllStringSubmatch(expr, -1) {
		parts := strings.Split(m[1], ",")
		ns := strings.TrimSpace(parts[0])
		if ns != metrics.Namespace {
			continue
		}
		dims := map[string]any{}
		for _, d := range parts[1:] {
			dims[strings.TrimSpace(d)] = nil
		}
		names := searchMetric.FindAllStringSubmatch(m[2], -1)
		if len(names) == 0 {
			c.addf(where, "SEARCH over %s names no MetricName", ns)
		}
		for _, n := range names {
			c.checkCustomMetric(metricUse{where, ns, n[1], dims})
		}
	}
}

// --- logs and retained resources ------------------------------------------------------------

// accessLogFields are what the API's access log must carry; it must not carry the path,
// which may hold the path secret (docs/ARCHITECTURE.md, "Authentication").
var accessLogFields = []string{"$context.routeKey", "$context.status", "$context.requestId"}

// checkLogging: each function logs to a declared log group with a retention (Lambda's own
// group would keep everything forever), in JSON at a level set by a parameter; the HTTP API
// writes an access log without paths and throttles its routes by parameters.
func (c *checker) checkLogging() {
	retention := func(where, id string) {
		if c.t.typeOf(id) != "AWS::Logs::LogGroup" {
			c.addf(where, "%q is no declared AWS::Logs::LogGroup", id)
			return
		}
		if c.t.props(id)["RetentionInDays"] == nil {
			c.addf("Resources."+id+".Properties.RetentionInDays", "is not set: the logs would be kept forever")
		}
	}
	for _, fn := range c.t.ofType("AWS::Serverless::Function") {
		where := "Resources." + fn + ".Properties.LoggingConfig"
		lc := get(c.t.effectiveFunction(fn), "LoggingConfig")
		r := c.t.resourceTargets(get(lc, "LogGroup"))
		if len(r) != 1 {
			c.addf(where+".LogGroup", "is not a Ref to the function's log group")
		} else {
			retention(where+".LogGroup", r[0])
		}
		if v := get(lc, "ApplicationLogLevel"); v != nil && !c.refsParameter(v) {
			c.addf(where+".ApplicationLogLevel", "is %v, want a Ref to a parameter (the level changes without editing the template)", v)
		}
	}
	for _, api := range c.t.ofType("AWS::Serverless::HttpApi") {
		where := "Resources." + api + ".Properties"
		p := c.t.props(api)
		als := asMap(p["AccessLogSettings"])
		if als == nil {
			c.addf(where+".AccessLogSettings", "is not set: no record of what Halo was answered")
		} else {
			if n, op, ok := intrinsic(als["DestinationArn"]); !ok || n != "Fn::GetAtt" {
				c.addf(where+".AccessLogSettings.DestinationArn", "is not a GetAtt <LogGroup>.Arn")
			} else {
				res, _ := getAttOperand(op)
				retention(where+".AccessLogSettings.DestinationArn", res)
			}
			format, _ := asString(als["Format"])
			for _, f := range accessLogFields {
				if !strings.Contains(format, f) {
					c.addf(where+".AccessLogSettings.Format", "lacks %s", f)
				}
			}
			for _, v := range regexp.MustCompile(`\$context\.[A-Za-z.]+`).FindAllString(format, -1) {
				if strings.Contains(strings.ToLower(v), "path") {
					c.addf(where+".AccessLogSettings.Format", "logs %s, which may carry the path secret", v)
				}
			}
		}
		for _, k := range []string{"ThrottlingRateLimit", "ThrottlingBurstLimit"} {
			if v := get(p, "DefaultRouteSettings", k); !c.refsParameter(v) {
				c.addf(where+".DefaultRouteSettings."+k, "is %v, want a Ref to a parameter", v)
			}
		}
	}
}

func (c *checker) refsParameter(v any) bool {
	for _, tg := range targets(v, "") {
		if tg.kind == "Ref" && c.t.isParameter(tg.name) {
			return true
		}
	}
	return false
}

// retainedTypes must survive a stack delete or a replacement: what is queued, the secrets
// (Halo holds their other half) and the operator's configuration.
var retainedTypes = []string{"AWS::SQS::Queue", "AWS::SecretsManager::Secret", "AWS::SSM::Parameter"}

func (c *checker) checkRetained() {
	for _, typ := range retainedTypes {
		for _, id := range c.t.ofType(typ) {
			for _, k := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
				if s, _ := asString(c.t.resource(id)[k]); s != "Retain" {
					c.addf("Resources."+id+"."+k, "is %q, want Retain", s)
				}
			}
		}
	}
}

// webhookSecrets lists the secrets the configuration's webhook passwords in an SSM parameter
// name (secretsmanager:<arn>#key): every function that reads the configuration resolves them.
func (c *checker) webhookSecrets(param string) []string {
	if param != c.configParameter() {
		return nil
	}
	doc, err := c.parseConfig()
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	for _, cn := range doc.Connections {
		for _, a := range cn.Webhook.Auth {
			for _, pw := range a.Passwords {
				id, _, _ := strings.Cut(strings.TrimPrefix(pw, "secretsmanager:"), "#")
				if m := placeholder.FindStringSubmatch(id); m != nil && c.t.typeOf(m[1]) == "AWS::SecretsManager::Secret" {
					seen[m[1]] = true
				}
			}
		}
	}
	out := sortedKeys(seen)
	sort.Strings(out)
	return out
}

// TestOperationsDocumentsEveryMetric: docs/OPERATIONS.md's metric table has a row for every
// metric internal/metrics names.
func TestOperationsDocumentsEveryMetric(t *testing.T) {
	names, err := metricNames(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if !names[metrics.SyncLatency] || !names[metrics.DeliveriesAccepted] {
		t.Fatalf("read %d names from internal/metrics, not its constants", len(names))
	}
	doc := readFile(t, filepath.Join(repoRoot, operationsDoc))
	for _, n := range sortedKeys(names) {
		if !regexp.MustCompile("(?m)^\\| [^|]*`" + n + "`").MatchString(doc) {
			t.Errorf("%s has no row for %s", operationsDoc, n)
		}
	}
}

// TestDashboardGraphsVerification: the dashboard graphs verification as docs/OPERATIONS.md,
// "Dashboard", says: the estimate and its low bound per connection (label all) against
// VerificationAlarm's threshold, the objects checked per kind, differences and repairs by
// cause.
func TestDashboardGraphsVerification(t *testing.T) {
	tp := loadTemplate(t, readFile(t, templatePath))
	ev, err := tp.eval(tp.props("Dashboard")["DashboardBody"])
	text, ok := ev.(string)
	if err != nil || !ok {
		t.Fatalf("the dashboard's body: %v", err)
	}
	var body struct {
		Widgets []struct {
			Properties struct {
				Title       string  `json:"title"`
				Metrics     [][]any `json:"metrics"`
				Annotations struct {
					Horizontal []struct {
						Value float64 `json:"value"`
					} `json:"horizontal"`
				} `json:"annotations"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(text), &body); err != nil {
		t.Fatal(err)
	}
	threshold, _ := asNumber(get(tp.section("Parameters")["VerifyAlarmThreshold"], "Default"))
	want := map[string]string{
		verifyAll + " share": `SEARCH('{halosync,Connection,Label} MetricName="VerifyEqualShare" Label="all"', 'Minimum', 900)`,
		verifyAll + " low":   `SEARCH('{halosync,Connection,Label} MetricName="VerifyEqualShareLow" Label="all"', 'Minimum', 900)`,
		"checked per kind":   `SEARCH('{halosync,Connection,Kind} MetricName="VerifyChecked"', 'Sum', 3600)`,
		"differing by cause": `SEARCH('{halosync,Connection,Label} MetricName="VerifyDiffering"', 'Sum', 3600)`,
		"repaired by cause":  `SEARCH('{halosync,Connection,Label} MetricName="VerifyRepaired"', 'Sum', 3600)`,
	}
	found := map[string]bool{}
	for _, w := range body.Widgets {
		for _, row := range w.Properties.Metrics {
			for _, e := range row {
				expr, _ := asString(get(e, "expression"))
				for what, x := range want {
					if expr != x {
						continue
					}
					found[what] = true
					if strings.Contains(x, "VerifyEqualShare\"") && (len(w.Properties.Annotations.Horizontal) != 1 || w.Properties.Annotations.Horizontal[0].Value != threshold) {
						t.Errorf("%q graphs the estimate without VerificationAlarm's threshold (%v) as its line", w.Properties.Title, threshold)
					}
				}
			}
		}
	}
	for _, what := range sortedKeys(want) {
		if !found[what] {
			t.Errorf("the dashboard does not graph verification's %s: %s", what, want[what])
		}
	}
}
