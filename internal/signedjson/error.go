package signedjson

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/smithy-go"
)

// APIError is an answer the service refused: its error code (ParameterNotFound,
// ResourceNotFoundException, ThrottlingException, ...), message, HTTP status and request
// id. It is a smithy.APIError, as the SDK's errors are, and carries its status as the
// SDK's retryer reads it.
type APIError struct {
	Code      string
	Message   string
	Status    int
	RequestID string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s (HTTP %d", e.Code, e.Status)
	if e.RequestID != "" {
		s += ", request id " + e.RequestID
	}
	s += ")"
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ErrorCode is the service's error code.
func (e *APIError) ErrorCode() string { return e.Code }

// ErrorMessage is the service's message.
func (e *APIError) ErrorMessage() string { return e.Message }

// ErrorFault says whether the service (5xx) or the caller (4xx) is at fault.
func (e *APIError) ErrorFault() smithy.ErrorFault {
	if e.Status >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// HTTPStatusCode is the answer's status, which the SDK's retryer reads (5xx retried).
func (e *APIError) HTTPStatusCode() int { return e.Status }

// apiError reads an AWS JSON error answer as the SDK's deserialisers do: the code from
// X-Amzn-ErrorType or the body's __type (or code), stripped of its namespace (before
// '#') and anything after ':'; the message from the body's message (or Message).
func apiError(resp *http.Response, body []byte) *APIError {
	e := &APIError{Code: "UnknownError", Status: resp.StatusCode, RequestID: resp.Header.Get("X-Amzn-Requestid")}
	if h := resp.Header.Get("X-Amzn-ErrorType"); h != "" {
		e.Code = errorCode(h)
	}
	var doc struct {
		Type     string `json:"__type"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		Message2 string `json:"Message"`
	}
	if json.Unmarshal(body, &doc) == nil {
		switch {
		case doc.Type != "":
			e.Code = errorCode(doc.Type)
		case doc.Code != "":
			e.Code = errorCode(doc.Code)
		}
		e.Message = doc.Message
		if e.Message == "" {
			e.Message = doc.Message2
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

func errorCode(s string) string {
	s, _, _ = strings.Cut(s, ":")
	if i := strings.LastIndex(s, "#"); i >= 0 {
		s = s[i+1:]
	}
	return s
}
