package sqsqueue

// SQS's AWS JSON 1.0 requests and answers, member names as the API spells them, in the
// order the SDK's serialiser writes them (by name); optional numbers are left out when
// zero, as it leaves them out.

const (
	attributeReceiveCount  = "ApproximateReceiveCount"
	attributeSentTimestamp = "SentTimestamp"
)

type attributeValue struct {
	DataType    string `json:"DataType"`
	StringValue string `json:"StringValue,omitempty"`
}

type sendEntry struct {
	ID                string                    `json:"Id"`
	MessageAttributes map[string]attributeValue `json:"MessageAttributes,omitempty"`
	MessageBody       string                    `json:"MessageBody"`
}

type sendBatchRequest struct {
	Entries  []sendEntry `json:"Entries"`
	QueueURL string      `json:"QueueUrl"`
}

// handleEntry is an entry of DeleteMessageBatch and ChangeMessageVisibilityBatch.
type handleEntry struct {
	ID                string `json:"Id"`
	ReceiptHandle     string `json:"ReceiptHandle"`
	VisibilityTimeout *int   `json:"VisibilityTimeout,omitempty"`
}

type handleBatchRequest struct {
	Entries  []handleEntry `json:"Entries"`
	QueueURL string        `json:"QueueUrl"`
}

type batchFailure struct {
	ID          string `json:"Id"`
	SenderFault bool   `json:"SenderFault"`
	Code        string `json:"Code"`
	Message     string `json:"Message"`
}

// batchResult is the answer of the batch operations: the failures, and for a send the
// body checksums of the messages sent.
type batchResult struct {
	Successful []batchSuccess `json:"Successful"`
	Failed     []batchFailure `json:"Failed"`
}

type batchSuccess struct {
	ID               string `json:"Id"`
	MessageID        string `json:"MessageId"`
	MD5OfMessageBody string `json:"MD5OfMessageBody"`
}

type receiveRequest struct {
	MaxNumberOfMessages         int      `json:"MaxNumberOfMessages,omitempty"`
	MessageAttributeNames       []string `json:"MessageAttributeNames,omitempty"`
	MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames,omitempty"`
	QueueURL                    string   `json:"QueueUrl"`
	VisibilityTimeout           int      `json:"VisibilityTimeout,omitempty"`
	WaitTimeSeconds             int      `json:"WaitTimeSeconds,omitempty"`
}

type receivedMessage struct {
	MessageID         string                    `json:"MessageId"`
	ReceiptHandle     string                    `json:"ReceiptHandle"`
	Body              string                    `json:"Body"`
	MD5OfBody         string                    `json:"MD5OfBody"`
	Attributes        map[string]string         `json:"Attributes"`
	MessageAttributes map[string]attributeValue `json:"MessageAttributes"`
}

type receiveResult struct {
	Messages []receivedMessage `json:"Messages"`
}

type changeVisibilityRequest struct {
	QueueURL          string `json:"QueueUrl"`
	ReceiptHandle     string `json:"ReceiptHandle"`
	VisibilityTimeout int    `json:"VisibilityTimeout"`
}

type createQueueRequest struct {
	Attributes map[string]string `json:"Attributes,omitempty"`
	QueueName  string            `json:"QueueName"`
}

type createQueueResult struct {
	QueueURL string `json:"QueueUrl"`
}

type queueAttributesRequest struct {
	AttributeNames []string `json:"AttributeNames"`
	QueueURL       string   `json:"QueueUrl"`
}

type queueAttributesResult struct {
	Attributes map[string]string `json:"Attributes"`
}
