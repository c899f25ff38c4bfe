package config

import (
	"time"
)

// Server configures the local server's HTTP side.
type Server struct {
	// TrustedProxies lists the CIDRs of proxies whose forwarded-for header is believed;
	// from any other peer the header is ignored and the peer address is the source.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ForwardedHeader names the header a trusted proxy puts the client address in
	// (default X-Forwarded-For; read from the right, the first address that is not itself
	// a trusted proxy is the source).
	ForwardedHeader string `yaml:"forwarded_header"`
	// ReadTokens are the bearer tokens the reading routes (the copy, /status) accept;
	// several at once, for rotation. Secret references are resolved. None: `halosync
	// serve` generates one and keeps it in the data directory.
	ReadTokens []string `yaml:"read_tokens"`
	// Hosts are the names, besides the loopback ones and the host of the listen address,
	// that the reading routes answer under: a Host header naming anything else is refused,
	// so a page whose name resolves to this server (DNS rebinding) reads nothing.
	Hosts []string `yaml:"hosts"`
	// MaxConnections caps the connections served at once; more wait to be accepted.
	MaxConnections int `yaml:"max_connections"`
	// MaxBodyBytesInFlight caps the webhook bytes admitted across the requests being read
	// at once; a delivery that would pass it is refused with 503 and Retry-After.
	MaxBodyBytesInFlight int64 `yaml:"max_body_bytes_in_flight"`
}

// Connections is the cap on connections served at once: 512 unless set.
func (s Server) Connections() int {
	if s.MaxConnections > 0 {
		return s.MaxConnections
	}
	return 512
}

// BodyBytesInFlight is the cap on webhook body bytes being read at once: 64 MiB unless set.
func (s Server) BodyBytesInFlight() int64 {
	if s.MaxBodyBytesInFlight > 0 {
		return s.MaxBodyBytesInFlight
	}
	return 64 << 20
}

// Store names where the copy is kept.
type Store struct {
	Driver string `yaml:"driver"` // sqlite (default) or dynamodb
	Path   string `yaml:"path"`   // sqlite: the database file; default <data dir>/halosync.db (queues beside it: sqlite.QueuePath)
	Table  string `yaml:"table"`  // dynamodb: the table name
	Region string `yaml:"region"` // dynamodb: optional
}

// Queue tunes the embedded queue of the local server, and names a stack's SQS queues for
// `halosync dlq`.
type Queue struct {
	VisibilitySeconds int `yaml:"visibility_seconds"` // default 30
	MaxReceive        int `yaml:"max_receive"`        // default 20: then the dead-letter queue
	// MaxBacklog is how many changes may wait in the queue before ingest answers 503
	// (default DefaultMaxBacklog; -1: no limit).
	MaxBacklog int `yaml:"max_backlog"`
	// SQS names a deployed stack's queues, for `halosync dlq` (serve always uses the
	// embedded queue).
	SQS *SQSQueues `yaml:"sqs"`
}

// SQSQueues are the SQS queues of a deployed stack.
type SQSQueues struct {
	URL           string `yaml:"url"`             // the changes queue: stack output ChangesQueueUrl
	DeadLetterURL string `yaml:"dead_letter_url"` // stack output DeadLetterQueueUrl
	Region        string `yaml:"region"`          // optional, else the AWS profile's region
}

// DefaultMaxBacklog is the embedded queue's default backlog limit: about a minute of the
// local worker's pace on a small machine (docs/PERFORMANCE.md, "The local pipeline under
// load"), so an accepted delivery is applied within about a minute even under overload.
const DefaultMaxBacklog = 20000

// Backlog is how many messages the queue may hold before sends are refused: 0 for no
// limit (max_backlog -1), DefaultMaxBacklog unless set.
func (q Queue) Backlog() int {
	switch {
	case q.MaxBacklog < 0:
		return 0
	case q.MaxBacklog > 0:
		return q.MaxBacklog
	}
	return DefaultMaxBacklog
}

// DefaultMaxReceive is the embedded queue's receive limit unless set, the same as the SQS
// queue's maxReceiveCount in template.yaml: with the worker's backoff a change failing for
// a reason that may pass is retried for over two hours (docs/ARCHITECTURE.md, "Delivery
// records").
const DefaultMaxReceive = 20

// Visibility is how long a received message stays hidden: 30 s unless set.
func (q Queue) Visibility() time.Duration {
	if q.VisibilitySeconds > 0 {
		return time.Duration(q.VisibilitySeconds) * time.Second
	}
	return 30 * time.Second
}

// Receives is how many times a message is received before it moves to the dead-letter
// queue: DefaultMaxReceive unless set.
func (q Queue) Receives() int {
	if q.MaxReceive > 0 {
		return q.MaxReceive
	}
	return DefaultMaxReceive
}
