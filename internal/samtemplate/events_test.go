package samtemplate

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/changeevent"
	"github.com/halosync/halosync/internal/dynamo"
)

// publisherStream is the publisher's DynamoDB event source.
func publisherStream(t *testing.T, tp *template) map[string]any {
	t.Helper()
	ev := asMap(get(tp.props("PublisherFunction"), "Events", "Stream"))
	if s, _ := asString(ev["Type"]); s != "DynamoDB" {
		t.Fatalf("PublisherFunction.Events.Stream = %v, want a DynamoDB event", ev)
	}
	return asMap(ev["Properties"])
}

// TestChangeEventsWiring: the table's stream (new and old images) feeds the publisher,
// whose mapping reports batch item failures, bisects, retries a bounded number of times
// and records what it gives up on in its dead-letter queue; the publisher puts events on
// the stack's bus, named in its environment.
func TestChangeEventsWiring(t *testing.T) {
	tp := loadTemplate(t, readFile(t, templatePath))
	if v, _ := asString(get(tp.props("Table"), "StreamSpecification", "StreamViewType")); v != "NEW_AND_OLD_IMAGES" {
		t.Errorf("Table.StreamSpecification.StreamViewType = %q, want NEW_AND_OLD_IMAGES", v)
	}
	if tp.typeOf("ChangeEventBus") != "AWS::Events::EventBus" {
		t.Errorf("ChangeEventBus is a %q", tp.typeOf("ChangeEventBus"))
	}
	if tp.typeOf("PublisherDeadLetterQueue") != "AWS::SQS::Queue" {
		t.Errorf("PublisherDeadLetterQueue is a %q", tp.typeOf("PublisherDeadLetterQueue"))
	}
	p := publisherStream(t, tp)
	if !reflect.DeepEqual(p["Stream"], map[string]any{"Fn::GetAtt": []any{"Table", "StreamArn"}}) {
		t.Errorf("the stream source is %v, want Table's StreamArn", p["Stream"])
	}
	if types := asList(p["FunctionResponseTypes"]); !slices.Contains(types, any("ReportBatchItemFailures")) {
		t.Errorf("FunctionResponseTypes %v lacks ReportBatchItemFailures", types)
	}
	if b, _ := asBool(p["BisectBatchOnFunctionError"]); !b {
		t.Error("BisectBatchOnFunctionError is not true")
	}
	if n, ok := asNumber(p["MaximumRetryAttempts"]); !ok || n < 1 || n > 100 {
		t.Errorf("MaximumRetryAttempts = %v, want a bounded number of retries", p["MaximumRetryAttempts"])
	}
	if n, ok := asNumber(p["MaximumRecordAgeInSeconds"]); !ok || n > 86400 {
		t.Errorf("MaximumRecordAgeInSeconds = %v, want at most the stream's 24 hours", p["MaximumRecordAgeInSeconds"])
	}
	if d := get(p, "DestinationConfig", "OnFailure", "Destination"); !reflect.DeepEqual(d, map[string]any{"Fn::GetAtt": []any{"PublisherDeadLetterQueue", "Arn"}}) {
		t.Errorf("on-failure destination %v, want PublisherDeadLetterQueue", d)
	}
	env := asMap(get(tp.props("PublisherFunction"), "Environment", "Variables"))
	if !reflect.DeepEqual(env["EVENT_BUS_NAME"], map[string]any{"Ref": "ChangeEventBus"}) {
		t.Errorf("EVENT_BUS_NAME = %v, want the bus", env["EVENT_BUS_NAME"])
	}
}

