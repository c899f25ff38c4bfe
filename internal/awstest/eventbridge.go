package awstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// PutEntry is one entry of a PutEvents request as the fake EventBridge received it.
type PutEntry struct {
	EventBusName string          `json:"EventBusName"`
	Source       string          `json:"Source"`
	DetailType   string          `json:"DetailType"`
	Detail       string          `json:"Detail"`
	Time         json.RawMessage `json:"Time"`
}

// EventBridge is a fake EventBridge endpoint speaking PutEvents (the JSON 1.1 protocol):
// point the real SDK client at URL (BaseEndpoint, or AWS_ENDPOINT_URL_EVENTBRIDGE). It
// records the entries it accepts; Refuse decides, per entry, whether to answer it with
// an InternalFailure instead.
type EventBridge struct {
	URL string

	mu       sync.Mutex
	accepted []PutEntry
	calls    [][]PutEntry
	refuse   func(PutEntry) bool
}

// NewEventBridge starts a fake EventBridge for the test.
func NewEventBridge(tb testing.TB) *EventBridge {
	tb.Helper()
	f := &EventBridge{}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	tb.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Refuse sets which entries are refused from now on (nil: none).
func (f *EventBridge) Refuse(refuse func(PutEntry) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuse = refuse
}

// Accepted are the entries accepted so far, in order.
func (f *EventBridge) Accepted() []PutEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]PutEntry(nil), f.accepted...)
}

// Calls are the PutEvents requests so far, each with its entries.
func (f *EventBridge) Calls() [][]PutEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]PutEntry(nil), f.calls...)
}

func (f *EventBridge) serve(w http.ResponseWriter, r *http.Request) {
	if target := r.Header.Get("X-Amz-Target"); target != "AWSEvents.PutEvents" {
		http.Error(w, `{"__type":"UnknownOperationException","message":"`+target+`"}`, http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	var in struct {
		Entries []PutEntry `json:"Entries"`
	}
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err != nil || len(in.Entries) == 0 || len(in.Entries) > 10 {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"ValidationException","message":"%d entries (%v)"}`, len(in.Entries), err)
		return
	}
	type result struct {
		EventID      string `json:"EventId,omitempty"`
		ErrorCode    string `json:"ErrorCode,omitempty"`
		ErrorMessage string `json:"ErrorMessage,omitempty"`
	}
	out := struct {
		FailedEntryCount int      `json:"FailedEntryCount"`
		Entries          []result `json:"Entries"`
	}{}
	f.mu.Lock()
	f.calls = append(f.calls, in.Entries)
	for _, e := range in.Entries {
		if f.refuse != nil && f.refuse(e) {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, result{ErrorCode: "InternalFailure", ErrorMessage: "refused by the test"})
			continue
		}
		f.accepted = append(f.accepted, e)
		out.Entries = append(out.Entries, result{EventID: fmt.Sprintf("fake-%d", len(f.accepted))})
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}