// TestThePublishersFilterPassesObjectItemsOnly reads the mapping's filter as Lambda does:
// an insert or modification of an object item passes; a delivery record, a cursor and a
// removal do not. (internal/lambdae2e applies it to real stream records.)
func TestThePublishersFilterPassesObjectItemsOnly(t *testing.T) {
	filters := asList(get(publisherStream(t, loadTemplate(t, readFile(t, templatePath))), "FilterCriteria", "Filters"))
	if len(filters) != 1 {
		t.Fatalf("%d filters, want 1", len(filters))
	}
	pattern, _ := asString(get(filters[0], "Pattern"))
	record := func(event, image string) string {
		return `{"eventName":"` + event + `","eventSource":"aws:dynamodb","dynamodb":{"NewImage":` + image + `,"SequenceNumber":"1"}}`
	}
	object := `{"pk":{"S":"C#acme#ticket#1"},"sk":{"S":"STATE"},"gsi2pk":{"S":"` + dynamo.StreamFilterPrefix + `acme#KIND#ticket"},"version":{"N":"2"}}`
	delivery := `{"pk":{"S":"C#acme#DELIVERY#d1"},"sk":{"S":"ticket#1"},"version":{"N":"2"},"outcome":{"S":"applied"}}`
	cursor := `{"pk":{"S":"C#acme#CURSOR"},"sk":{"S":"ticket"},"doc":{"S":"{}"}}`
	for _, c := range []struct {
		name, record string
		want         bool
	}{
		{"an object inserted", record("INSERT", object), true},
		{"an object modified", record("MODIFY", object), true},
		{"a delivery record", record("INSERT", delivery), false},
		{"a cursor", record("MODIFY", cursor), false},
		{"a removal", `{"eventName":"REMOVE","dynamodb":{"OldImage":` + object + `}}`, false},
	} {
		got, err := awstest.Matches([]byte(pattern), []byte(c.record))
		if err != nil || got != c.want {
			t.Errorf("%s: passes %v (%v), want %v", c.name, got, err, c.want)
		}
	}
}

// readmeChangeEvents is README.md's "Change events" section.
func readmeChangeEvents(t *testing.T) string {
	t.Helper()
	_, text, ok := strings.Cut(readFile(t, repoRoot+"/README.md"), "\n## Change events\n")
	if !ok {
		t.Fatal("README.md has no \"Change events\" section")
	}
	text, _, _ = strings.Cut(text, "\n## ")
	return text
}

// jsonAfter is the ```json block that follows label in text.
func jsonAfter(t *testing.T, text, label string) []byte {
	t.Helper()
	_, rest, ok := strings.Cut(text, label)
	if !ok {
		t.Fatalf("README.md's change events section has no %q", label)
	}
	_, rest, ok = strings.Cut(rest, "```json\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatalf("no JSON block after %q", label)
	}
	return []byte(block)
}

// TestReadmeChangeEvents: the README lists every detail-type, its sample event is one
// halosync makes (its stable id derived from what it names), and its example rule
// matches the sample (a reassignment to a team) and not an update that leaves the team.
func TestReadmeChangeEvents(t *testing.T) {
	text := readmeChangeEvents(t)
	listed := regexp.MustCompile("`([a-z]+ (?:created|updated|deleted))`").FindAllStringSubmatch(text, -1)
	var names []string
	for _, m := range listed {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	want := changeevent.DetailTypes()
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("README lists the detail-types %v, want %v", names, want)
	}

	sample := jsonAfter(t, text, "Sample event:")
	ev, err := changeevent.Decode(sample)
	if err != nil {
		t.Fatalf("the sample event: %v", err)
	}
	d := ev.Detail
	if id := changeevent.ID(d.Connection, d.Kind, d.ID, d.ParentID, d.Version, d.Repairs); ev.ID != id || d.EventID != id {
		t.Errorf("the sample's ids %q, %q; its change's is %q", ev.ID, d.EventID, id)
	}
	if ev.Source != changeevent.Source || !slices.Contains(want, ev.DetailType) {
		t.Errorf("the sample's source %q, detail-type %q", ev.Source, ev.DetailType)
	}

	pattern := jsonAfter(t, text, "Event pattern:")
	if ok, err := awstest.Matches(pattern, sample); err != nil || !ok {
		t.Errorf("the example rule does not match the sample reassignment (%v)", err)
	}
	var other map[string]any
	if err := json.Unmarshal(sample, &other); err != nil {
		t.Fatal(err)
	}
	delete(other["detail"].(map[string]any)["changed"].(map[string]any), "team_id")
	noTeam, _ := json.Marshal(other)
	if ok, err := awstest.Matches(pattern, noTeam); err != nil || ok {
		t.Errorf("the example rule matches an update that leaves the team (%v)", err)
	}
	m := regexp.MustCompile(`--event-pattern '([^']*)'`).FindStringSubmatch(text)
	var shown, passed any
	if m == nil || json.Unmarshal(pattern, &shown) != nil || json.Unmarshal([]byte(m[1]), &passed) != nil || !reflect.DeepEqual(shown, passed) {
		t.Errorf("the put-rule command does not pass the pattern shown (%v)", m)
	}
}
